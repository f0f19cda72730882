"""Encoding many images: the job one worker runs, and the record that lets a rerun skip finished work.

A job carries the image's bytes (read where the command runs, so workers on other machines need
no shared file system) and the whole :class:`~inrcodec.config.EncodeConfig`; it returns the
``.inr`` bytes and their stats, or the one-line error that stopped it, never raises. The command
writes the outputs itself, atomically, as results come back.

The output folder keeps ``inrcodec-batch.jsonl``, one line per written file: its name, the
settings it was made with, the SHA-256 of its source image and of its own bytes, and its figures.
A rerun skips an output when its last line matches all three; a line cut short by a kill is ignored.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from inrcodec.config import EncodeConfig, LatentCap, LatentConfig, latent_record

MANIFEST = "inrcodec-batch.jsonl"


@dataclass(frozen=True)
class Job:
    """One image to encode."""

    name: str  # the input as given on the command line (messages)
    data: bytes  # the image file's bytes
    # a SIREN preset's, a latent-grid preset's (format v8), or the grid ladder's rate control (--bpp)
    cfg: EncodeConfig | LatentConfig | LatentCap
    regions: str | None = None  # --regions (grid:RxC, kmeans:K[@F]); no label maps in a batch
    device: str | None = None


def settings(
    cfg: EncodeConfig | LatentConfig | LatentCap, regions: str | None, device: str | None, threads: int = 1
) -> dict:
    """What an output's bytes depend on, as the manifest records it (tuples as JSON lists, so a
    line read back compares equal); the thread count too, since torch's sums round by it. A config
    is recorded without the fields added at their old behaviour (a SIREN config's fit kernel, a
    latent config's later fields), so batches made before them still match their lines."""
    if isinstance(cfg, LatentCap):
        points = [latent_record(p) for p in cfg.points]
        config = {
            "bpp": cfg.bpp,
            "points": points,
            "typical_bpp": cfg.typical_bpp,
            "slack": cfg.slack,
            "guess": list(cfg.guess),
        }
    elif isinstance(cfg, LatentConfig):
        config = latent_record(cfg)
    else:
        config = asdict(cfg)
        if config["fit"]["kernel"] == "torch":  # added in 2.1 at the old behaviour: older lines match
            del config["fit"]["kernel"]
    if isinstance(cfg, LatentConfig | LatentCap) and device in (None, "cpu"):
        # the grid family trained on the CPU, whatever was asked, before it took a device (2.1):
        # its lines said "auto" then, and a rerun with --device cpu makes the same bytes
        device = None
    doc = {"config": config, "regions": regions, "device": device or "auto", "threads": threads}
    return json.loads(json.dumps(doc))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode_job(job: Job, progress=None) -> dict:
    """Encode one image (in a worker): ``{"name", "data", "stats", "seconds", "error"}``."""
    from inrcodec import image
    from inrcodec.format.errors import FormatError

    t = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=image.PrecisionWarning)  # said once, by the command
            arr = image.load(job.name, job.data)
        if isinstance(job.cfg, LatentConfig):
            from inrcodec.encoder import latent
            from inrcodec.encoder.progress import AfterFit

            bar = None if progress is None else AfterFit(progress)
            fitted = latent.fit(arr, job.cfg, bar and bar.step, bar and bar.stage, device=job.device)
            data, err = fitted.data, None
            stats = {"bytes": len(data), "bpp": fitted.bpp, "psnr": fitted.psnr, "cpu_seconds": fitted.seconds}
        elif isinstance(job.cfg, LatentCap):
            from inrcodec.encoder import latent, latent_rate
            from inrcodec.encoder.progress import AfterFit

            def progress_for(point):  # one bar: each point's fit restarts it
                bar = AfterFit(progress)
                return bar.step, bar.stage

            fit = functools.partial(latent.fit, device=job.device)
            capped = latent_rate.fit_to_cap(arr, job.cfg, progress_for if progress else None, fit=fit)
            fitted, data, err = capped.fitted, capped.fitted.data, None
            stats = {
                "bytes": len(data),
                "bpp": fitted.bpp,
                "psnr": fitted.psnr,
                "cpu_seconds": sum(t["cpu_seconds"] for t in capped.tried),
                "lam": capped.point.lam,
                "rate_control": capped.tried,
                "rate_guess": round(capped.first_guess, 4),
            }
        elif job.regions:
            from inrcodec.encoder.region_spec import parse_spec
            from inrcodec.encoder.rtl import encode_regions

            enc = encode_regions(arr, job.cfg, parse_spec(job.regions, None), None, job.device, progress)
            data, stats, err = enc.data, enc.stats, None
        else:
            from inrcodec.encoder.pipeline import encode_array

            enc = encode_array(arr, job.cfg, job.device, progress)
            data, stats, err = enc.data, enc.stats, None
    except (FormatError, ValueError, OSError) as e:  # ImageError is a ValueError
        data, stats, err = None, None, _one_line(job.name, e)
    except Exception as e:  # anything else (a bug, memory) fails this image alone, named by its kind
        data, stats, err = None, None, _one_line(job.name, f"{type(e).__name__}: {e}")
    return {"name": job.name, "data": data, "stats": stats, "seconds": time.perf_counter() - t, "error": err}


def _one_line(name: str, e: Exception) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if text.startswith(f"{name}:") else f"{name}: {text}"


class Manifest:
    """``<folder>/inrcodec-batch.jsonl``: the last line about each output, appended once per file."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / MANIFEST
        self.lines: dict[str, dict] = {}
        for row in read_jsonl(self.path):
            if isinstance(row, dict) and "output" in row:
                self.lines[row["output"]] = row

    def done(self, output: Path, source_sha: str, want: dict) -> dict | None:
        """The line that says ``output`` was made from this source with these settings, if its
        bytes are still the ones recorded; else None."""
        row = self.lines.get(output.name)
        if row is None or row.get("settings") != want or row.get("source_sha256") != source_sha:
            return None
        try:
            return row if sha256(output.read_bytes()) == row.get("output_sha256") else None
        except OSError:
            return None

    def add(self, output: Path, source: str, source_sha: str, want: dict, data: bytes, figures: dict) -> None:
        from inrcodec import __version__

        row = {
            "output": output.name,
            "source": source,
            "source_sha256": source_sha,
            "output_sha256": sha256(data),
            "settings": want,
            **figures,
            "inrcodec": __version__,
        }
        append_jsonl(self.path, [row])
        self.lines[output.name] = row


def read_jsonl(path: Path) -> list[Any]:
    """The JSON values of ``path``'s lines; a line cut short by a kill (or no file) is skipped."""
    if not Path(path).is_file():
        return []
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def append_jsonl(path: Path, rows: list[dict]) -> None:
    """Append ``rows``, one JSON line each, in one write: they land together or not at all, and on
    lines of their own even after a kill left half a line."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
