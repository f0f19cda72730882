"""``inrcodec encode`` with several inputs (files and folders) into ``-o DIR``: one ``.inr`` per image.

Everything that can fail for the whole batch (no ``-o``, the folder, two inputs with one output
name, ``--ray`` without Ray, a bad ``--regions``) is checked before any work and stops it with one
line. What fails for one image (not an image, an output that exists and was not made from it with
these settings, an error while encoding) is reported with its one line and the rest go on; the
exit status is then 1. Finished images are skipped by a rerun (the folder's ``inrcodec-batch.jsonl``,
:mod:`inrcodec.batch`); ``--force`` redoes them.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import warnings
from concurrent.futures import BrokenExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import click

from inrcodec.cli import paths
from inrcodec.cli.guard import run_guarded
from inrcodec.cli.progress import Bar, to_log


@dataclass
class Item:
    """One input of the batch and what became of it."""

    source: Path
    output: Path
    status: str = "todo"  # todo | encoded | skipped | failed
    error: str | None = None
    figures: dict = field(default_factory=dict)  # bytes, bpp, psnr, seconds, format_version (+ rate control's)
    sha: str | None = None


def image_files(folder: Path) -> list[Path]:
    """The images directly in ``folder`` (by the extensions Pillow reads; never ``.inr``), sorted."""
    from inrcodec.image import image_extensions

    exts = image_extensions() - {".inr"}
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in exts and not p.name.startswith("."))


def inputs(srcs: tuple[Path, ...]) -> list[Path]:
    """Files as given, folders as their images; each file once."""
    out, seen = [], set()
    for src in srcs:
        for path in image_files(src) if src.is_dir() else [src]:
            key = os.path.realpath(path)
            if key not in seen:
                seen.add(key)
                out.append(path)
    return out


def check_folder(output: Path | None, srcs: tuple[Path, ...]) -> None:
    if output is None:
        folder = next((s for s in srcs if s.is_dir()), None)
        if folder is not None:
            raise click.UsageError(
                f"{folder}: is a directory; to encode the images in it, name an output folder with -o DIR"
            )
        raise click.UsageError("several inputs need -o DIR, the folder their .inr files go to")
    if os.path.lexists(output) and not output.is_dir():
        raise ValueError(f"{output}: is a file; a batch (several inputs, or a folder) writes into the folder -o names")
    # a folder that does not exist is made once every check has passed, in a folder that does
    folder = output if output.is_dir() else output.parent
    if not folder.is_dir():
        raise ValueError(f"{output}: no such folder {str(folder)!r} to make it in")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{output}: folder {str(folder)!r} is not writable")


def plan(srcs, output: Path, force: bool, want: dict) -> list[Item]:
    """Every input with its output and what to do with it; only the per-image checks fail per image."""
    from inrcodec import image
    from inrcodec.batch import Manifest, sha256

    items = [Item(src, output / paths.encoded_name(Path(src.name)).name) for src in inputs(srcs)]
    if not items:
        raise ValueError(f"{', '.join(map(str, srcs))}: no images found")
    by_output: dict[Path, Item] = {}
    for item in items:
        other = by_output.setdefault(item.output, item)
        if other is not item:
            raise ValueError(
                f"{other.source} and {item.source} would both be written to {item.output}; encode them apart"
            )
    manifest = Manifest(output)
    for item in items:
        try:
            info = image.probe(item.source)
            paths.check_output(item.output, True, item.source)  # the input itself, or a folder in the way
            item.sha = sha256(item.source.read_bytes())
            if item.output.exists() and not force:
                row = manifest.done(item.output, item.sha, want)
                if row is None:
                    raise ValueError(
                        f"{item.output}: exists, not made from {item.source} with these settings; "
                        "pass --force to overwrite it"
                    )
                item.status = "skipped"
                item.figures = {k: row.get(k) for k in ("bytes", "bpp", "psnr", "seconds")}
                version = row.get("format_version")  # rows from before it was kept: the file's own byte
                item.figures["format_version"] = item.output.read_bytes()[4] if version is None else version
            elif info.warning:
                click.echo(f"warning: {item.source}: {info.warning}", err=True)
        except (ValueError, OSError) as e:  # ImageError is a ValueError
            fail(item, str(e))
    return items


def fail(item: Item, message: str) -> None:
    item.status, item.error = "failed", message
    click.echo(f"Error: {message}", err=True)


def encode_batch(srcs, output, force, cfg, regions, region_map, device, quiet, as_json, workers, ray, threads) -> None:
    """The batch form of ``encode``; exits 1 when any image failed, 130 on Ctrl-C. A folder -o
    names that does not exist is made once the batch's own checks pass, and removed again if the
    batch ends with nothing written into it (no image, a failed check, Ctrl-C)."""
    from inrcodec.batch import settings

    if output is not None:
        output = Path(output)  # a paths.NewFolder no further: the files in it are plain paths
    made = []

    def check():
        nonlocal cfg
        from inrcodec.config import EncodeConfig, named_prior

        check_folder(output, srcs)
        if isinstance(cfg, EncodeConfig):  # a latent-grid preset's LatentConfig names no prior
            named_prior(cfg)
        if region_map is not None:
            raise click.UsageError("--region-map is for one image; a batch takes --regions grid:RxC or kmeans:K")
        if regions:
            from inrcodec.encoder.region_spec import parse_spec

            if regions.strip().startswith("labels"):
                raise click.UsageError("--regions labels needs a map per image; a batch takes grid:RxC or kmeans:K")
            parse_spec(regions, None)
        if ray is not None:
            from inrcodec.executors import RAY_HINT, ray_available

            if not ray_available():
                raise ValueError(RAY_HINT)
        cfg = _resolve_kernel(cfg, device, quiet)  # after the checks above: said only for a batch that runs
        want = settings(cfg, regions, device, threads)
        try:
            output.mkdir()  # the per-image checks in plan() need the folder
            made.append(output)
        except FileExistsError:  # there already, or made by another run meanwhile
            pass
        return want, plan(srcs, output, force, want)

    try:
        want, items = run_guarded(check)
        todo = [i for i in items if i.status == "todo"]
        start = time.perf_counter()
        where = run_guarded(
            lambda: _run(todo, output, force, cfg, regions, device, want, quiet or as_json, workers, ray, threads)
        )
    finally:
        for folder in made:  # empty: nothing was written
            with contextlib.suppress(OSError):
                folder.rmdir()
    _report(items, output, time.perf_counter() - start, where, threads, quiet, as_json)
    if any(i.status == "failed" for i in items):
        sys.exit(1)


def _resolve_kernel(cfg, device, quiet):
    """A SIREN config's ``kernel="auto"`` made the kernels this machine runs, once for the whole
    batch: every image's file is then made by the same kernels, the manifest records which, and a
    worker that cannot run the native ones (another Ray node) fails in one line instead of
    writing other bytes. Says once when torch's run instead."""
    from dataclasses import replace

    from inrcodec.config import EncodeConfig

    if not isinstance(cfg, EncodeConfig) or cfg.fit.kernel != "auto":
        return cfg
    import torch

    from inrcodec.encoder.fit import kernel_of

    where = device or ("cuda" if torch.cuda.is_available() else "cpu")
    kernel = kernel_of(cfg.fit, where)
    if kernel == "torch" and torch.device(where).type == "cpu" and not quiet:
        from inrcodec.encoder import native

        click.echo(native.fallback_note(native.unavailable()), err=True)
    return replace(cfg, fit=replace(cfg.fit, kernel=kernel))


