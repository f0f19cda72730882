"""The benchmark: BD-rate against known answers, the dataset check, the cache, and the --quick run."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks import bd_rate as bd
from benchmarks import codecs, kodak_rd, report, runner
from benchmarks.plot import PUBLISHED

KODAK = kodak_rd.DEFAULT_IMAGES


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Like the benchmark's workers: one torch thread (two threads on a shared 2-core box crawl)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


RATES = [0.12, 0.25, 0.5, 0.9, 1.6, 2.4]
PSNRS = [25.1, 27.9, 30.6, 33.0, 35.8, 37.9]


# --- BD-rate --------------------------------------------------------------------------------------


def test_bd_rate_of_rates_scaled_by_0_9_is_minus_10_percent():
    assert bd.bd_rate(RATES, PSNRS, [0.9 * r for r in RATES], PSNRS) == pytest.approx(-10.0, abs=1e-9)
    assert bd.bd_rate(RATES, PSNRS, [1.25 * r for r in RATES], PSNRS) == pytest.approx(25.0, abs=1e-9)


def test_bd_psnr_of_a_curve_shifted_up_half_a_db_is_half_a_db():
    assert bd.bd_psnr(RATES, PSNRS, RATES, [p + 0.5 for p in PSNRS]) == pytest.approx(0.5, abs=1e-9)
    assert bd.bd_rate(RATES, PSNRS, RATES, PSNRS) == pytest.approx(0.0, abs=1e-9)


def test_bd_rate_swapping_the_curves_inverts_the_ratio():
    other = ([0.1, 0.3, 0.7, 1.2, 2.0], [24.0, 28.5, 31.5, 33.9, 36.4])
    ab = bd.bd_rate(RATES, PSNRS, *other)
    ba = bd.bd_rate(*other, RATES, PSNRS)
    assert (1 + ab / 100) * (1 + ba / 100) == pytest.approx(1.0, abs=1e-12)


def test_bd_rate_of_points_bunched_at_one_end_stays_between_the_lines():
    """kodim08's lowest grid points (three within 0.23 dB, then a gap of 4 dB) against release
    1.2's SIREN: the cubic swung to +657,899 %; the rate ratio at every shared PSNR, read off the
    straight lines, lies between -60 % and -25 %, so the BD-rate must too."""
    siren = ([0.0674, 0.1200, 0.2240, 0.4036, 0.6713], [18.19, 19.26, 20.50, 21.96, 23.30])
    grid = ([0.0892, 0.1057, 0.1166, 0.3464, 0.5370, 0.6535], [19.56, 19.74, 19.78, 23.71, 25.64, 26.44])
    rate = bd.bd_rate(*siren, *grid)
    assert -60.0 < rate < -25.0
    lq, qg = np.log(grid[0]), np.asarray(grid[1])
    assert bd._bends(qg, lq, 19.56, 23.30)  # the cubic that swung
    assert not bd._bends(np.asarray(PSNRS), np.log(RATES), 25.1, 37.9)  # a well-spread curve keeps it
    # A monotone cubic is kept: the well-spread curves above still give VCEG-M33's figure.
    assert bd.bd_rate(RATES, PSNRS, [0.9 * r for r in RATES], PSNRS) == pytest.approx(-10.0, abs=1e-9)


def test_straight_lines_integrate_exactly_beyond_the_points_and_merge_duplicates():
    x, y = np.array([2.0, 0.0, 1.0]), np.array([4.0, 0.0, 1.0])  # unsorted
    assert bd._linear_integral(x, y, 0.5, 1.5) == pytest.approx(1.25)
    assert bd._linear_integral(x, y, 3.0, 4.0) == pytest.approx(8.5)  # past the last point: its segment
    assert bd._linear_integral(x, y, -2.0, -1.0) == pytest.approx(-1.5)  # before the first: its segment
    dup = bd._linear_integral(np.array([0.0, 1.0, 1.0, 2.0]), np.array([0.0, 1.0, 3.0, 4.0]), 0.0, 2.0)
    assert dup == pytest.approx(4.0)  # (1, 1) and (1, 3) are one point at (1, 2)


def test_bd_rate_needs_overlap_and_two_points():
    with pytest.raises(bd.NoOverlap):
        bd.bd_rate([0.1, 0.2], [20.0, 22.0], [0.5, 1.0], [30.0, 32.0])
    with pytest.raises(ValueError):
        bd.bd_rate([0.1], [20.0], [0.5, 1.0], [30.0, 32.0])


@pytest.mark.skipif(not PUBLISHED.is_file(), reason="../shared/published/kodak.json not here")
def test_bd_rate_on_published_kodak_curves():
    """Sanity check on published numbers: VVC intra (VTM) needs roughly 15-20% fewer bits than HEVC
    intra (BPG 4:4:4) on Kodak, as the learned-compression literature reports; JPEG needs far more."""
    curves = json.loads(PUBLISHED.read_text())["curves"]

    def c(name):
        return curves[name]["bpp"], curves[name]["psnr_rgb"]

    assert -25.0 < bd.bd_rate(*c("BPG 4:4:4 x265"), *c("VTM (VVC)")) < -10.0
    assert bd.bd_rate(*c("BPG 4:4:4 x265"), *c("JPEG (Pillow 7.1.2)")) > 100.0
    assert bd.bd_psnr(*c("JPEG (Pillow 7.1.2)"), *c("WebP (Pillow 7.1.2)")) > 1.0


# --- dataset, cache -------------------------------------------------------------------------------


def _folder(tmp_path: Path, n: int = 2) -> Path:
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    lines = []
    for i in range(n):
        path = folder / f"im{i}.png"
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(path)
        lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}")
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return folder


def test_dataset_verifies_every_listed_image(tmp_path, capsys):
    folder = _folder(tmp_path)
    assert [r.name for r in runner.dataset(folder)] == ["im0", "im1"]
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(folder / "im1.png")
    with pytest.raises(runner.DatasetError, match="im1.png: sha256 .* does not match"):
        runner.dataset(folder)
    (folder / "im1.png").unlink()
    with pytest.raises(runner.DatasetError, match="im1.png: missing"):
        runner.dataset(folder)
    assert kodak_rd.main(["--images", str(folder), "--codecs", "jpeg420", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "im1.png: missing" in err
    assert not (tmp_path / "o").exists()


def test_row_cache_survives_a_torn_line_and_ignores_other_configs(tmp_path):
    cache = runner.RowCache(tmp_path, "x", {"s1": "fp1"})
    cache.append([{"image": "a", "setting": "s1", "fingerprint": "fp1", "bpp": 1.0}])
    with open(cache.path, "a") as f:
        f.write('{"image": "a", "setting": "s2", "finger')  # a kill in the middle of a write
    cache.append([{"image": "b", "setting": "s1", "fingerprint": "fp1", "bpp": 2.0}])
    cache.append([{"image": "c", "setting": "s1", "fingerprint": "other", "bpp": 3.0}])
    rows = cache.load()
    assert sorted(rows) == [("a", "s1"), ("b", "s1")]
    assert cache.stale == 1


def test_adding_a_trajectory_keeps_the_finished_ones_cached():
    """inrcodec's cache key is per trajectory: a wider ladder reruns only the new trajectory."""
    small = codecs.Ladder(trajectories=(codecs.Trajectory(hidden=8, densities=(0.5,)),))
    wider = codecs.Ladder(trajectories=(*small.trajectories, codecs.Trajectory(hidden=16, densities=())))
    a, b = runner.fingerprints(codecs.InrCodec(small), 64), runner.fingerprints(codecs.InrCodec(wider), 64)
    assert a.items() <= b.items() and set(b) - set(a) == {"h16-d1.00"}
    other = codecs.Ladder(trajectories=small.trajectories, fit_steps=small.fit_steps + 1)
    assert runner.fingerprints(codecs.InrCodec(other), 64)["h8-d1.00"] != a["h8-d1.00"]
    assert runner.fingerprints(codecs.InrCodec(small), None) != a  # another crop, other rows


def test_n_images_takes_the_first_verified_images(tmp_path, capsys):
    folder = _folder(tmp_path, 3)
    out = tmp_path / "o"
    assert kodak_rd.main(["--images", str(folder), "--n-images", "2", "--codecs", "jpeg420", "--out", str(out)]) == 0
    doc = json.loads((out / "jpeg420.json").read_text())
    assert doc["images"] == ["im0", "im1"] and doc["provenance"]["dataset"] == "imgs-first2"
    assert kodak_rd.main(["--images", str(folder), "--n-images", "0", "--codecs", "jpeg420"]) == 2
    assert "--n-images must be at least 1" in capsys.readouterr().err


def test_unknown_codec_is_a_one_line_error(tmp_path, capsys):
    folder = _folder(tmp_path)
    assert kodak_rd.main(["--images", str(folder), "--codecs", "jpeg420,nope", "--out", str(tmp_path / "o")]) == 2
    assert "unknown codec(s) nope" in capsys.readouterr().err


# --- the runs -------------------------------------------------------------------------------------


