"""Rate control (``--bpp``): prune until a file fits under the cap, then keep the best that fits.

After the dense fit and after each pruning round, the snapshot is coded at every candidate depth
(``allocate.each_depth``); the best PSNR among the files under the cap is remembered, and pruning
goes on (down to ``prune.MIN_DENSITY``) while none fits. The remembered snapshot is then
fine-tuned and coded for real; if that file comes out over the cap, the remembered one is used.
"""

from __future__ import annotations

from inrcodec.encoder.allocate import each_depth
from inrcodec.encoder.coding import Coded, finish
from inrcodec.encoder.progress import StepProgress
from inrcodec.encoder.prune import Snapshot
from inrcodec.encoder.session import Session
from inrcodec.siren import Siren


class RateControl:
    """The cap in bytes and the best candidate under it so far."""

    def __init__(self, session: Session, net: Siren, bpp: float):
        h, w, _c = session.arr.shape
        self.session = session
        self.net = net
        self.bpp = bpp
        self.cap = int(bpp * h * w / 8)  # bytes
        self.best: tuple[float, Snapshot, int, Coded] | None = None  # (PSNR, snapshot, depth, file)
        self.smallest: tuple[int, float] | None = None  # (bytes, density) of the smallest file coded, for the error

    def nothing_fits(self, snap: Snapshot) -> bool:
        """Code ``snap`` at every depth, remember the best file under the cap; True if none was
        (so pruning should go on)."""
        self.net.load(snap.weights, snap.biases)
        fits = False
        for bits, coded, p in each_depth(self.session, self.net, snap):
            if self.smallest is None or len(coded.data) < self.smallest[0]:
                self.smallest = (len(coded.data), snap.mask.density())
            if len(coded.data) <= self.cap:
                fits = True
                if self.best is None or p > self.best[0]:
                    self.best = (p, snap, bits, coded)
        return not fits

    def finish(self, last: Snapshot, progress: StepProgress | None = None) -> tuple[Snapshot, int, Coded]:
        """The file: the best candidate fine-tuned and coded, or as it was if that grew over the cap."""
        if self.best is None:
            self.nothing_fits(last)
        if self.best is None:
            h, w, _c = self.session.arr.shape
            why = f"cannot reach {self.bpp:g} bpp"
            if self.smallest is not None:
                size, density = self.smallest
                why += (
                    f": this network's smallest file, at density {density:.2f}, took {size * 8 / (h * w):.4f} bpp "
                    f"({size} bytes, the cap {self.cap})"
                )
            raise ValueError(why + "; the grid-* presets go lower")
        _p, snap, bits, fallback = self.best
        coded = finish(self.session, self.net, snap, bits, progress)
        return snap, bits, (fallback if len(coded.data) > self.cap else coded)
