"""The `inrcodec decode` command against an earlier revision's, side by side in one run.

    python -m benchmarks.decode_command --inr kodim23.inr --before HEAD --out benchmarks/results/decode-command.json
    python -m benchmarks.decode_command --inr kodim23-grid-medium.inr --inr-before kodim23-medium-1.2.inr \
        --before 6716842 --runs 7 --out benchmarks/results/decode-command-default.json  # each default's own file

The earlier revision's ``inrcodec`` package is extracted with ``git archive`` into a temporary
folder; each run is a fresh process with that folder (or this working tree) first on
PYTHONPATH, the two alternating (before, after, after, before, ...) so that a change of load on a
shared machine falls on both. Per run: wall seconds, CPU seconds (user + system) and peak RSS of
the whole command (``inrcodec decode SRC -o OUT --size N``; the peak is VmHWM, not
``ru_maxrss``, which a child can inherit from this large parent), and, in a second fresh process, the
same work split into stages by the clock: importing the command's modules (``inrcodec.cli.main``, or
``inrcodec.cli`` in revisions before it was a package),
then the decoder's (which the command imports when it runs), decoding the file to pixels, writing
the PNG (the interpreter's own start-up is the command's time less the stages'). Every
output's pixels must be identical across revisions and runs (with ``--inr-before``, each
revision decoding its own file, across each revision's runs); the load average is recorded with
each run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.runner import REPO, alternating, command_line, extract_revision, git_state, run_python
from inrcodec import image

_COMMAND = (
    "import resource, runpy, sys\n"
    "sys.argv = ['inrcodec'] + sys.argv[1:]\n"
    "try:\n    runpy.run_module('inrcodec', run_name='__main__')\n"
    "except SystemExit as e:\n    assert not e.code, e.code\n"
    "hwm = [line for line in open('/proc/self/status') if line.startswith('VmHWM:')]\n"
    "print(hwm[0].split()[1] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
)

_STAGES = (
    "import json, sys, time\n"
    "t0 = time.perf_counter()\n"
    "try:\n    import inrcodec.cli.main\n"
    "except ModuleNotFoundError:  # release 1.2: the command in one module\n    import inrcodec.cli\n"
    "t1 = time.perf_counter()\n"
    "from pathlib import Path\n"
    "from inrcodec import image\n"
    "from inrcodec.decoder import cpu, decode\n"
    "t2 = time.perf_counter()\n"
    "size = None if sys.argv[3] == 'native' else int(sys.argv[3])\n"
    "arr = decode(Path(sys.argv[1]).read_bytes(), size=size)\n"
    "t3 = time.perf_counter()\n"
    "image.save(arr, sys.argv[2])\n"
    "t4 = time.perf_counter()\n"
    "times = {'import_cli_s': t1 - t0, 'import_decoder_s': t2 - t1, 'decode_s': t3 - t2, 'png_s': t4 - t3}\n"
    "print(json.dumps(dict(times, module=inrcodec.__file__)))\n"
)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _describe(path: Path) -> dict:
    return {"name": path.name, "bytes": path.stat().st_size, "sha256": _sha(path.read_bytes())}


def _pixels_sha(path: Path) -> str:
    return _sha(image.load(path).tobytes())


def measure(src: Path, size: str, root: Path, out: Path) -> dict:
    """One command run and one staged run of the revision at ``root``."""
    # no --force (release 1.2 has none): ``out`` is removed after each run, so it never exists
    cmd = ["decode", str(src), "-o", str(out), "--quiet"]
    cmd += [] if size == "native" else ["--size", size]
    wall, cpu, _, err = run_python(_COMMAND, cmd, root)
    row = {"command_s": wall, "command_cpu_s": cpu, "peak_mib": int(err.strip().splitlines()[-1]) / 1024.0}
    row["png_bytes"] = out.stat().st_size
    row["pixels_sha256"] = _pixels_sha(out)
    out.unlink()
    _, _, stages, _ = run_python(_STAGES, [str(src), str(out), size], root)
    row.update(json.loads(stages))
    if not Path(row.pop("module")).is_relative_to(root):
        raise SystemExit(f"{root}: the run imported another inrcodec")
    out.unlink()
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inr", type=Path, required=True, help="the .inr file to decode")
    ap.add_argument(
        "--inr-before",
        type=Path,
        help="the file the earlier revision decodes instead (its own encoder's, e.g. its default preset's)",
    )
    ap.add_argument("--before", default="HEAD", help="the earlier revision (git)")
    ap.add_argument("--sizes", default="4096,native", help="comma-separated: --size values or 'native'")
    ap.add_argument("--runs", type=int, default=3, help="runs of each revision at each size")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/decode-command.json"))
    args = ap.parse_args()
    sha = subprocess.run(["git", "rev-parse", args.before], cwd=REPO, check=True, capture_output=True, text=True)
    doc = {
        "before": {"rev": args.before, "commit": sha.stdout.strip()},
        "after": {"rev": "working tree", **git_state()},
        "inr": _describe(args.inr),
        "inr_before": None if args.inr_before is None else _describe(args.inr_before),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": sys.version},
        "INRCODEC_THREADS": os.environ.get("INRCODEC_THREADS"),  # the render threads (unset: one per CPU)
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(command_line()),
        "load_start": _load(),
        "sizes": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        roots = {"before": extract_revision(args.before, Path(tmp) / "before"), "after": REPO}
        sources = {"before": (args.inr_before or args.inr).resolve(), "after": args.inr.resolve()}
        for size in args.sizes.split(","):
            runs: dict[str, list[dict]] = {"before": [], "after": []}
            for which in alternating(args.runs):
                row = measure(sources[which], size, roots[which], Path(tmp) / f"{which}.png")
                row["load"] = _load()
                runs[which].append(row)
                print(size, which, json.dumps(row), flush=True)
            # one file: the same pixels from every run of both revisions; two files: of each revision
            groups = [[r for rs in runs.values() for r in rs]] if args.inr_before is None else list(runs.values())
            for rows in groups:
                shas = {r["pixels_sha256"] for r in rows}
                if len(shas) != 1:
                    raise SystemExit(f"{size}: the pixels differ between runs or revisions: {sorted(shas)}")
            medians = {
                which: {k: statistics.median(r[k] for r in rs) for k in rs[0] if k not in ("pixels_sha256", "load")}
                for which, rs in runs.items()
            }
            doc["sizes"][size] = {
                "pixels_identical": "across revisions" if args.inr_before is None else "within each revision",
                "median": medians,
                "runs": runs,
            }
    doc["load_end"] = _load()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    for size, res in doc["sizes"].items():
        for which, m in res["median"].items():
            line = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in m.items())
            print(f"{size} {which}: {line}")


if __name__ == "__main__":
    main()
