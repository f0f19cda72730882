"""encode with several inputs: the same bytes as single encodes on every executor (serial, processes,
Ray), a killed batch resumes without redoing finished images, a bad input fails alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny_config
from PIL import Image
from test_cli import allow_preset, run, tiny_cap  # noqa: F401  (tiny_cap: a fixture)

from inrcodec import batch, image
from inrcodec.batch import MANIFEST

NAMES = ("a", "b", "c")


def picture(k: int, h: int = 16, w: int = 24) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w] / w
    planes = [0.5 + 0.4 * np.sin((3 + k) * x + 2 * y), 0.5 + 0.4 * np.cos(2 * x - (2 + k) * y), 0.8 * x + 0.1]
    return np.round(np.stack(planes, axis=2) * 255).astype(np.uint8)


@pytest.fixture
def tiny(monkeypatch):
    return allow_preset(monkeypatch, "tiny", tiny_config(steps=80, density=1.0, qat_steps=5))


@pytest.fixture
def images(tmp_path):
    """Three 24x16 images in ``in/``, and an empty ``out/``."""
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    for k, name in enumerate(NAMES):
        Image.fromarray(picture(k)).save(tmp_path / "in" / f"{name}.png")
    return tmp_path


@pytest.fixture
def singles(images, tiny):
    """Each image through the single-image command (one torch thread: conftest)."""
    (images / "single").mkdir()
    out = {}
    for name in NAMES:
        dst = images / "single" / f"{name}.inr"
        assert run("encode", images / "in" / f"{name}.png", "-o", dst, "--preset", tiny, "-q").exit_code == 0
        out[name] = dst.read_bytes()
    return out


def outputs(folder) -> dict[str, bytes]:
    return {p.stem: p.read_bytes() for p in sorted(folder.glob("*.inr"))}


def test_two_workers_write_what_single_encodes_write(images, singles, tiny):
    res = run("encode", images / "in", "-o", images / "out", "--preset", tiny, "--workers", 2, "--json")
    assert res.exit_code == 0, res.output
    assert outputs(images / "out") == singles
    doc = json.loads(res.stdout)
    assert [i["status"] for i in doc["images"]] == ["encoded"] * 3 and doc["failed"] == 0
    for i, name in zip(doc["images"], NAMES):
        assert {"bytes", "bpp", "psnr", "seconds"} <= set(i) and i["bytes"] == len(singles[name])
        assert i["format_version"] == singles[name][4]
    assert "2 process worker(s)" in doc["ran_on"] and doc["threads"] == 1  # per image, by default
    lines = (images / "out" / MANIFEST).read_text().splitlines()
    assert sorted(json.loads(line)["output"] for line in lines) == ["a.inr", "b.inr", "c.inr"]


@pytest.mark.parametrize("slash", ["", "/"])
def test_a_batch_makes_its_output_folder_and_leaves_none_it_did_not_fill(images, singles, tiny, slash):
    """-o DIR that does not exist (with or without a trailing slash) is made, in a folder that
    does; a batch that fails its own checks, or its images' (two inputs that would write one
    name), or writes nothing leaves no folder behind."""
    new = f"{images / 'new'}{slash}"
    res = run("encode", images / "in", "-o", new, "--preset", tiny, "--regions", "labels")
    assert res.exit_code == 2 and "--regions labels needs a map" in res.stderr
    assert not (images / "new").exists()
    (images / "other").mkdir()
    Image.fromarray(picture(0)).save(images / "other" / "a.png")
    res = run("encode", images / "in", images / "other", "-o", new, "--preset", tiny)
    assert res.exit_code == 1 and "would both be written to" in res.stderr
    assert not (images / "new").exists()
    (images / "bad").mkdir()
    (images / "bad" / "x.png").write_text("not an image")
    res = run("encode", images / "bad" / "x.png", "-o", new, "--preset", tiny, "--workers", 1)  # a batch of one
    assert res.exit_code == 1 and "x.png: cannot read image" in res.stderr
    assert not (images / "new").exists()  # every image failed: nothing written
    res = run("encode", images / "in", "-o", new, "--preset", tiny, "-q")
    assert res.exit_code == 0, res.output
    assert outputs(images / "new") == singles


def test_a_batch_logs_a_line_per_image_where_stderr_is_not_a_terminal(images, tiny):
    res = run("encode", images / "in", "-o", images / "out", "--preset", tiny, "--workers", 2)
    assert res.exit_code == 0, res.output
    lines = res.stderr.strip().splitlines()
    assert [x.split(" ", 1)[0] for x in lines] == ["[1/3]", "[2/3]", "[3/3]"]
    assert sorted(x.split(" ", 1)[1] for x in lines) == [f"{images / 'in' / n}.png: encoded" for n in NAMES]


def test_a_batch_starts_no_more_processes_than_it_has_images(images, singles, tiny, monkeypatch):
    """--workers 200 on three images: three processes (each a Python with torch), not 200."""
    import inrcodec.executors as executors

    asked, real = [], executors.executor
    monkeypatch.setattr(executors, "executor", lambda workers, *a, **k: asked.append(workers) or real(1, *a, **k))
    res = run("encode", images / "in", "-o", images / "out", "--preset", tiny, "--workers", 200, "-q")
    assert res.exit_code == 0, res.output
    assert asked == [3] and outputs(images / "out") == singles


def test_a_killed_batch_resumes_without_redoing_finished_images(images, singles, tiny, monkeypatch):
    import inrcodec.encoder.pipeline as pipeline

    real, calls, kill = pipeline.encode_array, [], [True]

    def killed_at_the_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3 and kill[0]:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "encode_array", killed_at_the_third)
    args = ("encode", images / "in", "-o", images / "out", "--preset", tiny, "-q")
    res = run(*args)
    assert res.exit_code == 130 and "2 finished image(s) kept" in res.stderr
    assert set(outputs(images / "out")) == {"a", "b"}
    before = {p.name: p.stat().st_mtime_ns for p in (images / "out").glob("*.inr")}

    calls.clear()
    kill[0] = False
    res = run(*args)  # the same command again: only c is encoded
    assert res.exit_code == 0, res.output
    assert len(calls) == 1 and "1 encoded, 2 skipped" in res.stdout
    assert {p.name: p.stat().st_mtime_ns for p in (images / "out").glob("*.inr") if p.stem != "c"} == before
    assert outputs(images / "out") == singles

    # other settings: the existing files are neither skipped nor replaced, each says so in one line
    res = run(*args, "--seed", 7)
    assert res.exit_code == 1 and len(calls) == 1
    errors = res.stderr.strip().splitlines()
    assert len(errors) == 3 and all("exists, not made from" in e and "--force" in e for e in errors)
    assert outputs(images / "out") == singles
    res = run(*args, "--seed", 7, "--force")
    assert res.exit_code == 0 and len(calls) == 4 and outputs(images / "out") != singles


def test_a_bad_input_fails_alone(images, singles, tiny):
    (images / "in" / "notes.png").write_text("not an image\n")  # fails the check before any work
    good = (images / "in" / "a.png").read_bytes()
    (images / "in" / "cut.png").write_bytes(good[: len(good) // 2])  # a valid header: fails in its worker
    res = run("encode", images / "in", "-o", images / "out", "--preset", tiny, "--workers", 2)
    assert res.exit_code == 1
    errors = res.stderr.strip().splitlines()
    assert any(e.startswith("Error: ") and "notes.png: cannot read image" in e for e in errors), errors
    assert any(e.startswith("Error: ") and "cut.png: cannot read image" in e for e in errors), errors
    assert outputs(images / "out") == singles  # the good ones all written, nothing for the bad ones
    assert "3 encoded, 0 skipped (done before), 2 failed" in res.stdout


def test_batch_checks_before_any_work(images, tiny, monkeypatch):
    import inrcodec.encoder.pipeline as pipeline
    from inrcodec import executors

    def tripwire(*args, **kwargs):
        raise AssertionError("the encoder ran before the batch was checked")

    monkeypatch.setattr(pipeline, "encode_array", tripwire)
    a, b = images / "in" / "a.png", images / "in" / "b.png"
    res = run("encode", a, b, "--preset", tiny)
    assert res.exit_code == 2 and "several inputs need -o DIR" in res.stderr
    res = run("encode", images / "in", "--preset", tiny)
    assert res.exit_code == 2 and "is a directory" in res.stderr
    res = run("encode", a, b, "-o", images / "nodir" / "deeper", "--preset", tiny)
    assert res.exit_code == 1 and res.stderr.strip().splitlines() == [
        f"Error: {images / 'nodir' / 'deeper'}: no such folder {str(images / 'nodir')!r} to make it in"
    ]
    assert not (images / "nodir").exists()
    res = run("encode", a, b, "-o", a, "--preset", tiny)  # a file, not a folder
    assert (
        res.exit_code == 1
        and "a.png: is a file; a batch (several inputs, or a folder) writes into the folder -o names" in res.stderr
    )
    (images / "other").mkdir()
    Image.fromarray(picture(0)).save(images / "other" / "a.png")
    res = run("encode", images / "in", images / "other", "-o", images / "out", "--preset", tiny)
    assert res.exit_code == 1 and "would both be written to" in res.stderr
    monkeypatch.setattr(executors, "ray_available", lambda: False)
    res = run("encode", a, b, "-o", images / "out", "--preset", tiny, "--ray")
    assert res.exit_code == 1 and res.stderr == f"Error: {executors.RAY_HINT}\n"
    assert "pip install 'inrcodec[ray]'" in executors.RAY_HINT
    assert list((images / "out").iterdir()) == []


def test_the_manifest_ignores_a_line_cut_short(tmp_path):
    path = tmp_path / MANIFEST
    batch.append_jsonl(path, [{"output": "x.inr", "n": 1}])
    with open(path, "a") as f:
        f.write('{"output": "y.in')  # a kill in the middle of a line
    batch.append_jsonl(path, [{"output": "z.inr", "n": 2}])
    assert [r["output"] for r in batch.read_jsonl(path)] == ["x.inr", "z.inr"]


# --- Ray ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray of two CPUs for the module: no dashboard, servers on the loopback interface."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # before ray is imported: binds to 127.0.0.1
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_writes_what_single_encodes_write(images, singles, tiny, local_ray):
    res = run("encode", images / "in", "-o", images / "out", "--preset", tiny, "--ray", "--json")
    assert res.exit_code == 0, res.output
    assert outputs(images / "out") == singles
    assert json.loads(res.stdout)["ran_on"] == "a local Ray (2 job(s) at once), 1 CPU(s) per job"
    assert local_ray.is_initialized()  # a Ray the command did not start is left running

    # the same resume and failure rules: the rerun skips all three, a bad input fails alone
    good = (images / "in" / "a.png").read_bytes()
    (images / "in" / "cut.png").write_bytes(good[: len(good) // 2])  # fails in its Ray task
    res = run("encode", images / "in", "-o", images / "out", "--preset", tiny, "--ray")
    assert res.exit_code == 1 and "0 encoded, 3 skipped (done before), 1 failed" in res.stdout
    cut = images / "in" / "cut.png"
    assert res.stderr.strip().splitlines()[-2].startswith(f"Error: {cut}: cannot read image")
    assert res.stderr.strip().splitlines()[-1] == f"[1/1] {cut}: failed"  # the log's line (stderr is no terminal)


def test_a_worker_process_that_dies_is_an_error_not_a_hang():
    """multiprocessing.Pool never answers for a job whose worker was killed; the pool raises."""
    from concurrent.futures import BrokenExecutor

    from inrcodec.executors import Pool

    with pytest.raises(BrokenExecutor):
        list(Pool(2).map(os._exit, [9]))


PARENT = """
import sys, threading, time
from inrcodec.executors import Pool
pool = Pool(1)
threading.Thread(target=lambda: list(pool.map(time.sleep, [120])), daemon=True).start()
while not getattr(pool.pool, "_processes", None):
    time.sleep(0.05)
