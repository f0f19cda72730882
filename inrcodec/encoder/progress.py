"""Progress reports: each training loop counts its own steps; an encode maps them onto one bar."""

from __future__ import annotations

from collections.abc import Callable

StepProgress = Callable[[int, int, float], None]  # (steps done, steps in this loop, batch PSNR dB)
Progress = Callable[[str, int, int, float], None]  # (stage, steps done, steps in the encode, PSNR dB)


class Plan:
    """One encode's bar: ``stage(name, base)`` reports a loop's steps as ``base + done`` of ``total``."""

    def __init__(self, progress: Progress | None, total: int):
        self.progress = progress
        self.total = total

    def stage(self, name: str, base: int) -> StepProgress | None:
        if self.progress is None:
            return None
        progress, total = self.progress, self.total
        return lambda done, _steps, psnr_db: progress(name, base + done, total, psnr_db)


class AfterFit:
    """A latent-grid encode's bar: the fit's steps as "fit", then each stage after it (``stage``:
    "code", "round", "tune") named at the fit's end, so that the bar says what the encode is doing while
    no step moves it."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.done, self.total, self.psnr = 0, 1, 0.0

    def step(self, done: int, total: int, psnr_db: float) -> None:
        self.done, self.total, self.psnr = done, total, psnr_db
        self.progress("fit", done, total, psnr_db)

    def stage(self, name: str) -> None:
        self.progress(name, self.done, self.total, self.psnr)
