"""Issue 15: how much a richer context model could save on the latents, before building one.

The latents are 80-98 % of a grid-* file on Kodak. The checkerboard model (format v5..v8) codes
each level in two passes: the anchors see only their parent's 3x3 in the next coarser level, the
other half also their four cross neighbours. This probe takes the integer latents of files the
presets wrote (photo001-photo004, never Kodak), trains a context network of the same size
(two hidden ReLU layers of 16, the coder's Laplace family, mu and the scale index rounded straight
through as the encoder trains it) on each file's own latents under several contexts, and reports
the information it gives them: -log2 of each latent's probability, summed. That is an estimate
of the latents' bytes (the range coder's words come within a few bytes of it), for choosing what
to build; the latents stay those the encoder fitted under today's model (a new model would also
move them), so a gain here is what the coder alone buys.

    python -m benchmarks.context_probe --files DIR [DIR ...] --out benchmarks/results/latent/context-probe

Each DIR holds .inr files (``inrcodec encode --preset grid-medium ../shared/photos/photo00{1,2,3,4}.png
-o DIR``). The first variant is today's context: its row is the calibration against the file's
real latent bytes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from benchmarks.runner import command_line
from inrcodec.encoder.latent_context import ContextModel, laplace_bits
from inrcodec.format import latent as latent_format

# Decode groups of a level: (row parity, column parity) sets, in decode order.
GROUPS = {
    "2pass": (((0, 0), (1, 1)), ((0, 1), (1, 0))),  # today's checkerboard: anchors, then the rest
    "4pass": (((0, 0),), ((1, 1),), ((0, 1),), ((1, 0),)),  # the anchors split, then the rest split
}
WINDOWS = {
    "cross": ((-1, 0), (1, 0), (0, -1), (0, 1)),
    "3x3": tuple((di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0)),
    "5x5": tuple((di, dj) for di in range(-2, 3) for dj in range(-2, 3) if (di, dj) != (0, 0)),
}


@dataclass(frozen=True)
class Variant:
    """A context: the decode groups of a level, the own-level window (only latents of earlier
    groups are seen; the rest read 0), the parent window's side, and whether the network sees the
    latent's position among its parent's four children."""

    name: str
    groups: str = "2pass"
    window: str = "cross"
    parent: int = 3  # the parent's side x side neighbourhood around the latent's parent
    phase: bool = False  # two features: row and column parity

    def features(self) -> int:
        return self.parent**2 + len(WINDOWS[self.window]) + len(GROUPS[self.groups]) - 1 + 2 * self.phase


VARIANTS = (
    Variant("today (v8)"),  # 9 + 4 + anchor flag = the format's 14 features
    Variant("+ child position", phase=True),
    Variant("parent 5x5", parent=5),
    Variant("2 passes, 5x5 window", window="5x5"),
    Variant("4 passes, 3x3 window", groups="4pass", window="3x3"),
    Variant("4 passes, 5x5 window", groups="4pass", window="5x5", phase=True),
    Variant("4 passes, 5x5, parent 5x5", groups="4pass", window="5x5", parent=5, phase=True),
)


def level_features(q: np.ndarray, parent: np.ndarray | None, v: Variant) -> tuple[np.ndarray, np.ndarray]:
    """(n, F) float contexts and (n,) values of every latent of level ``q`` (C, h, w)."""
    c, h, w = q.shape
    ii, jj = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    groups = GROUPS[v.groups]
    member = [np.zeros((h, w), bool) for _ in groups]
    for g, parities in enumerate(groups):
        for pi, pj in parities:
            member[g] |= (ii % 2 == pi) & (jj % 2 == pj)
    feats, values = [], []
    r = v.parent // 2
    if parent is not None:
        hp, wp = parent.shape[1:]
        ppad = np.pad(parent, ((0, 0), (r, r), (r, r)))
    pad = np.pad(q, ((0, 0), (2, 2), (2, 2)))
    for g in range(len(groups)):
        seen = np.zeros((h, w), bool)
        for k in range(g):
            seen |= member[k]
        seen_pad = np.pad(seen, 2)
        cols = []
        for di in range(-r, r + 1):
            for dj in range(-r, r + 1):
                if parent is None:
                    cols.append(np.zeros((c, h, w)))
                else:
                    near = ppad[:, di + r : di + r + hp, dj + r : dj + r + wp].repeat(2, axis=1).repeat(2, axis=2)
                    cols.append(near[:, :h, :w])
        for di, dj in WINDOWS[v.window]:
            val = pad[:, 2 + di : 2 + di + h, 2 + dj : 2 + dj + w]
            ok = seen_pad[2 + di : 2 + di + h, 2 + dj : 2 + dj + w]
            cols.append(val * ok)
        for k in range(len(groups) - 1):  # which group (two groups: the format's anchor flag)
            cols.append(np.broadcast_to(float(g == k), (c, h, w)))
        if v.phase:
            cols += [np.broadcast_to(ii % 2, (c, h, w)), np.broadcast_to(jj % 2, (c, h, w))]
        at = member[g]
        feats.append(np.stack([np.asarray(col)[:, at] for col in cols], -1).reshape(-1, len(cols)))
        values.append(q[:, at].reshape(-1))
    return np.concatenate(feats).astype(np.float32), np.concatenate(values).astype(np.float32)


def train_bits(feats: np.ndarray, values: np.ndarray, levels: np.ndarray, n_levels: int, args) -> tuple[float, int]:
    """Bits of all the latents under a network trained on them (minibatches, Adam, cosine): the
    encoder's ContextModel with ``feats``' width of input."""
    torch.manual_seed(args.seed)
    x, y, lv = torch.from_numpy(feats), torch.from_numpy(values), torch.from_numpy(levels)
    model = ContextModel(n_levels, args.hidden, features=x.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    n = x.shape[0]
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = args.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        at = torch.randint(n, (min(args.batch, n),), generator=gen)
        loss = bits(model, x[at], y[at], lv[at]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        chunks = range(0, n, 65536)
        total = sum(float(bits(model, x[s : s + 65536], y[s : s + 65536], lv[s : s + 65536]).sum()) for s in chunks)
    return total, sum(p.numel() for p in model.parameters())


def bits(model: ContextModel, feats: torch.Tensor, values: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Each latent's bits under the model: the encoder's rate (its centre and scale at the coder's
    resolution, the Laplace bin's mass)."""
    mu, u = model.params(feats, levels)
    return laplace_bits(values, mu, u)