def test_pillow_codecs_measure_real_bytes(tmp_path):
    arr = runner.load(runner.dataset(_folder(tmp_path, 1))[0])
    for codec in codecs.make(["jpeg420", "jpeg444", "webp", "jpeg2000", "avif"]):
        job = codec.jobs()[len(codec.jobs()) // 2]
        (r,) = codec.run(arr, job)
        assert r["bpp"] == 8 * r["bytes"] / (24 * 32) and r["bytes"] > 0
        assert 5 < r["psnr"] < 60, (codec.name, r)


def test_upscale_rows(tmp_path):
    from benchmarks.upscale import SETTINGS, Upscale

    y, x = np.mgrid[0:48, 0:64]
    arr = np.stack([x * 4, y * 5, (x + y) * 2], axis=2).astype(np.uint8)  # smooth: upscales well
    exp = Upscale("fast")
    rows = exp.run(arr, exp.jobs()[0])
    assert [r["setting"] for r in rows] == list(SETTINGS)
    by = {r["setting"]: r for r in rows}
    assert by["inr-render"]["bpp"] == 8 * by["inr-render"]["bytes"] / (48 * 64)
    assert by["bicubic"]["bpp"] is None and math.isfinite(by["lanczos"]["psnr"])


def test_upscale_with_a_latent_grid_preset(monkeypatch):
    """The grid presets go through the same experiment: the v5 file rendered at twice its size."""
    from benchmarks.upscale import SETTINGS, Upscale
    from inrcodec import config

    tiny = config.LatentConfig(lam=1e-3, levels=3, hidden=8, steps=40, batch=256, lr_latent=0.1)
    monkeypatch.setitem(config.LATENT_PRESETS, "grid-medium", tiny)
    y, x = np.mgrid[0:48, 0:64]
    arr = np.stack([x * 4, y * 5, (x + y) * 2], axis=2).astype(np.uint8)
    exp = Upscale("grid-medium")
    assert exp.config()["encode_config"]["steps"] == 40
    rows = exp.run(arr, exp.jobs()[0])
    assert [r["setting"] for r in rows] == list(SETTINGS)
    assert rows[0]["bytes"] > 0 and 5 < rows[0]["psnr"] < 60 and 5 < rows[0]["native_psnr"] < 60


def test_latent_proto_rows_record_the_bytes_before_version_8():
    """A row's bytes are the version 8 file's; beside them, the same integers as the writer before
    version 8 wrote them (version 5 here: no init), which is larger."""
    from benchmarks import latent_grid as lg
    from inrcodec import config

    tiny = config.LatentConfig(lam=1e-3, levels=3, hidden=8, steps=30, batch=256, lr_latent=0.1)
    y, x = np.mgrid[0:48, 0:64]
    arr = np.stack([x * 4, y * 5, (x + y) * 2], axis=2).astype(np.uint8)
    codec = lg.LatentProto((tiny,), "latent-proto", "")
    (r,) = codec.run(arr, codec.jobs()[0])
    assert r["bytes"] < r["bytes_v5_or_v7"] and r["bpp"] == 8 * r["bytes"] / (48 * 64)
    assert codec.config()["points"][0]["format"] == 8
    # a four-pass point's row: version 9, which has no older version to compare with
    four = lg.LatentProto((replace(tiny, context="four-pass"),), "latent-proto", "")
    (r,) = four.run(arr, four.jobs()[0])
    assert r["bytes"] > 0 and "bytes_v5_or_v7" not in r and four.config()["points"][0]["format"] == 9


@pytest.mark.slow
@pytest.mark.skipif(not KODAK.is_dir(), reason="../shared/kodak not here")
def test_quick_run_end_to_end_and_resume(tmp_path, capsys):
    out = tmp_path / "kodak-quick"
    assert kodak_rd.main(["--quick", "--workers", "2", "--out", str(out)]) == 0
    log = capsys.readouterr().out
    assert "ETA" in log
    for codec in codecs.make(list(codecs.CODECS), quick=True):
        doc = json.loads((out / f"{codec.name}.json").read_text())
        assert doc["complete"] and doc["images"] == ["kodim01", "kodim02", "kodim03"]
        assert len(doc["rows"]) == 3 * len(doc["settings"])
        assert all(r["bpp"] == 8 * r["bytes"] / (256 * 256) for r in doc["rows"])
        prov = doc["provenance"]
        assert prov["crop"] == 256 and prov["config"] == json.loads(json.dumps(codec.config())) and prov["git_commit"]
        assert {"pillow", "torch", "numpy"} <= set(prov["versions"]) and prov["machine"]["cpu_count"]
    inr = json.loads((out / "inrcodec.json").read_text())
    assert len(inr["settings"]) == 2 and all(r["psnr"] > 15 for r in inr["rows"])

    # A rerun finds everything in the cache; a lost row is recomputed alone.
    rows_file = out / "rows" / "webp.jsonl"
    lines = rows_file.read_text().splitlines()
    rows_file.write_text("\n".join(lines[:-1]) + "\n")
    assert kodak_rd.main(["--quick", "--out", str(out)]) == 0
    log = capsys.readouterr().out
    assert log.startswith("1 jobs to run,")

    doc = tmp_path / "benchmark.md"
    doc.write_text("x\n<!-- generated:rd begin -->\nold\n<!-- generated:rd end -->\ny\n")
    text = report.replace_block(doc.read_text(), "rd", report.rd_block(out, doc))
    assert "| JPEG 4:2:0 | q=50 |" in text and "| inrcodec | JPEG 4:2:0 |" in text and "old" not in text
    assert (out / "rd.png").stat().st_size > 10_000


def test_rd_presets_are_ladder_points():
    """low/medium/high are exactly benchmark ladder points, so the benchmark measures the presets."""
    from benchmarks.codecs import LADDER
    from inrcodec import config
    from inrcodec.encoder.prune import round_fraction

    def schedule(density: float, rate: float) -> list[float]:
        out, d = [], 1.0
        while d > density + 1e-9:
            d *= 1 - round_fraction(d, density, rate)
            out.append(round(d, 6))
        return out

    points = {(t.hidden, d) for t in LADDER.trajectories for d in (1.0, *t.densities)}
    for name in ("low", "medium", "high"):
        cfg = config.preset(name)
        traj = next(t for t in LADDER.trajectories if t.hidden == cfg.arch.hidden)
        assert (cfg.arch.hidden, cfg.prune.density) in points
        ref = LADDER.encode_config(traj)
        assert (cfg.arch, cfg.fit, cfg.coder) == (ref.arch, ref.fit, ref.coder)
        same = (ref.prune.rule, ref.prune.rewind, ref.prune.steps)
        assert (cfg.prune.rule, cfg.prune.rewind, cfg.prune.steps) == same
        # The preset's geometric schedule visits exactly the ladder's densities up to its own.
        assert schedule(cfg.prune.density, cfg.prune.rate) == [d for d in traj.densities if d >= cfg.prune.density]


def test_rate_control_ladder_is_the_benchmark_ladder():
    """Rate control chooses among exactly the benchmark ladder's dense points (so the ladder rows
    are what each choice gives), widest first; a ladder preset given a cap searches it, unless a
    density below 1 or a named prior pins the preset's own network; --steps with the search is refused."""
    from benchmarks.codecs import LADDER
    from inrcodec import config

    assert list(config.RATE_LADDER) == sorted((t.hidden for t in LADDER.trajectories), reverse=True)
    for t in LADDER.trajectories:
        cfg, ref = config.RATE_LADDER[t.hidden], LADDER.encode_config(t)
        assert (cfg.arch, cfg.fit, cfg.coder) == (ref.arch, ref.fit, ref.coder)
        assert config.at_width(config.preset("medium", bpp=0.1), t.hidden).fit == ref.fit
    assert config.preset("medium", bpp=0.1).widths == tuple(config.RATE_LADDER)
    assert config.preset("medium").widths == () and config.preset("fast", bpp=0.5).widths == ()
    assert config.override("high", bpp=0.1).widths == tuple(config.RATE_LADDER)
    for pinned in ({"density": 0.5}, {"prior": "1"}):
        assert config.override("medium", bpp=0.1, **pinned).widths == ()
    assert config.preset("medium", bpp=0.1, prior="1").widths == ()
    assert config.override("medium", bpp=0.1, density=1.0).widths == tuple(config.RATE_LADDER)
    with pytest.raises(ValueError, match="--steps with --bpp"):
        config.override("medium", bpp=0.1, steps=100)
    assert config.override("medium", bpp=0.1, steps=100, density=0.5).fit.steps == 100  # pinned: prunes
    assert "widths" not in config.record(config.preset("medium"))  # old fingerprints unchanged


def test_release_1_2_ladder_and_presets_are_the_archived_runs():
    """LADDER_1_2 makes exactly the encode configs of the archived 1.2 Kodak run (so its rows keep
    their fingerprints), LADDER_1_2_POINTS and PRESETS_1_2 are its points, and 2.0's ladder differs
    only in the fit and the entropy coder."""
    from benchmarks.codecs import LADDER, LADDER_1_2
    from inrcodec import config

    archived = json.loads((runner.REPO / "benchmarks/results/archive/1.2.0/kodak/inrcodec.json").read_text())
    configs = archived["provenance"]["config"]["encode_configs"]
    as_json = lambda cfg: json.loads(json.dumps(config.record(cfg)))  # noqa: E731 - tuples become lists
    assert {f"h{t.hidden}": as_json(LADDER_1_2.encode_config(t)) for t in LADDER_1_2.trajectories} == configs
    for hidden, point in config.LADDER_1_2_POINTS.items():  # the priors' curves fit these
        assert as_json(replace(point, prune=replace(point.prune, rate=0.2))) == configs[f"h{hidden}"]
    for name in ("low", "medium", "high"):
        old = config.PRESETS_1_2[name]
        assert old is config.LADDER_1_2_POINTS[old.arch.hidden]
        new = config.PRESETS[name]
        assert replace(new, fit=old.fit, coder=old.coder) == old and new.fit.fused and new.fit.sampler == "importance"
        assert new.coder == replace(old.coder, entropy_coder="auto")
        assert new.fit.steps == round(old.fit.steps * config.STEPS_2_0)
    for old, new in zip(LADDER_1_2.trajectories, LADDER.trajectories, strict=True):
        assert new.fit_steps == round(LADDER_1_2.steps_of(old) * config.STEPS_2_0)


def test_the_first_2_0_ladder_is_its_archived_run_and_the_presets_add_the_native_kernels():
    """LADDER_2_0_TORCH (what the steps and shared-mask ablations ran) is the ladder whose Kodak and
    photo rows were archived when the presets took the native kernels; the ladder now is the same
    points with kernel "auto", 1.4x release 1.2's steps instead of 1.15x and entropy coder "auto"."""
    from benchmarks.codecs import LADDER, LADDER_2_0_TORCH
    from inrcodec import config

    as_json = lambda cfg: json.loads(json.dumps(config.record(cfg)))  # noqa: E731 - tuples become lists
    for folder in ("kodak", "photos-first8"):
        path = runner.RESULTS / "archive" / "2.0.0-torch-kernels" / folder / "inrcodec.json"
        configs = json.loads(path.read_text())["provenance"]["config"]["encode_configs"]
        assert {f"h{t.hidden}": as_json(LADDER_2_0_TORCH.encode_config(t)) for t in LADDER_2_0_TORCH.trajectories} == (
            configs
        )
    brotli = replace(LADDER, entropy_coder="brotli")
    for path, ladder in (("kodak", LADDER), ("photos-first8", LADDER), ("archive/2.0.0-native-brotli/kodak", brotli)):
        doc = json.loads((runner.RESULTS / path / "inrcodec.json").read_text())
        assert {f"h{t.hidden}": as_json(ladder.encode_config(t)) for t in ladder.trajectories} == (
            doc["provenance"]["config"]["encode_configs"]
        ), path  # the committed rows are the ladder's (and the archived one the ladder before range coding)
    for old, new in zip(LADDER_2_0_TORCH.trajectories, LADDER.trajectories, strict=True):
        before, after = LADDER_2_0_TORCH.encode_config(old), LADDER.encode_config(new)
        assert after.fit.kernel == "auto" and before.fit.kernel == "torch"
        assert after.coder.entropy_coder == "auto" and before.coder.entropy_coder == "brotli"
        fit = replace(after.fit, kernel="torch", steps=before.fit.steps)
        assert replace(after, fit=fit, coder=replace(after.coder, entropy_coder="brotli")) == before


def test_a_codecs_curve_is_its_front():
    """Settings beaten by another setting at fewer (or equal) bits leave the curve, none else does."""
    from benchmarks.plot import front, points

    curve = [
        {"setting": "dense-small", "bpp": 0.1, "psnr": 24.0},
        {"setting": "pruned", "bpp": 0.2, "psnr": 23.5},  # below dense-small at more bits: off
        {"setting": "dense-mid", "bpp": 0.2, "psnr": 25.0},
        {"setting": "pruned-big", "bpp": 0.3, "psnr": 26.0},
        {"setting": "dense-big", "bpp": 0.4, "psnr": 26.0},  # no better than pruned-big at more bits: off
    ]
    assert [c["setting"] for c in front(curve)] == ["dense-small", "dense-mid", "pruned-big"]
    assert points({"curve": curve}, {"pruned", "dense-big"}) == ([0.2, 0.4], [23.5, 26.0])


def test_per_image_bd_is_each_images_own_bd_rate():
    """Image by image: a test codec at 0.9x the anchor's rates on one image, 2x on another, and
    no shared PSNR range on a third, gives -10 %, +100 % and one image without a range; an image
    with a single row (an unfinished run) is left out, not counted as without a range."""
    q = [24.0, 26.0, 28.0, 30.0]
    rates = {k: [0.1, 0.2, 0.4, 0.8] for k in "abcd"}
    anchor = {"rows": [{"image": k, "bpp": r, "psnr": p} for k, rs in rates.items() for r, p in zip(rs, q)]}
    scale = {"a": 0.9, "b": 2.0}
    rows = [{"image": k, "bpp": r * scale[k], "psnr": p} for k in scale for r, p in zip(rates[k], q)]
    rows += [{"image": "c", "bpp": r, "psnr": p + 20} for r, p in zip(rates["c"], q)]
    rows += [{"image": "d", "bpp": 0.1, "psnr": 24.0}]  # an unfinished image: one row only
    got, none = report.per_image_bd(anchor, {"images": ["a", "b", "c", "d"], "rows": rows})
    assert got == [pytest.approx(-10.0), pytest.approx(100.0)] and none == 1


def test_release_block_pairs_rows_image_by_image(tmp_path):
    """Against an earlier release: per shared setting, the mean PSNR and byte changes of the same
    images, the fit steps each run recorded, and the settings only the old run had."""

    def doc(folder: Path, steps: dict, rows: list[dict]) -> None:
        folder.mkdir()
        settings = sorted({r["setting"] for r in rows})
        curve = [
            {
                "setting": s,
                "bpp": float(np.mean([r["bpp"] for r in rows if r["setting"] == s])),
                "psnr": float(np.mean([r["psnr"] for r in rows if r["setting"] == s])),
                "n": 2,
            }
            for s in settings
        ]
        configs = {k: {"fit": {"steps": v, "lr": 2e-3 if v == 1500 else 1e-3}} for k, v in steps.items()}
        d = {
            "name": "inrcodec",
            "label": "inrcodec",
            "kind": "rd",
            "complete": True,
            "images": ["a", "b"],
            "settings": settings,
            "curve": curve,
            "rows": rows,
            "provenance": {"config": {"encode_configs": configs}},
        }
        (folder / "inrcodec.json").write_text(json.dumps(d))

    def row(image, setting, nbytes, psnr):
        return {"image": image, "setting": setting, "bytes": nbytes, "bpp": nbytes / 1000, "psnr": psnr}

    old = [row(i, s, n, p) for i in "ab" for s, n, p in (("h40-d1.00", 100, 24.0), ("h80-d1.00", 200, 26.0))]
    old += [row(i, "h176-d1.00", 400, 27.0) for i in "ab"]
    new = [row("a", "h40-d1.00", 100, 24.0), row("b", "h40-d1.00", 100, 24.0)]
    new += [row("a", "h80-d1.00", 210, 26.5), row("b", "h80-d1.00", 230, 26.3)]
    doc(tmp_path / "old", {"h40": 1500, "h80": 1500, "h176": 1500}, old)
    doc(tmp_path / "new", {"h40": 1500, "h80": 3000}, new)
    text = report.release_block(tmp_path / "old", tmp_path / "new", "1.1.0")
    assert "| h40-d1.00 | 1500, 0.002 → 1500, 0.002 | 2 | +0.00 (+0.00 … +0.00) | +0.0% |" in text
    assert "| h80-d1.00 | 1500, 0.002 → 3000, 0.001 | 2 | +0.40 (+0.30 … +0.50) | +10.0% |" in text
    assert "settings only 1.1.0 ran: h176-d1.00" in text
    assert "against release 1.1.0 (" in text and "against release 1.1.0's:" in text
    assert "Needs inrcodec results" in report.release_block(tmp_path / "old", tmp_path / "missing")
    # another run of the same release, named as such; an "auto" kernel says what the rows ran
    newer = json.loads((tmp_path / "new" / "inrcodec.json").read_text())
    newer["provenance"]["config"]["encode_configs"]["h80"]["fit"].update(fused=True, kernel="auto")
    for r in newer["rows"]:
        r["kernel"] = "native" if r["image"] == "a" else "torch"
    (tmp_path / "newer").mkdir()
    (tmp_path / "newer" / "inrcodec.json").write_text(json.dumps(newer))
    text = report.release_block(tmp_path / "new", tmp_path / "newer", "2.0 (torch's)", "the first 2.0 ladder")
    assert "against the first 2.0 ladder (" in text and "against the first 2.0 ladder's:" in text
    assert "| h80-d1.00 | 3000, 0.001 → 3000, 0.001, fused, kernel auto (native, torch ran) |" in text


# --- paths in results -----------------------------------------------------------------------------


def test_results_record_paths_relative_to_the_repository(monkeypatch):
    """images_dir, the command's arguments and the log lines name paths from the repository root
    (``..`` for a sibling folder such as ../shared), never the machine's absolute path."""
    repo = runner.REPO
    assert runner.repo_path(repo / "benchmarks" / "results" / "kodak") == "benchmarks/results/kodak"
    assert runner.repo_path(repo.parent / "shared" / "kodak") == "../shared/kodak"
    assert runner.repo_path(repo) == "."
    assert runner.dataset_meta(repo.parent / "shared" / "photos", "photos", False)["images_dir"] == "../shared/photos"
    monkeypatch.chdir(repo)
    out = str(repo / "benchmarks" / "results" / "kodak")
    argv = ["-m", "benchmarks.kodak_rd", "--workers", "2", "--out", out, f"--images={repo.parent}/shared/kodak"]
    assert runner.command_line(argv)[1:] == [
        "-m",
        "benchmarks.kodak_rd",
        "--workers",
        "2",
        "--out",
        "benchmarks/results/kodak",
        "--images=../shared/kodak",
    ]
    monkeypatch.chdir(repo / "benchmarks")  # a relative path given from elsewhere: made repo-relative
    assert runner.command_line(["--out", "results"])[1:] == ["--out", "benchmarks/results"]


def test_markdown_table_lines():
    from benchmarks import markdown as md

    lines = md.table(("a", "b"), [(1, "x"), (md.fmt(None), md.fmt(0.5, "+.1f"))])
    assert lines == ["| a | b |", "|---|---|", "| 1 | x |", "| – | +0.5 |"]
    assert md.row(("only",)) == "| only |"


# --- BD-rate against an independent implementation (the `bjontegaard` package) --------------------


def _committed_pairs() -> list[tuple[str, tuple, tuple]]:
    """(label, anchor, test) for every BD-rate docs/benchmark.md reports on committed mean curves:
    every codec against JPEG 4:2:0 and inrcodec against WebP and AVIF on Kodak, inrcodec against
    JPEG 4:2:0 on the tuning photos; each curve its front (``plot.points``), as the report uses."""
    from benchmarks.plot import load_results, points

    out = []
    for folder in ("kodak", report.PHOTOS):
        by = {d["name"]: d for d in load_results(runner.RESULTS / folder)}
        pairs = [(report.ANCHOR, t) for t in by if t != report.ANCHOR]
        pairs += [(a, report.INR) for a in report.INR_ANCHORS]
        out += [(f"{folder}: {t} vs {a}", points(by[a]), points(by[t])) for a, t in pairs if a in by and t in by]
    return out


def _span_cut(curve: tuple, lo: float, hi: float, on_rate: bool) -> tuple[np.ndarray, np.ndarray]:
    """The points of ``curve`` our span variant fits over [lo, hi] (of PSNR, or of log-rate)."""
    r, q = np.asarray(curve[0], dtype=float), np.asarray(curve[1], dtype=float)
    keep = bd._span(np.log(r) if on_rate else q, lo, hi)
    return r[keep], q[keep]


def test_bd_rate_agrees_with_the_bjontegaard_package_on_the_committed_curves():
    """Cross-check of benchmarks/bd_rate.py against `bjontegaard` (FAU's maintained implementation,
    PyPI), on the committed mean curves:

    - Its 'cubic' method is VCEG-M33: one least-squares cubic through all of a curve's points,
      integrated over the shared range. Our "span" variant is that same cubic, fitted only to the
      points spanning the shared range. Given the points our variant keeps, 'cubic' must give our
      numbers to rounding (1e-6 %, 1e-6 dB): the fit, the integration, the log-rate and the
      percentage are the same arithmetic. On four-point curves nothing is cut: plain VCEG-M33.
      Where a span keeps only three points (JPEG's curve over the photos' 22.5-26.8 dB) ours is a
      parabola and the package's cubic is underdetermined, so that pair is compared by the next
      check only.
    - Its 'pchip' method (piecewise cubic Hermite through every point: the JCT-VC/JVET common test
      conditions' Excel sheet, which the package reproduces to 10 decimals) and 'akima' (its
      authors' recommendation) are independent estimates of the same curves. BD-rates agree within
      0.75 percentage points times the rate ratio where that is above 1 (1 + BD/100: the
      interpolants' gap grows with it: +0.8/+1.0 against WebP at +62 %, +1.4 against AVIF at
      +121 % in the first 2.0 run; +0.6/+0.7 and +0.3 in the native step's), BD-PSNRs within
      0.05 dB, on every pair; the headline, inrcodec against JPEG 4:2:0 on Kodak, within 0.4
      points (-18.96 % ours, -18.68/-18.65 % pchip/akima; the first 2.0 ladder -16.62 against
      -16.32/-16.29; release 1.2's curve was within 0.1). The gap is the interpolants' curvature
      between measured points; at ratios below 1 it is largest on the long classical curves (11-12
      points from 23 to 42 dB), up to 0.56 points.
    - Plain 'cubic' on the whole curves is the method the span variant avoids: one cubic stretched
      over JPEG's 23-42 dB bends where inrcodec has no points (headline -20.44 %, docs/benchmark.md).
    """
    import warnings

    import bjontegaard as bj

    pairs = _committed_pairs()
    assert len(pairs) >= 7, [p[0] for p in pairs]
    opts = {"require_matching_points": False, "min_overlap": 0}  # our curves have unequal point counts
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bjontegaard warns on partial overlap; the range is reported
        exact = 0
        for label, a, t in pairs:
            ours_rate, ours_psnr = bd.bd_rate(*a, *t), bd.bd_psnr(*a, *t)
            lo, hi = bd.overlap(a[1], t[1])
            llo, lhi = max(np.log(a[0]).min(), np.log(t[0]).min()), min(np.log(a[0]).max(), np.log(t[0]).max())
            cuts = [_span_cut(a, lo, hi, False), _span_cut(t, lo, hi, False)]
            cuts_psnr = [_span_cut(a, llo, lhi, True), _span_cut(t, llo, lhi, True)]
            # Where a span keeps three points our fit is a parabola (degree min(3, n - 1)); the
            # package's cubic through three points is underdetermined, so it is no reference there.
            if min(len(c[0]) for c in cuts + cuts_psnr) >= 4:
                exact += 1
                assert ours_rate == pytest.approx(bj.bd_rate(*cuts[0], *cuts[1], method="cubic", **opts), abs=1e-6)
                cubic_psnr = bj.bd_psnr(*cuts_psnr[0], *cuts_psnr[1], method="cubic", **opts)
                assert ours_psnr == pytest.approx(cubic_psnr, abs=1e-6), label
            for method in ("pchip", "akima"):
                theirs = bj.bd_rate(*a, *t, method=method, **opts)
                # 0.75 points, scaled with the rate ratio above 1 (the interpolants' gap grows with it)
                assert ours_rate == pytest.approx(theirs, abs=0.75 * max(1.0, 1 + theirs / 100)), label
                assert ours_psnr == pytest.approx(bj.bd_psnr(*a, *t, method=method, **opts), abs=0.05), label
        assert exact >= 6, exact  # the same arithmetic, checked on most pairs
        _, a, t = next(p for p in pairs if p[0] == "kodak: inrcodec vs jpeg420")
        for method in ("pchip", "akima"):
            assert bd.bd_rate(*a, *t) == pytest.approx(bj.bd_rate(*a, *t, method=method, **opts), abs=0.4)
        four = ([0.1, 0.2, 0.4, 0.8], [24.0, 26.5, 29.0, 31.0]), ([0.12, 0.25, 0.45, 0.9], [24.5, 27.0, 29.2, 31.6])
        assert bd.bd_rate(*four[0], *four[1]) == pytest.approx(bj.bd_rate(*four[0], *four[1], method="cubic"), abs=1e-9)
        assert bd.bd_psnr(*four[0], *four[1]) == pytest.approx(bj.bd_psnr(*four[0], *four[1], method="cubic"), abs=1e-9)


def test_latent_grid_ablations_change_one_thing_and_report_against_the_presets(tmp_path):
    """Each ablation differs from the grid presets' points in what its name says, and the table
    puts a variant that saves 10 % of the bytes at equal PSNR near -10 %, the reference at 0."""
    from dataclasses import fields

    from benchmarks import latent_grid as lg
    from inrcodec.config import latent_record

    ref = lg.ablation_points()
    assert lg.macs_per_pixel(ref[0]) == (5 + 16) * 16 + 16 * 16 + 16 * 3 + 4 * 5  # grid-low: 660
    changed = {}
    for codec in lg.ablation_codecs():
        pairs = [(p, q, f.name) for p, q in zip(ref, codec.points) for f in fields(p)]
        changed[codec.label] = {name for p, q, name in pairs if getattr(p, name) != getattr(q, name)}
    assert changed["no Fourier features"] == {"pe_levels"}
    assert changed["twice the steps"] == changed["half the steps"] == {"steps"}
    assert changed["a grid twice as fine in front (finest 1/2^(f-1))"] == {"finest", "levels"}
    assert changed["C3's soft-rounding and Kumaraswamy noise"] == {"quantizer"}
    assert changed["C3's proxy, half the steps (the reference's encode time)"] == {"quantizer", "steps"}

    images = ["a", "b"]
    settings = [f"lam={p.lam:g}" for p in ref]

    def doc(points, scale):
        rows = [
            {"image": im, "setting": s, "bpp": 0.1 * 2**i * scale * (1 + j), "psnr": 25 + 2 * i + j,
             "encode_s": 40.0}
            for j, im in enumerate(images)
            for i, s in enumerate(settings)
        ]  # fmt: skip
        return {"images": images, "settings": settings, "rows": rows, "complete": True,
                "provenance": {"config": {"points": [latent_record(p) for p in points]}}}  # fmt: skip

    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "latent-proto.json").write_text(json.dumps(doc(ref, 1.0)))
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "latent-proto.json").write_text(json.dumps(doc(ref, 1.2)))
    out = tmp_path / "ablations"
    out.mkdir()
    first = lg.ablation_codecs()[0]
    (out / f"{first.name}.json").write_text(json.dumps(doc(first.points, 0.9)))
    table = lg.ablation_report(out, tmp_path / "reference", tmp_path / "plain")
    lines = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines() if line.startswith("|")}
    assert "+0.0 %" in lines["**the ladder's points (reference)**"]
    assert "-10.0 %" in lines[first.label] and "+20.0 %" in lines[next(k for k in lines if k.startswith("one Laplace"))]
    # A reference made with other points is refused rather than compared.
    (tmp_path / "reference" / "latent-proto.json").write_text(json.dumps(doc(first.points, 1.0)))
    with pytest.raises(ValueError, match="lacks the presets' points"):
        lg.ablation_report(out, tmp_path / "reference", tmp_path / "plain")


