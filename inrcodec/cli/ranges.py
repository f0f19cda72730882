"""Number options: click's ranges, which compare and so let ``nan`` through (every comparison
with it is false) and take ``inf`` as a number, refuse both here, one usage line each."""

from __future__ import annotations

import math

import click


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange for a finite number: ``--bpp nan`` or ``--bpp inf`` is a usage error,
    not a traceback from the arithmetic it would reach."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


# Threads a command may ask torch for: more than any machine here has cores, fewer than makes
# thread creation fail partway through a fit (100,000 did, with a traceback from deep in torch).
MAX_THREADS = 256
THREADS = click.IntRange(min=1, max=MAX_THREADS)

# Local processes a batch may start: each is a Python with torch (about 300 MB), so more than this
# is a mistake, not a machine; the images bound the processes started below it.
MAX_WORKERS = 256
WORKERS = click.IntRange(min=1, max=MAX_WORKERS)
