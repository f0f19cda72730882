"""The experiments' commands, ``inrcodec lottery`` and ``inrcodec rtl``: parsing and printing only.

The experiments are ``inrcodec.experiments`` (no click there). Each command writes its data files
first; the plots need matplotlib (the ``bench`` extra): without it they are skipped with one line
that gives the command to draw them later (``--plots-only DIR``), and the command still succeeds.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import click

from inrcodec.cli import paths, ranges
from inrcodec.cli.guard import Fail, run_guarded
from inrcodec.experiments import lottery, routing

HELP = {"help_option_names": ["-h", "--help"]}
SIZE = click.IntRange(min=8)  # smaller images leave the experiments nothing to measure


def _say(quiet: bool) -> Callable[[str], None] | None:
    return None if quiet else (lambda msg: click.echo(msg, err=True))


def _ints(_ctx, param, text: str | None) -> tuple[int, ...] | None:
    """A comma-separated list of integers (None when not given)."""
    if text is None:
        return None
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r}: give integers separated by commas", param=param) from None


def _tickets(_ctx, param, text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    try:
        lottery.check(replace(lottery.LotteryConfig(), tickets=names))
    except ValueError as e:
        raise click.BadParameter(str(e), param=param) from None
    return names


def _rules(_ctx, param, text: str | None) -> tuple[str, ...]:
    """Finder tickets run beside the others: snip, synflow, rigl, nm:N:M (comma-separated)."""
    if text is None:
        return ()
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    if not names:
        raise click.BadParameter("name a rule: snip, synflow, rigl or nm:N:M", param=param)
    try:
        for name in names:
            if name in lottery.TICKET_RULES:
                raise ValueError(f"{name} is a --tickets ticket; --rule takes snip, synflow, rigl or nm:N:M")
            lottery.check_finder(name)
    except ValueError as e:
        raise click.BadParameter(str(e), param=param) from None
    return names


def _levels(ctx, param, text: str | None) -> tuple[int, ...] | None:
    lv = _ints(ctx, param, text)
    if lv is not None and (not lv or sorted(set(lv)) != list(lv) or not 0 < lv[0] <= lv[-1] < 100):
        raise click.BadParameter("increasing percentages in (0, 100), e.g. 25,50,75,90", param=param)
    return lv


def _source(src: Path | None, plots_dir: Path | None) -> None:
    if src is None and plots_dir is None:
        raise click.UsageError("Missing argument 'SRC' (or --plots-only DIR to draw a finished run's plots).")
    if src is not None and plots_dir is not None:
        raise click.UsageError("give SRC (run) or --plots-only DIR (draw), not both")


def _plots(draw: Callable[[], list[Path]], later: list[str], plots_only: bool) -> list[str]:
    """Draw with ``draw`` and return the names of the files drawn. Without matplotlib: after a
    run, one line with the command (``later``) that draws them once it is installed, and [];
    for ``--plots-only``, an error."""
    from inrcodec.experiments import plots

    if not plots.available():
        how = "pip install matplotlib (or the bench extra)"
        if plots_only:
            raise Fail(f"matplotlib is not installed; {how}")
        click.echo(f"plots skipped (matplotlib is not installed); to draw them: {how}, then {shlex.join(later)}")
        return []
    return [p.name for p in run_guarded(draw)]


def _options(*decorators):
    """One decorator that applies ``decorators`` in the order given (the order of --help)."""

    def apply(fn):
        for deco in reversed(decorators):
            fn = deco(fn)
        return fn

    return apply


def _head(output: str, drawn: str):
    """Both commands: run on SRC, or draw a finished run's plots (``--plots-only DIR``)."""
    return _options(
        click.command(context_settings=HELP),
        click.argument("src", required=False, type=paths.NonEmptyPath(exists=True, dir_okay=False, path_type=Path)),
        click.option(
            "-o", "--output", type=paths.NonEmptyPath(file_okay=False, path_type=Path), help=f"default: {output}"
        ),
        click.option(
            "--plots-only",
            "plots_dir",
            type=paths.NonEmptyPath(exists=True, file_okay=False, path_type=Path),
            help=f"draw {drawn} of the run in this folder (from its results.json), run nothing",
        ),
    )