def test_a_ladder_of_other_points_is_compared_as_a_whole_curve_too():
    """Against a baseline whose ladder has other points, the report adds the BD-rate of the two
    whole mean curves beside the one over the shared points (which alone would read +0.0 %
    when only points were swapped)."""
    from benchmarks import latent_grid as lg

    new = lg.OUT / (
        "ladder-soft-fast-x0.92-lowres-f0.1-n11520-t0.00025-F0.007-0.005-0.003-D0.002-0.001"
        "-iquarter-v2-half-v1-full-v1-r1-at-quarter-v2-rdo4-at-full-v1-first4"
    )
    old = lg.OUT / (
        "ladder-soft-fast-x0.92-lowres-f0.1-n11520-t0.00025"
        "-iquarter-v2-half-v1-full-v1-r1-at-quarter-v2-rdo4-at-full-v1-first4"
    )
    text = lg.report(new, lg.ANCHOR, old / "latent-proto.json")
    mine = lg._load(new / "latent-proto.json")
    whole = lg._bd(lg._same_images(lg._load(old / "latent-proto.json"), mine["images"]), mine)[0]
    mean = next(line for line in text.splitlines() if line.startswith("| **mean curve**"))
    assert "vs its whole ladder" in text and mean.endswith(f"| {whole:+.1f} % |") and whole < 0
    same = lg.report(old, lg.ANCHOR, old / "latent-proto.json")  # the same points: no such column
    assert "vs its whole ladder" not in same


def test_an_incomplete_sweep_is_reported_over_the_images_it_has_whole(tmp_path, capsys):
    """A run stopped part way (complete: false) is tabled and plotted over its images with every
    point only, and says so; --report with no results file is a usage error, not a traceback."""
    import shutil

    from benchmarks import latent_grid as lg

    ladder = lg.OUT / (
        "ladder-soft-fast-x0.92-lowres-f0.1-n11520-t0.00025-F0.007-0.005-0.003-D0.002-0.001-iquarter-v2-half-v1"
        "-full-v1-r1-at-quarter-v2-rdo4-at-full-v1-tune500-noise1-at-0.007-0.005-0.003-0.0015-first4"
    )
    doc = lg._load(ladder / "latent-proto.json")
    doc["rows"] = [r for r in doc["rows"] if (r["image"], r["setting"]) != ("photo004", "lam=0.007")]
    doc["complete"] = False
    (tmp_path / "latent-proto.json").write_text(json.dumps(doc))
    text = lg.report(tmp_path, lg.ANCHOR)
    assert "**An incomplete run**: the 3 of its 4 images with every point (photo001, photo002, photo003)" in text
    assert not [line for line in text.splitlines() if line.startswith("| photo004")]
    whole = lg._same_images(doc, ["photo001", "photo002", "photo003"])
    mean = next(line for line in text.splitlines() if line.startswith("| **mean curve**"))
    siren = lg._same_images(lg._load(lg._siren(lg.ANCHOR)), whole["images"])
    assert mean.startswith(f"| **mean curve** | {lg._bd(siren, whole)[0]:+.1f} %")
    assert lg.rd_plot(tmp_path, lg.ANCHOR) == tmp_path / "rd.png"
    doc["rows"] = [r for r in doc["rows"] if r["setting"] != "lam=0.007"]
    (tmp_path / "latent-proto.json").write_text(json.dumps(doc))
    assert "no image has every point yet" in lg.report(tmp_path, lg.ANCHOR) and lg.rd_plot(tmp_path, lg.ANCHOR) is None
    shutil.rmtree(tmp_path)
    with pytest.raises(SystemExit) as e:
        lg.main(["--context", "checkerboard", "--report", "--out", str(tmp_path)])
    assert e.value.code == 2 and "--report: no results in" in capsys.readouterr().err


def test_latent_grid_modes_go_alone(capsys):
    """--ablations/--full-res have fixed points: with the sweep's options they would write into
    the sweep's folders, so the command refuses before any work."""
    from benchmarks import latent_grid as lg

    for argv in (
        ["--ablations", "--context", "checkerboard"],
        ["--full-res", "--tuning"],
        ["--full-res", "--interpolation", "bicubic"],
    ):
        with pytest.raises(SystemExit) as e:
            lg.main([*argv, "--report"])
        assert e.value.code == 2 and "go alone" in capsys.readouterr().err


def test_latent_grid_quantizer_is_an_option_of_the_context_ladder(capsys):
    """--quantizer soft trains the presets' ladder with C3's proxy (in a folder of its own); with
    the plain sweep or the tuning variants it is refused before any work."""
    from benchmarks import latent_grid as lg

    for argv in (["--quantizer", "soft"], ["--quantizer", "soft", "--context", "checkerboard", "--tuning"]):
        with pytest.raises(SystemExit) as e:
            lg.main([*argv, "--report"])
        assert e.value.code == 2 and "--quantizer is for the context model's ladder" in capsys.readouterr().err


