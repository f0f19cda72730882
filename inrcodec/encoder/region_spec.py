"""The ``--regions`` value, parsed without torch or scikit-learn (so the command line checks it
before any work); ``regions.build`` turns a spec into stored regions."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from inrcodec.format import container

KMEANS_FACTOR = 16  # default downsampling of a k-means label map (a 768x512 image: a 48x32 map)

_SPEC = re.compile(r"^(?:grid:(\d+)x(\d+)|kmeans:(\d+)(?:@(\d+))?|labels(?:@(\d+))?)$")


@dataclass(frozen=True)
class RegionSpec:
    """A parsed ``--regions`` value."""

    kind: str  # grid | kmeans | labels
    rows: int = 0  # grid
    cols: int = 0  # grid
    count: int = 0  # kmeans: clusters asked for
    factor: int = 1  # kmeans, labels: the stored map is the native map downsampled by this

    def __str__(self) -> str:
        if self.kind == "grid":
            return f"grid:{self.rows}x{self.cols}"
        if self.kind == "kmeans":
            return f"kmeans:{self.count}@{self.factor}"
        return f"labels@{self.factor}"


def parse_spec(text: str | None, region_map: str | os.PathLike | None = None) -> RegionSpec:
    """``grid:RxC``, ``kmeans:K[@F]`` or ``labels[@F]``; a ``region_map`` alone means ``labels``."""
    if text is None:
        if region_map is None:
            raise ValueError("give --regions or --region-map")
        text = "labels"
    m = _SPEC.match(text.strip())
    if m is None:
        raise ValueError(f"bad --regions {text!r}; use grid:RxC, kmeans:K[@F] or labels[@F]")
    if m.group(1):
        spec = RegionSpec("grid", rows=int(m.group(1)), cols=int(m.group(2)))
        n = spec.rows * spec.cols
    elif m.group(3):
        spec = RegionSpec("kmeans", count=int(m.group(3)), factor=int(m.group(4) or KMEANS_FACTOR))
        n = spec.count
    else:
        spec = RegionSpec("labels", factor=int(m.group(5) or 1))
        n = 1
    if not 1 <= n <= container.MAX_REGIONS or spec.factor < 1:
        raise ValueError(f"--regions {text!r}: 1..{container.MAX_REGIONS} regions and a factor >= 1")
    if (spec.kind == "labels") != (region_map is not None):
        raise ValueError("--region-map goes with --regions labels[@F] (and only with it)")
    return spec