def _tail(seed: str, step: str):
    """Both commands: the network's size and seed, where it runs, resuming, and quiet."""
    return _options(
        click.option("--hidden", type=click.IntRange(min=1), help="width of the hidden layers"),
        click.option("--layers", type=click.IntRange(min=1), help="sine layers (first included)"),
        click.option("--seed", type=click.IntRange(min=0), help=seed),
        click.option("--device", help="cpu, cuda, mps (default: best available)"),
        click.option("--threads", type=ranges.THREADS, default=1, show_default=True, help="CPU threads for torch"),
        click.option("--fresh", is_flag=True, help="discard a run already in the output folder"),
        click.option("-q", "--quiet", is_flag=True, help=f"no line per {step}"),
    )


@_head("runs/SRC-stem", "the plots")
@click.option("--preset", type=click.Choice(sorted(lottery.PRESETS)), default="cpu", show_default=True)
@click.option("--rounds", type=click.IntRange(min=1), help="rounds in all, round 0 (dense) included")
@click.option(
    "--prune",
    type=ranges.FiniteFloatRange(0, 1, min_open=True, max_open=True),
    help="fraction of surviving weights removed per round",
)
@click.option("--tickets", callback=_tickets, help="comma-separated: winner,random,loser")
@click.option(
    "--rule",
    "finders",
    callback=_rules,
    help="also run these ticket finders beside the tickets: snip, synflow, rigl, nm:N:M (comma-separated)",
)
@click.option("--steps", type=click.IntRange(min=1), help="optimizer steps (epochs) per round")
@click.option("--size", type=SIZE, help="square side the image is cropped and resized to")
@click.option("--lr", type=ranges.FiniteFloatRange(min=0, min_open=True), help="Adam learning rate")
@click.option("--grid-rounds", callback=_ints, help="rounds shown in grid.png, e.g. 0,1,2,5,10 (default: five spread)")
@_tail("seed of θ0, sampling and the random ticket", "round")
def lottery_command(
    src,
    output,
    plots_dir,
    preset,
    rounds,
    prune,
    tickets,
    finders,
    steps,
    size,
    hidden,
    layers,
    lr,
    seed,
    device,
    threads,
    grid_rounds,
    fresh,
    quiet,
):
    """Winning / random / losing tickets of SRC's SIREN, round by round (resumable).

    A quick try (about 20 s on a 2-core CPU): inrcodec lottery img.png --size 32 --steps 100 --rounds 4
    """
    from inrcodec.experiments import plots

    _source(src, plots_dir)
    grid = list(grid_rounds) if grid_rounds else None
    if plots_dir is not None:
        click.echo(f"{plots_dir}: {', '.join(_plots(lambda: plots.lottery(plots_dir, grid), [], plots_only=True))}")
        return
    output = output or Path("runs") / src.stem
    given = dict(rounds=rounds, prune=prune, steps=steps, size=size, hidden=hidden, layers=layers, lr=lr, seed=seed)
    cfg = replace(lottery.PRESETS[preset], **{k: v for k, v in given.items() if v is not None})
    if tickets:
        cfg = replace(cfg, tickets=tickets)
    if finders:
        cfg = replace(cfg, tickets=cfg.tickets + finders)
        try:
            lottery.check(cfg)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="'--rule'") from None
    say = _say(quiet)

    def job():
        import torch

        from inrcodec import image
        from inrcodec.siren import default_device

        torch.set_num_threads(threads)
        arr = image.load(src)
        if say:
            say(
                f"lottery: {src} -> {output}  preset {preset}, {cfg.rounds} rounds of {cfg.prune:.0%}, "
                f"SIREN {cfg.layers}x{cfg.hidden}, {cfg.steps} steps/round, "
                f"device {default_device(device)}, {torch.get_num_threads()} thread(s)"
            )
        t0 = time.perf_counter()
        res = lottery.run(arr, cfg, output, device, say, source=str(src), fresh=fresh)
        return res, time.perf_counter() - t0

    res, secs = run_guarded(job)
    later = ["inrcodec", "lottery", "--plots-only", str(output)]
    if grid_rounds:
        later += ["--grid-rounds", ",".join(map(str, grid_rounds))]
    drawn = _plots(lambda: plots.lottery(output, grid), later, plots_only=False)
    click.echo(f"{output}: {', '.join([*lottery.DATA_FILES, *drawn])} ({secs:.0f} s)")
    f = res["findings"]
    if "winner_ge_random_every_round" in f:
        click.echo(f"winner >= random at every round: {f['winner_ge_random_every_round']}")
    if "loser_collapse_round" in f:
        click.echo(
            f"loser within {lottery.COLLAPSE_MARGIN_DB:g} dB of the flat image ({f['flat_psnr']:.2f} dB) "
            f"from round: {f['loser_collapse_round']}"
        )


