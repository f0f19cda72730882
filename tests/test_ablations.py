"""benchmarks/ablations.py: the helpers that turn curves into the docs' tables, and one real quick run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from benchmarks import ablations
from benchmarks.runner import RESULTS, fingerprint, fingerprints, sha256_file
from inrcodec.config import record


def _one_image_folder(tmp_path):
    """A verified image folder (SHA256SUMS) holding one 160x160 picture, for --quick runs."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    y, x = np.mgrid[0:160, 0:160]
    Image.fromarray(np.stack([x, y, (x * y) % 256], axis=2).astype(np.uint8)).save(folder / "a.png")
    (folder / "SHA256SUMS").write_text(f"{sha256_file(folder / 'a.png')}  a.png\n")
    return folder


def _quick(tmp_path, name: str) -> tuple[dict, str]:
    """``python -m benchmarks.ablations NAME --quick`` on one image: (results JSON, its table)."""
    folder = _one_image_folder(tmp_path)
    out = tmp_path / "out"
    assert ablations.main([name, "--quick", "--images", str(folder), "--out", str(out)]) == 0
    return json.loads((out / f"{name}.json").read_text()), (out / f"{name}.md").read_text()


def test_at_rate_interpolates_in_log_rate_and_refuses_to_extrapolate():
    curve = [{"bpp": 0.1, "psnr": 20.0}, {"bpp": 0.4, "psnr": 24.0}]
    assert ablations._at_rate(0.2, curve) == pytest.approx(22.0)  # halfway in log(bpp)
    assert ablations._at_rate(0.1, curve) == 20.0
    assert ablations._at_rate(0.5, curve) is None and ablations._at_rate(0.05, curve) is None
    assert ablations._at_rate(0.2, []) is None


def test_bd_says_why_when_curves_do_not_overlap():
    a = [{"bpp": r, "psnr": p} for r, p in ((0.1, 20), (0.2, 22), (0.4, 24), (0.8, 26))]
    same = ablations._bd(a, a)
    assert "BD-rate +0.00%" in same and "BD-PSNR +0.00 dB" in same
    far = [{"bpp": c["bpp"], "psnr": c["psnr"] + 30} for c in a]
    assert ablations._bd(a, far).startswith("no BD-rate")


def test_schedule_variants_keep_the_pixel_budget():
    exp = ablations.Schedule()
    s = exp.setup
    for key, over in exp.variants().items():
        fit = s.config(fit=over).fit
        if key.startswith("batch"):
            assert fit.batch * fit.steps == s.batch * s.fit_steps
        assert (key == "base") == (over == {})


@pytest.mark.slow
def test_quick_schedule_ablation_end_to_end(tmp_path):
    doc, table = _quick(tmp_path, "schedule")
    assert doc["complete"] and sorted(doc["settings"]) == sorted(
        ablations.Schedule(ablations.Schedule.quick).variants()
    )
    assert all(r["bpp"] == 8 * r["bytes"] / (128 * 128) for r in doc["rows"])
    assert "| base |" in table and "| batch1024 | 1024 x 300" in table and "| lr0.005 |" in table


def test_ideal_bytes_on_known_distributions():
    uniform = np.tile(np.arange(-8, 8), 100)  # 1600 symbols, 16 equally likely: 4 bits each
    sizes = ablations.ideal_bytes(uniform)
    assert sizes["static"] == pytest.approx(1600 * 4 / 8 + 2 * 16)
    assert sizes["brotli"] > 0 and sizes["laplace"] > sizes["static"]  # a Laplace fits a uniform badly
    rng = np.random.default_rng(0)
    lap = np.round(rng.laplace(0, 6, 20000)).astype(np.int64)
    sizes = ablations.ideal_bytes(lap)
    assert sizes["laplace"] < sizes["brotli"]  # the right model is the tighter bound...
    assert sizes["brotli"] == pytest.approx(sizes["laplace"], rel=0.03)  # ...but on i.i.d. data not by much
    assert sizes["static"] == pytest.approx(sizes["laplace"], rel=0.03)


@pytest.mark.slow
def test_quick_entropy_coding_ablation_end_to_end(tmp_path):
    doc, table = _quick(tmp_path, "entropy-coding")
    assert doc["complete"] and [r["setting"] for r in doc["rows"]] == ["b6", "b8", "b10"]
    for r in doc["rows"]:
        assert 0 < r["weights_brotli_bytes"] < r["bytes"]  # the weights are part of the file
    assert "| 8 |" in table


