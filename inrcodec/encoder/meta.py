"""Meta-learned initialisations (issue 14, item 1): MAML with learned per-parameter inner step sizes.

One initialisation per network shape is learned across photographs so that a few steps of fitting
from it already give a good picture (Finn et al. 2017; Li et al. 2017, Meta-SGD; Tancik et al.
2021; Strümpler et al. 2022). An outer step draws ``meta_batch`` training photos; for each it takes
``inner_steps`` plain SGD steps on random pixel batches from the shared initialisation θ, with
learned per-parameter (and per-step) step sizes α, then measures the MSE of the adapted network on
a fresh batch of the same photo. Adam on (θ, α) lowers the mean of those losses. Second-order
differentiates through the inner gradients; first-order treats them as constants (the gradient
for α stays exact to first order, so the step sizes are still learned).

:func:`train` runs in a folder: ``config.json`` (the :class:`MetaConfig`), ``log.jsonl`` (one
line per logged outer step: loss, and every ``probe_every`` steps the held-out probes) and
``state.pt`` (θ, α, Adam's state, the sampling generator's state, the log), written atomically
every ``checkpoint_seconds`` and at the end. A run killed at any point resumes from its last
checkpoint and ends with the same weights as an uninterrupted run on the same device. The
held-out probes fit photos the training never sees (photo001-photo008 by default) and report
PSNR, so the method is tuned on them and never on the training photos or on Kodak.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from inrcodec import image
from inrcodec.architecture import Architecture
from inrcodec.config import LADDER_1_2_POINTS, PRESETS_1_2, FitConfig
from inrcodec.encoder.fit import Target, cosine_lr, evaluate, mse_to_psnr
from inrcodec.encoder.mask import Mask
from inrcodec.experiments import checkpoint
from inrcodec.siren import Siren

CONFIG = "config.json"
LOG = "log.jsonl"
STATE = checkpoint.STATE
# Fields a resumed run may change: none of them changes the outer steps already taken or the
# ones to come (there is no outer schedule), so a run of N steps is the first N of a longer one.
MAY_CHANGE = ("outer_steps", "checkpoint_seconds", "checkpoint_every")


@dataclass(frozen=True)
class MetaConfig:
    """Everything a meta-training run depends on (recorded in the run's config.json)."""

    hidden: int = 80  # width of every hidden layer (the ladder widths: 40, 80, 144)
    layers: int = 3  # sine layers, first included (the presets': 3)
    pe_levels: int = 6  # Fourier levels of the coordinates (the presets': 6)
    channels: int = 3  # colour channels (RGB photos)
    omega0: float = 30.0  # frequency factor of the first sine layer
    omega_hidden: float = 30.0  # frequency factor of the other sine layers
    inner_steps: int = 3  # SGD steps of the inner loop (Strümpler et al.: 3)
    inner_lr: float = 1e-5  # initial value of every inner step size (Strümpler et al.: 1e-5)
    learn_lr: bool = True  # learn the inner step sizes (Meta-SGD); False keeps them at inner_lr
    per_step_lr: bool = True  # one step size per parameter *and* inner step (False: shared by the steps)
    second_order: bool = False  # differentiate through the inner gradients (MAML) or not (first-order)
    outer_lr: float = 5e-5  # Adam learning rate of the outer loop, for θ and α (Strümpler et al.: 5e-5)
    outer_steps: int = 20000  # outer (meta) steps of the run
    meta_batch: int = 2  # photos per outer step
    pixels: int = 8192  # random pixels per inner step and per query batch (the presets' fit batch)
    seed: int = 0  # seeds θ's starting point (the SIREN paper init) and all sampling
    photos: tuple[int, int] = (9, 49)  # training photos photo{first:03d}..photo{last:03d} (inclusive)
    probe_photos: tuple[int, int] = (1, 8)  # held-out photos of the probes (never trained on)
    probe_every: int = 500  # outer steps between held-out probes (0: none)
    probe_fit_steps: int = 200  # probe: PSNR after this many steps of the preset's fit (0: skip that probe)
    probe_fit_photos: int = 4  # probe: how many of the held-out photos get the fit probe (it is the slow one)
    log_every: int = 25  # outer steps between log lines (mean loss over them)
    checkpoint_seconds: float = 180.0  # wall-clock seconds between checkpoints
    checkpoint_every: int = 0  # also checkpoint every this many outer steps (0: by time only; tests use it)
    from_prior: int = 0  # θ starts from this shipped prior's arrays (0: from the SIREN paper init)
    density: float = 1.0  # < 1: prune θ once, at the start, by global magnitude to this density and
    # meta-train the sparse network under that fixed mask (Lee et al. 2021): a shared mask (issue 17)

    def arch(self) -> Architecture:
        return Architecture(
            hidden=self.hidden,
            layers=self.layers,
            out_features=self.channels,
            omega0=self.omega0,
            omega_hidden=self.omega_hidden,
            pe_levels=self.pe_levels,
        )

    def doc(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @staticmethod
    def from_doc(doc: dict) -> MetaConfig:
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in doc.items()}
        return MetaConfig(**fields)


def check(cfg: MetaConfig) -> None:
    """ValueError naming the first field that cannot work."""
    ints = ("hidden", "layers", "channels", "inner_steps", "outer_steps", "meta_batch", "pixels", "log_every")
    for name in ints:
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be at least 1 (got {getattr(cfg, name)})")
    if cfg.pe_levels < 0 or cfg.probe_every < 0 or cfg.probe_fit_steps < 0 or cfg.checkpoint_every < 0:
        raise ValueError("pe_levels, probe_every, probe_fit_steps and checkpoint_every must be >= 0")
    if not 0 < cfg.density <= 1:
        raise ValueError(f"density must be in (0, 1] (got {cfg.density})")
    if cfg.from_prior:
        from inrcodec import priors

        known = priors.registry().get(cfg.from_prior)
        if known is None:
            raise ValueError(f"from_prior {cfg.from_prior}: no such shipped prior (have {sorted(priors.registry())})")
        if known.shape() != (cfg.hidden, cfg.layers, cfg.pe_levels, cfg.channels, cfg.omega0, cfg.omega_hidden):
            raise ValueError(f"prior {cfg.from_prior} is for another network than this run's (width {cfg.hidden})")
    if cfg.inner_lr <= 0 or cfg.outer_lr <= 0:
        raise ValueError("inner_lr and outer_lr must be positive")
    for name in ("photos", "probe_photos"):
        a, b = getattr(cfg, name)
        if not 1 <= a <= b:
            raise ValueError(f"{name}: give first <= last, both >= 1 (got {a}..{b})")
    a, b = cfg.photos
    c, d = cfg.probe_photos
    if cfg.probe_every and not (d < a or c > b):
        raise ValueError(f"probe photos {c}..{d} overlap the training photos {a}..{b}: the probes must be held out")


def photo_paths(folder: Path, first_last: tuple[int, int]) -> list[Path]:
    """photo{first:03d}.png .. photo{last:03d}.png in ``folder``; ValueError naming a missing one."""
    paths = [Path(folder) / f"photo{i:03d}.png" for i in range(first_last[0], first_last[1] + 1)]
    for p in paths:
        if not p.is_file():
            raise ValueError(f"{p}: no such photo")
    return paths


class Photo:
    """A training photo kept as uint8 on the device; random pixel batches as (coords, colours)."""

    def __init__(self, arr: np.ndarray, device: torch.device):
        self.h, self.w, self.c = arr.shape
        self.pixels = torch.from_numpy(np.ascontiguousarray(arr).reshape(-1, self.c).copy()).to(device)
        self.device = device

    @property
    def n(self) -> int:
        return self.h * self.w

    def batch(self, size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``size`` random pixels (with replacement, as the fit draws them): centres and colours in [-1, 1]."""
        idx = torch.randint(0, self.n, (size,), generator=gen).to(self.device)
        row = torch.div(idx, self.w, rounding_mode="floor")
        col = idx - row * self.w
        # The pixel-centre convention of inrcodec.coords: x = (2i + 1) / W - 1, in float32.
        x = (2.0 * col.float() + 1.0) / self.w - 1.0
        y = (2.0 * row.float() + 1.0) / self.h - 1.0
        colours = self.pixels[idx].float() / 127.5 - 1.0
        return torch.stack([x, y], dim=1), colours


@dataclass
class MetaState:
    """What a run carries from one outer step to the next (all of it goes into the checkpoint)."""

    weights: list[torch.Tensor]  # θ: the initialisation being learned, layer by layer
    biases: list[torch.Tensor]
    lrs: list[list[torch.Tensor]]  # α: per inner step (or one shared), per parameter of weights + biases
    mask: list[torch.Tensor] | None = None  # bool per weight matrix: the fixed shared mask (None: dense)
    step: int = 0  # outer steps done
    log: list[dict] = field(default_factory=list)  # the rows of log.jsonl so far


def initial_state(cfg: MetaConfig) -> MetaState:
    """θ from the SIREN paper init as the encoder draws it (Generator seeded with ``seed``), or from
    shipped prior ``from_prior``; with ``density`` < 1 pruned by global magnitude to that density
    (ties to the later position, as :meth:`Mask.prune` ranks), the mask fixed for the run."""
    net = Siren(cfg.arch(), torch.Generator().manual_seed(cfg.seed))
    ws, bs = net.state()
    if cfg.from_prior:
        from inrcodec import priors

        pw, pb = priors.arrays(cfg.from_prior)
        ws, bs = [torch.from_numpy(w.copy()) for w in pw], [torch.from_numpy(b.copy()) for b in pb]
    mask = None
    if cfg.density < 1:
        pruned = Mask.dense(ws).keep_best([w.abs() for w in ws], round(cfg.density * sum(w.numel() for w in ws)))
        mask = list(pruned.keep)
        ws = pruned.apply(ws)
    n_lrs = cfg.inner_steps if cfg.per_step_lr else 1
    lrs = [[torch.full_like(p, cfg.inner_lr) for p in ws + bs] for _ in range(n_lrs)]
    return MetaState(ws, bs, lrs, mask)


def masked(weights: list[torch.Tensor], mask: list[torch.Tensor] | None) -> list[torch.Tensor]:
    """``weights`` with the shared mask's pruned entries at zero (their gradients zero too)."""
    return weights if mask is None else Mask(tuple(mask)).apply(weights)


def adapt(
    net: Siren,
    params: list[torch.Tensor],
    lrs: list[list[torch.Tensor]],
    photo: Photo,
    gen: torch.Generator,
    cfg: MetaConfig,
    create_graph: bool,
    mask: list[torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    """The inner loop: ``cfg.inner_steps`` SGD steps p <- p - α ⊙ ∇p on fresh pixel batches
    (under ``mask``: pruned weights stay zero, their gradients are zero)."""
    n = len(params) // 2
    fast = list(params)
    for k in range(cfg.inner_steps):
        x, y = photo.batch(cfg.pixels, gen)
        loss = torch.mean((net(x, masked(fast[:n], mask), fast[n:]) - y) ** 2)
        grads = torch.autograd.grad(loss, fast, create_graph=create_graph)
        step_lrs = lrs[k if len(lrs) > 1 else 0]
        fast = [p - a * g for p, a, g in zip(fast, step_lrs, grads)]
    return fast


def outer_loss(
    net: Siren,
    params: list[torch.Tensor],
    lrs: list[list[torch.Tensor]],
    photos: list[Photo],
    gen: torch.Generator,
    cfg: MetaConfig,
    mask: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Mean over ``cfg.meta_batch`` drawn photos of the query MSE after the inner loop."""
    n = len(params) // 2
    total = 0.0
    for _ in range(cfg.meta_batch):
        photo = photos[int(torch.randint(0, len(photos), (1,), generator=gen))]
        fast = adapt(net, params, lrs, photo, gen, cfg, create_graph=cfg.second_order, mask=mask)
        x, y = photo.batch(cfg.pixels, gen)
        total = total + torch.mean((net(x, masked(fast[:n], mask), fast[n:]) - y) ** 2)
    return total / cfg.meta_batch


def probe_fit_config(hidden: int) -> tuple[FitConfig, int]:
    """The fit (and its schedule's length) of release 1.2's ladder point of this width, else its
    default's: the fit prior 1's probes were logged with (PRESETS_1_2), so a rerun logs the same."""
    p = LADDER_1_2_POINTS.get(hidden, PRESETS_1_2["medium"])
    return p.fit, p.fit.steps


def fit_curve(
    arch: Architecture,
    weights: list[torch.Tensor],
    biases: list[torch.Tensor],
    target: Target,
    fit: FitConfig,
    schedule: int,
    at: list[int],
    eval_pixels: int | None = None,
    mask: list[torch.Tensor] | None = None,
    warmup: int = 0,
) -> tuple[dict[int, float], Siren]:
    """PSNR (8-bit, clamped, as decoded) after each step count in ``at`` of one run of the preset's
    fit (Adam, cosine over ``schedule`` steps) from (weights, biases): the first ``max(at)`` steps
    of the fit the encoder would do, evaluated along the way (under ``mask``, pruned weights held at
    zero; ``warmup`` > 0 scales the first ``warmup`` steps' learning rate linearly up from
    1/warmup, an experiment's option, not the encoder's). Returns the curve and the network."""
    net = Siren(arch).to(target.coords.device)
    net.load([w.to(target.coords.device) for w in weights], [b.to(target.coords.device) for b in biases])
    mask = None if mask is None else [m.to(target.coords.device) for m in mask]
    curve = {}
    done = 0
    # One Adam run with the full schedule, cut into pieces between the evaluation points.
    opt = torch.optim.Adam(net.parameters(), lr=fit.lr)
    gen = torch.Generator(device="cpu").manual_seed(fit.seed * 1_000_003)
    for n in sorted(set(at)):
        while done < n:
            ramp = min(1.0, (done + 1) / warmup) if warmup else 1.0
            for group in opt.param_groups:
                group["lr"] = cosine_lr(done, schedule, fit.lr, fit.lr_final) * ramp
            idx = torch.randint(0, target.n, (min(fit.batch, target.n),), generator=gen).to(target.coords.device)
            out = net(target.coords[idx], masked(list(net.weights), mask))
            loss = torch.mean((out - target.colours[idx]) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
        weights = masked([w.detach() for w in net.weights], mask)
        curve[n] = evaluate(net, target, weights, pixels=eval_pixels)
    return curve, net


def probe(
    state: MetaState,
    cfg: MetaConfig,
    held_out: list[tuple[Target, Photo]],
    device: torch.device,
) -> dict:
    """Held-out figures of the current θ: PSNR at θ, after the inner loop, and after
    ``probe_fit_steps`` of the preset's fit (on the first ``probe_fit_photos``); means over photos."""
    arch = cfg.arch()
    net = Siren(arch).to(device)
    params = [p.to(device) for p in state.weights + state.biases]
    lrs = [[a.to(device) for a in step] for step in state.lrs]
    n = len(state.weights)
    gen = torch.Generator().manual_seed(12345)  # fixed: every probe sees the same batches
    at_init, adapted, fitted = [], [], []
    mask = None if state.mask is None else [m.to(device) for m in state.mask]
    for i, (target, photo) in enumerate(held_out):
        at_init.append(evaluate(net, target, params[:n], params[n:], pixels=65536))
        with torch.enable_grad():
            fast = adapt(net, [p.clone().requires_grad_(True) for p in params], lrs, photo, gen, cfg, False, mask)
        fast = [p.detach() for p in fast]
        adapted.append(evaluate(net, target, masked(fast[:n], mask), fast[n:], pixels=65536))
        if cfg.probe_fit_steps and i < cfg.probe_fit_photos:
            fit, schedule = probe_fit_config(cfg.hidden)
            with torch.enable_grad():
                curve, _ = fit_curve(
                    arch, params[:n], params[n:], target, fit, schedule, [cfg.probe_fit_steps], 65536, mask
                )
            fitted.append(curve[cfg.probe_fit_steps])
    doc = {"probe_init_psnr": _mean(at_init), "probe_inner_psnr": _mean(adapted)}
    if fitted:
        doc[f"probe_fit{cfg.probe_fit_steps}_psnr"] = _mean(fitted)
    return doc


def _mean(xs: list[float]) -> float:
    return round(float(np.mean(xs)), 4)


def _save(
    out: Path,
    state: MetaState,
    opt: torch.optim.Optimizer,
    gen: torch.Generator,
    cfg: MetaConfig,
    losses: list[float],
) -> None:
    doc = {
        "config": cfg.doc(),
        "step": state.step,
        "weights": [w.detach().cpu() for w in state.weights],
        "biases": [b.detach().cpu() for b in state.biases],
        "lrs": [[a.detach().cpu() for a in step] for step in state.lrs],
        "mask": state.mask,
        "opt": opt.state_dict(),
        "gen": gen.get_state(),
        "log": json.dumps(state.log),
        "losses": json.dumps(losses),  # the losses of the outer steps since the last log line
    }
    checkpoint.save(out, doc, {LOG: _log_text(state.log)})


def _log_text(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def load_run(out: Path) -> tuple[MetaConfig, dict]:
    """(config, checkpoint) of a run folder; ValueError when it holds no checkpoint."""
    saved = checkpoint.load(Path(out))
    if saved is None:
        raise ValueError(f"{out}: no checkpoint ({STATE}) here")
    return MetaConfig.from_doc(saved["config"]), saved


def train(
    cfg: MetaConfig,
    out: Path,
    photos_dir: Path,
    device: str | torch.device = "cpu",
    fresh: bool = False,
    say: Callable[[str], None] | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    stop_after: int | None = None,
    images: list[np.ndarray] | None = None,
    probe_images: list[np.ndarray] | None = None,
    command: str | None = None,
) -> MetaState:
    """Meta-train in ``out`` (resuming the run there unless ``fresh``); returns the final state.

    ``stop_after`` ends after that many outer steps of this call, with a checkpoint (the tests'
    "kill"); ``images``/``probe_images`` replace the photos read from ``photos_dir`` (tests);
    ``command`` is recorded in config.json (and by :func:`export` in the prior's ``trained``).
    A resumed run may change the fields of :data:`MAY_CHANGE` (e.g. run longer or stop sooner).
    """
    check(cfg)
    out = Path(out)
    device = torch.device(device)
    saved = checkpoint.load(out, fresh)
    if saved is not None:
        ours, theirs = cfg.doc(), saved["config"]
        # A field the run's config lacks was added later with a default that keeps old runs' meaning.
        defaults = MetaConfig().doc()
        diff = [k for k in ours if k not in MAY_CHANGE and theirs.get(k, defaults[k]) != ours[k]]
        if diff:
            raise ValueError(f"{out} holds a run with another configuration ({', '.join(diff)} differ); use --fresh")
    out.mkdir(parents=True, exist_ok=True)
    old = json.loads((out / CONFIG).read_text()) if saved is not None and (out / CONFIG).exists() else {}
    earlier = old.get("commands", [old["command"]] if "command" in old else [])
    doc = {
        "config": cfg.doc(),
        "commands": [*earlier, command],  # every call that made or resumed the run
        "photos_dir": str(photos_dir) if images is None else None,
        "device": str(device),
        "torch": torch.__version__,
    }
    checkpoint.write_text(out / CONFIG, checkpoint.json_text(doc))

    if images is None:
        images = [image.load(p) for p in photo_paths(photos_dir, cfg.photos)]
    if probe_images is None and cfg.probe_every:
        probe_images = [image.load(p) for p in photo_paths(photos_dir, cfg.probe_photos)]
    for arr in images:
        if arr.shape[2] != cfg.channels:
            raise ValueError(f"a training image has {arr.shape[2]} channels, the config {cfg.channels}")
    photos = [Photo(arr, device) for arr in images]
    held_out = [(Target.of(arr, device), Photo(arr, device)) for arr in (probe_images or [])]

    state = initial_state(cfg)
    gen = torch.Generator().manual_seed(cfg.seed * 7919 + 1)
    params = [p.to(device).requires_grad_(True) for p in state.weights + state.biases]
    lrs = [[a.to(device).requires_grad_(cfg.learn_lr) for a in step] for step in state.lrs]
    trainable = params + ([a for step in lrs for a in step] if cfg.learn_lr else [])
    opt = torch.optim.Adam(trainable, lr=cfg.outer_lr)
    if saved is not None:
        with torch.no_grad():
            for p, v in zip(params, saved["weights"] + saved["biases"]):
                p.copy_(v)
            for step_lrs, saved_lrs in zip(lrs, saved["lrs"]):
                for a, v in zip(step_lrs, saved_lrs):
                    a.copy_(v)
        opt.load_state_dict(saved["opt"])
        gen.set_state(saved["gen"])
        saved_mask = saved.get("mask")
        if (saved_mask is None) != (state.mask is None) or (
            saved_mask is not None and not all(torch.equal(a, b) for a, b in zip(saved_mask, state.mask))
        ):
            raise ValueError(f"{out}: its saved mask is not the one its prior and density give; use --fresh")
        state.step = saved["step"]
        state.log = json.loads(saved["log"])
        if say:
            say(f"resuming {out} at outer step {state.step} of {cfg.outer_steps}")
    checkpoint.write_text(out / LOG, _log_text(state.log))  # drop lines logged after the checkpoint

    n = len(state.weights)
    net = Siren(cfg.arch()).to(device)
    mask = None if state.mask is None else [m.to(device) for m in state.mask]

    def sync() -> None:
        state.weights = [p.detach().cpu().clone() for p in params[:n]]
        state.biases = [p.detach().cpu().clone() for p in params[n:]]
        state.lrs = [[a.detach().cpu().clone() for a in step] for step in lrs]

    last_save = time.monotonic()
    t0 = time.monotonic()
    losses: list[float] = json.loads(saved["losses"]) if saved is not None else []
    done_here = 0
    if state.step == 0 and cfg.probe_every and held_out:
        sync()
        row = {"step": 0, "loss": None, "psnr": None, "seconds": 0.0, **probe(state, cfg, held_out, device)}
        state.log.append(row)
        _append(out / LOG, row)
    while state.step < cfg.outer_steps:
        loss = outer_loss(net, params, lrs, photos, gen, cfg, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        state.step += 1
        done_here += 1
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(state.step, cfg.outer_steps, mse_to_psnr(losses[-1]))
        row = None
        if state.step % cfg.log_every == 0 or state.step == cfg.outer_steps:
            mean = float(np.mean(losses))
            losses = []
            row = {"step": state.step, "loss": round(mean, 7), "psnr": round(mse_to_psnr(mean), 4)}
            row["seconds"] = round(time.monotonic() - t0, 1)
        if cfg.probe_every and held_out and (state.step % cfg.probe_every == 0 or state.step == cfg.outer_steps):
            sync()
            row = row or {"step": state.step, "loss": None, "psnr": None}
            row.update(probe(state, cfg, held_out, device))
            if say:
                say(f"step {state.step}: held-out {json.dumps({k: v for k, v in row.items() if 'probe' in k})}")
        if row is not None:
            state.log.append(row)
            _append(out / LOG, row)
        due = time.monotonic() - last_save >= cfg.checkpoint_seconds
        due = due or (cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0)
        stopping = stop_after is not None and done_here >= stop_after
        if due or stopping or state.step == cfg.outer_steps:
            sync()
            _save(out, state, opt, gen, cfg, losses)
            last_save = time.monotonic()
        if stopping:
            break
    sync()
    return state


def _append(path: Path, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def mean_abs(a: list[torch.Tensor]) -> list[float]:
    return [float(x.abs().mean()) for x in a]


def with_fields(cfg: MetaConfig, **kw) -> MetaConfig:
    """``cfg`` with fields replaced (None keeps the value); for the command line."""
    return replace(cfg, **{k: v for k, v in kw.items() if v is not None})


def lr_summary(lrs: list[list[torch.Tensor]]) -> list[list[float]]:
    """Mean learned step size per inner step and parameter tensor (for people reading a run)."""
    return [[float(a.mean()) for a in step] for step in lrs]


def default_priors_dir() -> Path:
    """The package's own ``inrcodec/priors`` folder (index.json and data/)."""
    from inrcodec import priors

    return Path(priors.__file__).parent


def export(run: Path, prior_id: int, name: str, priors_dir: Path | None = None) -> dict:
    """Write run ``run``'s learned θ as prior ``prior_id``: ``data/<name>.npz`` (:func:`priors.pack`)
    and an entry appended to ``index.json`` in ``priors_dir`` (default: the package's). ValueError
    if the ID, the name or the data file exists already (released priors never change). Returns
    the entry."""
    from inrcodec import priors

    run = Path(run)
    priors_dir = Path(priors_dir) if priors_dir is not None else default_priors_dir()
    if not 1 <= prior_id <= 65535:
        raise ValueError(f"prior ID {prior_id}: give 1..65535 (0 means no prior)")
    if not name or any(c not in "abcdefghijklmnopqrstuvwxyz0123456789-_." for c in name):
        raise ValueError(f"prior name {name!r}: use lower-case letters, digits, '-', '_' and '.'")
    cfg, saved = load_run(run)
    index_path = priors_dir / "index.json"
    index = json.loads(index_path.read_text())
    for p in index["priors"]:
        if p["id"] == prior_id:
            raise ValueError(f"prior ID {prior_id} exists already ({p['name']}): released priors never change")
        if p["name"] == name:
            raise ValueError(f"a prior named {name!r} exists already (ID {p['id']})")
    file = f"{name}.npz"
    data_path = priors_dir / "data" / file
    if data_path.exists():
        raise ValueError(f"{data_path} exists already: released priors never change")
    masks = None if saved.get("mask") is None else [m.numpy() for m in saved["mask"]]
    if masks is not None and any((w.numpy()[~m] != 0).any() for w, m in zip(saved["weights"], masks)):
        raise ValueError(f"{run}: weights off its mask are not zero; nothing exported")
    data = priors.pack([w.numpy() for w in saved["weights"]], [b.numpy() for b in saved["biases"]], masks)
    run_doc = json.loads((run / CONFIG).read_text()) if (run / CONFIG).exists() else {}
    a, b = cfg.photos
    method = "second-order" if cfg.second_order else "first-order"
    commands = " then ".join(c for c in run_doc.get("commands", []) if c) or "inrcodec prior train"
    start = f"from prior {cfg.from_prior}" if cfg.from_prior else "from the SIREN paper init"
    if cfg.density < 1:
        start += f", pruned once by global magnitude to density {cfg.density:g}, mask fixed (Lee et al. 2021)"
    trained = (
        f"{commands}; {start}; {method} MAML, {'learned per-parameter' if cfg.learn_lr else 'fixed'} inner step sizes, "
        f"{cfg.inner_steps} SGD inner steps, {saved['step']} of {cfg.outer_steps} outer steps "
        f"(Adam {cfg.outer_lr:g}, {cfg.meta_batch} photos x {cfg.pixels} pixels), seed {cfg.seed}; "
        f"data ../shared/photos photo{a:03d}-photo{b:03d}"
    )
    entry = asdict(
        priors.Prior(
            id=prior_id,
            name=name,
            hidden=cfg.hidden,
            layers=cfg.layers,
            pe_levels=cfg.pe_levels,
            channels=cfg.channels,
            omega0=cfg.omega0,
            omega_hidden=cfg.omega_hidden,
            file=file,
            sha256=hashlib.sha256(data).hexdigest(),
            trained=trained,
            density=cfg.density,
        )
    )
    data_path.parent.mkdir(parents=True, exist_ok=True)
    image.atomic_write(data_path, lambda f: f.write(data), overwrite=False)
    index["priors"].append(entry)
    checkpoint.write_text(index_path, json.dumps(index, indent=2) + "\n")
    priors.registry.cache_clear()
    return entry