@_head("runs/SRC-stem-rtl", "rtl.png")
@click.option("--regions", "regions_spec", help="grid:RxC | kmeans:K[@F] | labels[@F]  [default: kmeans:4]")
@click.option(
    "--region-map",
    type=paths.NonEmptyPath(exists=True, dir_okay=False, path_type=Path),
    help="label image (with --regions labels)",
)
@click.option("--preset", type=click.Choice(sorted(routing.PRESETS)), default="cpu", show_default=True)
@click.option("--levels", callback=_levels, help="sparsity levels in %, e.g. 25,50,75,90 (the preset's)")
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    help="dense-fit steps; retraining, extraction, fine-tuning and rewinding steps scale with them",
)
@click.option("--size", type=SIZE, help="shrink the image so its longer side is at most this (aspect kept)")
@_tail("seed of initialisation, sampling and k-means", "level")
def rtl_command(
    src,
    output,
    plots_dir,
    regions_spec,
    region_map,
    preset,
    levels,
    steps,
    size,
    hidden,
    layers,
    seed,
    device,
    threads,
    fresh,
    quiet,
):
    """RTL (one ticket per region) against one IMP mask at several sparsities (resumable).

    A quick try (about 20 s on a 2-core CPU): inrcodec rtl img.png --size 128 --steps 150 --levels 50,75
    """
    from inrcodec.experiments import plots

    _source(src, plots_dir)
    if plots_dir is not None:
        drawn = _plots(lambda: plots.rtl_run(routing.load_runs([plots_dir])[0][0], plots_dir), [], plots_only=True)
        click.echo(f"{plots_dir}: {', '.join(drawn) or 'no level done yet, nothing to draw'}")
        return
    if size is not None and region_map is not None:
        raise click.UsageError("--size cannot be used with --region-map (the label image has the image's size)")
    output = output or Path("runs") / f"{src.stem}-rtl"
    cfg = routing.PRESETS[preset]
    if steps is not None:
        cfg = cfg.scaled(steps)
    given = dict(levels=levels, hidden=hidden, layers=layers, seed=seed)
    cfg = replace(cfg, **{k: v for k, v in given.items() if v is not None})
    say = _say(quiet)

    def job():
        import torch

        from inrcodec import image
        from inrcodec.encoder.regions import parse_spec
        from inrcodec.experiments.inputs import shrink

        spec = parse_spec(regions_spec or (None if region_map else "kmeans:4"), region_map)
        torch.set_num_threads(threads)
        arr = shrink(image.load(src), size)
        if say:
            say(
                f"rtl: {src} -> {output}  preset {preset}, {arr.shape[1]}x{arr.shape[0]}, regions {spec}, "
                f"levels {list(cfg.levels)}, {cfg.fit_steps} fit steps, {torch.get_num_threads()} thread(s)"
            )
        t0 = time.perf_counter()
        res = routing.run(arr, cfg, spec, output, region_map, device, say, source=str(src), fresh=fresh)
        return res, time.perf_counter() - t0

    res, secs = run_guarded(job)
    later = ["inrcodec", "rtl", "--plots-only", str(output)]
    drawn = _plots(lambda: plots.rtl_run(res, output), later, plots_only=False)
    click.echo(f"{output}: {', '.join(['results.json', *drawn, '*.inr'])} ({secs:.0f} s)")
    click.echo("sparsity  RTL dB   bytes  |  IMP dB   bytes  | Jaccard")
    for lv in res["levels"]:
        a, b = lv["imp"], lv["rtl"]
        click.echo(
            f"{lv['sparsity']:>6} %  {b['psnr']:6.2f} {b['bytes']:7d}  |  {a['psnr']:6.2f} {a['bytes']:7d}  | "
            f"{b['jaccard']['all']:.3f}"
        )
