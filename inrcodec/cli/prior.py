"""``inrcodec prior``: meta-train an initialisation (``train``) and ship it (``export``).

Parsing and printing only; the work is :mod:`inrcodec.encoder.meta` (docs/prior.md).
"""

from __future__ import annotations

import functools
import shlex
import sys
import time
from pathlib import Path

import click

from inrcodec.cli import paths, ranges
from inrcodec.cli.guard import run_guarded
from inrcodec.cli.progress import Bar

HELP = {"help_option_names": ["-h", "--help"]}


def _range(_ctx, param, text: str | None) -> tuple[int, int] | None:
    """FIRST-LAST photo numbers (None when not given)."""
    if text is None:
        return None
    try:
        first, last = (int(x) for x in text.split("-"))
    except ValueError:
        raise click.BadParameter(f"{text!r}: give FIRST-LAST, e.g. 9-49", param=param) from None
    return first, last


@click.group(context_settings=HELP)
def prior_command() -> None:
    """Meta-learned initialisations: train one per network width, export it as a shipped prior."""


@prior_command.command(context_settings=HELP)
@click.option(
    "-o", "--output", type=paths.NonEmptyPath(file_okay=False, path_type=Path), help="default: runs/prior-hWIDTH"
)
@click.option("--width", type=click.IntRange(min=1), default=80, show_default=True, help="hidden width")
@click.option("--layers", type=click.IntRange(min=1), help="sine layers (default 3, the presets')")
@click.option("--pe-levels", type=click.IntRange(min=0), help="Fourier levels (default 6, the presets')")
@click.option("--outer-steps", type=click.IntRange(min=1), help="outer (meta) steps [default: 20000]")
@click.option("--inner-steps", type=click.IntRange(min=1), help="SGD steps of the inner loop [default: 3]")
@click.option("--inner-lr", type=ranges.FiniteFloatRange(min=0, min_open=True), help="initial inner step size [1e-5]")
@click.option("--fixed-lr", is_flag=True, help="keep the inner step sizes fixed (no Meta-SGD)")
@click.option("--second-order/--first-order", default=None, help="differentiate through the inner gradients")
@click.option("--outer-lr", type=ranges.FiniteFloatRange(min=0, min_open=True), help="outer Adam learning rate [5e-5]")
@click.option("--meta-batch", type=click.IntRange(min=1), help="photos per outer step [2]")
@click.option("--pixels", type=click.IntRange(min=1), help="random pixels per inner step and query [8192]")
@click.option("--probe-every", type=click.IntRange(min=0), help="outer steps between held-out probes [500]")
@click.option("--seed", type=click.IntRange(min=0), help="seed of θ's start and all sampling [0]")
@click.option("--from-prior", type=click.IntRange(min=1), help="start θ from this shipped prior [paper init]")
@click.option(
    "--density",
    type=ranges.FiniteFloatRange(0, 1, min_open=True),
    help="prune θ once by magnitude to this density and meta-train the sparse net: a shared mask [1]",
)
@click.option("--photos", callback=_range, help="training photos FIRST-LAST [9-49]")
@click.option("--probe-photos", callback=_range, help="held-out probe photos FIRST-LAST [1-8]")
@click.option(
    "--photos-dir",
    type=paths.NonEmptyPath(exists=True, file_okay=False, path_type=Path),
    default=Path("../shared/photos"),
    show_default=True,
    help="folder of photoNNN.png",
)
@click.option("--device", help="cpu, cuda, mps (default: best available)")
@click.option("--threads", type=ranges.THREADS, default=1, show_default=True, help="CPU threads for torch")
@click.option("--fresh", is_flag=True, help="discard a run already in the output folder")
@click.option("-q", "--quiet", is_flag=True, help="no progress bar")
def train(
    output,
    width,
    layers,
    pe_levels,
    outer_steps,
    inner_steps,
    inner_lr,
    fixed_lr,
    second_order,
    outer_lr,
    meta_batch,
    pixels,
    probe_every,
    seed,
    from_prior,
    density,
    photos,
    probe_photos,
    photos_dir,
    device,
    threads,
    fresh,
    quiet,
):
    """Meta-train the initialisation of the width-WIDTH network on photo009-photo049 (resumable:
    run the same command again after a kill; the held-out probes fit photo001-photo008).

    A quick try (about a minute here): inrcodec prior train -o runs/try --width 16 --outer-steps 50 --probe-every 25
    """
    from inrcodec.encoder import meta

    output = output or Path("runs") / f"prior-h{width}"
    cfg = meta.with_fields(
        meta.MetaConfig(hidden=width),
        layers=layers,
        pe_levels=pe_levels,
        outer_steps=outer_steps,
        inner_steps=inner_steps,
        inner_lr=inner_lr,
        learn_lr=False if fixed_lr else None,
        second_order=second_order,
        outer_lr=outer_lr,
        meta_batch=meta_batch,
        pixels=pixels,
        probe_every=probe_every,
        seed=seed,
        from_prior=from_prior,
        density=density,
        photos=photos,
        probe_photos=probe_photos,
    )
    run_guarded(lambda: meta.check(cfg))
    say = None if quiet else (lambda msg: click.echo(msg, err=True))
    command = shlex.join(["inrcodec", "prior", *sys.argv[2:]]) if sys.argv[1:2] == ["prior"] else None

    def job():
        import torch

        from inrcodec.siren import default_device

        torch.set_num_threads(threads)
        dev = default_device(device)
        if say:
            order = "second" if cfg.second_order else "first"
            say(
                f"prior train: width {cfg.hidden}, {cfg.layers} layers, {order}-order, "
                f"{cfg.outer_steps} outer steps -> {output} (device {dev}, {torch.get_num_threads()} thread(s))"
            )
        bar = None if quiet else Bar(resumed=True)  # a resumed run's bar starts where it resumed
        t0 = time.perf_counter()
        try:
            progress = None if bar is None else functools.partial(bar, "outer step")
            state = meta.train(cfg, output, photos_dir, dev, fresh, say, progress, command=command)
        finally:
            if bar is not None:
                bar.close()
        return state, time.perf_counter() - t0

    state, secs = run_guarded(job)
    last = next((r for r in reversed(state.log) if "probe_inner_psnr" in r), None)
    click.echo(f"{output}: {state.step} outer steps ({secs:.0f} s in this call); last probe: {last}")


@prior_command.command(context_settings=HELP)
@click.argument("run", type=paths.NonEmptyPath(exists=True, file_okay=False, path_type=Path))
@click.option("--id", "prior_id", type=click.IntRange(1, 65535), required=True, help="the new prior's ID")
@click.option("--name", required=True, help="e.g. meta-h80-pe6-rgb-v1 (the data file is NAME.npz)")
@click.option(
    "--priors-dir",
    type=paths.NonEmptyPath(exists=True, file_okay=False, path_type=Path),
    help="registry folder (index.json, data/); default: the package's inrcodec/priors",
)
def export(run, prior_id, name, priors_dir):
    """Write RUN's learned initialisation as shipped prior ID (refused if the ID exists)."""
    from inrcodec.encoder import meta

    entry = run_guarded(lambda: meta.export(run, prior_id, name, priors_dir))
    click.echo(f"prior {entry['id']} ({entry['name']}): data/{entry['file']}, sha256 {entry['sha256'][:16]}...")
