"""What every benchmark script shares: the verified image set, the resumable row cache, the
executor (local processes or Ray: ``inrcodec.executors``), progress with ETA, provenance, and the
per-experiment results JSON.

Every path a result records (``images_dir``, the ``command``, the run log's lines) is written by
:func:`repo_path`: relative to the repository root (``benchmarks/results/kodak``, ``../shared/kodak``),
never an absolute path of the machine that made it, so committed results read the same anywhere.

An *experiment* (a codec, the upscaling study, an ablation) splits its work on one image into
*jobs*; a job produces one result row per *setting* (a Pillow codec: one quality per job; inrcodec:
one pruning trajectory gives several operating points). Every finished job is appended to
``<out>/rows/<experiment>.jsonl`` at once, so a killed run keeps every finished result and a rerun
skips them. ``<out>/<experiment>.json`` is rewritten from that cache at the end of every run.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from inrcodec.batch import append_jsonl, read_jsonl
from inrcodec.executors import executor

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
ROW_FIELDS = ("image", "setting", "bpp", "psnr", "encode_s", "decode_s")  # every row has these


class DatasetError(Exception):
    """The image folder cannot be trusted (missing, altered or unlisted files): one line says why."""


@dataclass(frozen=True)
class ImageRef:
    name: str  # file stem, e.g. "kodim01"
    path: str  # absolute path
    sha256: str  # verified against the folder's SHA256SUMS


@dataclass(frozen=True)
class Job:
    """One unit of work on one image; it yields one row per setting."""

    key: str  # names the job within its experiment (cache and progress)
    settings: tuple[str, ...]  # the rows it produces, in order
    params: Any = None  # whatever the experiment's run() needs
    cost: float = 1.0  # rough single-core seconds on a 768x512 image, for the ETA before any job ends


class Experiment:
    """Base of everything the runner runs (codecs, the upscaling study, ablations)."""

    name: str = ""  # file name of its results: <out>/<name>.json
    label: str = ""  # human-readable name (plot legends, tables)
    kind: str = "rd"  # rd (a codec's rate-distortion curve) | upscale | ablation

    def config(self) -> dict:
        """Every setting that changes its results; hashed into the cache key, stored in provenance."""
        raise NotImplementedError

    def job_config(self, job: Job) -> dict:
        """The part of ``config()`` that one job's rows depend on: its cache key. The whole config
        by default; an experiment whose jobs are independent (inrcodec's trajectories) narrows it,
        so adding a job leaves the finished ones valid."""
        return self.config()

    def jobs(self) -> list[Job]:
        raise NotImplementedError

    def run(self, arr: np.ndarray, job: Job) -> list[dict]:
        """Rows (``setting``, ``bpp``, ``psnr``, ``encode_s``, ``decode_s``, extras) for ``job.settings``."""
        raise NotImplementedError

    def settings(self) -> list[str]:
        return [s for job in self.jobs() for s in job.settings]

    def recorded_job_configs(self, config: dict) -> dict[str, dict]:
        """setting -> its job's config, read from a results file's recorded ``config()`` (what
        :func:`reuse_rows` compares); an experiment that cannot tell gives nothing, so none of its
        rows are reused."""
        return {}


# --- the image set ------------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def dataset(folder: str | os.PathLike) -> list[ImageRef]:
    """The images listed in ``folder/SHA256SUMS``, each checked; any problem is a DatasetError."""
    folder = Path(folder)
    sums = folder / "SHA256SUMS"
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such folder (point --images at the image folder)")
    if not sums.is_file():
        raise DatasetError(f"{sums}: missing, so the images cannot be verified")
    refs = []
    for lineno, line in enumerate(sums.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2:
            raise DatasetError(f"{sums}:{lineno}: not a '<sha256>  <file>' line")
        digest, fname = parts[0].lower(), parts[1].strip().lstrip("*")
        path = folder / fname
        if not path.is_file():
            raise DatasetError(f"{path}: missing (listed in {sums.name}); refusing to run on a subset")
        actual = sha256_file(path)
        if actual != digest:
            raise DatasetError(f"{path}: sha256 {actual[:16]}... does not match {sums.name} ({digest[:16]}...)")
        refs.append(ImageRef(Path(fname).stem, str(path.resolve()), actual))
    if not refs:
        raise DatasetError(f"{sums}: lists no images")
    return refs


def center_crop(arr: np.ndarray, size: int | None) -> np.ndarray:
    """The central ``size`` x ``size`` pixels (or the whole side where the image is smaller)."""
    if size is None:
        return arr
    h, w = arr.shape[:2]
    ch, cw = min(size, h), min(size, w)
    y, x = (h - ch) // 2, (w - cw) // 2
    return np.ascontiguousarray(arr[y : y + ch, x : x + cw])


def load(ref: ImageRef, crop: int | None = None) -> np.ndarray:
    from inrcodec import image

    return center_crop(image.load(ref.path), crop)


# --- provenance ---------------------------------------------------------------------------------


def repo_path(path: str | os.PathLike) -> str:
    """``path`` as results record it: relative to the repository root, with ``..`` for what lies
    beside it (``../shared/kodak``); POSIX separators. Never the machine's absolute path."""
    p = Path(os.path.abspath(path))
    try:
        return p.relative_to(REPO).as_posix() or "."
    except ValueError:
        return Path(os.path.relpath(p, REPO)).as_posix()


def _command_arg(arg: str) -> str:
    """One command-line argument as the results record it: a path (``DIR`` or ``--opt=DIR``) that is
    absolute, or relative to a working directory other than the repository's, made repo-relative."""
    opt, eq, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
    if not value or value.startswith("-"):
        return arg
    if os.path.isabs(value) or (Path.cwd() != REPO and os.path.exists(value)):
        return f"{opt}{eq}{repo_path(value)}"
    return arg


def command_line(argv: list[str] | None = None) -> list[str]:
    """The command that made a result, runnable from the repository root: ``python`` (not the
    interpreter's path), then the arguments with their paths made repo-relative."""
    argv = getattr(sys, "orig_argv", sys.argv)[1:] if argv is None else argv
    return [Path(sys.executable).name, *map(_command_arg, argv)]


def dataset_meta(images: Path, name: str, quick: bool) -> dict:
    """What every results JSON records of the image set: its name, folder (repo-relative) and mode."""
    return {"dataset": name, "images_dir": repo_path(images), "quick": quick}


def git_state() -> dict:
    """The commit results were made at, and whether inrcodec/ or benchmarks/ had uncommitted changes
    (results being written under benchmarks/results/ do not count)."""
    status = _git("status", "--porcelain", "--", "inrcodec", "benchmarks", ":!benchmarks/results")
    return {"git_commit": _git("rev-parse", "HEAD"), "git_dirty": None if status is None else bool(status)}


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def extract_revision(rev: str, dest: Path) -> Path:
    """The ``inrcodec`` package of git revision ``rev`` extracted into ``dest`` (``git archive``),
    to run beside the working tree's: ``dest`` goes first on the path of a child process."""
    import io
    import tarfile

    archive = subprocess.run(["git", "archive", rev, "inrcodec"], cwd=REPO, check=True, capture_output=True)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def alternating(runs: int) -> Iterator[str]:
    """Which revision runs next: before, after, after, before, ... (``runs`` runs of each), so
    that a change of load on a shared machine falls on both."""
    for i in range(runs):
        yield from ("before", "after") if i % 2 == 0 else ("after", "before")


def run_python(code: str, args: list[str], root: Path) -> tuple[float, float, str, str]:
    """Wall and CPU seconds (user + system), stdout and stderr of ``python -c code args`` run in
    ``root`` (``-c`` puts the current folder first on sys.path) with it on PYTHONPATH too: the
    package of one revision, in a fresh process."""
    import resource

    env = dict(os.environ, PYTHONPATH=str(root))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    cmd = [sys.executable, "-c", code, *args]
    res = subprocess.run(cmd, cwd=root, env=env, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, res.stdout, res.stderr


def encode_batch(images: list[Path], preset: str, folder: Path, workers: int) -> None:
    """``inrcodec encode IMAGES --preset PRESET -o FOLDER`` as a user runs it: a batch, resumable
    (a rerun skips the images done), its lines in ``FOLDER/inrcodec-batch.jsonl``."""
    folder.mkdir(parents=True, exist_ok=True)
    # Run from the repository root with repo-relative paths, so that the manifest (committed with
    # the results) names ``../shared/photos/x.png``, never this machine's absolute path.
    cmd = [sys.executable, "-m", "inrcodec", "encode", *map(repo_path, images), "--preset", preset]
    cmd += ["-o", repo_path(folder), "--workers", str(workers), "-q"]
    try:
        subprocess.run(cmd, check=True, cwd=REPO)
    except subprocess.CalledProcessError as e:
        where = repo_path(folder)
        raise SystemExit(f"{where}: inrcodec encode --preset {preset} failed (exit {e.returncode})") from None


def cpu_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name with its family and model numbers (``AMD EPYC (family 25, model 17)``):
    an encoder's bytes depend on the kind of CPU (docs/performance.md), and ``platform`` does not
    name it on Linux. What ``platform.processor()`` says where there is no ``cpuinfo``."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return platform.processor() or "unknown"
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name") or platform.processor() or "unknown"
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def provenance() -> dict:
    """Versions, commit, machine and date: enough to know what produced a result."""
    import PIL
    import torch
    from PIL import features

    import inrcodec

    libs = {name: features.version(name) for name in ("jpg", "webp", "jpg_2000", "avif")}
    try:
        from PIL import _avif

        libs["avif_codecs"] = _avif.codec_versions()
    except (ImportError, AttributeError):
        pass
    return {
        "inrcodec": inrcodec.__version__,
        **git_state(),
        "python": platform.python_version(),
        "versions": {"pillow": PIL.__version__, "torch": torch.__version__, "numpy": np.__version__, **libs},
        "machine": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "processor": platform.processor(),
            "cpu": cpu_name(),
            "cpu_count": os.cpu_count(),
            "torch_threads_per_worker": 1,
        },
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command_line(),
    }


def fingerprint(exp: Experiment, job: Job, crop: int | None) -> str:
    """A job's rows are reused only when made with exactly its config and this crop."""
    blob = json.dumps({"config": exp.job_config(job), "crop": crop}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def fingerprints(exp: Experiment, crop: int | None) -> dict[str, str]:
    """setting -> the fingerprint of the job that makes it."""
    return {s: fingerprint(exp, job, crop) for job in exp.jobs() for s in job.settings}


# --- the row cache ------------------------------------------------------------------------------


class RowCache:
    """``<out>/rows/<name>.jsonl``: one JSON row per line, appended once per finished job."""

    def __init__(self, out: Path, name: str, fps: dict[str, str]):
        self.path = out / "rows" / f"{name}.jsonl"
        self.fps = fps  # setting -> fingerprint its rows must carry
        self.stale = 0  # rows made with another config (or of a setting no longer run), ignored

    def load(self) -> dict[tuple[str, str], dict]:
        rows: dict[tuple[str, str], dict] = {}
        for row in read_jsonl(self.path):  # a line cut short by a kill is skipped
            if row.get("fingerprint") != self.fps.get(row.get("setting")):
                self.stale += 1
                continue
            rows[(row["image"], row["setting"])] = row
        return rows

    def append(self, rows: list[dict]) -> None:
        append_jsonl(self.path, rows)  # one write per job: a job's rows land together or not at all


def read_committed(path: Path, name: str, crop: int | None = None) -> dict:
    """A committed results file of experiment ``name`` at ``crop``, checked for what
    :func:`reuse_rows` reads; a ValueError says in one line what is wrong."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot read it as JSON ({type(e).__name__})") from None
    prov = doc.get("provenance") if isinstance(doc, dict) else None
    if not isinstance(prov, dict) or not all(k in prov for k in ("config", "image_sha256")):
        raise ValueError("not a results file of the runner (no provenance with config and image_sha256)")
    if doc.get("name") != name or prov.get("crop") != crop or not isinstance(doc.get("rows"), list):
        raise ValueError(f"not a {name} run at crop {crop}")
    return doc


def reuse_rows(exp: Experiment, committed: Path, refs: list[ImageRef], out: Path, crop: int | None = None) -> int:
    """Copy into ``<out>/rows`` the rows of a committed results file (``committed``, the runner's
    JSON) whose settings it ran with exactly this experiment's job config, on the same image bytes;
    the runner then skips those jobs. The row cache is not in git, the results files are: this is
    how a run in a fresh clone reuses an earlier run's unchanged points. Returns the rows copied;
    each carries ``commit: "reused from <file> (<the commits its rows were made at>)"``."""
    doc = read_committed(committed, exp.name, crop)
    then = exp.recorded_job_configs(doc["provenance"]["config"])
    # what this run's fingerprints hash, as the file would have recorded it
    now = {s: json.loads(json.dumps(exp.job_config(job), default=str)) for job in exp.jobs() for s in job.settings}
    same = {s for s, cfg in now.items() if then.get(s) == cfg}
    sha = {ref.name: ref.sha256 for ref in refs}
    recorded = doc["provenance"]["image_sha256"]
    made_at = ", ".join(doc["provenance"].get("row_commits", [])) or "unknown"
    cache = RowCache(out, exp.name, fingerprints(exp, crop))
    have = cache.load()
    rows = [
        dict(
            r,
            image_sha256=sha[r["image"]],
            fingerprint=cache.fps[r["setting"]],
            commit=f"reused from {repo_path(Path(committed))} ({made_at})",
        )
        for r in doc["rows"]
        if r.get("setting") in same
        and r.get("image") in sha
        and recorded.get(r["image"]) == sha[r["image"]]
        and (r["image"], r["setting"]) not in have
    ]
    if rows:
        cache.append(rows)
    return len(rows)


# --- results ------------------------------------------------------------------------------------


def curve(rows: Iterable[dict], settings: list[str]) -> list[dict]:
    """The RD curve, CompressAI style: per setting, mean bpp and mean per-image PSNR over images."""
    by = defaultdict(list)
    for r in rows:
        by[r["setting"]].append(r)
    out = []
    for s in settings:
        rs = by.get(s, [])
        if rs:
            rates = [r["bpp"] for r in rs if r.get("bpp") is not None]  # None: not a coded image
            bpp = float(np.mean(rates)) if len(rates) == len(rs) else None
            out.append({"setting": s, "bpp": bpp, "psnr": float(np.mean([r["psnr"] for r in rs])), "n": len(rs)})
    return out


def write_results(
    exp: Experiment, rows: dict[tuple[str, str], dict], refs: list[ImageRef], out: Path, meta: dict
) -> dict:
    settings = exp.settings()
    keep = [rows[(ref.name, s)] for ref in refs for s in settings if (ref.name, s) in rows]
    private = ("image", "fingerprint", "commit", "image_sha256")
    clean = [{"image": r["image"], **{k: v for k, v in r.items() if k not in private}} for r in keep]
    doc = {
        "name": exp.name,
        "label": exp.label,
        "kind": exp.kind,
        "complete": len(keep) == len(refs) * len(settings),
        "images": [ref.name for ref in refs],
        "settings": settings,
        "curve": curve(clean, settings),
        "rows": clean,
        "provenance": {
            **provenance(),
            **meta,
            "config": exp.config(),
            "image_sha256": {ref.name: ref.sha256 for ref in refs},
            "row_commits": sorted({str(r.get("commit")) for r in keep}),  # more than one: resumed across commits
        },
    }
    from inrcodec.image import atomic_write

    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, indent=1, allow_nan=False, default=_jsonable) + "\n"
    atomic_write(out / f"{exp.name}.json", lambda f: f.write(text.encode()))
    return doc


def photo_options(p, first: int, last: int, first_help: str = "first photo number") -> None:
    """The probe scripts' ``--images`` (a folder of photoNNN.png), ``--first`` and ``--last``."""
    p.add_argument("--images", type=Path, default=Path("../shared/photos"), help="folder of photoNNN.png")
    p.add_argument("--first", type=int, default=first, help=f"{first_help} (default {first})")
    p.add_argument("--last", type=int, default=last, help=f"last photo number (default {last})")


def photos(p, args) -> list[Path]:
    """photoFIRST..photoLAST in ``args.images``, or a one-line usage error (before any work)."""
    if args.first > args.last:
        p.error(f"--first {args.first} is after --last {args.last}: no photos")
    images = [args.images / f"photo{i:03d}.png" for i in range(args.first, args.last + 1)]
    if missing := [str(i) for i in images if not i.is_file()]:
        p.error(f"--images: no {missing[0]}")
    return images


def write_report(out: Path, stem: str, doc: dict, lines: list[str]) -> None:
    """A probe's results: ``OUT/STEM.json`` (``doc``) and ``OUT/STEM.md`` (``lines``), each
    written whole (atomically), then the lines printed."""
    from inrcodec.image import atomic_write

    out.mkdir(parents=True, exist_ok=True)
    for name, text in ((f"{stem}.json", json.dumps(doc, indent=1) + "\n"), (f"{stem}.md", "\n".join(lines) + "\n")):
        atomic_write(out / name, lambda f, text=text: f.write(text.encode()))
    print("\n".join(lines))


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


# --- running ------------------------------------------------------------------------------------


def _work(
    task: tuple[Experiment, ImageRef, Job, int | None],
) -> tuple[str, str, str, list[dict], float, float, str | None]:
    exp, ref, job, crop = task
    t, cpu = time.perf_counter(), time.process_time()
    try:
        rows = exp.run(load(ref, crop), job)
        got = [r["setting"] for r in rows]
        if got != list(job.settings):
            raise RuntimeError(f"job {job.key} returned settings {got}, expected {list(job.settings)}")
        err = None
    except Exception as e:  # reported and counted; the other jobs go on
        rows, err = [], f"{type(e).__name__}: {e}"
    return exp.name, ref.name, job.key, rows, time.perf_counter() - t, time.process_time() - cpu, err


def ray_option(p) -> None:
    """A script's ``--ray [ADDRESS]``: its jobs as Ray tasks (alone: a local Ray of --workers CPUs)."""
    help_ = "run the jobs as Ray tasks: alone, a local Ray of --workers CPUs; 'auto', the running cluster"
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS", help=help_)


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    """One line per finished job: what it measured, elapsed time and an ETA.

    The ETA sums, over the jobs still to run, the mean time of finished jobs with the same
    experiment and key (else the job's cost hint, scaled by how the hints compared so far) and
    divides by the number of workers.
    """

    def __init__(self, todo: list[tuple[Experiment, ImageRef, Job, Any]], workers: int, log: Callable[[str], None]):
        self.left = {(e.name, r.name, j.key): (e.name, j.key, j.cost) for e, r, j, _ in todo}
        self.total = len(todo)
        self.workers = workers
        self.log = log
        self.start = time.perf_counter()
        self.seen: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.hint_ratio: list[tuple[float, float]] = []  # (measured, hint)

    def eta(self) -> float:
        scale = sum(m for m, _ in self.hint_ratio) / max(sum(h for _, h in self.hint_ratio), 1e-9)
        scale = scale if self.hint_ratio else 1.0
        total = 0.0
        for name, key, cost in self.left.values():
            times = self.seen.get((name, key))
            total += float(np.mean(times)) if times else cost * scale
        return total / self.workers

    def done(self, exp: str, image: str, key: str, rows: list[dict], seconds: float, cpu: float, err: str | None):
        _n, _k, cost = self.left.pop((exp, image, key))
        self.seen[(exp, key)].append(seconds)
        self.hint_ratio.append((seconds, cost))
        n = self.total - len(self.left)
        if err:
            what = f"FAILED {err}"
        else:
            what = ", ".join(
                f"{r['bpp']:.3f} bpp {r['psnr']:.2f} dB" if r.get("bpp") is not None else f"{r['psnr']:.2f} dB"
                for r in rows
            )
        elapsed = time.perf_counter() - self.start
        width = len(str(self.total))
        self.log(
            f"[{n:{width}d}/{self.total}] {exp} {image} {key} ({seconds:.1f}s, cpu {cpu:.1f}s): {what}"
            f" | elapsed {_clock(elapsed)}, ETA {_clock(self.eta())}"
        )


def run(
    experiments: list[Experiment],
    refs: list[ImageRef],
    out: Path,
    workers: int = 1,
    crop: int | None = None,
    meta: dict | None = None,
    log: Callable[[str], None] = print,
    ray: str | None = None,
    device: str | None = None,
) -> bool:
    """Run every job not in the cache; True when every experiment's results are complete.

    ``workers`` > 1: that many local processes; ``ray``: Ray tasks instead (``"local"`` starts a Ray
    of ``workers`` CPUs here, ``"auto"`` joins the running cluster; docs/batch.md), one CPU each and
    a GPU where ``device`` is CUDA. One torch thread per job everywhere."""
    out = Path(out)
    meta = {**(meta or {}), "crop": crop, "workers": workers} | ({"ray": ray} if ray else {})
    commit = _git("rev-parse", "HEAD")
    caches, cached, todo = {}, {}, []
    for exp in experiments:
        caches[exp.name] = RowCache(out, exp.name, fingerprints(exp, crop))
        cached[exp.name] = caches[exp.name].load()
        if caches[exp.name].stale:
            log(f"{exp.name}: ignoring {caches[exp.name].stale} cached rows made with another config")
        for ref in refs:
            for job in exp.jobs():
                if not all((ref.name, s) in cached[exp.name] for s in job.settings):
                    todo.append((exp, ref, job, crop))
    skipped = sum(len(exp.jobs()) * len(refs) for exp in experiments) - len(todo)
    todo.sort(key=lambda t: -t[2].cost)  # longest first: the pool ends together
    sha = {ref.name: ref.sha256 for ref in refs}
    # Ray workers import the experiments from benchmarks/, which is not installed: Ray ships it.
    ex = executor(
        workers if todo else 1,
        ray,
        device=device,
        num_cpus=workers if ray else None,
        runtime_env={"py_modules": [str(REPO / "benchmarks")]} if ray else None,
    )
    log(f"{len(todo)} jobs to run, {skipped} already in {repo_path(out / 'rows')}, {ex.describe()}")
    progress = Progress(todo, max(1, min(ex.workers, len(todo))), log)
    errors, busy, start = 0, 0.0, time.perf_counter()

    def finished(result) -> None:
        nonlocal errors, busy
        name, image, key, rows, seconds, cpu, err = result
        busy += seconds
        progress.done(name, image, key, rows, seconds, cpu, err)
        if err:
            errors += 1
            return
        for r in rows:
            r.update(image=image, image_sha256=sha[image], fingerprint=caches[name].fps[r["setting"]], commit=commit)
        caches[name].append(rows)
        cached[name].update({(image, r["setting"]): r for r in rows})

    interrupted = False
    try:
        with ex:
            for result in ex.map(_work, todo):
                finished(result)
        if todo:
            wall = time.perf_counter() - start
            slots = max(1, min(ex.workers, len(todo)))
            log(
                f"{len(todo)} jobs in {wall:.1f} s wall on {slots} worker(s); the jobs themselves {busy:.1f} s; "
                f"overhead per job {(wall * slots - busy) / len(todo):.2f} s (wall x workers - job time, per job)"
            )
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: every finished job is in the cache; the same command resumes")
    finally:  # also on Ctrl-C: the JSON shows what the cache holds
        complete = True
        for exp in experiments:
            doc = write_results(exp, cached[exp.name], refs, out, meta)
            complete &= doc["complete"]
        log(f"results in {repo_path(out)}/" + ("" if complete else " (incomplete: rerun the same command to finish)"))
    if errors:
        log(f"{errors} job(s) failed (see FAILED above)")
    return complete and errors == 0 and not interrupted