def _run(todo, output, force, cfg, regions, device, want, quiet, workers, ray, threads) -> str:
    """Encode ``todo`` on the chosen executor, writing each file as it comes back; what ran it."""
    from inrcodec.batch import Job, Manifest, encode_job, sha256
    from inrcodec.executors import Serial, executor

    if not todo:
        return "nothing to run"
    manifest = Manifest(output)
    by_name = {str(i.source): i for i in todo}
    if workers:  # no more processes than images: each is a Python with torch
        workers = min(workers, len(todo))
    num_cpus = workers * threads if workers else None  # --ray with --workers: a local Ray of that size
    ex = executor(workers or 1, ray, threads, device, num_cpus=num_cpus)
    fn = encode_job
    one_bar = None
    if isinstance(ex, Serial) and len(todo) == 1 and not quiet:
        one_bar = Bar()  # one image: its own steps, as a single encode shows them
        fn = partial(encode_job, progress=one_bar)
    bar = None
    log = not quiet and one_bar is None and to_log()  # a log file: a line per image, not a bar
    if not quiet and one_bar is None and not log:
        bar = click.progressbar(length=len(todo), label="images", width=24, show_eta=True, file=sys.stderr,
                                item_show_func=lambda i: i)  # fmt: skip
        bar.__enter__()

    def jobs():
        for item in todo:
            try:
                data = item.source.read_bytes()
            except OSError as e:
                data = b""  # the job fails with its own line
                fail(item, f"{item.source}: cannot read ({e.strerror or e})")
            item.sha = sha256(data)
            yield Job(str(item.source), data, cfg, regions, device)

    done = 0
    try:
        with ex, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # said once, at the check
            for res in ex.map(fn, jobs()):
                item = by_name[res["name"]]
                done += 1
                if item.status == "failed":
                    pass
                elif res["error"]:
                    fail(item, res["error"])
                else:
                    _write(item, res, force, manifest, want)
                if bar is not None:
                    bar.update(1, f"{item.source.name} {item.status}")
                if log:
                    click.echo(f"[{done}/{len(todo)}] {item.source}: {item.status}", err=True)
    except BrokenExecutor as e:  # a worker process died: what it held, and what was still queued, failed
        for item in todo:
            if item.status == "todo":
                fail(item, f"{item.source}: not encoded: a worker process died ({type(e).__name__}; out of memory?)")
    except KeyboardInterrupt:
        if bar is not None:
            bar.render_finish()
        written = sum(i.status == "encoded" for i in todo)
        click.echo(f"interrupted; {written} finished image(s) kept in {output}, the same command resumes", err=True)
        sys.exit(130)
    finally:
        if one_bar is not None:
            one_bar.close()
        if bar is not None:
            bar.__exit__(None, None, None)
    return ex.describe()