@pytest.mark.slow
def test_quick_sinr_vs_scalar_ablation_end_to_end(tmp_path):
    doc, table = _quick(tmp_path, "sinr-vs-scalar")
    assert doc["complete"] and {r["setting"] for r in doc["rows"]} == set(doc["settings"])
    assert all(r["coders"][1] == ("scalar" if r["setting"].startswith("scalar") else "sinr") for r in doc["rows"])
    assert "SINR against scalar at equal PSNR" in table


def test_fourier_jobs_differ_only_in_the_levels_and_run_at_full_size():
    exp = ablations.Fourier()
    jobs = exp.jobs()
    assert [j.settings for j in jobs] == [(f"L{n}",) for n in exp.setup.levels]
    configs = [exp.job_config(j)["encode_config"] for j in jobs]
    assert [c["arch"]["pe_levels"] for c in configs] == list(exp.setup.levels)
    for c in configs:
        c["arch"].pop("pe_levels")
    assert all(c == configs[0] for c in configs)  # the preset, only the levels changed
    assert exp.crop(256) is None and ablations.Schedule().crop(256) == 256


@pytest.mark.slow
def test_quick_fourier_ablation_end_to_end(tmp_path):
    doc, table = _quick(tmp_path, "fourier")
    assert doc["complete"] and doc["provenance"]["crop"] is None
    assert sorted(doc["settings"]) == ["L0", "L6"]
    assert all(r["bpp"] == 8 * r["bytes"] / (160 * 160) for r in doc["rows"])  # the whole image
    assert "full size, preset `fast`" in table and "| 0 | 2 |" in table and "| 6 | 26 |" in table


def test_width_lr_jobs_differ_only_in_the_learning_rate_and_run_at_full_size():
    exp = ablations.WidthLr()
    jobs = exp.jobs()
    s = exp.setup
    assert [j.params for j in jobs] == [(h, lr) for h in s.widths for lr in s.peaks]
    configs = [exp.job_config(j)["encode_config"] for j in jobs]
    assert [(c["arch"]["hidden"], c["fit"]["lr"]) for c in configs] == [j.params for j in jobs]
    assert all(c["fit"]["steps"] == s.steps for c in configs)
    for c in configs:
        del c["arch"]["hidden"], c["fit"]["lr"]
    assert all(c == configs[0] for c in configs)  # the ladder point, only width and learning rate changed
    assert exp.crop(256) is None


@pytest.mark.slow
def test_quick_width_lr_ablation_end_to_end(tmp_path):
    doc, table = _quick(tmp_path, "width-lr")
    assert doc["complete"] and doc["provenance"]["crop"] is None
    assert sorted(doc["settings"]) == ["h16-lr0.001", "h16-lr0.002"]
    assert "| 16 | 0.002 |" in table and "| +0.00 (+0.00) | +0.0% |" in table  # the baseline against itself
    assert "| 16 | 0.001 |" in table


def test_steps_jobs_are_the_ladder_points_with_more_steps_at_full_size():
    """The steps ablation keeps the ladder it was run with (the first 2.0 ladder, torch's kernels)."""
    from benchmarks.codecs import LADDER_2_0_TORCH as LADDER

    exp = ablations.Steps()
    s = exp.setup
    jobs = exp.jobs()
    assert [j.params for j in jobs] == [(h, k) for h in s.widths for k in s.factors]
    for job in jobs:
        h, k = job.params
        config = exp.job_config(job)["encode_config"]
        traj = next(t for t in LADDER.trajectories if t.hidden == h)
        ladder = record(LADDER.encode_config(traj))  # the point as the first 2.0 photos-first8 run made it
        assert config["fit"]["steps"] == k * ladder["fit"]["steps"]
        config["fit"]["steps"] = ladder["fit"]["steps"]
        assert config == ladder  # nothing else moved
    assert exp.crop(256) is None


def test_top_jobs_are_the_high_preset_and_wider_networks_on_its_schedule():
    """The top ablation's x1 point at width 144 is the `high` preset as it encodes; wider networks
    change only the width (the widest ladder point's steps and learning rate); x2 only the steps."""
    from inrcodec.config import PRESETS

    exp = ablations.Top()
    fitted = lambda cfg: {k: v for k, v in record(cfg).items() if k in ("arch", "fit", "coder")}  # noqa: E731
    high = fitted(PRESETS["high"])  # a dense point: the pruning schedule does not act
    assert fitted(exp._config(144, 1)) == high
    for h, k in ((176, 1), (208, 2)):
        config = fitted(exp._config(h, k))
        assert config["arch"]["hidden"] == h and config["fit"]["steps"] == k * high["fit"]["steps"]
        config["arch"]["hidden"], config["fit"]["steps"] = high["arch"]["hidden"], high["fit"]["steps"]
        assert config == high
    assert exp.crop(256) is None


