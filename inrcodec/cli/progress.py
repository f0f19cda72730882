"""A terminal progress bar driven by the pipeline's progress callback."""

from __future__ import annotations

import sys

import click


class Bar:
    """A click progress bar driven by the pipeline's progress callback (stage, step, PSNR)."""

    def __init__(self):
        self.bar = None
        self.done = 0
        self.label = ""

    def __call__(self, stage: str, done: int, total: int, psnr: float) -> None:
        if self.bar is None:
            self.bar = click.progressbar(
                length=total, width=24, show_eta=True, file=sys.stderr, item_show_func=lambda _: self.label
            )
            self.bar.__enter__()
        self.bar.length = total
        if done < self.done:  # a new loop on the same bar (rate control's next point): from the start
            self.bar.pos = self.done = 0
        self.label = f"{stage} {psnr:5.2f} dB"
        self.bar.update(max(0, done - self.done))
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
