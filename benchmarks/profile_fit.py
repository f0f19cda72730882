"""Where a training step's time goes: torch.profiler over a few steps of the encoder's fit.

    python -m benchmarks.profile_fit [--hidden 80] [--steps 30] [--fused [--kernel native]]
        [--sampler importance] [--image ../shared/photos/photo001.png]

One torch thread, as in the benchmark's workers. Prints torch.profiler's table, by self CPU time.
"""

from __future__ import annotations

import argparse

from benchmarks.runner import REPO


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image", default=str(REPO.parent / "shared" / "photos" / "photo001.png"))
    p.add_argument("--hidden", type=int, default=80, help="width (default 80, the medium preset)")
    p.add_argument("--steps", type=int, default=30, help="profiled steps (after 5 warm-up steps)")
    p.add_argument("--batch", type=int, default=8192, help="pixels per step (default: the presets')")
    p.add_argument("--fused", action="store_true", help="the fused step (FitConfig.fused) instead of release 1.2's")
    p.add_argument("--kernel", choices=("torch", "native"), default="torch", help="the fused step's kernels")
    p.add_argument("--sampler", choices=("uniform", "error", "importance"), default="uniform")
    args = p.parse_args(argv)
    if args.kernel == "native" and not args.fused:
        p.error("--kernel native: the fused step's (add --fused)")

    import torch
    from torch.profiler import ProfilerActivity, profile

    from inrcodec import image
    from inrcodec.config import FitConfig
    from inrcodec.encoder.fit import Target, train
    from inrcodec.siren import Architecture, Siren

    torch.set_num_threads(1)
    target = Target.of(image.load(args.image), torch.device("cpu"))
    net = Siren(Architecture(hidden=args.hidden, layers=3, pe_levels=6), torch.Generator().manual_seed(0))
    cfg = FitConfig(steps=args.steps, batch=args.batch, fused=args.fused, kernel=args.kernel, sampler=args.sampler)
    if args.kernel == "native":
        from inrcodec.encoder import native

        try:
            native.load()
        except native.Unavailable as e:
            p.exit(1, f"error: {e}\n")
    train(net, target, cfg, 5)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train(net, target, cfg, args.steps)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