@pytest.mark.slow
def test_quick_top_ablation_end_to_end(tmp_path):
    doc, table = _quick(tmp_path, "top")
    assert doc["complete"] and sorted(doc["settings"]) == ["h16-x1", "h16-x2", "h20-x1", "h20-x2"]
    assert "| 16 | ×1 | 60 |" in table and "| 20 | ×2 | 120 |" in table


def test_rate_at_reads_a_curve_in_log_rate_and_refuses_to_extrapolate():
    curve = [{"bpp": 0.1, "psnr": 25.0}, {"bpp": 0.4, "psnr": 29.0}]
    assert ablations._rate_at(27.0, curve) == pytest.approx(0.2)
    assert ablations._rate_at(24.0, curve) is None and ablations._rate_at(30.0, curve) is None


@pytest.mark.slow
def test_quick_steps_ablation_end_to_end(tmp_path):
    doc, table = _quick(tmp_path, "steps")
    assert doc["complete"] and doc["provenance"]["crop"] is None
    assert sorted(doc["settings"]) == ["h16-x1", "h16-x2"]
    assert "| ×1 | 16 | 60 |" in table and "| ×2 | 16 | 120 |" in table
    assert "| +0.00 (+0.00) | +0.0% |" in table  # the x1 point against itself


# Fingerprints the committed fourier and width-lr rows were made with (computed by the code of the
# commits that made them, 9cfbed14 and 9f0740b3): their jobs hash only their own encoder config.
MADE_WITH = {
    "fourier": {"L0": "ba5dfce67fffbba7", "L4": "f013fd30c8011a9a", "L6": "ee6d355052de2bc9", "L8": "becfb059455c3088"},
    "width-lr": {
        "h80-lr0.002": "ee6d355052de2bc9",
        "h80-lr0.001": "4992f74a0c045731",
        "h144-lr0.002": "baedcfe437bed82e",
        "h144-lr0.001": "1d33a017f8360c66",
    },
}


@pytest.mark.parametrize("name", list(ablations.ABLATIONS))
def test_committed_ablation_results_are_the_current_jobs(name):
    """Each committed ablation JSON was made with what its class runs by default: the config it
    recorded, read back into the ablation's own config class, is the default; so are its settings
    and the job fingerprints that config gives (and, where pinned, those the rows were made with)."""
    path = RESULTS / "ablations" / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"no committed {path.name}")
    doc = json.loads(path.read_text())
    prov = doc["provenance"]
    cls = ablations.ABLATIONS[name]
    recorded, default = cls(cls.Config.from_record(prov["config"]["setup"])), cls()
    assert recorded.setup == default.setup
    assert default.settings() == doc["settings"]
    current = fingerprints(default, default.crop(prov["crop"]))
    assert fingerprints(recorded, recorded.crop(prov["crop"])) == current
    if name in MADE_WITH:
        assert current == MADE_WITH[name], "these jobs' fingerprints moved: the committed rows would rerun"


def test_an_ablation_config_holds_only_its_own_fields():
    """Adding a field to one ablation's config leaves the others' jobs (and cached rows) as they are."""
    imp, sinr = ablations.ImpVsDense(), ablations.SinrVsScalar()
    assert "dense_widths" in imp.config()["setup"] and "dense_widths" not in sinr.config()["setup"]
    assert "bits" not in imp.config()["setup"]
    old = {"hidden": 64, "densities": [0.7, 0.5], "pe_levels": [0, 6], "fourier_preset": "fast", "lrs": [1e-3]}
    assert ablations.ImpVsDenseConfig.from_record(old).densities == (0.7, 0.5)  # others' fields ignored
    fourier = ablations.FourierConfig.from_record(old)  # the catch-all Setup's names, read back
    assert (fourier.preset, fourier.levels, fourier.steps) == ("fast", (0, 6), 1500)


