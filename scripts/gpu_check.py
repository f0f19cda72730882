"""scripts/gpu-check's body: see that script. Writes benchmarks/results/gpu.json."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    p = argparse.ArgumentParser(description="the GPU path, run: tests, timings, lottery paper rounds")
    p.add_argument("--budget", type=float, default=480.0, help="seconds for the whole run (default 480)")
    p.add_argument("--image", default=None, help="image (default: kodim23, else photo001, else the sample)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "gpu.json"))
    p.add_argument("--device", default="cuda", help="cuda (default); cpu for a dry run of this script")
    p.add_argument("--encode-preset", default="medium")
    p.add_argument("--lottery-preset", default="paper")
    args = p.parse_args()
    dev = args.device
    t_start = time.perf_counter()

    def left() -> float:
        return args.budget - (time.perf_counter() - t_start)

    import torch

    if dev == "cuda" and not torch.cuda.is_available():
        print("gpu-check: CUDA is not available here; nothing run, nothing written", file=sys.stderr)
        return 2
    import inrcodec
    from inrcodec import image
    from inrcodec.api import encode_with_stats
    from inrcodec.config import PRESETS_1_2, preset
    from inrcodec.encoder.pipeline import encode_array

    doc: dict = {
        "inrcodec": inrcodec.__version__,
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if dev == "cuda" else dev,
        "machine": {"platform": platform.platform(), "python": sys.version.split()[0]},
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "budget_s": args.budget,
        "command": "scripts/gpu-check " + " ".join(sys.argv[1:]),
    }
    # A copy of the tree on a lent GPU machine may have no .git, or one that is not the tree sent:
    # the commit the caller names (INRCODEC_COMMIT) comes first.
    commit = os.environ.get("INRCODEC_COMMIT", "")
    try:
        git = ["git", "rev-parse", "HEAD"]
        commit = commit or subprocess.run(git, cwd=REPO, capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    doc["commit"] = commit or None

    # 0. The encoder's bytes on this machine's CPU, under each kernel setting (benchmarks.machine_bytes):
    # whether its CPU makes the committed rows' bytes, and which setting would make every machine's
    # agree. Each setting gets at most a minute, none once 6 minutes of the budget are left, and a
    # failure is a line in gpu.json, never the end of the check.
    from benchmarks.machine_bytes import SETTINGS, measure
    from benchmarks.runner import cpu_name

    doc["machine"]["cpu"] = cpu_name()
    found: dict = {}
    for name, env in SETTINGS.items():
        found[name] = measure(env, timeout=60.0) if left() > 360 else {"error": "skipped: the budget"}
    doc["machine_bytes"] = found
    print(f"encoder bytes on {cpu_name()}: {found}", flush=True)

    # 1. The tests marked gpu.
    t = time.perf_counter()
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rs", "tests/test_gpu.py"]
    try:
        res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=max(60.0, min(180.0, left() - 240)))
        returncode, summary = res.returncode, (res.stdout.strip().splitlines() or [""])[-1]
    except subprocess.TimeoutExpired:
        returncode, summary = -1, "timed out"
    doc["tests"] = {"returncode": returncode, "seconds": time.perf_counter() - t, "summary": summary}
    print(f"gpu tests: {doc['tests']['summary']} ({doc['tests']['seconds']:.0f} s)", flush=True)

    # 2. A medium encode (both fit steps) and a 4096 px decode, timed.
    candidates = [REPO.parent / "shared" / "kodak" / "kodim23.png", REPO.parent / "shared" / "photos" / "photo001.png"]
    src = Path(args.image) if args.image else next((c for c in candidates if c.is_file()), None)
    arr = image.load(src) if src else image.load(REPO / "inrcodec" / "data" / "sample.png")
    doc["image"] = {"name": src.name if src else "sample.png", "shape": list(arr.shape)}
    enc = {}
    data = None

    def sync() -> None:
        if dev == "cuda":
            torch.cuda.synchronize()

    for fused in (False, True):
        if left() < 200:
            break
        # release 1.2's preset (its step, uniform batches), then release 2.0's (fused step, importance)
        cfg = PRESETS_1_2[args.encode_preset] if not fused else preset(args.encode_preset)
        sync()
        t = time.perf_counter()
        e = encode_array(arr, cfg, dev)
        sync()
        key = "release_2_0" if fused else "release_1_2"
        enc[key] = {
            "seconds": time.perf_counter() - t,
            "bytes": len(e.data),
            "psnr": image.psnr(inrcodec.decode(e.data, device="cpu"), arr),
        }
        secs, psnr = enc[key]["seconds"], enc[key]["psnr"]
        print(f"{args.encode_preset} encode on {dev} ({key}): {secs:.1f} s, {psnr:.2f} dB", flush=True)
        data = data or e.data
    doc["encode"] = {"preset": args.encode_preset, **enc}

    # 2b. The default, the grid family's grid-medium: its training steps on the device, then on the
    # CPU (one thread, as the presets' timings), the same image; coding and rounding run on the CPU.
    from inrcodec.config import DEFAULT_PRESET, LATENT_PRESETS
    from inrcodec.encoder import latent

    grid = {"preset": DEFAULT_PRESET}
    for where in (dev, "cpu") if dev != "cpu" else ("cpu",):
        if left() < 150:
            break
        threads = torch.get_num_threads()
        if where == "cpu":
            torch.set_num_threads(1)
        sync()
        t = time.perf_counter()
        fitted = latent.fit(arr, LATENT_PRESETS[DEFAULT_PRESET], device=where)
        sync()
        torch.set_num_threads(threads)
        grid[where] = {"seconds": time.perf_counter() - t, "bytes": len(fitted.data), "psnr": fitted.psnr}
        print(f"{DEFAULT_PRESET} encode on {where}: {grid[where]['seconds']:.1f} s, {fitted.psnr:.2f} dB", flush=True)
    doc["grid_encode"] = grid
    if data is None:
        data = encode_with_stats(arr, "fast", device=dev).data
    dec = {}
    torch_dev = "torch-cpu" if dev == "cpu" else dev  # the dry run: torch's path on the CPU
    for name, where in ((dev, torch_dev), ("numpy", "cpu")):
        times = []
        for _ in range(2):  # the first CUDA call includes its start-up
            t = time.perf_counter()
            out = inrcodec.decode(data, size=4096, device=where)
            times.append(time.perf_counter() - t)
        dec[name] = {"seconds": times, "shape": list(out.shape)}
        print(f"4096 px decode ({name}): {times} s", flush=True)
    doc["decode_4096"] = dec

    # 3. The lottery experiment's paper preset, one round more per call while time is left.
    from inrcodec.experiments import lottery

    lot = {"rounds_done": 0, "round_seconds": [], "preset": args.lottery_preset}
    cfg = lottery.PRESETS[args.lottery_preset]
    with tempfile.TemporaryDirectory() as tmp:
        last = None
        for rounds in range(1, cfg.rounds + 1):
            done = lot["round_seconds"]
            # Round 0 trains one dense network, every later round one network per ticket.
            per = done[-1] if len(done) >= 2 else done[0] * len(cfg.tickets) if done else 60.0
            need = 1.3 * per
            if left() < need + 15:
                break
            t = time.perf_counter()
            last = lottery.run(arr, replace(cfg, rounds=rounds), tmp, dev)
            lot["round_seconds"].append(time.perf_counter() - t)
            lot["rounds_done"] = rounds
            print(f"lottery {args.lottery_preset}: round {rounds - 1} in {lot['round_seconds'][-1]:.0f} s", flush=True)
        if last is not None:
            lot["rounds"] = last["rounds"]
            lot["findings"] = last.get("findings")
    doc["lottery"] = lot
    doc["total_seconds"] = time.perf_counter() - t_start
    Path(args.out).write_text(json.dumps(doc, indent=1, default=str) + "\n")
    print(f"wrote {args.out} ({doc['total_seconds']:.0f} s)")
    return 0 if returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
