"""The lottery-ticket experiment (inrcodec/experiments/lottery.py) on a tiny image: a few seconds in all."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from inrcodec import image
from inrcodec.cli import main
from inrcodec.encoder import fit
from inrcodec.experiments import lottery, spectra
from inrcodec.siren import Siren

TINY = replace(lottery.PRESETS["cpu"], size=24, hidden=16, layers=3, steps=15, rounds=3, prune=0.5)
TICKETS = ("winner", "random", "loser")
REAL_TRAIN = fit.train


def _picture() -> np.ndarray:
    y, x = np.mgrid[0:32, 0:40] / 40.0
    arr = np.stack([np.sin(6 * x) * 0.5 + 0.5, np.cos(9 * y) * 0.5 + 0.5, (x * y) % 1.0], axis=2)
    return np.round(arr * 255).astype(np.uint8)


class Killed(BaseException):
    """Stands for the process being killed in the middle of a round."""


class Recorder:
    """Wraps fit.train: records each call's round, mask and starting weights; may be killed."""

    def __init__(self, stop_at: tuple[int, int] | None = None):
        self.calls: list[dict] = []
        self.stop_at = stop_at  # (round, call index within the round): raise Killed there

    def __call__(self, net, target, cfg, steps, mask=None, seed_offset=0, **kw):
        n_here = sum(c["round"] == seed_offset for c in self.calls)
        if self.stop_at == (seed_offset, n_here):
            raise Killed
        ws, bs = net.state()
        self.calls.append({"round": seed_offset, "mask": mask, "weights": ws, "biases": bs})
        return REAL_TRAIN(net, target, cfg, steps, mask=mask, seed_offset=seed_offset, **kw)


def _run(tmp_path, monkeypatch, name: str, rounds: int, stop_at=None):
    rec = Recorder(stop_at)
    src = tmp_path / "pic.png"
    if not src.exists():
        image.save(_picture(), src)
    monkeypatch.setattr(fit, "train", rec)
    try:
        res = lottery.run(image.load(src), replace(TINY, rounds=rounds), tmp_path / name, device="cpu", source=str(src))
    finally:
        monkeypatch.setattr(fit, "train", REAL_TRAIN)
    return res, rec


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lottery")
    mp = pytest.MonkeyPatch()
    try:
        res, rec = _run(tmp, mp, "full", 3)
    finally:
        mp.undo()
    return tmp, res, rec


def _theta0(res):
    arch = TINY.architecture(res["image"]["channels"])
    return Siren(arch, torch.Generator().manual_seed(TINY.seed)).state()


def test_paper_preset_is_the_published_setup():
    p = lottery.PRESETS["paper"]
    assert p.architecture(3).n_params() == 198_915
    assert (p.size, p.layers, p.hidden, p.omega0, p.steps, p.lr, p.lr_final, p.rounds, p.prune, p.batch) == (
        256, 4, 256, 30.0, 1000, 1e-4, 0.0, 21, 0.2, None,
    )  # fmt: skip
    assert round(100 * 0.8 ** (p.rounds - 1), 1) == 1.2