print(*pool.pool._processes, flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_killed_parent_takes_its_workers_with_it():
    """A ``kill -9`` of the command (or of a benchmark) reaches only the parent process; its pool
    workers must not go on working, orphaned."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    workers: list[int] = []
    try:
        workers = [int(w) for w in parent.stdout.readline().split()]
        assert workers
        time.sleep(1.0)  # the worker is past its initializer and sleeping in its job
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.1)
        assert not any(_alive(w) for w in workers)
    finally:
        parent.kill()
        for w in workers:
            if _alive(w):
                os.kill(w, 9)


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, dead but not yet reaped by init, is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_batch_checks_a_named_prior_before_any_work(tmp_path):
    from click.testing import CliRunner

    from inrcodec import priors
    from inrcodec.cli import main

    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    for name in ("a.png", "b.png"):
        image.save(np.full((16, 16, 3), 99, np.uint8), tmp_path / "in" / name)
    res = CliRunner().invoke(main, ["encode", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--prior", "abc"])
    shipped = sorted(priors.registry())
    assert res.exit_code == 1 and res.stderr.strip().splitlines() == [
        f"Error: unknown prior 'abc'; use none, auto or one of {shipped}"
    ]
    assert not any((tmp_path / "out").iterdir())


def singles_then_batch(images: Path, *options) -> tuple[dict[str, bytes], dict]:
    """Each image encoded alone with ``options``, then the folder as a two-worker batch that must
    write the same bytes, then the batch again, which must skip them all: (the single files, the
    first batch's JSON)."""
    singles = {}
    for name in NAMES:
        dst = images / f"{name}.inr"
        assert run("encode", images / "in" / f"{name}.png", "-o", dst, *options, "-q").exit_code == 0
        singles[name] = dst.read_bytes()
    res = run("encode", images / "in", "-o", images / "out", *options, "--workers", 2, "--json")
    assert res.exit_code == 0, res.output
    assert outputs(images / "out") == singles
    again = json.loads(run("encode", images / "in", "-o", images / "out", *options, "--json").stdout)
    assert [i["status"] for i in again["images"]] == ["skipped"] * 3
    return singles, json.loads(res.stdout)


def test_a_latent_grid_preset_batch_writes_what_single_encodes_write(images):
    """grid-* presets take batches too: the job carries the LatentConfig (with --steps), so the
    workers write the single command's bytes at the same torch thread count (one: conftest and
    the batch's default), and a rerun skips them."""
    grid = ("--preset", "grid-low", "--steps", 30)
    singles, first = singles_then_batch(images, *grid)
    assert all(data[4] == 9 for data in singles.values())
    assert [i["status"] for i in first["images"]] == ["encoded"] * 3
    assert [i["format_version"] for i in first["images"]] == [9] * 3
    again = json.loads(run("encode", images / "in", "-o", images / "out", *grid, "--json").stdout)
    assert [i["format_version"] for i in again["images"]] == [9] * 3  # from the manifest
    manifest = images / "out" / MANIFEST  # lines written before rows kept the version: the file's byte
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    manifest.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "format_version"}) + "\n" for r in rows))
    again = json.loads(run("encode", images / "in", "-o", images / "out", *grid, "--json").stdout)
    assert [(i["status"], i["format_version"]) for i in again["images"]] == [("skipped", 9)] * 3
    res = run("encode", images / "in", "-o", images / "out", "--preset", "grid-low", "--regions", "grid:2x2")
    assert res.exit_code == 2 and "--regions: not for the latent-grid presets" in res.stderr