@pytest.mark.slow
def test_quick_quantization_ablation_codes_the_same_symbols(tmp_path):
    """range and auto reuse brotli's depths, so their files decode to the same pixels; auto is never
    larger than brotli (it picks the smaller section per layer)."""
    doc, table = _quick(tmp_path, "quantization")
    rows = {r["setting"]: r for r in doc["rows"]}
    assert doc["complete"] and set(rows) == set(doc["settings"])
    assert rows["range"]["bits"] == rows["auto"]["bits"] == rows["brotli"]["bits"]
    assert rows["range"]["psnr"] == rows["auto"]["psnr"] == rows["brotli"]["psnr"]
    assert set(rows["range"]["entropy_coders"]) == {"range"} and set(rows["brotli"]["entropy_coders"]) == {"brotli"}
    assert rows["auto"]["bytes"] <= rows["brotli"]["bytes"] + 2  # + version 4's prior field when any layer is ranged
    assert "| rd500+round |" in table and "| rd500+round-both |" in table and "| rd500+adaround |" in table
    assert rows["adaround"]["bits"] == rows["no-qat+adaround"]["bits"] == rows["brotli"]["bits"]  # the same grid
    assert rows["no-qat"]["psnr"] != rows["no-qat+adaround"]["psnr"]  # AdaRound chose other levels


@pytest.mark.slow
@pytest.mark.parametrize("name", ["prior", "prior-2.0"])
def test_quick_prior_ablation_separates_the_init_from_the_residuals(tmp_path, name):
    """prior-N codes residuals from the prior; prior-N-absolute is the same fit coded as weights, in a
    file that names no prior (so it decodes without one); the random init codes weights."""
    doc, table = _quick(tmp_path, name)
    rows = {r["setting"]: r for r in doc["rows"]}
    assert doc["complete"] and set(rows) == {"random-30", "prior-30", "prior-30-absolute"}
    assert [rows[k]["prior"] for k in ("random-30", "prior-30", "prior-30-absolute")] == [0, 1, 0]  # from the files
    assert rows["prior-30"]["fit_psnr"] == rows["prior-30-absolute"]["fit_psnr"]  # the same fit
    assert "| prior-30-absolute |" in table and "encode s" in table


@pytest.mark.parametrize("cls", [ablations.Prior, ablations.PriorNow])
def test_the_prior_ablation_names_a_shipped_prior_of_its_preset(cls):
    """Its prior rows must start from the prior (a prior 'auto' would no longer pick it); prior-2.0
    fits as release 2.0's preset does (the fused step, the importance sampler), to its own steps."""
    from dataclasses import replace as dc_replace

    from inrcodec.config import PRESETS, prior_id

    abl = cls()
    if cls is ablations.PriorNow:
        cfg = abl._config(abl.setup.steps[-1])
        assert cfg.fit == PRESETS["medium"].fit and cfg.coder == PRESETS["medium"].coder
    for key, (steps, prior, _l1, _absolute) in abl._variants().items():
        cfg = abl._config(steps, prior)
        got = prior_id(dc_replace(cfg, arch=dc_replace(cfg.arch, out_features=3)))
        assert got == (0 if key.startswith("random") else 1), key


def test_nm_code_bytes_counts_the_nm_masks_of_the_shapes():
    """ceil(log2(number of N:M masks)) bits, in whole bytes; a row's partial group of r keeps ceil(N r / M)."""
    assert ablations.nm_code_bytes([(1, 4)], 2, 4) == 1  # C(4, 2) = 6 masks: 3 bits
    assert ablations.nm_code_bytes([(1, 6)], 2, 4) == 1  # 6 x C(2, 1) = 12 masks: 4 bits
    assert ablations.nm_code_bytes([(2, 3)], 1, 4) == 1  # one partial group of 3 keeping 1 per row: 9 masks
    assert ablations.nm_code_bytes([(40, 8)], 4, 8) == math.ceil(40 * math.log2(70) / 8)  # C(8, 4) = 70
    # The quick tickets network (width 24, 3 sine layers, 2 coordinates) under 2:4: 24 rows of 2 keep 1 of
    # 2, the other rows 6 groups of 4 each: 2^24 x 6^(6 x (24 + 24 + 3)).
    shapes = [(24, 2), (24, 24), (24, 24), (3, 24)]
    assert ablations.nm_code_bytes(shapes, 2, 4) == math.ceil((24 + 306 * math.log2(6)) / 8) == 102


def test_is_nm_accepts_the_rules_nm_masks_only():
    import torch

    from inrcodec.encoder.rules import nm_keep

    gen = torch.Generator().manual_seed(0)
    for n, m in ((2, 4), (1, 4), (4, 8)):
        weights = [
            torch.randn(24, 2, generator=gen),
            torch.randn(24, 24, generator=gen),
            torch.randn(3, 26, generator=gen),
        ]
        keeps = [nm_keep(w, n, m).numpy() for w in weights]
        assert ablations.is_nm(keeps, n, m)
        keeps[1][0, 0] = not keeps[1][0, 0]
        assert not ablations.is_nm(keeps, n, m)


