"""The command line's error guard: user errors become one line and a status, never a traceback.

Its own module so that any command (the codec's and the experiments') can use it without
importing the command group.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from inrcodec.format.errors import FormatError
from inrcodec.image import ImageError

USER_ERRORS = (FormatError, ImageError, ValueError, OSError)


class Fail(click.ClickException):
    """A one-line error and exit status 1 (click prints ``Error: ...``)."""


def interrupted() -> NoReturn:
    """Ctrl-C, wherever it lands: one line and status 130 (outputs are written atomically, so
    nothing half-written is left)."""
    click.echo("interrupted; no output written", err=True)
    sys.exit(130)


def run_guarded(fn):
    """Call ``fn``; user errors become one line on stderr and a non-zero exit, never a traceback."""
    try:
        return fn()
    except KeyboardInterrupt:
        interrupted()
    except USER_ERRORS as e:
        raise Fail(message(e)) from None


def message(e: Exception) -> str:
    """The error's line: an OS error as ``FILE: what went wrong`` (not ``[Errno 13] ...``)."""
    if isinstance(e, OSError) and e.filename is not None and e.strerror:
        return f"{e.filename}: {e.strerror[0].lower()}{e.strerror[1:]}"
    return str(e)
