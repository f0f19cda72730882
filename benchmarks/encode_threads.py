"""A single ``inrcodec encode`` as a user runs it, under torch's thread settings, on a quiet machine
and beside a competing job: which setting the command should take when the user sets none.

    python -m benchmarks.encode_threads --out benchmarks/results/encode-threads

Each run is the command (``python -m inrcodec encode PHOTO -o TMP --preset P -q``) in a fresh
process, timed by the wall clock, its file hashed. The settings: ``default`` (nothing set: the
command's own choice; torch's, a thread per core with OpenMP's active wait, until the command
took one thread by default), ``passive`` (``OMP_WAIT_POLICY=PASSIVE``: a waiting thread sleeps
instead of spinning), ``one`` (``OMP_NUM_THREADS=1``) and ``cores`` (``--threads`` the number of
CPUs: torch's default count, through the command's option). ``loaded`` runs have one busy process (a Python loop)
beside them, started before and stopped after, as a second user's job on a shared machine. The
settings alternate within each round, so a change of the machine's own load falls on all.
The file's SHA-256 says whether a setting changes the bytes (the thread count sets how torch
splits its reductions).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.runner import REPO, command_line, provenance, repo_path, write_report

PHOTO = REPO.parent / "shared" / "photos" / "photo001.png"
SETTINGS = {  # name: (the environment, options of the command)
    "default": ({"OMP_WAIT_POLICY": None, "OMP_NUM_THREADS": None}, []),
    "passive": ({"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": None}, []),
    "one": ({"OMP_WAIT_POLICY": None, "OMP_NUM_THREADS": "1"}, []),
    "cores": ({"OMP_WAIT_POLICY": None, "OMP_NUM_THREADS": None}, ["--threads", str(os.cpu_count() or 1)]),
}
BUSY = "while True: pass"


def _env(setting: str) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in SETTINGS[setting][0].items():
        env.pop(name, None)
        if value is not None:
            env[name] = value
    return env


def encode(photo: Path, preset: str, setting: str, loaded: bool, folder: Path) -> dict:
    """One command, timed; with ``loaded`` a busy process beside it."""
    out = folder / f"{preset}-{setting}.inr"
    cmd = [sys.executable, "-m", "inrcodec", "encode", str(photo), "-o", str(out), "--force", "-q"]
    busy = subprocess.Popen([sys.executable, "-c", BUSY]) if loaded else None
    try:
        load = os.getloadavg()[0]
        t = time.perf_counter()
        cmd += ["--preset", preset, *SETTINGS[setting][1]]
        subprocess.run(cmd, check=True, cwd=REPO, env=_env(setting), capture_output=True)
        wall = time.perf_counter() - t
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    data = out.read_bytes()
    return {
        "preset": preset,
        "setting": setting,
        "loaded": loaded,
        "wall_s": round(wall, 2),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "load_before": round(load, 2),
    }


def table(runs: list[dict], settings: list[str]) -> list[str]:
    lines = [
        "| preset | machine | " + " | ".join(f"{s} (s)" for s in settings) + " | files |",
        "|---|---|" + "---|" * (len(settings) + 1),
    ]
    for preset in dict.fromkeys(r["preset"] for r in runs):
        for loaded in (False, True):
            mine = [r for r in runs if r["preset"] == preset and r["loaded"] == loaded]
            if not mine:
                continue
            cells = []
            for s in settings:
                walls = [r["wall_s"] for r in mine if r["setting"] == s]
                cells.append(
                    f"{statistics.median(walls):.1f} ({', '.join(f'{w:.0f}' for w in walls)})" if walls else "–"
                )
            files = {}  # sha -> the settings that wrote it
            for r in mine:
                files.setdefault(r["sha256"][:8], set()).add(r["setting"])
            said = "; ".join(f"{sha}: {', '.join(s for s in settings if s in who)}" for sha, who in files.items())
            lines.append(
                f"| {preset} | {'one busy core' if loaded else 'quiet'} | " + " | ".join(cells) + f" | {said} |"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photo", type=Path, default=PHOTO, help=f"the image encoded ({PHOTO.name})")
    ap.add_argument("--presets", default="medium,grid-medium", help="comma-separated presets")
    ap.add_argument("--settings", default="default,passive,one", help=f"comma-separated, of {','.join(SETTINGS)}")
    ap.add_argument("--reps", type=int, default=2, help="rounds on the quiet machine")
    ap.add_argument("--loaded-reps", type=int, default=1, help="rounds beside a busy process (0: none)")
    ap.add_argument("--out", type=Path, required=True, help="writes OUT.json and OUT.md")
    args = ap.parse_args(argv)
    presets = [p for p in args.presets.split(",") if p]
    settings = [s for s in args.settings.split(",") if s]
    if unknown := [s for s in settings if s not in SETTINGS]:
        ap.error(f"--settings: unknown {', '.join(unknown)} (of {', '.join(SETTINGS)})")
    if not args.photo.is_file():
        ap.error(f"--photo {args.photo}: no such file")
    if args.reps < 1 or args.loaded_reps < 0:
        ap.error("--reps must be at least 1 and --loaded-reps at least 0")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rounds = [False] * args.reps + [True] * args.loaded_reps
    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, loaded in enumerate(rounds):
            order = settings if i % 2 == 0 else settings[::-1]
            for preset in presets:
                for setting in order:
                    runs.append(encode(args.photo, preset, setting, loaded, Path(tmp)))
                    r = runs[-1]
                    print(
                        f"{preset} {setting} {'loaded' if loaded else 'quiet'}: {r['wall_s']:.1f} s, "
                        f"{r['bytes']} bytes {r['sha256'][:8]}",
                        file=sys.stderr,
                        flush=True,
                    )
    doc = {"provenance": provenance(), "photo": repo_path(args.photo), "cpu_count": os.cpu_count(), "runs": runs}
    head = (
        f"`{' '.join(command_line(argv))}` ({doc['provenance']['date']}, {os.cpu_count()} CPUs, "
        f"torch {doc['provenance']['versions']['torch']}). One `inrcodec encode` of {args.photo.name} per cell, "
        "wall seconds (median, then each run); 'one busy core': a Python loop runs beside it. Files: "
        "the first 8 hex digits of each file's SHA-256 and the settings that wrote it."
    )
    write_report(
        args.out.parent,
        args.out.name,
        doc,
        ["# A single encode's thread settings", "", head, "", *table(runs, settings)],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