def probe_file(path: Path, args) -> list[dict]:
    f = latent_format.read(path.read_bytes())
    q = [a.astype(np.float64) for a in f.latents]
    rows = []
    for v in VARIANTS:
        t0 = time.process_time()
        parts = [level_features(q[k], q[k + 1] if k + 1 < len(q) else None, v) for k in range(len(q))]
        feats = np.concatenate([p[0] for p in parts])
        values = np.concatenate([p[1] for p in parts])
        levels = np.concatenate([np.full(p[1].size, k, np.int64) for k, p in enumerate(parts)])
        bits, params = train_bits(feats, values, levels, len(q), args)
        rows.append(
            {
                "file": f"{path.parent.name}/{path.name}",
                "variant": v.name,
                "spec": asdict(v),
                "features": v.features(),
                "network_parameters": params,
                "latent_info_bytes": round(bits / 8, 1),
                "file_latent_bytes": f.section_bytes.get("latents"),
                "file_bytes": path.stat().st_size,
                "latents": int(values.size),
                "cpu_s": round(time.process_time() - t0, 1),
            }
        )
        print(f"{rows[-1]['file']} {v.name}: {rows[-1]['latent_info_bytes']} bytes", file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    presets = sorted({r["file"].split("/")[0] for r in rows})

    def total(variant: str, preset: str, key: str = "latent_info_bytes") -> float:
        return sum(r[key] or 0 for r in rows if r["variant"] == variant and r["file"].startswith(preset + "/"))

    today = VARIANTS[0].name
    lines = [
        "Information of the fitted latents under each context (bytes, summed over the photos), a network of",
        "today's size trained on each file's own latents; change against today's context:",
        "",
        "| context | features | parameters | " + " | ".join(presets) + " |",
        "|---|---|---|" + "---|" * len(presets),
    ]
    for v in VARIANTS:
        cells = [f"{total(v.name, p):.0f} ({100 * (total(v.name, p) / total(today, p) - 1):+.1f} %)" for p in presets]
        params = next(r["network_parameters"] for r in rows if r["variant"] == v.name)
        lines.append(f"| {v.name} | {v.features()} | {params} | " + " | ".join(cells) + " |")
    real = ", ".join(f"{p} {total(today, p, 'file_latent_bytes'):.0f}" for p in presets)
    files = ", ".join(f"{p} {total(today, p, 'file_bytes'):.0f}" for p in presets)
    lines += [
        "",
        f"The files' own LATENTS sections (the encoder's jointly trained network, real bytes): {real}.",
        f"The files, whole: {files} bytes.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", nargs="+", type=Path, required=True, help="folders of .inr files (grid-* presets)")
    ap.add_argument("--out", type=Path, required=True, help="results folder (context-probe.json, .md)")
    ap.add_argument("--steps", type=int, default=1500, help="training steps of each network")
    ap.add_argument("--batch", type=int, default=16384, help="latents per step")
    ap.add_argument("--lr", type=float, default=1e-2, help="Adam's learning rate (cosine to 1 %%)")
    ap.add_argument("--hidden", type=int, default=16, help="the network's hidden width (the presets': 16)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    files = [p for d in args.files for p in sorted(d.glob("*.inr"))]
    if not files:
        sys.exit(f"context_probe: no .inr files in {' '.join(map(str, args.files))}")
    torch.set_num_threads(1)
    settings = {k: v for k, v in vars(args).items() if k not in ("files", "out")}
    results = args.out / "context-probe.json"
    rows: list[dict] = []
    if results.exists():  # resume: the files done with these settings are kept
        done = json.loads(results.read_text())
        if done["settings"] != settings:
            sys.exit(f"context_probe: {results} was made with other settings; choose another --out")
        rows = done["rows"]
    args.out.mkdir(parents=True, exist_ok=True)
    for path in files:
        name = f"{path.parent.name}/{path.name}"
        if any(r["file"] == name for r in rows):
            continue
        rows += probe_file(path, args)
        tmp = results.with_suffix(".tmp")
        tmp.write_text(json.dumps({"settings": settings, "rows": rows}, indent=1) + "\n")
        tmp.replace(results)
    made = (
        f"`{' '.join(command_line())}`, on the files `inrcodec encode --preset P "
        f"../shared/photos/photo00{{1,2,3,4}}.png -o DIR --workers 2` wrote (P: each folder's name).\n\n"
    )
    (args.out / "context-probe.md").write_text(made + table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
