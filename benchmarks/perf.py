"""Issue-2 figures: encode time, decode time and peak memory, and the default preset against JPEG.

    python -m benchmarks.perf --images kodim01,kodim05,kodim15,kodim23 --out benchmarks/results/perf.json
    python -m benchmarks.perf --preset grid-medium --out benchmarks/results/perf-grid-medium.json

Each encode and decode runs in a fresh subprocess so that its time and peak resident memory
(``ru_maxrss`` of the child) are its own; the native and the 4096 px decodes run three times (in
fresh processes; the native one in this one too) and the median is reported, every run and the
load average before each timed part kept beside it (this machine is shared, and its speed
differs from day to day: compare only figures of one run). JPEG is Pillow's, optimize=True, with the highest quality
whose file is not larger (in bits per pixel) than the .inr file: the same or lower bpp.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.runner import command_line, cpu_name, git_state
from inrcodec import __version__, image

_WRAP = (
    "import resource, runpy, sys\n"
    "sys.argv = ['inrcodec'] + sys.argv[1:]\n"
    "try:\n    runpy.run_module('inrcodec', run_name='__main__')\n"
    "except SystemExit as e:\n    assert not e.code, e.code\n"
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
)


def _child(args: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) and stdout of one ``inrcodec`` CLI call in a fresh process."""
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", _WRAP, *args], check=True, capture_output=True, text=True)
    dt = time.perf_counter() - t
    return dt, int(res.stderr.strip().splitlines()[-1]) / 1024.0, res.stdout


def _decode_times(decode, data: bytes, threads: str | None = None, runs: int = 3) -> tuple[list[float], np.ndarray]:
    """Wall seconds of ``runs`` in-process CPU decodes, with $INRCODEC_THREADS set to ``threads``,
    and the decoded pixels."""
    before = os.environ.get("INRCODEC_THREADS")
    if threads is not None:
        os.environ["INRCODEC_THREADS"] = threads
    try:
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            pixels = decode(data, device="cpu")
            times.append(time.perf_counter() - t)
        return times, pixels
    finally:
        if before is None:
            os.environ.pop("INRCODEC_THREADS", None)
        else:
            os.environ["INRCODEC_THREADS"] = before


def _load() -> list[float]:
    """The 1-, 5- and 15-minute load averages, recorded with each timing."""
    return [round(x, 2) for x in os.getloadavg()]


def jpeg_at_or_below(arr: np.ndarray, bpp: float) -> dict | None:
    """The best Pillow JPEG (4:2:0, optimize=True) whose bpp is <= ``bpp``."""
    best = None
    for q in range(1, 101):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "JPEG", quality=q, optimize=True)
        rate = 8 * buf.tell() / (arr.shape[0] * arr.shape[1])
        if rate <= bpp:
            dec = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
            best = {"quality": q, "bpp": rate, "psnr": image.psnr(dec, arr)}
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default="kodim01,kodim05,kodim15,kodim23")
    ap.add_argument("--dir", default="../shared/kodak")
    ap.add_argument("--preset", default="medium")
    ap.add_argument("--out", default="benchmarks/results/perf.json")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.images.split(","):
            src = Path(args.dir) / f"{name}.png"
            inr = Path(tmp) / f"{name}.inr"
            load = {"encode": _load()}
            enc_s, enc_mb, stats = _child(["encode", str(src), "-o", str(inr), "--preset", args.preset, "--json"])
            # The SIREN encoder's own split (fit, coding, its check decode); a grid preset's CPU time.
            stats = json.loads(stats)
            stages = stats.get("seconds") or {"cpu": stats["cpu_seconds"]}
            # Three fresh processes: the median is the figure, all three are kept.
            # --force: decode refuses to replace a file it was not told to (the second and third runs)
            native = ["decode", str(inr), "-o", str(Path(tmp) / "native.png"), "--quiet", "--force"]
            load["decode_native_process"] = _load()
            runs = [_child(native) for _ in range(3)]
            dec_s, dec_mb, _ = sorted(runs)[1]
            big = ["decode", str(inr), "-o", str(Path(tmp) / "big.png"), "--size", "4096", "--quiet", "--force"]
            load["decode_4096_process"] = _load()
            big_runs = [_child(big) for _ in range(3)]
            big_s, big_mb, _ = sorted(big_runs)[1]
            arr = image.load(src)
            import inrcodec

            load["decode_native_in_process"] = _load()
            times, out = _decode_times(inrcodec.decode, inr.read_bytes())
            times_1, _ = _decode_times(inrcodec.decode, inr.read_bytes(), threads="1")
            dec_inproc = sorted(times)[1]
            bpp = 8 * inr.stat().st_size / (arr.shape[0] * arr.shape[1])
            row = {
                "image": name,
                "bytes": inr.stat().st_size,
                "bpp": bpp,
                "psnr": image.psnr(out, arr),
                "encode_s": enc_s,
                "encode_peak_mib": enc_mb,
                "encode_stages_s": stages,
                "decode_native_s_process": dec_s,
                "decode_native_s_process_runs": [r[0] for r in runs],
                "decode_native_s_in_process": dec_inproc,
                "decode_native_s_in_process_runs": times,
                "decode_threads": os.environ.get("INRCODEC_THREADS") or os.cpu_count(),
                "decode_native_s_in_process_one_thread": sorted(times_1)[1],
                "decode_4096_s_process": big_s,
                "decode_4096_s_process_runs": [r[0] for r in big_runs],
                "decode_4096_peak_mib": big_mb,
                "load": load,
                "jpeg": jpeg_at_or_below(arr, bpp),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    doc = {
        "inrcodec": __version__,
        "preset": args.preset,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpu": cpu_name(),
            "python": sys.version,
        },
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        **git_state(),
        "command": " ".join(command_line()),
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