def test_a_rate_capped_grid_batch_writes_what_single_encodes_write(images, tiny_cap):  # noqa: F811
    """--bpp on the grid family in a batch: the job carries the whole search (LatentCap), so each
    worker writes what the single command writes under the same cap, and a rerun skips them."""
    singles, first = singles_then_batch(images, "--bpp", 7.5)  # the points: 6.3, 6.7-6.9, 7.9-8.5 bpp of 24x16
    assert all(len(d) <= 7.5 * 24 * 16 / 8 for d in singles.values())
    # each file's line says which point the search kept and what the search cost (the manifest's too)
    lams = {p.lam for p in tiny_cap(7.5).points}
    lines = [json.loads(line) for line in (images / "out" / MANIFEST).read_text().splitlines()]
    for row in (*first["images"], *lines):
        assert row["lam"] in lams and row["fits"] >= 1 and row["cpu_seconds"] > 0 and row["rate_guess"] == 1.0
    other = json.loads(run("encode", images / "in", "-o", images / "out", "--bpp", 9, "--json").stdout)
    assert [i["status"] for i in other["images"]] == ["failed"] * 3  # another cap: not these files
    assert "exists, not made from" in other["images"][0]["error"]
    search = tiny_cap(7.5)  # the slack chooses files too: a line made with another is not these
    assert batch.settings(search, None, None) != batch.settings(replace(search, slack=1.3), None, None)
    assert batch.settings(search, None, None) != batch.settings(replace(search, guess=(0.1, 0.0)), None, None)