def test_latent_grid_proxy_options_shape_the_ladder(capsys):
    """--proxy-steps scales the proxy's points' steps and --full-res-uniform leaves the
    full-resolution points as the presets have them; both need a proxy, and a factor out of range
    is refused before any work."""
    import argparse

    from benchmarks import latent_grid as lg
    from inrcodec.config import (
        LATENT_FOUR_PASS_LADDER,
        LATENT_LADDER,
        LATENT_LOW_FULL_LADDER,
        LATENT_NOISE_LADDER,
        LATENT_PRESET_LADDER,
        LATENT_PRESETS,
        LATENT_PROXY_LADDER,
        LATENT_PROXY_STEPS,
        LATENT_RDO_LADDER,
        LATENT_STEPS_LADDER,
        LATENT_TUNE_LADDER,
        with_full_res,
    )

    args = argparse.Namespace(quantizer="soft-fast", proxy_steps=0.8, full_res_uniform=True)
    points = [lg._with_proxy(pt, args) for pt in LATENT_LADDER]
    for pt, new in zip(LATENT_LADDER, points):
        if pt.finest == 0:
            assert new == pt
        else:
            assert new == replace(pt, quantizer="soft-fast", steps=round(pt.steps * 0.8))
    assert sum(pt.finest == 0 for pt in LATENT_LADDER) == 2
    args = argparse.Namespace(quantizer="soft", proxy_steps=1.0, full_res_uniform=False)
    assert all(lg._with_proxy(pt, args).quantizer == "soft" for pt in LATENT_LADDER)
    # the presets' ladder is the one these options give (its Kodak run: docs/benchmark.md)
    args = argparse.Namespace(quantizer="soft-fast", proxy_steps=LATENT_PROXY_STEPS, full_res_uniform=True)
    assert tuple(lg._with_proxy(pt, args) for pt in LATENT_LADDER) == LATENT_PROXY_LADDER
    # ... and with --lr-finest 0.1 --full-res-steps 11520 the presets' ladder, as the sweep builds it
    options = {"stage2": False, "interpolation": "bilinear", "synthesis_scale": 1.0}
    sweep = argparse.Namespace(
        **options,
        lr_finest=(0.1,),
        full_res_steps=11520,
        long_fit=(),
        long_fit_steps=None,
        top_lam=2.5e-4,
        full_res_lams=(),
        drop_lams=(),
        context_hidden=(),
        init=("quarter-v2", "half-v1", "full-v1"),
        network_rate=1.0,
        network_rate_at=("quarter-v2",),
        rdo_levels=4,
        rdo_at=("full-v1",),
        tune_steps=0,
        sampler="uniform",
        sampler_at=(),
        sampler_share=0.5,
        lr_second=1.0,
        noise_fraction=None,
        noise_lams=(),
        noise_steps=None,
        steps_at={},
        four_pass_at=(),
        context="checkerboard",
        **vars(args),
    )
    assert lg.ladder_points(sweep) == LATENT_RDO_LADDER
    assert [p.network_rate for p in LATENT_RDO_LADDER] == [1.0] * 3 + [0.0] * 6
    rated = lg.ladder_points(argparse.Namespace(**{**vars(sweep), "network_rate": 0.5, "network_rate_at": ()}))
    assert [p.network_rate for p in rated] == [0.5] * 9  # the points an init starts
    only = lg.ladder_points(
        argparse.Namespace(**{**vars(sweep), "network_rate": 0.5, "network_rate_at": ("quarter-v2",)})
    )
    assert [p.network_rate for p in only] == [0.5] * 3 + [0.0] * 6
    assert [p.lr_finest for p in LATENT_RDO_LADDER] == [1.0] * 6 + [0.1, 0.1, 0.1]
    assert [p.steps for p in LATENT_RDO_LADDER[6:]] == [11520, 11520, 11520]
    assert [p.lam for p in LATENT_RDO_LADDER[6:]] == [1.5e-3, 5e-4, 2.5e-4]
    assert LATENT_RDO_LADDER[-1] == replace(LATENT_RDO_LADDER[7], lam=2.5e-4)
    assert [replace(p, init="", network_rate=0.0) for p in LATENT_RDO_LADDER[:6]] == list(LATENT_PROXY_LADDER[:6])
    assert [p.init for p in LATENT_RDO_LADDER] == ["quarter-v2"] * 3 + ["half-v1"] * 3 + ["full-v1"] * 3
    assert LATENT_PRESETS["grid-xhigh"].lr_finest == LATENT_PRESETS["grid-max"].lr_finest == 0.1
    assert with_full_res(LATENT_LADDER, (0.3, 1.0))[6:] == (replace(LATENT_LADDER[6], lr_finest=0.3), LATENT_LADDER[7])
    assert with_full_res(LATENT_LADDER, (1.0,)) == LATENT_LADDER
    with pytest.raises(ValueError, match="3 factors for 2"):
        with_full_res(LATENT_LADDER, (1.0, 1.0, 1.0))
    # the presets' ladder: the rounding's without its 1/2-resolution points at 2e-3 and 1e-3, and
    # grid-xhigh's point at 7e-3, 5e-3 and 3e-3 after it (--drop-lams 2e-3,1e-3 --full-res-lams 7e-3,5e-3,3e-3)
    added = {**vars(sweep), "full_res_lams": (7e-3, 5e-3, 3e-3)}
    mid = lg.ladder_points(argparse.Namespace(**added))
    dropped = lg.ladder_points(argparse.Namespace(**{**added, "drop_lams": (2e-3, 1e-3)}))
    assert dropped == tuple(p for p in mid if p.lam not in (2e-3, 1e-3))
    # --tune-steps: at the points the rounding runs, and the points --full-res-lams copies from them
    tuned = lg.ladder_points(argparse.Namespace(**{**added, "drop_lams": (2e-3, 1e-3), "tune_steps": 500}))
    assert [p.tune_steps for p in tuned] == [0] * 4 + [500] * 6
    assert tuned == LATENT_TUNE_LADDER  # that ladder with --tune-steps 500 (kodak-tune)
    assert tuned == tuple(replace(p, tune_steps=500) if p.rdo_levels else p for p in dropped)
    assert lg.sweep_folder(argparse.Namespace(**{**added, "tune_steps": 500, "n_images": 4})).endswith(
        "-rdo4-at-full-v1-tune500-first4"
    )
    # --lr-second: the full-resolution points' second grid (and the points --full-res-lams copies from them)
    second = lg.ladder_points(
        argparse.Namespace(**{**added, "drop_lams": (2e-3, 1e-3), "tune_steps": 500, "lr_second": 0.3})
    )
    assert second == tuple(replace(p, lr_second=0.3) if p.finest == 0 else p for p in LATENT_TUNE_LADDER)
    noise = lg.ladder_points(
        argparse.Namespace(**{**added, "drop_lams": (2e-3, 1e-3), "tune_steps": 500, "noise_fraction": 1.0})
    )
    assert noise == tuple(replace(p, noise_fraction=1.0) if p.finest == 0 else p for p in LATENT_TUNE_LADDER)
    some = {**added, "drop_lams": (2e-3, 1e-3), "tune_steps": 500, "noise_fraction": 1.0, "noise_lams": (7e-3, 1.5e-3)}
    at = lg.ladder_points(argparse.Namespace(**some))
    assert at == tuple(replace(p, noise_fraction=1.0) if p.lam in (7e-3, 1.5e-3) else p for p in LATENT_TUNE_LADDER)
    # kodak-noise: --noise-fraction 1 --noise-lams 7e-3,5e-3,3e-3,1.5e-3
    mid = {**some, "noise_lams": (7e-3, 5e-3, 3e-3, 1.5e-3)}
    assert lg.ladder_points(argparse.Namespace(**mid)) == LATENT_NOISE_LADDER
    # kodak-steps: --noise-steps 23040, those points' steps
    longer = lg.ladder_points(argparse.Namespace(**{**mid, "noise_steps": 23040}))
    assert longer == LATENT_STEPS_LADDER
    # the presets (kodak-low-full): without grid-medium's 1/2-resolution point (and so its init),
    # grid-high's settings at 1.5e-2 after the others
    low = {"init": ("quarter-v2", "full-v1"), "drop_lams": (2e-3, 1e-3, 4e-3), "noise_steps": 23040}
    low |= {"full_res_lams": (7e-3, 5e-3, 3e-3, 1.5e-2), "noise_lams": (7e-3, 5e-3, 3e-3, 1.5e-3, 1.5e-2)}
    assert lg.ladder_points(argparse.Namespace(**{**mid, **low})) == LATENT_LOW_FULL_LADDER
    # --four-pass-at: those points with format v9's model and the four-pass inits, nothing else changed
    # (kodak-four-pass-at)
    four_at = {**mid, **low, "init": ("quarter-v2", "full-v1", "quarter-4p-v1", "full-4p-v1")}
    four_at |= {"four_pass_at": (3.2e-2, 1.6e-2, 8e-3, 2.5e-4), "n_images": 4}
    hybrid = lg.ladder_points(argparse.Namespace(**four_at))
    assert [(p.lam, p.init) for p in hybrid if p.context == "four-pass"] == [
        (3.2e-2, "quarter-4p-v1"),
        (1.6e-2, "quarter-4p-v1"),
        (8e-3, "quarter-4p-v1"),
        (2.5e-4, "full-4p-v1"),
    ]
    assert hybrid == LATENT_FOUR_PASS_LADDER
    assert [replace(p, context=q.context, init=q.init) for p, q in zip(hybrid, LATENT_LOW_FULL_LADDER)] == list(
        LATENT_LOW_FULL_LADDER
    )
    assert lg.sweep_folder(argparse.Namespace(**four_at)).endswith("-4p-at-0.032-0.016-0.008-0.00025-first4")
    # --steps-at: those points' steps and nothing else, the four-pass switch after it
    more = lg.ladder_points(argparse.Namespace(**{**four_at, "steps_at": {7e-3: 34560, 2.5e-4: 20000}}))
    assert more == tuple(
        replace(p, steps={7e-3: 34560, 2.5e-4: 20000}[p.lam]) if p.lam in (7e-3, 2.5e-4) else p
        for p in LATENT_FOUR_PASS_LADDER
    )
    assert more[5].context == "four-pass" and more[5].steps == 20000
    # the presets' ladder (kodak-steps-x1.5): 34,560 steps at the four middle full-resolution points
    mid_long = {lam: 34560 for lam in (7e-3, 5e-3, 3e-3, 1.5e-3)}
    assert lg.ladder_points(argparse.Namespace(**{**four_at, "steps_at": mid_long})) == LATENT_PRESET_LADDER
    assert [p.steps for p in LATENT_PRESET_LADDER] == [p.steps for p in LATENT_FOUR_PASS_LADDER[:3]] + [
        34560,
        11520,
        11520,
        34560,
        34560,
        34560,
        23040,
    ]
    # the four-pass twins win whatever the order of --init
    swapped = {**four_at, "init": ("quarter-4p-v1", "full-4p-v1", "quarter-v2", "full-v1")}
    assert lg.ladder_points(argparse.Namespace(**swapped)) == LATENT_FOUR_PASS_LADDER
    # its folder name would pass the file system's 255 characters: a usage error, before any work
    long = "--context checkerboard --quantizer soft-fast --proxy-steps 0.92 --full-res-uniform --lr-finest 0.1"
    long += " --full-res-steps 11520 --top-lam 2.5e-4 --init quarter-v2,full-v1,quarter-4p-v1,full-4p-v1"
    long += " --network-rate 1 --network-rate-at quarter-v2 --rdo-levels 4 --rdo-at full-v1 --tune-steps 500"
    long += " --full-res-lams 7e-3,5e-3,3e-3,1.5e-2 --drop-lams 2e-3,1e-3,4e-3 --noise-fraction 1"
    long += " --noise-lams 7e-3,5e-3,3e-3,1.5e-3,1.5e-2 --noise-steps 23040 --four-pass-at 0.032,0.016,0.008,0.00025"
    with pytest.raises(SystemExit) as e:
        lg.main([*long.split(), "--n-images", "4"])
    assert e.value.code == 2 and "characters (over 255): give --out" in capsys.readouterr().err
    assert LATENT_LOW_FULL_LADDER == (
        *(p for p in LATENT_STEPS_LADDER if p.lam != 4e-3),
        replace(longer[7], lam=1.5e-2),
    )
    assert longer == tuple(replace(p, steps=23040) if p.noise_fraction == 1.0 else p for p in LATENT_NOISE_LADDER)
    assert [p.steps for p in longer if p.finest == 0] == [23040, 11520, 11520, 23040, 23040, 23040]
    assert [p.steps for p in LATENT_NOISE_LADDER if p.finest == 0] == [11520] * 6
    assert lg.sweep_folder(argparse.Namespace(**{**mid, "noise_steps": 23040, "n_images": 24})).endswith(
        "-noise1-at-0.007-0.005-0.003-0.0015-steps23040-first24"
    )
    assert [p.noise_fraction for p in LATENT_STEPS_LADDER] == [0.75] * 4 + [1.0] + [0.75] * 2 + [1.0] * 3
    assert lg.sweep_folder(argparse.Namespace(**some, n_images=4)).endswith("-tune500-noise1-at-0.007-0.0015-first4")
    assert lg.sweep_folder(
        argparse.Namespace(**{**added, "tune_steps": 500, "n_images": 4, "lr_second": 0.3})
    ).endswith("-tune500-second0.3-first4")
    lams = [3.2e-2, 1.6e-2, 8e-3, 1.5e-3, 5e-4, 2.5e-4, 7e-3, 5e-3, 3e-3, 1.5e-2]
    assert [p.lam for p in LATENT_PRESET_LADDER] == lams
    assert LATENT_PRESET_LADDER[6:] == tuple(
        replace(LATENT_RDO_LADDER[6], lam=lam, tune_steps=500, noise_fraction=1.0, steps=steps)
        for lam, steps in ((7e-3, 34560), (5e-3, 34560), (3e-3, 34560), (1.5e-2, 23040))
    )
    assert [p.finest for p in LATENT_PRESET_LADDER] == [2] * 3 + [0] * 7
    assert [p.rdo_levels for p in LATENT_PRESET_LADDER] == [0] * 3 + [4] * 7
    assert [LATENT_PRESETS[n].quantizer for n in ("grid-low", "grid-medium")] == ["soft-fast"] * 2
    assert [LATENT_PRESETS[n].init for n in LATENT_PRESETS] == [
        "quarter-4p-v1",
        "half-v1",
        "full-v1",
        "full-v1",
        "full-4p-v1",
    ]
    assert [LATENT_PRESETS[n].context for n in LATENT_PRESETS] == ["four-pass", *["checkerboard"] * 3, "four-pass"]
    assert [LATENT_PRESETS[n].lam for n in LATENT_PRESETS] == [1.6e-2, 4e-3, 7e-3, 1.5e-3, 2.5e-4]
    assert LATENT_PRESETS["grid-high"] == replace(LATENT_PRESETS["grid-xhigh"], lam=7e-3)
    # every preset a point of the ladder but the fast default, grid-medium (the ladder before it)
    assert {n for n, p in LATENT_PRESETS.items() if p not in LATENT_PRESET_LADDER} == {"grid-medium"}
    assert LATENT_PRESETS["grid-medium"] in LATENT_STEPS_LADDER
    base = ["--context", "checkerboard", "--report"]
    for argv, msg in (
        (["--proxy-steps", "0.8"], "go with --quantizer soft or soft-fast"),
        (["--full-res-uniform"], "go with --quantizer soft or soft-fast"),
        (["--quantizer", "soft-fast", "--proxy-steps", "0"], "a factor in (0, 16]"),
        (["--lr-finest", "0.1,1,1"], "--lr-finest: 3 factors for 2 full-resolution points"),
        (["--lr-finest", "0"], "--lr-finest: lr_finest must be in (0, 10]"),
        (["--lr-finest", "a,b"], "factors separated by commas"),
        (["--full-res-steps", "0"], "--full-res-steps: a step count"),
        (["--synthesis-scale", "0"], "--synthesis-scale: a factor in (0, 4]"),
        (["--long-fit", "3e-3"], "--long-fit: no point with grids from 1/2 or coarser at lambda 0.003"),
        (["--long-fit", "1.5e-3"], "--long-fit: no point with grids from 1/2 or coarser at lambda 0.0015"),
        (["--long-fit", "x"], "--long-fit: lambdas separated by commas"),
        (["--top-lam", "1e-3"], "--top-lam: a lambda in (0, 0.0005)"),
        (["--top-lam", "0"], "--top-lam: a lambda in (0, 0.0005)"),
        (["--top-lam", "4.9999999e-4"], "named apart from the ladder's"),
        (["--top-lam", "2.5e-4", "--tuning"], "--top-lam is for the context model's ladder"),
        (["--full-res-lams", "1.5e-3"], "--full-res-lams: lambdas in (0, 1], each named apart from the ladder's"),
        (["--full-res-lams", "3e-3,0.003"], "each named apart from the ladder's and the others"),
        (["--full-res-lams", "x"], "--full-res-lams: lambdas separated by commas"),
        (["--top-lam", "2.5e-4", "--full-res-lams", "2.5e-4"], "named apart from the ladder's and the others"),
        (["--full-res-lams", "3e-3", "--tuning"], "--full-res-lams is for the context model's ladder"),
        (["--drop-lams", "1.5e-3"], "--drop-lams: no point with grids from 1/2 or coarser at lambda 0.0015"),
        (["--noise-lams", "1.5e-3"], "--noise-lams: with --noise-fraction"),
        (["--noise-fraction", "1", "--noise-lams", "4e-3"], "--noise-lams: no full-resolution point at lambda 0.004"),
        (["--noise-fraction", "2"], "--noise-fraction: a share in [0, 1]"),
        (["--noise-steps", "100"], "--noise-steps: a step count (1 to 10^6), with --noise-fraction"),
        (["--noise-fraction", "1", "--noise-steps", "0"], "--noise-steps: a step count"),
        (["--lr-second", "0"], "--lr-second: a factor in (0, 10]"),
        (["--steps-at", "7e-3"], "--steps-at: LAMBDA:STEPS pairs separated by commas"),
        (["--steps-at", "1.5e-3:100,1.5e-3:200"], "--steps-at: each lambda once"),
        (["--steps-at", "1.5e-3:0"], "each with 1 to 10^6 steps"),
        (["--steps-at", "7e-3:100"], "--steps-at: no point of this ladder at lambda 0.007"),
        (["--steps-at", "1.5e-3:100", "--tuning"], "--steps-at is for the context model's ladder"),
        (["--drop-lams", "1e-3,y"], "--drop-lams: lambdas separated by commas"),
        (["--drop-lams", "1e-3", "--tuning"], "--drop-lams is for the context model's ladder"),
        (["--tune-steps", "500"], "--tune-steps: 1..100000, with --rdo-levels"),
        (["--four-pass-at", "3.3e-2"], "--four-pass-at: no point of this ladder at lambda 0.033"),
        (["--four-pass-at", "x"], "--four-pass-at: lambdas separated by commas"),
        (["--four-pass-at", "3.2e-2", "--tuning"], "--four-pass-at is for the checkerboard ladder"),
        (["--long-fit-steps", "100"], "--long-fit-steps: a step count for the points --long-fit names"),
        (["--context-hidden", "8,16"], "--context-hidden: one width in 1..255, or one per ladder point (8)"),
        (["--context-hidden", "0"], "--context-hidden: one width in 1..255"),
        (["--context-hidden", "w"], "--context-hidden: widths separated by commas"),
        (["--context-hidden", "8", "--tuning"], "--context-hidden is for the context model's ladder"),
        (
            ["--init", "quarter-v1,nope"],
            "--init: 'nope' not a shipped init (quarter-v1, half-v1, quarter-v2, full-v1, quarter-4p-v1, full-4p-v1)",
        ),
        (["--init", "quarter-v1", "--tuning"], "--init is for the context model's ladder"),
        (["--init", "quarter-v1", "--context-hidden", "8"], "'quarter-v1' has the shape of no point of this ladder"),
        (["--network-rate", "1"], "--network-rate: a weight in (0, 10] for the points --init starts"),
        (["--init", "quarter-v1", "--network-rate", "11"], "--network-rate: a weight in (0, 10]"),
        (["--init", "quarter-v1", "--network-rate-at", "quarter-v1"], "--network-rate-at: inits of --init"),
        (["--init", "quarter-v1", "--network-rate", "1", "--network-rate-at", "half-v1"], "inits of --init"),
        (["--reuse", "/nonexistent.json"], "--reuse: /nonexistent.json: no such file"),
        (["--reuse", str(runner.REPO / "README.md")], "README.md: cannot read it as JSON (JSONDecodeError)"),
        (["--reuse", str(lg.OUT / "kodak-presets" / "latent-proto.json")], "--reuse is for a sweep that runs"),
    ):
        with pytest.raises(SystemExit) as e:
            lg.main([*base, *argv])
        assert e.value.code == 2 and msg in capsys.readouterr().err


