"""Where a command writes: default names that can never be the input's, no file replaced unless
asked (``--force``), and the folder checked before any work starts."""

from __future__ import annotations

import os
from pathlib import Path

import click


class NonEmptyPath(click.Path):
    """click's Path, refusing an empty name: pathlib reads ``''`` as ``.``, the current folder,
    which then met each command's checks under a name the user never gave (decode: a traceback);
    and ``-``, by convention standard input or output, which no command reads or writes."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not value:
            self.fail("an empty path names no file", param, ctx)
        if value == "-":  # (OutputPath refuses it first, in its own words)
            self.fail(
                "-: standard input and output are not supported; name a file or folder (./- for one called -)",
                param,
                ctx,
            )
        return super().convert(value, param, ctx)


_SEPARATORS = tuple({"/", os.sep, os.altsep} - {None})


class NewFolder(type(Path())):  # type: ignore[misc]  # (Path itself subclasses only from Python 3.12)
    """A folder ``-o`` names with a trailing slash that does not exist: a batch makes it, one
    image's encode or decode refuses it (pathlib drops the slash, so it would have been a file)."""


class OutputPath(NonEmptyPath):
    """An output's name, where a trailing slash names a folder: pathlib drops the slash, so
    ``-o out/`` with no folder ``out`` would have written a file called ``out``; such a name comes
    back as a :class:`NewFolder`. ``-`` is refused: read as standard output by convention, it
    would have been a file called ``-``."""

    def convert(self, value, param, ctx):
        if value == "-":  # the convention for standard output, which the atomic writes cannot use
            self.fail("-: standard output is not supported; name a file or a folder", param, ctx)
        if isinstance(value, str) and value.endswith(_SEPARATORS) and not os.path.isdir(value):
            if os.path.lexists(value.rstrip("".join(_SEPARATORS))):
                self.fail(f"{value}: is a file, not a folder (a name ending in a slash names a folder)", param, ctx)
            return NewFolder(super().convert(value, param, ctx))
        return super().convert(value, param, ctx)


def into_folder(output: Path | None, default: Path) -> Path:
    """``-o``'s file: the name given, or ``default``'s name inside the folder given, or ``default``.
    A folder that does not exist is a usage error here (one image's output; a batch makes it)."""
    if output is None:
        return default
    if isinstance(output, NewFolder):
        raise click.BadParameter(
            f"{output}{os.sep}: no such folder (a name ending in a slash names a folder)",
            param_hint="'-o' / '--output'",
        )
    try:
        return output / default.name if output.is_dir() else output
    except OSError:  # cannot be looked at: the output checks name it
        return output


def encoded_name(src: Path) -> Path:
    """``img.png`` -> ``img.inr``."""
    return src.with_suffix(".inr")


def decoded_name(src: Path) -> Path:
    """``img.inr`` -> ``img.decoded.png``: never ``img.png``, which is likely the original image."""
    return src.with_name(f"{src.stem}.decoded.png")


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(output: Path, force: bool, src: Path | None = None) -> None:
    """Refuse, with one line naming ``output``, what would fail or destroy a file after the work:
    the input itself, an existing file without ``force``, a folder, a missing or read-only folder."""
    if src is not None and (_same(output, src) or output.absolute() == src.absolute()):
        raise ValueError(f"{output}: is the input; name another output with -o")
    if output.is_dir():
        raise ValueError(f"{output}: is a folder; name a file with -o")
    if os.path.lexists(output) and not force:  # a link to nothing too: the final rename would refuse it
        raise ValueError(f"{output}: exists; pass --force to overwrite it, or -o to name another file")
    folder = output.parent
    if not folder.is_dir():
        if folder.exists():
            raise ValueError(f"{output}: {str(folder)!r} is a file, not a folder")
        raise ValueError(f"{output}: no such folder {str(folder)!r}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{output}: folder {str(folder)!r} is not writable")