def test_a_latent_manifest_line_is_what_it_was_before_the_quantizer_field():
    """Outputs of a grid-* batch made before LatentConfig.quantizer, lr_finest, init,
    network_rate, rdo_levels, tune_steps, sampler and lr_second existed still match their manifest lines: those
    fields are recorded only away from their old behaviour."""
    from dataclasses import asdict, replace

    from inrcodec.config import LATENT_LADDER

    cfg = LATENT_LADDER[1]  # grid-low before the proxy
    before = asdict(cfg)
    for name in (
        "quantizer",
        "lr_finest",
        "init",
        "network_rate",
        "rdo_levels",
        "tune_steps",
        "sampler",
        "sampler_share",
        "lr_second",
    ):
        del before[name]
    assert batch.settings(cfg, None, None)["config"] == json.loads(json.dumps(before))
    assert batch.settings(replace(cfg, quantizer="soft"), None, None)["config"]["quantizer"] == "soft"
    assert batch.settings(replace(cfg, lr_finest=0.1), None, None)["config"]["lr_finest"] == 0.1
    assert batch.settings(replace(cfg, lr_second=0.3), None, None)["config"]["lr_second"] == 0.3
    assert batch.settings(replace(cfg, init="quarter-v1"), None, None)["config"]["init"] == "quarter-v1"
    assert batch.settings(replace(cfg, network_rate=1.0), None, None)["config"]["network_rate"] == 1.0
    rounded = replace(cfg, context="checkerboard", rdo_levels=2)
    assert batch.settings(rounded, None, None)["config"]["rdo_levels"] == 2
    assert batch.settings(replace(rounded, tune_steps=500), None, None)["config"]["tune_steps"] == 500
    assert batch.settings(replace(cfg, sampler="importance"), None, None)["config"]["sampler"] == "importance"


