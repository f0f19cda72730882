"""Progress on stderr, driven by the pipeline's progress callback: a bar on a terminal, and plain
lines where stderr is a log file (a background run, CI), which a bar would leave empty."""

from __future__ import annotations

import sys
import time

import click

# Seconds between two lines of a log: often enough to see a long fit move, few enough to read.
LOG_INTERVAL_S = 15.0


def to_log() -> bool:
    """Whether stderr is a log (a file, a pipe) rather than a terminal: lines there, not a bar."""
    return not sys.stderr.isatty()


class Bar:
    """A click progress bar driven by the pipeline's progress callback (stage, step, PSNR). Where
    stderr is not a terminal, a line per stage and one every ``interval`` seconds instead.

    With ``resumed``, the bar starts one step before the first report (a resumed run reports
    first the step after the one it resumed from): it then counts this call's steps to the end,
    so its rate and ETA are this call's."""

    def __init__(self, interval: float | None = None, resumed: bool = False):
        self.bar = None
        self.resumed = resumed
        self.start = 0  # the step before the first report, with resumed
        self.done = 0
        self.label = ""
        self.log = to_log()
        self.interval = LOG_INTERVAL_S if interval is None else interval
        self.stage: str | None = None
        self.said = 0.0  # when the last log line went out

    def __call__(self, stage: str, done: int, total: int, psnr: float) -> None:
        if self.log:
            return self._line(stage, done, total, psnr)
        if self.bar is None:
            if self.resumed:
                self.start = self.done = max(0, done - 1)
            self.bar = click.progressbar(
                length=total - self.start,
                width=24,
                show_eta=True,
                file=sys.stderr,
                item_show_func=lambda _: self.label,
            )
            self.bar.__enter__()
        self.bar.length = total - self.start
        if done < self.done:  # a new loop on the same bar (rate control's next point): from the start
            self.bar.pos = self.done = self.start = 0
            self.bar.length = total
        self.label = f"{stage} {done}/{total} {psnr:5.2f} dB" if self.resumed else f"{stage} {psnr:5.2f} dB"
        self.bar.update(max(0, done - self.done))
        self.done = done

    def _line(self, stage: str, done: int, total: int, psnr: float) -> None:
        now = time.monotonic()
        if stage != self.stage and done >= total:  # a stage after the steps (the grid's rounding): its name
            click.echo(f"{stage}", err=True)
        elif stage != self.stage or done >= total or now - self.said >= self.interval:
            click.echo(f"{stage} {done}/{total} {psnr:.2f} dB", err=True)
        else:
            return
        self.stage, self.said = stage, now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