def _write(item: Item, res: dict, force: bool, manifest, want: dict) -> None:
    from inrcodec import image

    data, stats = res["data"], res["stats"]
    figures = {k: stats[k] for k in ("bytes", "bpp", "psnr")}
    figures |= {"seconds": round(res["seconds"], 3), "format_version": data[4]}
    if "rate_control" in stats:  # a capped grid file: which point the search kept and what it cost
        figures |= {k: stats[k] for k in ("lam", "rate_guess", "cpu_seconds")} | {"fits": len(stats["rate_control"])}
    try:
        image.atomic_write(item.output, lambda f: f.write(data), overwrite=force)
        manifest.add(item.output, str(item.source), item.sha, want, data, figures)
    except OSError as e:
        fail(item, str(e))
        return
    item.status, item.figures = "encoded", figures


def _report(
    items: list[Item], output: Path, seconds: float, where: str, threads: int, quiet: bool, as_json: bool
) -> None:
    counts = {s: sum(i.status == s for i in items) for s in ("encoded", "skipped", "failed")}
    if as_json:
        doc = {
            "output": str(output),
            "images": [
                {"input": str(i.source), "output": str(i.output), "status": i.status, **i.figures}
                | ({"error": i.error} if i.error else {})
                for i in items
            ],
            **counts,
            "seconds": round(seconds, 3),
            "ran_on": where,
            "threads": threads,  # per image, as a single encode's --json says
        }
        click.echo(json.dumps(doc, indent=2))
        return
    if not quiet:
        rows = [("image", "output", "bytes", "bpp", "PSNR", "seconds", "")]
        for i in items:
            f = i.figures
            nums = (
                (str(f["bytes"]), f"{f['bpp']:.4f}", f"{f['psnr']:.2f} dB", f"{f['seconds']:.1f}")
                if f
                else ("-", "-", "-", "-")
            )
            rows.append((str(i.source), str(i.output), *nums, i.status))
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        for r in rows:
            cells = [r[c].ljust(widths[c]) if c < 2 or c == 6 else r[c].rjust(widths[c]) for c in range(len(r))]
            click.echo("  ".join(cells).rstrip())
    click.echo(
        f"{len(items)} image(s): {counts['encoded']} encoded, {counts['skipped']} skipped (done before), "
        f"{counts['failed']} failed; {seconds:.1f} s, {where}"
    )