def test_a_siren_manifest_line_is_what_it_was_before_the_kernel_field():
    """A SIREN batch made before FitConfig.kernel still matches its lines: the field is recorded
    only when it is not torch's (the old behaviour)."""
    from dataclasses import asdict, replace

    from inrcodec.config import PRESETS

    cfg = replace(PRESETS["medium"], fit=replace(PRESETS["medium"].fit, kernel="torch"))
    before = asdict(cfg)
    del before["fit"]["kernel"]
    assert batch.settings(cfg, None, None)["config"] == json.loads(json.dumps(before))
    native = replace(cfg, fit=replace(cfg.fit, fused=True, kernel="native"))
    assert batch.settings(native, None, None)["config"]["fit"]["kernel"] == "native"
    assert batch.settings(PRESETS["medium"], None, None)["config"]["fit"]["kernel"] == "auto"  # the presets'


def test_a_batch_resolves_the_auto_kernel_once_records_it_and_says_so(images, monkeypatch):
    """A preset with kernel "auto" is made the kernels this machine runs before the batch starts:
    the manifest records them (torch's: no kernel field, as before "auto" existed), every worker
    runs them, and the fallback is said once for the batch, not once per image."""
    from inrcodec.encoder import native

    cfg = tiny_config(steps=40, density=1.0, qat_steps=5)
    auto = allow_preset(monkeypatch, "tiny-auto", replace(cfg, fit=replace(cfg.fit, fused=True, kernel="auto")))
    monkeypatch.setattr(native, "unavailable", lambda: "native kernels: no C compiler (set CC, or install gcc)")
    res = run("encode", images / "in", "-o", images / "out", "--preset", auto, "--device", "cpu", "-q")
    assert res.exit_code == 0, res.output
    (images / "out2").mkdir()
    res = run("encode", images / "in", "-o", images / "out2", "--preset", auto, "--device", "cpu", "--json")
    assert res.exit_code == 0, res.output
    assert res.stderr.count("note: native kernels: no C compiler") == 1  # -q above said nothing
    for line in (images / "out" / MANIFEST).read_text().splitlines():
        assert "kernel" not in json.loads(line)["settings"]["config"]["fit"]  # torch's, as before "auto"
    monkeypatch.setattr(native, "unavailable", lambda: None)
    want = batch.settings(replace(cfg, fit=replace(cfg.fit, fused=True, kernel="native")), None, "cpu")
    assert want["config"]["fit"]["kernel"] == "native"


def test_a_grid_manifest_line_is_what_it_was_before_the_grid_family_took_a_device():
    """Grid batches trained on the CPU and recorded "auto" before --device reached them: a rerun
    with no device or with cpu matches those lines (the same bytes), a CUDA one does not."""
    from inrcodec.config import LATENT_PRESETS, PRESETS, latent_cap

    for cfg in (LATENT_PRESETS["grid-low"], latent_cap(0.3, None)):
        assert batch.settings(cfg, None, None)["device"] == "auto"
        assert batch.settings(cfg, None, "cpu") == batch.settings(cfg, None, None)
        assert batch.settings(cfg, None, "cuda")["device"] == "cuda"
    assert (
        batch.settings(PRESETS["medium"], None, "cpu")["device"] == "cpu"
    )  # the SIREN's "auto" picks a GPU where there is one: cpu is another setting