def test_outputs_structure(full):
    tmp, res, _rec = full
    out = tmp / "full"
    for f in ("results.json", "results.csv", "jaccard.csv", "state.pt", "target.png", "recon/r00-dense.png"):
        assert (out / f).is_file(), f
    for r in (1, 2):
        for t in TICKETS:
            assert (out / "recon" / f"r{r:02d}-{t}.png").is_file()
    doc = json.loads((out / "results.json").read_text())
    assert doc == json.loads(json.dumps(res))
    assert [r["round"] for r in doc["rounds"]] == [0, 1, 2]
    assert doc["image"]["width"] == doc["image"]["height"] == 24
    n = doc["params"]["weights"]
    for rec in doc["rounds"]:
        assert set(rec["tickets"]) == set(TICKETS)
        assert set(rec["jaccard"]) == {"winner-random", "winner-loser", "random-loser"}
        for t in rec["tickets"].values():
            assert t["remaining"] == t["remaining_weights"] / n
            assert t["bytes"] > 0 and np.isfinite(t["psnr"]) and t["hfe"] >= 0
        for j in rec["jaccard"].values():
            assert len(j["layers"]) == TINY.layers + 1
            assert all(0 <= v <= 1 for v in j["layers"] + [j["all"]])
            if rec["round"] == 0:
                assert j["layers"] == [1.0] * (TINY.layers + 1)
    # Every ticket keeps the same count; remaining strictly falls round by round.
    for t in TICKETS:
        counts = [r["tickets"][t]["remaining_weights"] for r in doc["rounds"]]
        assert counts == [n, n - round(0.5 * n), n - round(0.5 * n) - round(0.5 * (n - round(0.5 * n)))]
    # Smaller tickets code to fewer bytes (the winner's curve is a rate curve).
    sizes = [r["tickets"]["winner"]["bytes"] for r in doc["rounds"]]
    assert sizes == sorted(sizes, reverse=True)
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * len(TICKETS)
    assert float(rows[-1]["remaining"]) == doc["rounds"][2]["tickets"]["loser"]["remaining"]
    with open(out / "jaccard.csv") as f:
        assert len(list(csv.DictReader(f))) == 3 * 3 * (TINY.layers + 2)
    fnd = doc["findings"]
    assert fnd["flat_psnr"] == doc["image"]["flat_psnr"]
    assert isinstance(fnd["winner_ge_random_every_round"], bool)
    assert "loser_collapse_round" in fnd


def test_rewind_is_exact_and_pruned_weights_stay_zero(full):
    tmp, res, rec = full
    w0, b0 = _theta0(res)
    assert torch.equal(rec.calls[0]["weights"][0], w0[0])  # round 0 starts from θ0
    later = [c for c in rec.calls if c["round"] > 0]
    assert len(later) == 2 * len(TICKETS)
    for c in later:
        for w, k, init in zip(c["weights"], c["mask"].keep, w0):
            assert torch.equal(w[k], init[k])  # survivors: exactly their initial values
            assert not w[~k].any()  # pruned: exactly zero
        for b, init in zip(c["biases"], b0):
            assert torch.equal(b, init)  # biases rewound, never pruned
    for first, second in zip(later[: len(TICKETS)], later[len(TICKETS) :]):  # round 1, round 2; same ticket
        assert not any((k2 & ~k1).any() for k1, k2 in zip(first["mask"].keep, second["mask"].keep))
    state = torch.load(tmp / "full" / "state.pt", weights_only=True)
    assert state["round"] == 2
    for t in TICKETS:
        ws, keep = state["tickets"][t]["weights"], state["tickets"][t]["keep"]
        assert any(not k.all() for k in keep)
        for w, k in zip(ws, keep):
            assert torch.count_nonzero(w[~k]) == 0  # after retraining: still exactly zero


def test_rules_rank_by_magnitude_across_layers(tmp_path, monkeypatch):
    _run(tmp_path, monkeypatch, "run", 1)  # round 0 only: the dense weights the round-1 masks come from
    dense = torch.load(tmp_path / "run" / "state.pt", weights_only=True)["tickets"]["winner"]["weights"]
    _run(tmp_path, monkeypatch, "run", 2)
    state = torch.load(tmp_path / "run" / "state.pt", weights_only=True)
    mags = torch.cat([w.abs().reshape(-1) for w in dense])
    kept = {t: torch.cat([k.reshape(-1) for k in state["tickets"][t]["keep"]]) for t in TICKETS}
    n_gone = round(TINY.prune * mags.numel())
    for t in TICKETS:
        assert int((~kept[t]).sum()) == n_gone
    # The loser removed the largest weights (across layers), the winner the smallest.
    assert mags[~kept["loser"]].min() >= mags[kept["loser"]].max()
    assert mags[~kept["winner"]].max() <= mags[kept["winner"]].min()
    assert not torch.equal(kept["random"], kept["winner"]) and not torch.equal(kept["random"], kept["loser"])