def test_long_fit_gives_the_named_points_the_full_resolution_points_training():
    """--long-fit: the points at the named lambdas take LATENT_LONG_FIT (their quantizer and
    grids unchanged), every other point is the presets' ladder's."""
    import argparse

    from benchmarks import latent_grid as lg
    from inrcodec.config import LATENT_LONG_FIT, LATENT_RDO_LADDER, with_long_fit

    args = argparse.Namespace(
        stage2=False,
        interpolation="bilinear",
        synthesis_scale=1.0,
        quantizer="soft-fast",
        proxy_steps=0.92,
        full_res_uniform=True,
        lr_finest=(0.1,),
        full_res_steps=11520,
        long_fit=(2e-3, 1e-3),
        long_fit_steps=None,
        top_lam=2.5e-4,
        full_res_lams=(),
        drop_lams=(),
        context_hidden=(),
        init=("quarter-v2", "half-v1", "full-v1"),
        network_rate=1.0,
        network_rate_at=("quarter-v2",),
        rdo_levels=4,
        rdo_at=("full-v1",),
        tune_steps=0,
        sampler="uniform",
        sampler_at=(),
        sampler_share=0.5,
        lr_second=1.0,
        noise_fraction=None,
        noise_lams=(),
        noise_steps=None,
        steps_at={},
        four_pass_at=(),
        context="checkerboard",
    )
    points = lg.ladder_points(args)
    changed = 0
    for old, new in zip(LATENT_RDO_LADDER, points, strict=True):
        if old.lam in (2e-3, 1e-3):
            assert new == replace(old, **LATENT_LONG_FIT) and new != old
            assert (new.finest, new.quantizer, new.lr_latent, new.lr_finest) == (1, "soft-fast", 0.1, 0.1)
            changed += 1
        else:
            assert new == old
    assert changed == 2
    # --top-lam: the top point's settings once more, at that lambda
    assert points[-1] == replace(points[-2], lam=2.5e-4)
    # --full-res-lams: grid-xhigh's point (the first full-resolution one) at each lambda, after the rest
    args.full_res_lams = (3e-3, 5e-3)
    more = lg.ladder_points(args)
    assert more[:-2] == points and more[-2:] == tuple(replace(points[6], lam=lam) for lam in (3e-3, 5e-3))
    assert points[6].finest == 0 and points[5].finest == 1 and points[6].init == "full-v1"
    # --drop-lams: those points left out, the others and the added ones as they were
    args.drop_lams = (2e-3, 1e-3)
    fewer = lg.ladder_points(args)
    assert fewer == tuple(p for p in more if p.lam not in (2e-3, 1e-3)) and len(fewer) == len(more) - 2
    args.drop_lams = ()
    args.full_res_lams = ()
    args.top_lam = None
    assert lg.ladder_points(args) == points[:-1]
    assert with_long_fit(LATENT_RDO_LADDER, ()) == LATENT_RDO_LADDER
    assert [p.steps for p in with_long_fit(LATENT_RDO_LADDER, (1e-3,), 23040)[4:6]] == [
        LATENT_RDO_LADDER[4].steps,
        23040,
    ]
    with pytest.raises(ValueError, match="no point with grids from 1/2 or coarser at lambda 0.003"):
        with_long_fit(LATENT_RDO_LADDER, (3e-3,))


def test_sweep_folders_name_every_option_away_from_its_default():
    """Each variant's results keep a folder of their own: the names the options give are those of
    the committed runs they made (one suffix per option)."""
    import argparse

    from benchmarks import latent_grid as lg
    from inrcodec.config import LATENT_RDO_LADDER, LATENT_TUNE_LADDER

    plain = {
        "stage2": False,
        "interpolation": "bilinear",
        "quantizer": "uniform",
        "proxy_steps": 1.0,
        "full_res_uniform": False,
        "synthesis_scale": 1.0,
        "lr_finest": (1.0,),
        "full_res_steps": None,
        "long_fit": (),
        "long_fit_steps": None,
        "top_lam": None,
        "full_res_lams": (),
        "drop_lams": (),
        "context_hidden": (),
        "init": (),
        "network_rate": 0.0,
        "network_rate_at": (),
        "rdo_levels": 0,
        "rdo_at": (),
        "tune_steps": 0,
        "sampler": "uniform",
        "sampler_at": (),
        "sampler_share": 0.5,
        "lr_second": 1.0,
        "noise_fraction": None,
        "noise_lams": (),
        "noise_steps": None,
        "steps_at": {},
        "four_pass_at": (),
        "context": "checkerboard",
        "n_images": 4,
    }
    proxy = {"quantizer": "soft-fast", "proxy_steps": 0.92, "full_res_uniform": True}
    presets = {**proxy, "lr_finest": (0.1,), "full_res_steps": 11520}
    rounded = {  # the rounding's ladder with the mid full-resolution points (before --tune-steps)
        **presets,
        "top_lam": 2.5e-4,
        "full_res_lams": (7e-3, 5e-3, 3e-3),
        "drop_lams": (2e-3, 1e-3),
        "init": ("quarter-v2", "half-v1", "full-v1"),
        "network_rate": 1.0,
        "network_rate_at": ("quarter-v2",),
        "rdo_levels": 4,
        "rdo_at": ("full-v1",),
    }
    for changes, folder in (
        ({"stage2": True, "n_images": 8}, "checkerboard-first8"),
        (proxy, "ladder-soft-fast-x0.92-lowres-first4"),
        ({**proxy, "synthesis_scale": 0.5}, "ladder-soft-fast-x0.92-lowres-s0.5-first4"),
        ({**proxy, "lr_finest": (0.3,)}, "ladder-soft-fast-x0.92-lowres-f0.3-first4"),
        ({**presets, "top_lam": 2.5e-4}, "ladder-soft-fast-x0.92-lowres-f0.1-n11520-t0.00025-first4"),
        (
            rounded,
            "ladder-soft-fast-x0.92-lowres-f0.1-n11520-t0.00025-F0.007-0.005-0.003-D0.002-0.001-iquarter-v2-half-v1"
            "-full-v1-r1-at-quarter-v2-rdo4-at-full-v1-first4",
        ),
        (
            {**presets, "full_res_steps": 23040, "long_fit": (2e-3, 1e-3), "long_fit_steps": 23040},
            "ladder-soft-fast-x0.92-lowres-f0.1-n23040-L0.002-0.001-m23040-first4",
        ),
    ):
        assert lg.sweep_folder(argparse.Namespace(**{**plain, **changes})) == folder
        assert (lg.OUT / folder / "latent-proto.json").is_file()
    # --sampler at the points --sampler-at's inits start (the importance probe's folder)
    sampled = {**plain, **rounded, "tune_steps": 500, "sampler": "importance", "sampler_at": ("full-v1",)}
    folder = lg.sweep_folder(argparse.Namespace(**sampled))
    assert folder.endswith("-rdo4-at-full-v1-tune500-importance-at-full-v1-first4")
    assert (lg.OUT / folder / "latent-proto.json").is_file()
    points = lg.ladder_points(argparse.Namespace(**sampled))
    assert [p.sampler for p in points] == ["uniform"] * 4 + ["importance"] * 6
    assert tuple(replace(p, sampler="uniform") for p in points) == LATENT_TUNE_LADDER
    shared = argparse.Namespace(**{**sampled, "sampler_share": 0.75})
    assert lg.sweep_folder(shared).endswith("-importance-at-full-v1-share0.75-first4")
    assert [p.sampler_share for p in lg.ladder_points(shared)] == [0.5] * 4 + [0.75] * 6
    # --synthesis-scale: every point's synthesis width times the factor, rounded, nothing else
    half = lg.ladder_points(argparse.Namespace(**{**plain, **proxy, "synthesis_scale": 0.5}))
    full = lg.ladder_points(argparse.Namespace(**{**plain, **proxy}))
    assert [p.hidden for p in half] == [8, 8, 8, 12, 12, 12, 12, 12]
    assert [replace(p, hidden=q.hidden) for p, q in zip(half, full, strict=True)] == list(full)
    # --context-hidden: one width for every point (the top point's too), or one per ladder point
    widths = {**plain, **presets, "top_lam": 2.5e-4, "context_hidden": (8, 8, 8) + (16,) * 4 + (24,)}
    assert lg.sweep_folder(argparse.Namespace(**widths)).endswith("-t0.00025-c8-8-8-16-16-16-16-24-first4")
    narrow = lg.ladder_points(argparse.Namespace(**widths))
    assert [p.context_hidden for p in narrow] == [8, 8, 8, 16, 16, 16, 16, 24, 24]
    no_init = [replace(p, init="", network_rate=0.0, rdo_levels=0) for p in LATENT_RDO_LADDER]  # what it ran
    assert [replace(p, context_hidden=16) for p in narrow] == no_init
    # --steps-at: one suffix, lambda x steps in lambda order
    stepped = argparse.Namespace(**{**plain, **rounded, "steps_at": {7e-3: 34560, 1.5e-3: 34560}})
    assert lg.sweep_folder(stepped).endswith("-rdo4-at-full-v1-s-0.007x34560-0.0015x34560-first4")
    # --context four-pass: format v9's context model at every point, nothing else
    four = {**plain, **rounded, "context": "four-pass"}
    assert lg.sweep_folder(argparse.Namespace(**four)).endswith("-rdo4-at-full-v1-fourpass-first4")
    assert [replace(p, context="checkerboard") for p in lg.ladder_points(argparse.Namespace(**four))] == list(
        lg.ladder_points(argparse.Namespace(**{**plain, **rounded}))
    )
    assert {lg.point_record(p)["format"] for p in lg.ladder_points(argparse.Namespace(**four))} == {9}
    one = lg.ladder_points(argparse.Namespace(**{**plain, **proxy, "context_hidden": (12,)}))
    assert [p.context_hidden for p in one] == [12] * 8
    # --init: the points whose networks have the init's shape start from it (the 1/4-resolution ones)
    init = {**plain, **presets, "top_lam": 2.5e-4, "init": ("quarter-v2", "half-v1", "full-v1")}
    assert lg.sweep_folder(argparse.Namespace(**init)).endswith("-t0.00025-iquarter-v2-half-v1-full-v1-first4")
    started = lg.ladder_points(argparse.Namespace(**init))
    assert [p.init for p in started] == ["quarter-v2"] * 3 + ["half-v1"] * 3 + ["full-v1"] * 3
    assert started == tuple(replace(p, network_rate=0.0, rdo_levels=0) for p in LATENT_RDO_LADDER)
    rated = {**init, "network_rate": 1.0, "network_rate_at": ("quarter-v2",)}
    presets_ladder = {**rated, "rdo_levels": 4, "rdo_at": ("full-v1",)}  # the presets: + rate, + rounding
    assert lg.ladder_points(argparse.Namespace(**presets_ladder)) == LATENT_RDO_LADDER
    assert lg.sweep_folder(argparse.Namespace(**presets_ladder)).endswith("-r1-at-quarter-v2-rdo4-at-full-v1-first4")
    assert (lg.OUT / lg.sweep_folder(argparse.Namespace(**presets_ladder)) / "latent-proto.json").is_file()
    every = lg.ladder_points(argparse.Namespace(**{**presets_ladder, "rdo_at": ()}))
    assert [p.rdo_levels for p in every] == [4] * 9
    quarter = lg.ladder_points(argparse.Namespace(**{**init, "init": ("quarter-v1",)}))
    assert [p.init for p in quarter] == ["quarter-v1"] * 3 + [""] * 6
    # --network-rate (and -at): the probe's folders, committed
    rated = {**init, "init": ("quarter-v2", "half-v1"), "network_rate": 1.0}
    assert lg.sweep_folder(argparse.Namespace(**rated)).endswith("-iquarter-v2-half-v1-r1-first4")
    assert (lg.OUT / lg.sweep_folder(argparse.Namespace(**rated)) / "latent-proto.json").is_file()
    at = lg.sweep_folder(argparse.Namespace(**{**rated, "network_rate_at": ("quarter-v2",)}))
    assert at.endswith("-iquarter-v2-half-v1-r1-at-quarter-v2-first4")


def test_reuse_rows_takes_only_the_points_run_with_the_same_config_on_the_same_images(tmp_path):
    """runner.reuse_rows: a committed run's rows seed the cache for the settings whose point is
    unchanged and whose image bytes match; a changed point, another image's bytes and a row the
    cache already has are left; the runner then treats the copied rows as its own."""
    from benchmarks import latent_grid as lg
    from benchmarks.runner import ImageRef, RowCache, fingerprints
    from inrcodec.config import LATENT_PRESETS

    a, b = LATENT_PRESETS["grid-low"], LATENT_PRESETS["grid-medium"]
    before = lg.LatentProto((a, replace(b, steps=7)), "latent-proto", "")
    now = lg.LatentProto((a, b), "latent-proto", "")
    refs = [ImageRef("p1", "/x/p1.png", "1" * 64), ImageRef("p2", "/x/p2.png", "2" * 64)]
    rows = [{"image": i, "setting": s, "bpp": 0.1, "psnr": 20.0} for i in ("p1", "p2", "p3") for s in before.settings()]
    sums = {"p1": "1" * 64, "p2": "9" * 64, "p3": "3" * 64}  # p2's bytes differ; p3 is not in this run
    doc = {
        "name": "latent-proto",
        "rows": rows,
        "provenance": {"crop": None, "config": before.config(), "image_sha256": sums, "row_commits": ["abc"]},
    }
    committed = tmp_path / "old.json"
    committed.write_text(json.dumps(doc))
    out = tmp_path / "run"
    assert runner.reuse_rows(now, committed, refs, out) == 1  # p1 at grid-low's point only
    cache = RowCache(out, "latent-proto", fingerprints(now, None)).load()
    assert list(cache) == [("p1", f"lam={a.lam:g}")]
    assert (
        cache[("p1", f"lam={a.lam:g}")]["commit"].startswith("reused from")
        and "(abc)" in cache[("p1", f"lam={a.lam:g}")]["commit"]
    )
    # the current side is what the fingerprints hash: the experiment's reading of a config agrees
    assert now.recorded_job_configs(now.config()) == {
        s: json.loads(json.dumps(now.job_config(job))) for job in now.jobs() for s in job.settings
    }
    assert runner.reuse_rows(now, committed, refs, out) == 0  # already there
    with pytest.raises(ValueError, match="not a other run"):
        runner.reuse_rows(lg.LatentProto((a,), "other", ""), committed, refs, tmp_path / "o")
    with pytest.raises(ValueError, match="not a latent-proto run at crop 64"):
        runner.reuse_rows(now, committed, refs, tmp_path / "o", crop=64)
    committed.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a results file of the runner"):
        runner.reuse_rows(now, committed, refs, tmp_path / "o")


def test_latent_grid_studies_keep_the_points_their_committed_results_ran():
    """The ablations and the full-resolution study are fixed points, not the presets of the day:
    each codec's config equals the one recorded in its committed results, so a rerun reuses
    their rows (the ladder's steps changed after them: config.LATENT_STEP_FACTOR)."""
    from benchmarks import latent_grid as lg

    studies = [(codec, "ablations") for codec in lg.ablation_codecs()]
    studies += [(codec, "full-res") for codec in lg.full_res_codecs()]
    for codec, folder in studies:  # measured in format version 5: the same points, written today as version 8
        committed = json.loads((lg.OUT / folder / f"{codec.name}.json").read_text())
        points = committed["provenance"]["config"]["points"]
        assert [lg.point_config(p) for p in points] == list(codec.points), codec.label
        assert all("format" not in p for p in points) and codec.config()["points"][0]["format"] == 8
    reference = json.loads((lg.OUT / "checkerboard-first8" / "latent-proto.json").read_text())
    recorded = reference["provenance"]["config"]["points"]
    stage2 = [p for p in lg.LATENT_STAGE2 if lg.latent_record(p) in recorded]
    assert len(stage2) == 7  # the stage-2 ladder but grid-xhigh's point, added after that run
    # the presets' Kodak run (README's and docs' figures) ran the presets' ladder as it is now, its
    # baseline (kodak-four-pass-at) the ladder before the four middle points took 1.5x their steps,
    # that one's (kodak-low-full) the ladder before the four-pass points, that one's (kodak-steps)
    # the ladder with grid-medium, and that one's (kodak-noise) the ladder before the four middle
    # points took twice the steps
    from inrcodec.config import (
        LATENT_FOUR_PASS_LADDER,
        LATENT_LOW_FULL_LADDER,
        LATENT_NOISE_LADDER,
        LATENT_PRESET_LADDER,
        LATENT_STEPS_LADDER,
    )

    runs = (("kodak-steps-x1.5", LATENT_PRESET_LADDER), ("kodak-four-pass-at", LATENT_FOUR_PASS_LADDER))
    runs += (("kodak-low-full", LATENT_LOW_FULL_LADDER), ("kodak-steps", LATENT_STEPS_LADDER))
    for folder, ladder in (*runs, ("kodak-noise", LATENT_NOISE_LADDER)):
        run = json.loads((lg.OUT / folder / "latent-proto.json").read_text())
        assert run["complete"], folder
        assert run["provenance"]["config"]["points"] == [json.loads(json.dumps(lg.point_record(p))) for p in ladder]
        assert [lg.point_config(r) for r in run["provenance"]["config"]["points"]] == list(ladder)


def test_side_by_side_runs_alternate_and_balance():
    order = list(runner.alternating(3))
    assert order == ["before", "after", "after", "before", "before", "after"]
    assert order.count("before") == order.count("after") == 3


