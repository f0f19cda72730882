"""Checkpoints of the experiments: atomic writes, and resuming only a run of the same set-up.

A run folder holds ``state.pt`` (everything needed to go on, the truth on resuming) and the data
files made from it (JSON, CSV). :func:`save` writes the state first and the data files after it,
each atomically (``image.atomic_write``): a run killed at any point leaves whole files, and a
data file is never newer than the state it was made from.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path

from inrcodec import image

STATE = "state.pt"


def json_text(doc) -> str:
    """The experiments' JSON files: indent 1, a final newline."""
    return json.dumps(doc, indent=1) + "\n"


def write_text(path: Path, text: str) -> None:
    image.atomic_write(path, lambda f: f.write(text.encode()))


def save(out: Path, state: dict, files: Mapping[str, str] | None = None) -> None:
    """``out/state.pt`` (torch.save), then each of ``files`` (name -> text), each atomically."""
    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    image.atomic_write(out / STATE, lambda f: f.write(buf.getvalue()))
    for name, text in (files or {}).items():
        write_text(out / name, text)


def load(out: Path, fresh: bool = False) -> dict | None:
    """The state saved in ``out`` (tensors on the CPU); None when there is none or ``fresh``."""
    path = out / STATE
    if fresh or not path.exists():
        return None
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def check_same_setup(out: Path, saved: dict, current: dict, grows: str) -> None:
    """Raise ValueError naming every field that differs, unless the run saved in ``out`` with
    set-up ``saved`` may go on with set-up ``current``.

    Set-ups are JSON-like dicts; a nested field is named by its dotted path (``config.hidden``).
    The field ``grows`` (a dotted path: the rounds or levels asked for) may differ: a number
    freely, a list as long as the shorter is the start of the longer (done levels stay done).
    """
    diff = _differences(_plain(saved), _plain(current), grows)
    if diff:
        raise ValueError(f"{out} holds a run with another set-up ({', '.join(diff)} differ); use another -o or --fresh")


def _plain(doc):
    """Tuples as lists, as JSON reads them back."""
    return json.loads(json.dumps(doc))


def _differences(a, b, grows: str, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        name = f"{prefix}{key}"
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out += _differences(x, y, grows, f"{name}.")
        elif name == grows and isinstance(x, list) and isinstance(y, list):
            n = min(len(x), len(y))
            if x[:n] != y[:n]:
                out.append(name)
        elif name != grows and x != y:
            out.append(name)
    return out
