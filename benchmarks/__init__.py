"""The Kodak rate–distortion benchmark, the upscaling experiment and the ablations (docs/benchmark.md).

Not part of the installed package: run from the repository root, e.g. ``python -m benchmarks.kodak_rd``.
"""