def test_latent_filter_probe_trains_both_arms_and_counts_the_filter(tmp_path):
    """benchmarks/latent_filter.py on a small picture: both arms train with the same draws and
    code real latent bytes; the filter's weights are counted in its arm's bytes."""
    from benchmarks import latent_filter

    y, x = np.mgrid[0:48, 0:64]
    path = tmp_path / "a.png"
    Image.fromarray(np.stack([x * 4, y * 5, (x * y) % 256], axis=2).astype(np.uint8)).save(path)
    plain = latent_filter.probe(str(path), "grid-low", 0, 6)
    filtered = latent_filter.probe(str(path), "grid-low", 2, 6)
    for r in (plain, filtered):
        assert r["latent_file_bytes"] > 0 and math.isfinite(r["psnr"]) and r["bpp"] > 0
    assert filtered["weight_bytes"] > plain["weight_bytes"]
    again = latent_filter.probe(str(path), "grid-low", 2, 6)
    assert {**again, "seconds": 0} == {**filtered, "seconds": 0}  # seeded: the same numbers every run
    table = latent_filter.table([plain, filtered])
    assert "| a | none |" in table and "| +0.00 | +0.0% |" in table  # the plain arm against itself
    assert "| a | 2 |" in table


def test_proxy_probe_writes_one_row_per_variant_and_lambda_and_keeps_them(tmp_path):
    """benchmarks/proxy_probe.py on a small picture: one row per variant and lambda (a fit each,
    in a fresh process), the study's base at lr_finest 1 whatever the preset has, and a rerun adds
    nothing."""
    from benchmarks import proxy_probe

    y, x = np.mgrid[0:48, 0:64]
    path = tmp_path / "a.png"
    Image.fromarray(np.stack([x * 4, y * 5, (x * y) % 256], axis=2).astype(np.uint8)).save(path)
    out = tmp_path / "probe" / "rows.jsonl"
    argv = ["--image", str(path), "--steps", "4", "--variants", "uniform,lr-finest0.3", "--lams", "2e-3"]
    assert proxy_probe.main([*argv, "--out", str(out), "--workers", "2"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted((r["variant"], r["lam"], r["lr_finest"]) for r in rows) == [
        ("lr-finest0.3", 0.002, 0.3),
        ("uniform", 0.002, 1.0),
    ]
    assert all(r["bytes"] > 0 and r["steps"] == 4 and r["image"] == "a.png" for r in rows)
    assert proxy_probe.main([*argv, "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 2
    # long-fit: the preset's quantizer, LATENT_LONG_FIT's learning rates, --steps' steps
    argv = ["--image", str(path), "--steps", "4", "--variants", "long-fit", "--preset", "grid-medium"]
    assert proxy_probe.main([*argv, "--out", str(out)]) == 0
    row = json.loads(out.read_text().splitlines()[-1])
    assert (row["variant"], row["quantizer"], row["lr_latent"], row["lr_finest"], row["steps"]) == (
        "long-fit",
        "soft-fast",
        0.1,
        0.1,
        4,
    )


@pytest.mark.skipif(not (runner.REPO.parent / "shared" / "photos").is_dir(), reason="../shared/photos not here")
def test_shared_prior_probe_freezes_the_shared_networks_and_counts_their_bytes_out(
    tmp_path, monkeypatch, capsys, request
):
    """The probe's "frozen" fit leaves the shared networks as trained and counts the file less
    their payloads (plus the prior ID); "init" trains them; the codec's class is restored."""
    import torch

    from benchmarks import shared_prior_probe as sp
    from inrcodec.encoder import latent

    threads = torch.get_num_threads()  # the probe's functions set one thread, as in their own processes
    request.addfinalizer(lambda: torch.set_num_threads(threads))
    monkeypatch.setitem(sp.GROUPS, "quarter", tuple(replace(p, steps=20) for p in sp.GROUPS["quarter"]))
    photos = [sp.PHOTOS / "photo009.png", sp.PHOTOS / "photo010.png"]
    shared = sp.train_shared(sp.GROUPS["quarter"][1], photos, 10, lambda msg: None)
    assert shared["train_images"] == ["photo009.png", "photo010.png"]
    path = tmp_path / "shared.pt"
    torch.save(shared, path)
    packed = {}
    pack = latent.pack

    def keep(model, cfg, arr):
        packed["model"] = model
        return pack(model, cfg, arr)

    monkeypatch.setattr(latent, "pack", keep)
    codec_class = latent.LatentImage
    for way, same in (("frozen", True), ("init", False)):
        row = sp.fit_one(way, "photo001", 0.016, str(path))
        nets = packed["model"]
        equal = [torch.equal(v, nets.linears.state_dict()[k]) for k, v in shared["linears"].items()]
        assert all(equal) if same else not all(equal)
        lost = row["synthesis_bytes"] + row["context_bytes"] - sp.PRIOR_ID_BYTES if same else 0
        assert row["bytes"] == row["file_bytes"] - lost
        assert latent.LatentImage is codec_class
    # the table: a BD-rate per photo and way once its three points are there
    ref = {
        "rows": [
            {"image": "photo001", "setting": f"lam={p.lam:g}", "bpp": b, "psnr": q}
            for p, b, q in zip(sp.GROUPS["quarter"], (0.08, 0.1, 0.12), (23.0, 23.5, 23.8))
        ]
    }
    rows = [
        {"way": "frozen", "image": "photo001", "lam": p.lam, "bpp": b * 0.9, "psnr": q}
        for p, b, q in zip(sp.GROUPS["quarter"], (0.08, 0.1, 0.12), (23.0, 23.5, 23.8))
    ]
    monkeypatch.setattr(sp, "HELD_OUT", ("photo001",))
    text = sp.table(rows, ref, sp.GROUPS["quarter"])
    for argv, msg in ((["--ways", "all"], "--ways: frozen, init or both"), (["--train-images", "42"], "1..41")):
        with pytest.raises(SystemExit) as e:
            sp.main(argv)
        assert e.value.code == 2 and msg in capsys.readouterr().err
    assert "| photo001 | frozen |" in text and "-10.0 %" in text and "BD-rate mean -10.0 %" in text


def test_context_probe_today_is_the_formats_context():
    """The probe's first variant gives each latent exactly the 14 integers the format's checkerboard
    model reads (so its row calibrates the others), and every variant sees only decoded latents."""
    from benchmarks import context_probe as cp
    from inrcodec.format import checkerboard

    rng = np.random.default_rng(0)
    q = rng.integers(-3, 4, (1, 7, 6)).astype(np.float64)
    parent = rng.integers(-3, 4, (1, 4, 3)).astype(np.float64)
    today = cp.VARIANTS[0]
    assert today.features() == checkerboard.FEATURES
    feats, values = cp.level_features(q, parent, today)
    cb = checkerboard.CHECKERBOARD
    want = [checkerboard.features(q.astype(np.int64), parent.astype(np.int64), cb, g) for g in (0, 1)]
    np.testing.assert_array_equal(feats, np.concatenate(want))
    masks = [checkerboard.member(cb, 7, 6, g) for g in (0, 1)]
    np.testing.assert_array_equal(values, np.concatenate([q[0][m] for m in masks]))
    # the probe's "4 passes, 3x3 window" is format version 9's context, integer for integer
    four = next(v for v in cp.VARIANTS if v.name == "4 passes, 3x3 window")
    feats, values = cp.level_features(q, parent, four)
    fp = checkerboard.FOUR_PASS
    want = [checkerboard.features(q.astype(np.int64), parent.astype(np.int64), fp, g) for g in range(4)]
    np.testing.assert_array_equal(feats, np.concatenate(want))
    np.testing.assert_array_equal(values, np.concatenate([q[0][checkerboard.member(fp, 7, 6, g)] for g in range(4)]))
    # four passes, 5x5: a latent's window reads only groups decoded before its own
    v = next(v for v in cp.VARIANTS if v.groups == "4pass" and v.window == "5x5" and v.parent == 3)
    order = np.zeros((7, 6), int)  # each position's group
    for g, parities in enumerate(cp.GROUPS["4pass"]):
        for pi, pj in parities:
            order[pi::2, pj::2] = g
    marked = np.arange(1, 43, dtype=np.float64).reshape(1, 7, 6)  # each latent its own value
    feats, values = cp.level_features(marked, None, v)
    assert feats.shape == (42, v.features())
    window = feats[:, 9 : 9 + 24]
    for row, value in zip(window, values):
        i, j = divmod(int(value) - 1, 6)
        want = [
            marked[0, i + di, j + dj]
            if 0 <= i + di < 7 and 0 <= j + dj < 6 and order[i + di, j + dj] < order[i, j]
            else 0
            for di, dj in cp.WINDOWS["5x5"]
        ]
        np.testing.assert_array_equal(row, want)
    assert (window > 0).sum() > 100  # the later groups do see neighbours


def test_grid_rate_control_replays_the_search_on_a_ladder_runs_rows(tmp_path):
    """benchmarks/grid_rate_control.py: the real search (latent_rate.fit_to_cap) over committed
    rows, here of an image whose every file takes 1.5x the typical rate: it climbs or descends to
    the best file under each cap, counts its fits, and refuses an incomplete run. With the first
    guess from the image's detail it goes past the points its detail already rules out when that says 1.5x."""
    import math

    from benchmarks import grid_rate_control as grc
    from inrcodec.config import LATENT_PRESET_LADDER, LATENT_RATE_BPP, LATENT_RATE_GUESS
    from inrcodec.image import save

    pixels = 768 * 512
    rows = []
    for p in LATENT_PRESET_LADDER:
        size = int(LATENT_RATE_BPP[p.lam] * 1.5 * pixels / 8)
        bpp = size * 8 / pixels
        rows.append({"image": "a", "setting": f"lam={p.lam}", "bytes": size, "bpp": bpp, "psnr": 20 + 10 * bpp,
                     "encode_s": 10.0, "steps": 1})  # fmt: skip
    run = tmp_path / "latent-proto.json"
    run.write_text(json.dumps({"complete": True, "rows": rows}))
    by_lam = grc.load_rows(run)["a"]
    r = grc.replay(by_lam, 0.5, 1.0, guess=False)  # under 0.5 bpp: 7e-3 (0.45 bpp) is the best, 5e-3 (0.56) is over
    assert (r["lam"], r["best_lam"], r["preset"]) == (7e-3, 7e-3, "grid-high")
    # the first guess 3e-3 (typical 0.53, within the slack of 1.3x), then down a point at a time:
    # each over the cap, each within the slack at this image's scale, until 7e-3 fits
    assert r["tried"] == [3e-3, 5e-3, 7e-3] and r["fits"] == 3 and r["cpu_s"] == 30.0
    assert grc.replay(by_lam, 0.5, 1.0, slack=1.0, guess=False)["tried"] == [5e-3, 7e-3]  # without slack: one fewer
    a, b = LATENT_RATE_GUESS
    says = math.exp((math.log(1.5) - a) / b)  # the detail whose guess is 1.5x
    # at 1.5x from the start, 5e-3 (0.56 bpp expected) is the highest within the slack, then 7e-3
    assert grc.replay(by_lam, 0.5, says)["tried"] == [5e-3, 7e-3]
    low = grc.replay(by_lam, 0.05, 1.0)  # under the lowest file (0.10 bpp)
    assert low["lam"] is None and low["best_lam"] is None and low["fits"] >= 1
    images = tmp_path / "images"
    images.mkdir()
    out = ["--run", str(run), "--caps", "0.5,0.05", "--out", str(tmp_path / "out"), "--images", str(images)]
    with pytest.raises(SystemExit):  # the run's images are needed for the first guess
        grc.main(out)
    save(np.full((8, 8, 3), 128, np.uint8), images / "a.png")
    assert grc.main(out) == 0
    table = (tmp_path / "out" / "grid-rate-control.md").read_text()
    without = table.split("Without it")[1]  # the table of the search without the guess
    assert "| 0.5 | 1 | 3.00 | 3 | 1/1 | 0.00 | 0.00 | 30 (3.00×) |" in without and "| 0.05 | 0 |" in without
    doc = json.loads((tmp_path / "out" / "grid-rate-control.json").read_text())
    plain = [grc.replay(by_lam, c, 0.0, guess=False) for c in (0.5, 0.05)]
    flat = [grc.replay(by_lam, c, 0.0) for c in (0.5, 0.05)]  # a flat image: its guess from the detail floor
    assert doc["results_without_guess"] == [{"image": "a", "detail": 0.0} | x for x in plain]
    assert doc["results"] == [{"image": "a", "detail": 0.0} | x for x in flat]
    assert flat[0]["tried"] != plain[0]["tried"] == [3e-3, 5e-3, 7e-3]  # the guess changes the search
    run.write_text(json.dumps({"complete": False, "rows": rows}))
    with pytest.raises(ValueError, match="incomplete"):
        grc.load_rows(run)
    run.write_text(json.dumps({"complete": True, "rows": rows[1:]}))
    with pytest.raises(ValueError, match="lacks the presets' points"):
        grc.load_rows(run)


def test_ladder_points_reads_ladders_of_a_runs_points_against_jpeg_and_the_base(tmp_path):
    """benchmarks/ladder_points.py: a point under the line its neighbours draw pulls the curve down,
    so dropping it is a negative BD-rate against the base; a later run's row replaces an earlier
    one's; a variant that adds a point already there, or a point no run has, is refused."""
    from benchmarks import ladder_points as lp

    def rows(points: dict[str, tuple[float, float]]) -> list[dict]:
        return [{"image": i, "setting": s, "bpp": b * k, "psnr": q} for s, (b, q) in points.items()
                for i, k in (("a", 0.9), ("b", 1.1))]  # fmt: skip

    line = {f"lam={k}": (0.1 * 2**k, 25.0 + 3 * k) for k in range(5)}  # PSNR linear in log-rate
    under = {"lam=under": (0.1 * 2**2.5, 25.0 + 3 * 2.5 - 1.5)}  # 1.5 dB under the line
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({"rows": rows({**line, "lam=0": (5.0, 20.0)})}))
    second.write_text(json.dumps({"rows": rows({**line, **under})}))
    jpeg = tmp_path / "jpeg"
    jpeg.mkdir()
    jpeg_points = {f"q{k}": (0.2 * 2**k, 24.0 + 3 * k) for k in range(6)}
    (jpeg / "jpeg420.json").write_text(json.dumps({"rows": rows(jpeg_points)}))
    out = tmp_path / "out"
    base = ",".join([*line, "lam=under"])
    argv = ["--run", str(first), "--run", str(second), "--base", base, "--anchor", str(jpeg), "--out", str(out)]
    assert lp.main([*argv, "--variants=-lam=under;-lam=4"]) == 0
    doc = json.loads((out / "ladder-points.json").read_text())
    assert doc["images"] == ["a", "b"] and doc["points"]["lam=0"]["bpp"] == pytest.approx(0.1)  # the later row
    assert doc["bd_base"]["-lam=under"] < -1.0 and doc["bd_jpeg"]["-lam=under"] < doc["bd_jpeg"]["base"]
    assert doc["variants"]["-lam=4"] == [*list(line)[:4], "lam=under"]
    assert "| lam=under | 0.5657 | 31.00 |" in (out / "ladder-points.md").read_text()
    for bad in ("+lam=0", "-lam=9", "lam=1", "+lam=9"):  # on it already, not on it, no sign, no rows
        with pytest.raises(SystemExit):
            lp.main([*argv, f"--variants={bad}"])
    with pytest.raises(SystemExit):  # an empty base ladder: a usage error, not a traceback
        lp.main([*argv[:4], "--base", ",", *argv[6:], "--variants=-lam=1"])


def test_latent_postfilter_fits_the_least_squares_residual_filter():
    """benchmarks/latent_postfilter.py: a picture off by a constant and by a neighbour's share is
    put right by its fitted filter; the coefficients count 3 (3 k^2 + 1)."""
    from benchmarks import latent_postfilter as lp

    rng = np.random.default_rng(0)
    original = rng.integers(40, 200, (16, 20, 3)).astype(np.uint8)
    decoded = original.astype(np.float64) + 7  # off by a constant: the bias takes it back
    fixed, n = lp.wiener(np.clip(decoded, 0, 255).astype(np.uint8), original, 3, 16)
    assert n == 3 * (3 * 9 + 1) and np.array_equal(fixed, original)
    mixed = original.astype(np.float64).copy()
    mixed[:, 1:] = 0.75 * mixed[:, 1:] + 0.25 * original[:, :-1]  # a blur across
    blurred = np.round(mixed).astype(np.uint8)
    assert lp.psnr(lp.wiener(blurred, original, 3, 12)[0], original) > lp.psnr(blurred, original) + 3


def test_rate_guess_fits_a_line_through_log_detail_and_log_scale():
    from benchmarks import rate_guess

    a, b, spread = rate_guess.fit([(x, 0.5 + 0.8 * x) for x in (1.0, 2.0, 3.5)])
    assert (a, b, spread) == pytest.approx((0.5, 0.8, 0.0), abs=1e-9)


@pytest.mark.parametrize(
    ("module", "args", "says"),
    [
        ("latent_postfilter", ["--sizes", "3,x"], "--sizes: odd filter sizes"),
        ("latent_postfilter", ["--sizes", "4"], "--sizes: odd filter sizes"),
        ("latent_postfilter", ["--bits", "1"], "--bits: at least 2"),
        ("latent_postfilter", ["--first", "5", "--last", "4"], "--first 5 is after --last 4"),
        ("rate_guess", ["--first", "20", "--last", "9"], "--first 20 is after --last 9"),
        ("rate_guess", ["--presets", "grid-huge"], "--presets: grid-huge is not a grid preset"),
        ("latent_prune", ["--presets", "grid-high"], "--presets: grid presets without rounding or tuning"),
        ("latent_prune", ["--fractions", "0.5,0.25"], "--fractions: ascending numbers between 0 and 1"),
    ],
)
def test_the_probe_scripts_refuse_bad_options_in_one_line_before_any_work(module, args, says, tmp_path, capsys):
    import importlib

    mod = importlib.import_module(f"benchmarks.{module}")
    with pytest.raises(SystemExit) as e:
        mod.main([*args, "--images", str(tmp_path), "--out", str(tmp_path / "out")])
    assert e.value.code == 2 and says in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_latent_prune_prunes_the_smallest_residuals_round_by_round_and_holds_them_while_training():
    """benchmarks/latent_prune.py: each round sets the smallest of the kept residuals of every
    weight matrix to zero (the weight to its init; biases untouched), counting earlier rounds'
    ones, and an Adam step inside ``held`` leaves the pruned weights at their init."""
    import torch

    from benchmarks import latent_prune as lp
    from inrcodec.config import LatentConfig
    from inrcodec.encoder.latent import LatentImage

    torch.manual_seed(0)
    model = LatentImage(16, 12, LatentConfig(lam=1e-2, levels=3, hidden=8, steps=10, batch=64))
    weights = model.coded()[0 : 2 * len(model.linears) : 2]
    biases = [b.detach().clone() for b in model.coded()[1 : 2 * len(model.linears) : 2]]
    start = [torch.randn_like(w) * 0.01 for w in weights]  # an init the residuals count from
    before = [w.detach().clone() for w in weights]
    keep = [torch.ones_like(w, dtype=torch.bool) for w in weights]
    lp.prune(model, start, keep, 0.5)
    for w, w0, b, k in zip(weights, start, before, keep):
        assert int((~k).sum()) == int(0.5 * w.numel())
        r = (b - w0).abs()
        assert r[~k].max() <= r[k].min()  # the smallest residuals went
        assert torch.equal(w[~k], w0[~k]) and torch.equal(w[k], b[k])
    assert all(torch.equal(b, now) for b, now in zip(biases, model.coded()[1 : 2 * len(model.linears) : 2]))
    lp.prune(model, start, keep, 0.75)  # the next round: three quarters in all, not of the rest
    assert [int((~k).sum()) for k in keep] == [int(0.75 * w.numel()) for w in weights]
    opt = torch.optim.Adam(model.linears.parameters(), lr=0.1)
    with lp.held(model, start, keep):
        sum((w * w).sum() for w in weights).backward()
        opt.step()
    assert all(torch.equal(w[~k], w0[~k]) for w, w0, k in zip(weights, start, keep))
    assert not all(torch.equal(w[k], b[k]) for w, b, k in zip(weights, before, keep))  # the kept ones trained
    assert torch.optim.Adam.step is not None and "masked" not in torch.optim.Adam.step.__name__  # put back


def test_fit_speed_measures_the_native_kernels_beside_the_other_steps(crop, tmp_path, monkeypatch):
    """benchmarks/fit_speed.py: with the native kernels every mode is timed in the same rounds
    and the table has their rows (the native step runs the kernels it was given: ``native.load``'s,
    here the test's build); without them, the rows it always had."""
    from benchmarks import fit_speed
    from inrcodec.encoder import native

    try:
        kernels = native.Kernels(native.build(tmp_path))
    except native.Unavailable as e:
        pytest.skip(str(e))
    loads = []
    monkeypatch.setattr(native, "load", lambda: loads.append(1) or kernels)
    row = fit_speed.measure(16, 1, 2, 2, crop[:24, :24], with_native=True)
    assert len(loads) == 1 + 3  # the ceiling's, then train's in the warm-up and both rounds of the native step
    assert {len(v) for v in row["runs"].values()} == {2} and set(row["runs"]) == {
        "plain", "fused", "ceiling", "native", "ceiling_native"
    }  # fmt: skip
    assert row["native_speedup"] > 0 and row["native_of_ceiling_native"] > 0
    doc = {"command": "x", "date": "d", "machine": {"cpus": 2}, "torch": "t", "load_before": {"load_1min": 1},
           "load_after": {"load_1min": 1}, "batch": 8192, "steps": 2, "reps": 2, "omp_wait_policy": "PASSIVE",
           "native": "the 512-bit path", "rows": [row]}  # fmt: skip
    text = fit_speed.markdown(doc)
    assert "native / ceiling (native)" in text and "| 16 | 1 |" in text
    plain = fit_speed.measure(16, 1, 1, 2, crop[:24, :24])
    assert "native_speedup" not in plain and "native / ceiling" not in fit_speed.markdown(doc | {"rows": [plain]})


def test_latent_steps_fits_each_factor_once_and_tables_them_against_the_presets_own(crop, tmp_path, monkeypatch):
    """benchmarks/latent_steps.py on a tiny preset: one row per image and factor, the steps scaled,
    a rerun fits nothing again, and the table compares each factor with the factor-1 row."""
    from PIL import Image

    from benchmarks import latent_steps
    from inrcodec import config
    from inrcodec.config import LatentConfig

    tiny = LatentConfig(lam=1e-2, levels=3, hidden=8, steps=20, batch=64, context="checkerboard")
    monkeypatch.setattr(config, "LATENT_PRESETS", {"grid-tiny": tiny})
    Image.fromarray(crop[:16, :24]).save(tmp_path / "photo001.png")
    args = ["--images", str(tmp_path), "--first", "1", "--last", "1", "--presets", "grid-tiny"]
    args += ["--factors", "2", "--workers", "1", "--out", str(tmp_path / "out")]
    assert latent_steps.main(args) == 0
    rows = [json.loads(line) for line in (tmp_path / "out" / "latent-steps.jsonl").read_text().splitlines()]
    assert sorted((r["factor"], r["steps"]) for r in rows) == [(1.0, 20), (2.0, 40)]
    assert latent_steps.main(args) == 0  # nothing left to fit
    assert len((tmp_path / "out" / "latent-steps.jsonl").read_text().splitlines()) == 2
    text = (tmp_path / "out" / "latent-steps.md").read_text()
    assert "| ×1 (20 steps) |" in text and "| ×2 (40 steps) |" in text
    assert "+0.00 | +0.0 |" in text  # factor 1 against itself
    assert latent_steps.main([*args, "--scale", "batch"]) == 0  # the batch scaled: factor 2 again, factor 1 kept
    rows = [json.loads(line) for line in (tmp_path / "out" / "latent-steps.jsonl").read_text().splitlines()]
    assert sorted((r["factor"], r.get("scale", ""), r["steps"], r.get("batch", 0)) for r in rows) == [
        (1.0, "", 20, 0),
        (2.0, "", 40, 0),
        (2.0, "batch", 20, 128),
    ]
    text = (tmp_path / "out" / "latent-batch.md").read_text()
    assert "| ×2 (batch 128) |" in text and "| ×2 (40 steps) |" not in text and "training batch scaled" in text
    assert "| ×2 (40 steps) |" in (tmp_path / "out" / "latent-steps.md").read_text()  # the steps table kept


def test_latent_steps_reads_a_psnr_gain_as_a_rate_at_equal_psnr_along_the_presets_line():
    import math

    from benchmarks import latent_steps

    def row(preset, factor, bpp, psnr):
        return {"image": "photo001", "preset": preset, "factor": factor, "steps": int(100 * factor),
                "bytes": round(bpp * 1000), "bpp": bpp, "psnr": psnr, "cost": 1.0, "cpu_s": 1.0}  # fmt: skip

    rows = [
        row("grid-high", 1.0, 0.1, 28.0),
        row("grid-xhigh", 1.0, 0.1 * math.e, 32.0),
        row("grid-high", 2.0, 0.1, 28.4),
    ]
    rows.append(row("grid-xhigh", 2.0, 0.1 * math.e, 32.0))
    assert latent_steps.slope(rows, ["grid-high", "grid-xhigh"]) == pytest.approx(4.0)
    assert latent_steps.slope(rows, ["grid-high"]) is None
    assert latent_steps.equal_rate(rows[2], rows[0], 4.0) == pytest.approx(100 * (math.exp(-0.1) - 1))
    text = "\n".join(latent_steps.tables(rows, ["grid-high", "grid-xhigh"], [1.0, 2.0]))
    assert "4.00 dB per e-fold" in text
    lines = text.splitlines()
    head = lines.index(next(line for line in lines if line.startswith("| run")))
    cells = dict(zip(lines[head].split(" | "), lines[head + 3].split(" | ")))  # the header, then ×2's row
    assert cells["| run"] == "| ×2 (200 steps)" and cells["PSNR dB"] == "28.40"
    assert cells["rate at equal PSNR %"] == "-9.5" and cells["Δ (D + λR) % image by image"] == "+0.0"
    assert "rate at equal PSNR" not in "\n".join(latent_steps.tables(rows, ["grid-high"], [1.0, 2.0]))


def test_latent_steps_names_the_ladders_unnamed_points_and_refuses_what_is_not_on_it(capsys):
    from benchmarks import latent_steps
    from inrcodec import config

    assert latent_steps.point("grid-high") == config.LATENT_PRESETS["grid-high"]
    assert latent_steps.point("lam=0.005").lam == 5e-3 and latent_steps.canonical("lam=5e-3") == "lam=0.005"
    assert latent_steps.canonical("lam=2.5e-4") == "lam=0.00025" and latent_steps.canonical("grid-max") == "grid-max"
    for bad in ("lam=0.0051", "lam=x", "0.005", "grid-huge"):
        with pytest.raises(KeyError):
            latent_steps.point(bad)
    for argv, msg in (
        (["--presets", "lam=0.0051"], "--presets: lam=0.0051 is neither a grid preset"),
        (["--presets", "grid-high,lam=0.007"], "--presets: one point named twice"),
        (["--presets", "lam=0.007", "--groups", "lam=0.005"], "--groups: lam=0.005 is not one of --presets"),
        (["--presets", "lam=0.007", "--groups", "lam=x"], "--groups: lam=x is not one of --presets"),
        (["--presets", "lam=0.007", "--groups", "lam=7e-3"], "--groups: with --ladder"),
        (["--presets", "lam=0.007", "--ladder", "/no/such.json"], "--ladder: /no/such.json: not a latent_grid"),
    ):
        with pytest.raises(SystemExit) as e:
            latent_steps.main(argv)
        assert e.value.code == 2 and msg in capsys.readouterr().err


def _steps_rows(image, lam, bpp, psnr, factor=1.0):
    return {"image": image, "preset": f"lam={lam:g}", "factor": factor, "bpp": bpp, "psnr": psnr}


def test_latent_steps_puts_the_scaled_points_into_the_ladders_curve_and_takes_its_bd_rate():
    """The base curve takes the run's factor-1 rows at the scaled points (not the ladder's) and the
    ladder's elsewhere; each group's curve swaps in its points' rows at the factor; the BD-rates
    are those of the curves made so by hand; what is missing is said, not skipped."""
    from benchmarks import latent_steps
    from benchmarks.bd_rate import bd_rate

    images = ("photo001", "photo002")
    lams = [7e-3, 1.5e-3, 5e-4]  # three points of the presets' ladder; the last is not scaled
    ladder_rows, rows = [], []
    for n, image in enumerate(images):
        for k, lam in enumerate(lams):
            bpp, psnr = 0.2 * 2**k * (1 + n / 10), 28.0 + 3 * k + n
            ladder_rows.append({"image": image, "setting": f"lam={lam:g}", "bpp": bpp * 1.5, "psnr": psnr})
            if lam != 5e-4:
                rows.append(_steps_rows(image, lam, bpp, psnr))
                rows.append(_steps_rows(image, lam, bpp * 0.9, psnr + 0.1, 2.0))
    ladder = {"settings": [f"lam={lam:g}" for lam in lams], "rows": ladder_rows}
    qualities = enumerate(((10, 0.2), (50, 0.8), (90, 2.4)))
    jpeg_rows = [{"image": i, "setting": f"q={q}", "bpp": b * (1 + n / 10), "psnr": 27.0 + 5 * k + n}
                 for k, (q, b) in qualities for n, i in enumerate(images)]  # fmt: skip
    jpeg = {"settings": ["q=10", "q=50", "q=90"], "rows": jpeg_rows}

    def mean(points):  # (bpp, psnr) per image, per setting -> the mean curve's two lists
        return [sum(p[0] for p in ps) / len(ps) for ps in points], [sum(p[1] for p in ps) / len(ps) for ps in points]

    def run_row(image, lam, factor):
        return next(r for r in rows if (r["image"], r["preset"], r["factor"]) == (image, f"lam={lam:g}", factor))

    def by_hand(scaled):
        points = []
        for lam in lams:
            if lam == 5e-4:
                got = [r for r in ladder_rows if r["setting"] == "lam=0.0005"]
            else:
                got = [run_row(i, lam, 2.0 if lam in scaled else 1.0) for i in images]
            points.append([(r["bpp"], r["psnr"]) for r in got])
        return mean(points)

    base, both, first = by_hand(()), by_hand((7e-3, 1.5e-3)), by_hand((7e-3,))
    jpeg_curve = mean([[(r["bpp"], r["psnr"]) for r in jpeg_rows if r["setting"] == s] for s in jpeg["settings"]])
    groups = [["lam=0.007", "lam=0.0015"], ["lam=0.007"]]
    text = "\n".join(latent_steps.ladder_curves(rows, groups, [1.0, 2.0], ladder, jpeg))
    cells = [line.split(" | ") for line in text.splitlines() if line.startswith("| ") and "%" in line]
    assert cells[0][:3] == ["| none", "×1", "+0.0 %"] and cells[0][3] == f"{bd_rate(*jpeg_curve, *base):+.1f} % |"
    assert cells[1][:2] == ["| lam=0.007, lam=0.0015", "×2"] and cells[2][:2] == ["| lam=0.007", "×2"]
    assert cells[1][2] == f"{bd_rate(*base, *both):+.1f} %" and cells[2][2] == f"{bd_rate(*base, *first):+.1f} %"
    assert cells[1][3] == f"{bd_rate(*jpeg_curve, *both):+.1f} % |"
    assert bd_rate(*base, *both) < bd_rate(*base, *first) < 0
    lacking = latent_steps.ladder_curves(rows[:-1], groups, [1.0, 2.0], ladder, jpeg)
    assert lacking[-1] == "No ladder curve: it lacks this run's lam=0.0015 ×2 on photo002."
    no_jpeg = {**jpeg, "rows": [r for r in jpeg_rows if r["image"] == "photo001"]}
    assert "it lacks JPEG's photo002" in latent_steps.ladder_curves(rows, groups, [1.0, 2.0], ladder, no_jpeg)[-1]


def test_latent_steps_takes_the_points_own_rows_from_the_ladder_file_only_where_they_are_the_points(tmp_path):
    from benchmarks import latent_steps
    from inrcodec.encoder import latent_rdo

    steps = latent_steps.point("lam=0.007").steps  # the presets' point's own
    row = {"image": "photo001", "setting": "lam=0.007", "bytes": 7000, "bpp": 0.14, "psnr": 29.0, "steps": steps,
           "encode_s": 100.0}  # fmt: skip
    ladder = {"settings": ["lam=0.007"], "rows": [row]}
    log = tmp_path / "latent-steps.jsonl"
    images = [tmp_path / "photo001.png", tmp_path / "photo002.png"]  # photo002: the ladder has no row
    new = latent_steps.own_rows([], ["lam=0.007"], images, ladder, tmp_path / "ladder.json", log)
    pixels = round(7000 * 8 / 0.14)
    cost = latent_rdo.file_cost(bytes(7000), 255.0**2 * 10 ** (-29.0 / 10), 7e-3, pixels)
    assert len(new) == 1 and new[0]["cost"] == pytest.approx(cost, rel=1e-12)
    assert (new[0]["factor"], new[0]["cpu_s"], new[0]["steps"]) == (1.0, 100.0, steps) and new[0]["source"]
    assert [json.loads(line) for line in log.read_text().splitlines()] == new
    assert latent_steps.own_rows(new, ["lam=0.007"], images, ladder, tmp_path / "ladder.json", log) == []
    longer = {**ladder, "rows": [{**row, "steps": 2 * steps}]}
    with pytest.raises(ValueError, match=f"took {2 * steps} steps, the point {steps}"):
        latent_steps.own_rows([], ["lam=0.007"], images, longer, tmp_path, log)
    assert len(log.read_text().splitlines()) == 1  # nothing written by the refused call


def test_latent_prune_measures_every_variant_of_a_real_fit_and_refuses_a_tuned_preset(crop, monkeypatch):
    """The fit's last packed model is its file (checked inside ``measure``), and a preset with a
    rounding or tuning stage after the pack is refused."""
    from benchmarks import latent_prune as lp
    from inrcodec import config
    from inrcodec.config import LatentConfig

    tiny = LatentConfig(lam=1e-2, levels=3, hidden=8, steps=30, batch=128, context="checkerboard")
    presets = {"tiny": tiny, "tuned": LatentConfig(lam=1e-2, levels=3, hidden=8, steps=30, batch=128, tune_steps=5)}
    monkeypatch.setattr(config, "LATENT_PRESETS", presets)
    rows = lp.measure(crop[:24, :32], "tiny", [0.25, 0.5], 3)
    assert [(r["variant"], r["fraction"]) for r in rows] == [
        ("fit", 0.0), ("tuned", 0.0), ("pruned", 0.25), ("pruned", 0.5), ("IMP", 0.25), ("IMP", 0.5)
    ]  # fmt: skip
    assert rows[0]["d_cost_pct"] == 0.0 and all(r["bytes"] > 0 for r in rows)
    with pytest.raises(ValueError, match="not the fit's last pack"):
        lp.measure(crop[:24, :32], "tuned", [0.5], 3)


def test_latent_upsample_sampler_starts_as_the_decoders_bilinear_and_learns_a_kernel_at_any_distance(crop):
    """benchmarks/latent_upsample.py: at bilinear's triangle the probe's sampler gives the
    features the encoder trains with (grid_sample's) and the grid decoder's pixels (within one
    grey level), its kernel is piecewise linear between its knots and zero from 2 on, and the
    knots get a gradient."""
    import torch
    import torch.nn.functional as F

    from benchmarks import latent_upsample as lu
    from inrcodec import coords
    from inrcodec.config import LatentConfig
    from inrcodec.decoder.latent import render
    from inrcodec.encoder.latent import fit
    from inrcodec.format.latent import read

    cfg = LatentConfig(lam=1e-2, levels=3, hidden=8, steps=20, batch=64, context="checkerboard")
    f = read(fit(crop[:16, :24], cfg).data)
    sampler = lu.Sampler(f, knots=4)
    pixels = torch.arange(16 * 24)
    grid = coords.grid(16, 24)[None, None]
    reference = torch.cat(
        [
            F.grid_sample(
                torch.from_numpy(q.astype(np.float32))[None], grid, padding_mode="border", align_corners=False
            )[0, :, 0].T
            for q in f.latents
        ],
        dim=1,
    )
    assert torch.allclose(sampler(pixels, 24), reference, atol=1e-5)
    assert np.abs(lu.rendered(f, sampler, cfg).astype(int) - render(f, 24, 16).astype(int)).max() <= 1
    with torch.no_grad():
        sampler.values[:, 2] = 0.25  # the knot at d = 1/2 (the triangle's 0.75 at 1/4 kept)
    k = sampler.kernel(torch.full((1, 1, 3), 0.375), quantized=False)
    assert torch.allclose(k, torch.full((1, 1, 3), 0.5))  # half way between 0.75 and 0.25
    assert torch.equal(sampler.kernel(torch.full((1, 1, 3), 2.0), quantized=False), torch.zeros(1, 1, 3))
    sampler.flat = torch.randn(sampler.flat.shape, generator=torch.Generator().manual_seed(0))  # not all 0
    (sampler(pixels, 24) ** 2).sum().backward()
    assert sampler.values.grad is not None and sampler.values.grad.abs().sum() > 0


def test_latent_upsample_refuses_bad_options_before_any_work(tmp_path, capsys):
    from benchmarks import latent_upsample

    for args, says in (
        (["--knots", "0"], "--steps and --knots: at least 1"),
        (["--presets", "medium"], "grid presets only"),
    ):
        with pytest.raises(SystemExit) as e:
            latent_upsample.main([*args, "--images", str(tmp_path), "--out", str(tmp_path / "out")])
        assert e.value.code == 2 and says in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_latent_wide_tables_its_points_against_the_presets_and_refuses_lower_presets(tmp_path, capsys):
    """benchmarks/latent_wide.py: a photo's row pair and its BD-rate (the wider curve 10 % cheaper
    at every PSNR reads about -10 %), the mean curves; a preset without a full-resolution grid
    and a width out of range refused before any work."""
    from benchmarks import latent_wide

    presets = ["grid-high", "grid-xhigh", "grid-max"]
    ref = [
        {"image": i, "preset": p, "bpp": b * s, "psnr": d}
        for i, s in (("photo001", 1.0), ("photo002", 1.5))
        for p, b, d in zip(presets, (0.3, 0.8, 1.6), (28.0, 32.0, 36.0))
    ]
    wide = [r | {"bpp": r["bpp"] * 0.9, "hidden": 32} for r in ref]
    text = "\n".join(latent_wide.tables(ref, wide, presets, 32))
    assert "| photo002 | 32 wide, shared |" in text and "| mean | 32 wide, shared |" in text
    assert text.count("-10.0 %") == 3  # both photos and the mean
    assert latent_wide.tables(ref, wide[:2], presets, 32) == ["(no photo has every point yet)"]
    for args, says in (
        (["--presets", "grid-low"], "full-resolution grid presets only"),
        (["--hidden", "4"], "8 to 128"),
    ):
        with pytest.raises(SystemExit) as e:
            latent_wide.main([*args, "--images", str(tmp_path), "--out", str(tmp_path / "out")])
        assert e.value.code == 2 and says in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_encode_threads_tables_times_and_which_settings_wrote_which_file(tmp_path):
    """benchmarks/encode_threads.py: one row per preset and machine state, the median and each
    run per setting, and the files grouped by hash (which settings changed the bytes); bad
    settings and a missing photo are refused before any encode."""
    from benchmarks import encode_threads as et

    def run(setting, wall, sha, loaded=False):
        return {"preset": "medium", "setting": setting, "loaded": loaded, "wall_s": wall, "sha256": sha}

    runs = [run("default", 20.0, "aa" * 32), run("one", 27.0, "bb" * 32), run("default", 19.0, "aa" * 32)]
    runs += [run("default", 215.0, "aa" * 32, True), run("one", 26.0, "bb" * 32, True)]
    lines = et.table(runs, ["default", "one"])
    assert lines[2] == "| medium | quiet | 19.5 (20, 19) | 27.0 (27) | aaaaaaaa: default; bbbbbbbb: one |"
    assert lines[3] == "| medium | one busy core | 215.0 (215) | 26.0 (26) | aaaaaaaa: default; bbbbbbbb: one |"
    with pytest.raises(SystemExit):
        et.main(["--settings", "default,turbo", "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit):
        et.main(["--photo", str(tmp_path / "none.png"), "--out", str(tmp_path / "x")])
    assert not list(tmp_path.iterdir())


def test_machine_bytes_names_the_cpu_and_hashes_the_pinned_fit_in_a_fresh_process(tmp_path, capsys, monkeypatch):
    """benchmarks/machine_bytes.py: a fresh process with the default setting makes this process's
    bytes (so a line of it is the pinned test's fit), the caller's own kernel settings do not reach
    the default line, a child that cannot run is a line that says so, the CPU is named from
    cpuinfo's fields, and --out must be a file in a folder that exists."""
    import hashlib

    import torch

    from benchmarks import machine_bytes, runner

    here = hashlib.sha256(machine_bytes.tiny_fit()).hexdigest()
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")  # the caller's; "default" must not inherit it
    assert machine_bytes.measure({}) == {"sha256": here, "aten": torch.backends.cpu.get_cpu_capability()}
    monkeypatch.setattr(machine_bytes.sys, "executable", str(tmp_path / "no-python"))
    assert machine_bytes.measure({})["error"].startswith("cannot start")
    info = tmp_path / "cpuinfo"
    lines = ["processor\t: 0", "cpu family\t: 25", "model\t\t: 17", "model name\t: AMD EPYC", "processor\t: 1"]
    info.write_text("\n".join([*lines, "model name\t: AMD EPYC"]) + "\n")
    assert runner.cpu_name(info) == "AMD EPYC (family 25, model 17)"
    assert runner.cpu_name(tmp_path / "none") == (runner.platform.processor() or "unknown")
    for out, says in ((tmp_path, "a directory"), (tmp_path / "no" / "m.json", "no folder")):
        with pytest.raises(SystemExit):
            machine_bytes.main(["--out", str(out)])
        assert says in capsys.readouterr().err


def test_context_decode_times_both_context_models_files(tmp_path, crop, capsys):
    """benchmarks/context_decode.py: each preset fitted with the checkerboard (version 8) and the
    four-pass model (version 9), both files read and rendered alternately; bad options are usage
    errors before any fit."""
    from benchmarks import context_decode
    from inrcodec.image import save

    src = tmp_path / "crop.png"
    save(crop, src)
    out = tmp_path / "decode.json"
    assert context_decode.main(["--image", str(src), "--presets", "grid-low", "--steps", "5", "--repeats", "2",
                                "--out", str(out)]) == 0  # fmt: skip
    (r,) = json.loads(out.read_text())["results"]
    assert r["preset"] == "grid-low" and r["steps"] == 5 and set(r["bytes"]) == {"checkerboard", "four-pass"}
    assert all(len(v["read_s"]) == len(v["render_s"]) == 2 for v in r["runs"].values())
    assert r["read_ratio"] > 0 and r["decode_ratio"] > 0
    for argv, msg in (
        (["--presets", "medium"], "--presets: medium not a latent-grid preset"),
        (["--image", str(tmp_path / "none.png")], "no such file"),
        (["--image", str(src), "--repeats", "0"], "--repeats: 1 to 100"),
    ):
        with pytest.raises(SystemExit) as e:
            context_decode.main([*argv, "--out", str(out)])
        assert e.value.code == 2 and msg in capsys.readouterr().err


def test_four_pass_stages_measures_every_stage_of_each_arm_and_compares_them(crop, tmp_path, monkeypatch, capsys):
    """benchmarks/four_pass_stages.py on short fits of the presets' point: each fit reports the
    packed, rounded, tuned and final files, the arms run with their context model and init, a rerun
    fits nothing again, and the table sets the four-pass arms against the checkerboard stage by stage."""
    from PIL import Image

    from benchmarks import four_pass_stages as fps
    from inrcodec.config import LATENT_FOUR_PASS_LADDER

    real = fps.point
    assert (real(5e-3, "four-pass").context, real(5e-3, "four-pass").init) == ("four-pass", "full-4p-v1")
    assert (real(5e-3, "four-pass-widened").context, real(5e-3, "four-pass-widened").init) == ("four-pass", "full-v1")
    assert real(5e-3, "checkerboard") == next(p for p in LATENT_FOUR_PASS_LADDER if p.lam == 5e-3)
    monkeypatch.setattr(fps, "point", lambda lam, arm: replace(real(lam, arm), steps=20, batch=128, tune_steps=5))
    Image.fromarray(crop[:16, :24]).save(tmp_path / "photo001.png")
    args = ["--images", str(tmp_path), "--first", "1", "--last", "1", "--out", str(tmp_path / "out")]
    assert fps.main(args) == 0
    rows = [json.loads(line) for line in (tmp_path / "out" / "stages.jsonl").read_text().splitlines()]
    assert sorted(r["arm"] for r in rows) == ["checkerboard", "four-pass", "four-pass-widened"]
    for r in rows:
        assert {"code", "round", "tune", "file"} <= set(r["stages"])
        final = r["stages"]["file"]
        assert final["cost"] <= r["stages"]["round"]["cost"] + 1e-12  # the tuning is kept only where it pays
        assert final in (r["stages"]["round"], r["stages"].get("round again"))  # the written file, as measured
        assert final["latents_bytes"] + final["context_bytes"] + final["synthesis_bytes"] < final["bytes"]
    assert fps.main(args) == 0  # nothing left to fit
    assert len((tmp_path / "out" / "stages.jsonl").read_text().splitlines()) == 3
    text = (tmp_path / "out" / "stages.md").read_text()
    assert "λ 0.005 (1 photos: photo001)" in text and "| round |" in text and "four-pass against checkerboard" in text
    for argv, msg in (
        (["--lams", "4e-3"], "--lams: 0.004 is none of the presets' full-resolution points"),
        (["--arms", "checkerboard"], "--arms: two or more of"),
        (["--arms", "checkerboard,nope"], "--arms: two or more of"),
    ):
        with pytest.raises(SystemExit) as e:
            fps.main([*args, *argv])
        assert e.value.code == 2 and msg in capsys.readouterr().err


def test_context_profile_decodes_each_scheme_and_profiles_it(capsys):
    """benchmarks/context_profile.py on a small pyramid: both schemes round-trip, each is timed and profiled."""
    from benchmarks import context_profile

    assert context_profile.main(["--height", "24", "--width", "40", "--levels", "3", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "checkerboard: 14 context integers" in out and "four-pass: 20 context integers" in out
    assert out.count("function calls") == 2
    with pytest.raises(SystemExit):
        context_profile.main(["--levels", "0"])


@pytest.mark.parametrize("golden", ["format_v8_compact.inr", "format_v9_four_pass.inr"])
def test_latent_read_times_both_modules_on_the_same_latents_and_rates(golden, tmp_path, monkeypatch):
    """benchmarks/latent_read.py against the committed module (HEAD): both read the file's latents
    and give the same rates, each timed per repeat."""
    from benchmarks import latent_read

    out = tmp_path / "read.json"
    src = Path(__file__).parent / "golden" / golden
    monkeypatch.setattr(
        "sys.argv", ["latent_read", "--inr", str(src), "--before", "HEAD", "--repeats", "1", "--out", str(out)]
    )
    latent_read.main()
    doc = json.loads(out.read_text())
    assert doc["identical"] and set(doc["runs"]) == {"before", "after"}
    assert all(len(v) == 1 and v[0] > 0 for r in doc["runs"].values() for v in r.values())
    assert doc["inr"]["version"] == int(golden.split("_")[1][1:])


def test_latent_read_refuses_a_file_without_a_context_model(tmp_path, monkeypatch):
    from benchmarks import latent_read

    src = Path(__file__).parent / "golden" / "format_v8_compact_plain.inr"
    monkeypatch.setattr("sys.argv", ["latent_read", "--inr", str(src), "--out", str(tmp_path / "x.json")])
    with pytest.raises(SystemExit, match="no context model"):
        latent_read.main()
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize(
    ("args", "says"), [(["--repeats", "0"], "at least 1"), (["--inr", "missing.inr"], "no such file")]
)
def test_latent_read_refuses_bad_options_before_any_work(args, says, tmp_path, monkeypatch, capsys):
    from benchmarks import latent_read

    src = Path(__file__).parent / "golden" / "format_v8_compact.inr"
    argv = ["latent_read", "--inr", str(src), "--out", str(tmp_path / "x.json"), *args]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit):
        latent_read.main()
    assert says in capsys.readouterr().err and not (tmp_path / "x.json").exists()
