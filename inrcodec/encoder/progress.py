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
