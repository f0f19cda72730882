"""Meta-learned initialisations (inrcodec.encoder.meta, ``inrcodec prior``): tiny networks, tiny images."""

from __future__ import annotations

import hashlib
import json
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from inrcodec import priors
from inrcodec.cli.prior import prior_command
from inrcodec.encoder import meta
from inrcodec.image import save


def _images(n: int, size: int = 16, seed: int = 0) -> list[np.ndarray]:
    """A family of images: one smooth picture with a random colour shift and noise per image
    (shared structure a learned initialisation can hold)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([0.5 + 0.3 * np.sin(2 * np.pi * (x + 0.5 * y) + c) for c in range(3)], -1)
    out = []
    for _ in range(n):
        arr = base + rng.uniform(-0.1, 0.1, 3) + rng.normal(0, 0.02, base.shape)
        out.append(np.clip(arr * 255, 0, 255).astype(np.uint8))
    return out


TOY = meta.MetaConfig(
    hidden=16,
    layers=2,
    pe_levels=2,
    outer_steps=40,
    outer_lr=3e-3,
    inner_lr=1e-3,
    meta_batch=2,
    pixels=64,
    probe_every=0,
    log_every=5,
    checkpoint_every=0,
    checkpoint_seconds=1e9,
)


def _log(run: Path) -> list[dict]:
    """The run's log lines without their wall-clock seconds."""
    rows = [json.loads(x) for x in (run / meta.LOG).read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def _state_tensors(state: meta.MetaState) -> list[torch.Tensor]:
    return state.weights + state.biases + [a for step in state.lrs for a in step]


def test_training_lowers_the_meta_loss(tmp_path):
    state = meta.train(TOY, tmp_path / "run", tmp_path, images=_images(4))
    losses = [r["loss"] for r in state.log]
    assert len(losses) == 8
    assert np.mean(losses[-2:]) < 0.7 * np.mean(losses[:2])
    # The step sizes were learned: they left their initial value.
    assert any(not torch.allclose(a, torch.full_like(a, TOY.inner_lr)) for step in state.lrs for a in step)
    doc = json.loads((tmp_path / "run" / meta.CONFIG).read_text())
    assert doc["config"] == TOY.doc()
    assert len((tmp_path / "run" / meta.LOG).read_text().splitlines()) == 8


@pytest.mark.parametrize("second_order", [False, True])
def test_kill_and_resume_gives_the_uninterrupted_weights(tmp_path, second_order):
    cfg = meta.with_fields(TOY, outer_steps=12, checkpoint_every=4, second_order=second_order)
    images = _images(3)
    whole = meta.train(cfg, tmp_path / "whole", tmp_path, images=images)

    class Killed(Exception):
        pass

    def kill_at_6(done, _total, _psnr):
        if done == 6:  # after step 6; the last checkpoint is step 4's
            raise Killed

    with pytest.raises(Killed):
        meta.train(cfg, tmp_path / "cut", tmp_path, images=images, progress=kill_at_6)
    assert meta.load_run(tmp_path / "cut")[1]["step"] == 4
    said = []
    resumed = meta.train(cfg, tmp_path / "cut", tmp_path, images=images, say=said.append)
    assert said and "resuming" in said[0] and "step 4" in said[0]
    for a, b in zip(_state_tensors(whole), _state_tensors(resumed)):
        assert torch.equal(a, b)
    assert _log(tmp_path / "cut") == _log(tmp_path / "whole")  # the lines after step 4 were dropped, then redone
    # stop_after ends a call early with a checkpoint; the next call goes on to the same end.
    meta.train(cfg, tmp_path / "stop", tmp_path, images=images, stop_after=7)
    again = meta.train(cfg, tmp_path / "stop", tmp_path, images=images)
    for a, b in zip(_state_tensors(whole), _state_tensors(again)):
        assert torch.equal(a, b)
    # A run may be lengthened on resuming: 7 steps, then on to 12, is the run of 12.
    meta.train(meta.with_fields(cfg, outer_steps=7), tmp_path / "longer", tmp_path, images=images, command="a")
    longer = meta.train(cfg, tmp_path / "longer", tmp_path, images=images, command="b")
    for a, b in zip(_state_tensors(whole), _state_tensors(longer)):
        assert torch.equal(a, b)
    assert json.loads((tmp_path / "longer" / meta.CONFIG).read_text())["commands"] == ["a", "b"]


def test_resume_refuses_another_configuration(tmp_path):
    meta.train(meta.with_fields(TOY, outer_steps=2), tmp_path / "run", tmp_path, images=_images(2))
    with pytest.raises(ValueError, match="outer_lr"):
        meta.train(meta.with_fields(TOY, outer_steps=2, outer_lr=1e-4), tmp_path / "run", tmp_path, images=_images(2))


def test_probes_must_be_held_out():
    with pytest.raises(ValueError, match="overlap"):
        meta.check(meta.with_fields(TOY, probe_every=5, photos=(1, 10), probe_photos=(5, 6)))


def _registry_copy(tmp_path: Path) -> Path:
    """A temporary copy of the package's priors folder (the real index.json is never touched)."""
    src = Path(priors.__file__).parent
    dst = tmp_path / "priors"
    dst.mkdir()
    shutil.copy(src / "index.json", dst / "index.json")
    (dst / "data").mkdir()
    return dst


def test_export_writes_a_loadable_prior_and_refuses_an_existing_id(tmp_path, monkeypatch):
    run = tmp_path / "run"
    state = meta.train(meta.with_fields(TOY, outer_steps=3), run, tmp_path, images=_images(2))
    reg = _registry_copy(tmp_path)
    before = json.loads(reg.joinpath("index.json").read_text())["priors"]
    entry = meta.export(run, 60001, "meta-test-v1", reg)
    data = (reg / "data" / "meta-test-v1.npz").read_bytes()
    assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    index = json.loads((reg / "index.json").read_text())
    assert index["priors"][: len(before)] == before and index["priors"][-1] == entry
    assert (entry["hidden"], entry["layers"], entry["pe_levels"], entry["channels"]) == (16, 2, 2, 3)
    assert "photo009-photo049" in entry["trained"]

    # The registry loads it (priors reads the package's folder: point it at the copy).
    real_files = resources.files
    monkeypatch.setattr(priors.resources, "files", lambda pkg: reg if pkg == "inrcodec.priors" else real_files(pkg))
    priors.registry.cache_clear()
    priors.load.cache_clear()
    try:
        ws, bs = priors.arrays(60001)
        for a, b in zip(ws + bs, state.weights + state.biases):
            np.testing.assert_array_equal(a, b.numpy())
        assert priors.registry()[60001].shape() == (16, 2, 2, 3, 30.0, 30.0)
        assert priors.find(16, 2, 2, 3, 30.0, 30.0) is None  # exported, not yet measured to pay: not auto
    finally:
        monkeypatch.undo()
        priors.registry.cache_clear()
        priors.load.cache_clear()

    with pytest.raises(ValueError, match="exists already"):
        meta.export(run, 60001, "meta-test-v2", reg)
    with pytest.raises(ValueError, match="exists already"):
        meta.export(run, 60002, "meta-test-v1", reg)
    assert (reg / "data" / "meta-test-v1.npz").read_bytes() == data  # untouched


def test_sparse_meta_training_from_a_prior_keeps_its_mask_and_exports_it(tmp_path, monkeypatch):
    """--from-prior P --density d (Lee et al.): θ starts at prior P pruned by global magnitude to
    d; the pruned weights stay exactly zero through the outer steps (and a kill and resume); the
    export ships the mask, which the registry then hands the decoder."""
    from helpers import install_prior

    from inrcodec.format import container

    arch = TOY.arch()
    dense = meta.train(meta.with_fields(TOY, outer_steps=2), tmp_path / "dense", tmp_path, images=_images(2))
    header = container.Header(16, 16, 3, arch.hidden, arch.layers, arch.omega0, arch.omega_hidden, arch.pe_levels)
    install_prior(monkeypatch, 60010, [w.numpy() for w in dense.weights], [b.numpy() for b in dense.biases], header)
    cfg = meta.with_fields(TOY, outer_steps=6, from_prior=60010, density=0.4)
    start = meta.initial_state(cfg)
    magnitudes = torch.cat([w.abs().reshape(-1) for w in dense.weights])
    kept = torch.cat([m.reshape(-1) for m in start.mask])
    assert int(kept.sum()) == round(0.4 * kept.numel())
    assert magnitudes[kept].min() >= magnitudes[~kept].max()  # the largest magnitudes survive
    run = tmp_path / "sparse"
    images = _images(3)
    meta.train(cfg, run, tmp_path, images=images, stop_after=3)  # killed after 3, then resumed
    state = meta.train(cfg, run, tmp_path, images=images)
    whole = meta.train(cfg, tmp_path / "whole", tmp_path, images=images)
    for a, b in zip(_state_tensors(state), _state_tensors(whole)):
        assert torch.equal(a, b)
    for w, w0, m in zip(state.weights, start.weights, start.mask):
        assert not w[~m].any() and not torch.equal(w[m], w0[m])  # pruned stay zero; kept ones learn
    with pytest.raises(ValueError, match="no such shipped prior"):
        meta.check(meta.with_fields(TOY, from_prior=65000))
    with pytest.raises(ValueError, match="density"):
        meta.check(meta.with_fields(TOY, density=0.0))

    monkeypatch.undo()  # prior 60010 was only needed to start from
    reg = _registry_copy(tmp_path)
    entry = meta.export(run, 60011, "meta-test-sparse-v1", reg)
    assert entry["density"] == 0.4 and "density 0.4" in entry["trained"] and "from prior 60010" in entry["trained"]
    real_files = resources.files
    monkeypatch.setattr(priors.resources, "files", lambda pkg: reg if pkg == "inrcodec.priors" else real_files(pkg))
    priors.registry.cache_clear()
    priors.load.cache_clear()
    try:
        for m, k in zip(priors.mask(60011), start.mask):
            np.testing.assert_array_equal(m, k.numpy())
    finally:
        monkeypatch.undo()
        priors.registry.cache_clear()
        priors.load.cache_clear()


def test_cli_train_resume_and_export(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, arr in enumerate(_images(4, size=12), start=1):
        save(arr, photos / f"photo{i:03d}.png")
    out = tmp_path / "run"
    args = [
        "train", "-o", str(out), "--width", "8", "--layers", "2", "--pe-levels", "1",
        "--outer-steps", "4", "--pixels", "32", "--probe-every", "2", "--photos", "2-4", "--probe-photos", "1-1",
        "--photos-dir", str(photos), "-q",
    ]  # fmt: skip
    runner = CliRunner()
    res = runner.invoke(prior_command, args)
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in (out / meta.LOG).read_text().splitlines()]
    assert [r["step"] for r in rows if "probe_inner_psnr" in r] == [0, 2, 4]
    res = runner.invoke(prior_command, [*args, "--seed", "1"])  # another config: refused
    assert res.exit_code == 1 and "another configuration (seed differ)" in res.output
    res = runner.invoke(prior_command, [*args[:-1], "--outer-steps", "6"])  # a longer run: resumed, not quiet
    assert res.exit_code == 0, res.output
    assert any(
        x.startswith("outer step 6/6 ") for x in res.stderr.splitlines()
    )  # stderr is no terminal here: lines, not a bar
    assert json.loads((out / meta.LOG).read_text().splitlines()[-1])["step"] == 6
    reg = _registry_copy(tmp_path)
    export = ["export", str(out), "--id", "60003", "--priors-dir", str(reg), "--name"]
    res = runner.invoke(prior_command, [*export, "t-v1"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(prior_command, [*export, "t-v2"])
    assert res.exit_code == 1 and "exists already" in res.output
    res = runner.invoke(prior_command, ["train", "--photos", "9"])
    assert res.exit_code == 2


def test_learning_curve_table():
    """benchmarks/prior_curve.py's table: means per N, the gain with its image count, |W - W_init|."""
    from benchmarks.prior_curve import table

    def row(image, init, p0, p1, dist):
        return {"image": image, "init": init, "psnr": {"0": p0, "50": p1}, "w_dist": [dist, dist], "b_dist": [0, 0]}

    doc = {
        "config": {"width": 80, "preset": "medium", "schedule": 2000, "steps": [0, 50], "layer_sizes": [10, 30]},
        "provenance": {"command": ["python", "-m", "benchmarks.prior_curve"]},
        "rows": [
            row("photo001", "random", 10, 20, 0.02),
            row("photo001", "meta", 12, 21, 0.01),
            row("photo002", "random", 10, 22, 0.02),
            row("photo002", "meta", 12, 21.5, 0.01),
        ],
    }
    text = table(doc)
    assert "| random | 10.00 | 21.00 |" in text
    assert "| meta | 12.00 | 21.25 |" in text
    assert "| meta − random | +2.00 (2/2) | +0.25 (1/2) |" in text
    assert "| meta | 0.0100; 0.0000 | 0.0100; 0.0000 | 0.0100 |" in text
    assert "python -m benchmarks.prior_curve" in text


def test_probes_fit_with_release_1_2s_point_of_the_width():
    """Every ladder width's probe fits as its release 1.2 ladder point does (112 and 144 at 10^-3,
    56 and 40 over 1500 steps); a width off the ladder falls back to `medium`'s fit."""
    from inrcodec.config import PRESETS_1_2

    assert meta.probe_fit_config(112)[0].lr == 1e-3 and meta.probe_fit_config(112)[1] == 2000
    assert meta.probe_fit_config(56)[1] == 1500 and meta.probe_fit_config(56)[0].lr == 2e-3
    assert meta.probe_fit_config(80) == (PRESETS_1_2["medium"].fit, 2000)
    assert meta.probe_fit_config(16) == (PRESETS_1_2["medium"].fit, 2000)