def test_tickets_jobs_run_each_finder_at_the_imp_densities():
    exp = ablations.Tickets()
    s = exp.setup
    d = [ablations._d(x) for x in s.densities]
    settings = exp.settings()
    assert [f"imp-{x}" for x in ("d1.00", *d)] == settings[: len(d) + 1]
    assert [f"dense-h{w}" for w in s.dense_widths] == settings[len(d) + 1 : len(d) + 1 + len(s.dense_widths)]
    for f in ("snip", "synflow"):
        assert all(f"{f}-{x}" in settings and f"{f}@init-{x}" in settings for x in d)
    assert all(f"rigl-{x}" in settings for x in d)
    assert [x for x in settings if x.startswith("nm-")] == ["nm-2:4", "nm-1:4", "nm-4:8"]
    assert len(set(settings)) == len(settings)
    assert exp.crop(256) == 256 and s.hidden == ablations.ImpVsDense().setup.hidden


@pytest.mark.slow
def test_quick_tickets_ablation_end_to_end(tmp_path):
    doc, table = _quick(tmp_path, "tickets")
    rows = {r["setting"]: r for r in doc["rows"]}
    assert doc["complete"] and set(rows) == set(doc["settings"])
    for f in ("snip", "synflow"):  # the same dense fit starts every trajectory
        assert (rows[f"{f}-d1.00"]["bytes"], rows[f"{f}-d1.00"]["psnr"]) == (
            rows["imp-d1.00"]["bytes"],
            rows["imp-d1.00"]["psnr"],
        )
    for key, r in rows.items():
        assert r["bpp"] == 8 * r["bytes"] / (128 * 128) and r["encode_s"] > 0
        pruned = not (key.startswith("dense-") or key.endswith("-d1.00"))
        assert (r["mask_bytes"] > 0) == pruned and 0 < r["layer_bytes"] < r["bytes"] - r["mask_bytes"]
    for d in ablations.Tickets.quick.densities:
        assert rows[f"rigl-{ablations._d(d)}"]["density"] == pytest.approx(d, abs=1e-3)
    for p in ("2:4", "1:4", "4:8"):
        r = rows[f"nm-{p}"]
        assert r["nm_valid"] and 0 < r["nm_mask_bytes"] < r["mask_bytes"]
        assert r["bytes_if_nm"] == r["bytes"] - r["mask_bytes"] + r["nm_mask_bytes"]
    assert "| nm-2:4 | 0.500 |" in table and "| 2:4 | 0.500 |" in table
    assert "mask bytes if coded as N:M (computed, not in the format): code + frame" in table
    assert all(rows[f"nm-{p}"]["nm_mask_bytes"] == rows[f"nm-{p}"]["nm_code_bytes"] + 5 for p in ("2:4", "1:4", "4:8"))
    assert "With that substitution (computed, not implemented): N:M against dense BD-rate" in table
    assert "| imp: IMP, magnitude (reference) | BD-rate" in table


def test_shared_mask_jobs_fit_the_shipped_sparse_priors_at_full_size():
    """shared-mask: each named prior carries a mask (format v6) of the IMP trajectory's width, its
    jobs run at full size and every job is fitted as the ladder fits its width."""
    from dataclasses import replace as dc_replace

    from inrcodec import priors
    from inrcodec.config import prior_id

    exp = ablations.SharedMask()
    s = exp.setup
    assert exp.crop(256) is None
    settings = exp.settings()
    assert settings[: len(s.densities) + 1] == ["imp-d1.00", *(f"imp-{ablations._d(d)}" for d in s.densities)]
    for pid in s.priors:
        assert f"shared{pid}" in settings and f"shared{pid}-paper" in settings
        assert priors.mask(int(pid)) is not None and priors.registry()[int(pid)].hidden == s.hidden
        cfg = exp._config(s.hidden, pid)
        assert prior_id(dc_replace(cfg, arch=dc_replace(cfg.arch, out_features=3))) == int(pid)
    assert priors.mask(int(s.dense_prior)) is None
    fps = {j.key: fingerprint(exp, j, None) for j in exp.jobs()}
    assert len(set(fps.values())) == len(fps)  # the paper-start control is its own job