def test_resume_after_interruption(full, tmp_path, monkeypatch):
    _ftmp, straight, _ = full
    # Killed in round 2, after its first ticket: rounds 0-1 are saved, round 2 is not.
    with pytest.raises(Killed):
        _run(tmp_path, monkeypatch, "run", 3, stop_at=(2, 1))
    state = torch.load(tmp_path / "run" / "state.pt", weights_only=True)
    assert state["round"] == 1
    before = json.loads((tmp_path / "run" / "results.json").read_text())
    assert [r["round"] for r in before["rounds"]] == [0, 1]
    res, rec = _run(tmp_path, monkeypatch, "run", 3)
    assert [c["round"] for c in rec.calls] == [2] * len(TICKETS)  # rounds 0 and 1 are not redone
    assert res["rounds"][:2] == before["rounds"]
    # The same numbers as the uninterrupted run (timings aside).
    for a, b in zip(res["rounds"], straight["rounds"]):
        for t in TICKETS:
            x, y = dict(a["tickets"][t]), dict(b["tickets"][t])
            x.pop("train_seconds"), y.pop("train_seconds")
            assert x == y
        assert a["jaccard"] == b["jaccard"]
    # Asking again for as many rounds trains nothing.
    _res, rec = _run(tmp_path, monkeypatch, "run", 3)
    assert rec.calls == []


def test_resume_refuses_another_setup(full, tmp_path):
    tmp, _res, _ = full
    with pytest.raises(ValueError, match="another set-up .hidden differ"):
        lottery.run(image.load(tmp / "pic.png"), replace(TINY, hidden=8), tmp / "full", device="cpu")


def test_hfe_and_flat_psnr():
    r0 = 0.25
    flat = np.full((16, 16, 3), 77, np.uint8)
    assert spectra.hf_share(flat, r0) == 0.0
    checker = (np.indices((16, 16)).sum(0) % 2 * 255).astype(np.uint8)[:, :, None]
    assert spectra.hf_share(checker, r0) == pytest.approx(1.0)  # all energy at the corner frequency
    x = np.arange(32)
    slow = np.round(127.5 + 100 * np.cos(2 * np.pi * 2 * x / 32))[None, :, None].repeat(32, 0).astype(np.uint8)
    assert spectra.hf_share(slow, r0) < 1e-3  # 2 cycles / 32 px: r = 0.125 (8-bit rounding aside)
    arr = _picture()
    mean = np.round(arr.reshape(-1, 3).mean(0))
    mse = np.mean((arr.astype(float) - mean) ** 2)
    assert spectra.flat_psnr(arr) == pytest.approx(10 * np.log10(255**2 / mse))


def test_cli_resumes_and_plots(full):
    tmp, res, _ = full
    out = tmp / "full"
    args = ["lottery", str(tmp / "pic.png"), "-o", str(out), "--size", "24", "--hidden", "16", "--layers", "3"]
    args += ["--steps", "15", "--rounds", "3", "--prune", "0.5", "--device", "cpu", "--grid-rounds", "0,2"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output and "winner >= random at every round" in result.output
    for f in ("psnr.png", "hfe.png", "rate.png", "grid.png"):
        assert (out / f).stat().st_size > 1000
    assert json.loads((out / "results.json").read_text())["rounds"] == json.loads(json.dumps(res))["rounds"]
    bad = CliRunner().invoke(main, ["lottery", str(tmp / "pic.png"), "-o", str(tmp / "x"), "--tickets", "winner,foo"])
    assert bad.exit_code == 2 and "unknown ticket 'foo'" in bad.output  # refused by click, before any work
    assert not (tmp / "x").exists()
    # The plots again from the data files alone.
    for f in ("psnr.png", "grid.png"):
        (out / f).unlink()
    again = CliRunner().invoke(main, ["lottery", "--plots-only", str(out), "--grid-rounds", "1"])
    assert again.exit_code == 0, again.output
    assert again.output == f"{out}: psnr.png, hfe.png, rate.png, grid.png\n"
    assert (out / "grid.png").stat().st_size > 1000


FINDERS = ("winner", "snip", "synflow", "rigl", "nm:2:4")


def test_finder_tickets_beside_the_winner(tmp_path):
    """snip, synflow and rigl keep the winner's count every round; nm:2:4 stays at its N:M mask."""
    from inrcodec.encoder import rules

    src = tmp_path / "pic.png"
    image.save(_picture(), src)
    cfg = replace(TINY, tickets=FINDERS)
    res = lottery.run(image.load(src), cfg, tmp_path / "run", device="cpu")
    out = tmp_path / "run"
    state = torch.load(out / "state.pt", weights_only=True)
    for rec in res["rounds"][1:]:
        counts = {t: rec["tickets"][t]["remaining_weights"] for t in FINDERS}
        assert counts["snip"] == counts["synflow"] == counts["rigl"] == counts["winner"]
        for t in FINDERS:
            assert (out / "recon" / lottery.recon_file(rec["round"], t)).is_file()
    assert lottery.recon_file(2, "nm:2:4") == "r02-nm-2-4.png"
    r1, r2 = (r["tickets"]["nm:2:4"] for r in res["rounds"][1:])
    assert r1["remaining_weights"] == r2["remaining_weights"] and r2["psnr"] == r1["psnr"]  # the same ticket
    assert r2["train_seconds"] == 0.0
    keep = state["tickets"]["nm:2:4"]["keep"]
    for k in keep:
        full = k.shape[1] - k.shape[1] % 4
        assert (k[:, :full].reshape(k.shape[0], -1, 4).sum(-1) == 2).all()
    # SNIP: one-shot at θ0 on every pixel; the round-2 mask is the top count of those scores.
    w0, b0 = _theta0(res)
    from inrcodec.encoder.fit import Target
    from inrcodec.experiments.inputs import square

    target = Target.of(square(image.load(src), TINY.size))
    net = Siren(TINY.architecture(3), torch.Generator().manual_seed(TINY.seed))
    scores = torch.cat([s.reshape(-1) for s in rules.snip_scores(net, target, w0, biases=b0)])
    kept = torch.cat([k.reshape(-1) for k in state["tickets"]["snip"]["keep"]])
    assert scores[kept].min() >= scores[~kept].max()
    for t in ("snip", "synflow", "rigl"):
        ws, keep = state["tickets"][t]["weights"], state["tickets"][t]["keep"]
        assert all(not w[~k].any() for w, k in zip(ws, keep))  # pruned weights exactly zero
    assert all(int(k.sum()) >= 1 for k in state["tickets"]["synflow"]["keep"])  # no layer collapse


@pytest.mark.parametrize("rule", ["nm:5:4", "nm:2", "snap", "winner"])
def test_cli_rejects_bad_rules(tmp_path, rule):
    src = tmp_path / "pic.png"
    image.save(_picture(), src)
    res = CliRunner().invoke(main, ["lottery", str(src), "-o", str(tmp_path / "out"), "--rule", rule])
    assert res.exit_code == 2, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Invalid value for '--rule'" in errors[0], res.output
    assert not (tmp_path / "out").exists()


def test_cli_rule_runs_beside_the_tickets(tmp_path):
    src = tmp_path / "pic.png"
    image.save(_picture(), src)
    out = tmp_path / "out"
    args = ["lottery", str(src), "-o", str(out), "--size", "16", "--hidden", "8", "--layers", "2", "--steps", "5"]
    res = CliRunner().invoke(main, args + ["--rounds", "2", "--tickets", "winner", "--rule", "nm:1:4,synflow", "-q"])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "results.json").read_text())
    assert doc["config"]["tickets"] == ["winner", "nm:1:4", "synflow"]
    again = CliRunner().invoke(main, args + ["--tickets", "winner,snip", "--rule", "snip"])
    assert again.exit_code == 2 and "give each ticket once" in again.output
