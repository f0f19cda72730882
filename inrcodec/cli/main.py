"""The ``inrcodec`` commands: parsing and printing only, no pipeline logic."""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import time
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import click

from inrcodec.cli import paths, ranges
from inrcodec.cli.guard import interrupted, run_guarded
from inrcodec.cli.progress import Bar
from inrcodec.config import (
    DEFAULT_PRESET,
    LATENT_PRESETS,
    PRESETS,
    SIREN_DEFAULT_PRESET,
    grid_trains_on,
    latent_cap,
    latent_preset_name,
)
from inrcodec.executors import LOCAL, limit_threads

# Commands imported only when named (or listed by --help): the experiments' modules are 30 ms of
# the 0.3 s every command spends importing, which encode, decode and info do not need.
LAZY_COMMANDS = {
    "lottery": ("inrcodec.cli.experiments", "lottery_command"),
    "rtl": ("inrcodec.cli.experiments", "rtl_command"),
    "prior": ("inrcodec.cli.prior", "prior_command"),
}


class _Group(click.Group):
    """The command group; Ctrl-C anywhere in a command (importing torch included) ends it the same
    way: one line and status 130, never click's 'Aborted!'. The commands of LAZY_COMMANDS load on use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS:
            module, attr = LAZY_COMMANDS[name]
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (KeyboardInterrupt, click.exceptions.Abort):
            interrupted()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="inrcodec")
def main() -> None:
    """Images as small sine networks: encode, decode at any resolution, inspect."""


@main.command()
@click.argument("srcs", metavar="SRC...", nargs=-1, required=True, type=paths.NonEmptyPath(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=paths.OutputPath(path_type=Path),
    help="default: SRC with .inr; a folder: SRC's name with .inr in it (with several inputs or a folder of "
    "images: the folder the .inr files go to)",
)
@click.option("-f", "--force", is_flag=True, help="overwrite OUTPUT if it exists (a batch: redo every image)")
@click.option(
    "--preset",
    type=click.Choice([*PRESETS, *LATENT_PRESETS]),
    help=f"grid-*: latent grids under a small sine synthesis (format v8), or a SIREN; default {DEFAULT_PRESET}, "
    f"or {SIREN_DEFAULT_PRESET} with an option only the SIREN has (--density, --regions, --prior, "
    "--adaround, the coders)",
)
@click.option(
    "--bpp",
    type=ranges.FiniteFloatRange(min=0, min_open=True),
    help="rate cap in bits per pixel: grid-* (and no --preset) fit the grid ladder's points until the best "
    "that fits; low/medium/high choose the ladder width that fits (fast prunes)",
)
@click.option("--weight-coder", type=click.Choice(["scalar", "sinr", "auto"]), help="override the preset's")
@click.option(
    "--entropy-coder", type=click.Choice(["brotli", "range", "auto"]), help="override the preset's (range: format v4)"
)
@click.option(
    "--prior",
    help="none | auto | an ID: code residuals from a shipped prior (format v4; v6 if it carries a mask; docs/prior.md)",
)
@click.option(
    "--adaround",
    type=click.IntRange(min=0),
    metavar="STEPS",
    help="learn each weight's rounding up or down in STEPS steps after fine-tuning (AdaRound; default 0: "
    "nearest; 500 gave +0.02 dB for about 10 s more at width 80: docs/pipeline.md)",
)
@click.option("--steps", type=click.IntRange(min=1), help="dense-fit steps (override the preset's)")
@click.option(
    "--density",
    type=ranges.FiniteFloatRange(0, 1, min_open=True),
    help="fraction of weights kept by pruning (override)",
)
@click.option(
    "--seed", type=click.IntRange(min=0, max=2**32 - 1), help="seed of initialisation and sampling (override)"
)
@click.option(
    "--regions", help="one ticket per region (REGIONS section, format v2 on): grid:RxC | kmeans:K[@F] | labels[@F]"
)
@click.option(
    "--region-map",
    type=paths.NonEmptyPath(exists=True, dir_okay=False, path_type=Path),
    help="label image for --regions labels",
)
@click.option("--device", help="cpu, cuda, mps (a SIREN: default best available; grid-*: cpu or cuda, default cpu)")
@click.option("-q", "--quiet", is_flag=True, help="no progress bar; print only the result line")
@click.option("--json", "as_json", is_flag=True, help="print the stats as JSON (no progress bar)")
@click.option("--workers", type=ranges.WORKERS, help="a batch: local processes encoding at once (default 1)")
@click.option(
    "--ray",
    metavar="[ADDRESS]",
    is_flag=False,
    flag_value=LOCAL,
    help="a batch: run the images as Ray tasks; alone: start a local Ray, 'auto': join the running cluster",
)
@click.option(
    "--threads",
    type=ranges.THREADS,
    help="torch (and BLAS) threads per image (default 1: a batch's and the benchmark's bytes; Ray: CPUs per image)",
)
def encode(
    srcs,
    output,
    force,
    preset,
    bpp,
    weight_coder,
    entropy_coder,
    prior,
    adaround,
    steps,
    density,
    seed,
    regions,
    region_map,
    device,
    quiet,
    as_json,
    workers,
    ray,
    threads,
):
    """Fit a network to SRC, code it and write an .inr file: by default latent grids under a small
    sine synthesis (grid-medium); --bpp picks the best point under a rate cap, --density prunes a SIREN.

    Several SRCs, folders (their images), --workers or --ray make a batch: one .inr per image in
    the folder -o DIR, a summary table, and a rerun skips the images already done (docs/batch.md)."""
    from inrcodec import image
    from inrcodec.config import override, prior_id
    from inrcodec.encoder.region_spec import parse_spec

    batch = len(srcs) > 1 or workers or ray is not None or any(_is_dir(s) for s in srcs)
    siren_only = {
        "--weight-coder": weight_coder, "--entropy-coder": entropy_coder, "--prior": prior,
        "--adaround": adaround, "--density": density, "--regions": regions, "--region-map": region_map,
    }  # fmt: skip
    given = [name for name, value in siren_only.items() if value is not None]
    if preset is None:
        # an option only the SIREN has, or a device only it takes (mps), picks the SIREN's default
        preset = SIREN_DEFAULT_PRESET if given or not grid_trains_on(device) else DEFAULT_PRESET
    if preset in LATENT_PRESETS:
        if given:
            raise click.UsageError(f"{', '.join(given)}: not for the latent-grid presets ({preset}): SIREN options")
        _check_device(device)  # a device this machine has, then one the grid encoder trains on
        if not grid_trains_on(device):
            raise click.UsageError(f"--device {device}: the latent-grid encoder trains on cpu or cuda")
        if bpp is not None:
            if steps is not None:
                raise click.UsageError("--steps: not with --bpp on the grid-* presets (each ladder point has its own)")
            cfg = latent_cap(bpp, seed)
        else:
            cfg = replace(
                LATENT_PRESETS[preset], **{k: v for k, v in {"steps": steps, "seed": seed}.items() if v is not None}
            )
        if batch:
            from inrcodec.cli.batch import encode_batch

            return encode_batch(
                srcs, output, force, cfg, None, None, device, quiet, as_json, workers, ray, threads or 1
            )
        return _encode_latent(srcs[0], output, force, preset, cfg, device, quiet, as_json, threads or 1)
    try:
        cfg = override(
            preset,
            bpp=bpp,
            weight_coder=weight_coder,
            steps=steps,
            seed=seed,
            density=density,
            prior=prior,
            entropy_coder=entropy_coder,
            adaround=adaround,
        )
    except ValueError as e:  # options that do not go together
        raise click.UsageError(str(e)) from None
    if adaround and regions:
        raise click.UsageError("--adaround: not with --regions (their tickets are coded to the nearest level)")
    _check_device(device)
    if batch:
        from inrcodec.cli.batch import encode_batch

        return encode_batch(
            srcs, output, force, cfg, regions, region_map, device, quiet, as_json, workers, ray, threads or 1
        )
    src = srcs[0]
    output = _file_output(output, src)

    def check():
        """Everything that can fail without torch, before any work."""
        info = image.probe(src)
        paths.check_output(output, force, src)
        _warn_extension(output)
        spec = parse_spec(regions, region_map) if regions or region_map else None
        try:  # the preset's prior was checked with the options; here its channels against the image's
            prior_id(replace(cfg, arch=replace(cfg.arch, out_features=info.channels)))
        except ValueError as e:
            raise ValueError(f"{src}: {e}") from None
        if info.warning:
            click.echo(f"warning: {src}: {info.warning}", err=True)
        return spec

    def job(spec):
        from inrcodec.encoder.pipeline import encode_array

        arr = image.load(src)
        bar = None if quiet or as_json else Bar()
        try:
            with _on_threads(threads or 1):
                if spec is not None:
                    from inrcodec.encoder.rtl import encode_regions

                    enc = encode_regions(arr, cfg, spec, region_map, device, bar)
                else:
                    try:
                        enc = encode_array(arr, cfg, device, bar)
                    except ValueError as e:  # a cap no file fits under: the line names the image
                        raise ValueError(f"{src}: {e}") from None
        finally:
            if bar:
                bar.close()
        image.atomic_write(output, lambda f: f.write(enc.data), overwrite=force)
        fell_back = cfg.fit.kernel == "auto" and enc.stats.get("kernel") == "torch" and enc.stats["device"] == "cpu"
        if fell_back and not quiet:
            from inrcodec.encoder import native

            if why := native.unavailable():  # not a GPU's fit: the native kernels could not run here
                click.echo(native.fallback_note(why), err=True)
        return enc

    spec = run_guarded(check)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=_precision_warning())  # said once above
        enc = run_guarded(lambda: job(spec))
    if as_json:
        # the keys both families' single-encode JSON share: output, preset, format_version,
        # width, height, channels, device, threads, bytes, bpp, psnr, sections (a batch's rows: bytes,
        # bpp, psnr, seconds, format_version; docs/batch.md)
        doc = dict(enc.stats, output=str(output), preset=preset, format_version=enc.data[4], threads=threads or 1)
        click.echo(json.dumps(doc, indent=2))
    else:
        s = enc.stats
        click.echo(f"{output}: {s['bytes']} bytes, {s['bpp']:.4f} bpp, {s['psnr']:.2f} dB PSNR")


@contextlib.contextmanager
def _on_threads(n: int) -> Iterator[None]:
    """One image's encode on ``n`` torch and BLAS threads, as a batch runs each image; the
    process's own setting back afterwards. One by default: torch's default (a thread per core,
    each spinning while it waits) ran an encode 8-20x slower here beside one busy process, and
    the thread count sets the bytes (docs/performance.md, "A single encode's threads")."""
    undo = limit_threads(n)
    try:
        yield
    finally:
        undo()


def _is_dir(path: Path) -> bool:
    """A folder of images to encode; a path that cannot be looked at (too long a name, no
    permission) is not one, and the image check then names it in one line."""
    try:
        return path.is_dir()
    except OSError:
        return False


def _file_output(output: Path | None, src: Path) -> Path:
    """The output of one encode: the file -o names, SRC's name with .inr in the folder -o names,
    or SRC with .inr beside it."""
    return paths.into_folder(output, paths.encoded_name(src))


def _warn_extension(output: Path) -> None:
    """Say when an .inr file goes under an image's extension (once the output checks passed)."""
    from inrcodec import image

    if output.suffix.lower() != ".inr" and output.suffix.lower() in image.image_extensions():
        click.echo(f"warning: {output}: an .inr file will be written under an image's extension", err=True)


def _check_device(device: str | None, decode: bool = False) -> None:
    """A usage error, before any work, for a --device this machine cannot run
    (config.device_problem)."""
    from inrcodec.config import device_problem

    if why := device_problem(device, decode):
        raise click.UsageError(f"--device {why}")


def _encode_latent(
    src: Path, output: Path | None, force: bool, preset: str, cfg, device: str | None, quiet, as_json, threads: int
) -> None:
    """One image with a latent-grid preset (``cfg``, with --steps and --seed applied; or, with
    --bpp, a LatentCap: the ladder's points fitted until the best that fits): fit (its steps on
    ``device``, the CPU by default), pack as format v8 (the networks coded from their shipped
    init where it has one), write atomically."""
    from inrcodec import image
    from inrcodec.config import LatentCap

    output = _file_output(output, src)
    capped = isinstance(cfg, LatentCap)

    def check():
        info = image.probe(src)
        paths.check_output(output, force, src)
        _warn_extension(output)
        if info.warning:
            click.echo(f"warning: {src}: {info.warning}", err=True)

    def job():
        from inrcodec.encoder import latent, latent_rate
        from inrcodec.encoder.progress import AfterFit

        start = time.perf_counter()
        arr = image.load(src)
        bars: list[Bar] = []

        def progress_for(point):
            """A bar per point fitted, named by its lambda when rate control tries several."""
            if quiet or as_json:
                return None
            if bars:
                bars[-1].close()
            bar = Bar()
            bars.append(bar)
            label = f"λ {point.lam:g} " if capped else ""
            stages = AfterFit(lambda stage, done, total, psnr: bar(label + stage, done, total, psnr))
            return stages.step, stages.stage

        try:
            if capped:
                say = None if quiet or as_json else lambda line: click.echo(f"{src}: {line}", err=True)
                try:
                    fit = functools.partial(latent.fit, device=device)
                    with _on_threads(threads):
                        result = latent_rate.fit_to_cap(arr, cfg, progress_for, say, fit=fit)
                except ValueError as e:  # no point fits: the line names the image
                    raise ValueError(f"{src}: {e}") from None
                fitted, point, tried = result.fitted, result.point, (result.tried, result.first_guess)
            else:
                callbacks = progress_for(cfg) or (None, None)
                with _on_threads(threads):
                    fitted, point, tried = latent.fit(arr, cfg, *callbacks, device=device), cfg, None
        finally:
            if bars:
                bars[-1].close()
        image.atomic_write(output, lambda f: f.write(fitted.data), overwrite=force)
        return fitted, point, tried, arr.shape, time.perf_counter() - start

    run_guarded(check)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=_precision_warning())  # said once above
        fitted, point, tried, arr_shape, wall = run_guarded(job)
    stats = {
        "output": str(output),
        "preset": latent_preset_name(point) if capped else preset,  # None: an unnamed point of the ladder
        "format_version": fitted.data[4],
        "width": arr_shape[1],
        "height": arr_shape[0],
        "channels": arr_shape[2],
        "device": device or "cpu",
        "threads": threads,
        "bytes": len(fitted.data),
        "bpp": fitted.bpp,
        "psnr": fitted.psnr,
        "steps": fitted.steps,
        "cpu_seconds": round(fitted.seconds, 3),
        "wall_seconds": round(wall, 3),  # reading, fitting (every point rate control tried) and coding
        "sections": {
            "context": fitted.context_bytes,
            "latents": fitted.latent_bytes,
            "synthesis": fitted.synthesis_bytes,
        },
    }
    if capped:  # the search's time, every fit's, as a batch's row counts it
        tried, guess = tried
        seconds = round(sum(t["cpu_seconds"] for t in tried), 3)
        stats.update(lam=point.lam, rate_control=tried, rate_guess=round(guess, 4), cpu_seconds=seconds)
    if as_json:
        click.echo(json.dumps(stats, indent=2))
    else:
        click.echo(f"{output}: {stats['bytes']} bytes, {stats['bpp']:.4f} bpp, {stats['psnr']:.2f} dB PSNR")


def _precision_warning():
    from inrcodec.image import PrecisionWarning

    return PrecisionWarning


@main.command()
@click.argument("src", type=paths.NonEmptyPath(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=paths.OutputPath(path_type=Path),
    help="default: SRC with .decoded.png; a folder: that name in it",
)
@click.option("-f", "--force", is_flag=True, help="overwrite OUTPUT if it exists")
@click.option("--size", type=click.IntRange(min=1), help="longer side in pixels, aspect kept")
@click.option("--width", type=click.IntRange(min=1), help="output width (height follows unless given)")
@click.option("--height", type=click.IntRange(min=1), help="output height (width follows unless given)")
@click.option("--device", help="cpu, cuda, mps (default: best available)")
@click.option("-q", "--quiet", is_flag=True, help="print nothing on success")
def decode(src, output, force, size, width, height, device, quiet):
    """Decode SRC at native size or any other; the format follows the output's extension."""
    import numpy as np

    from inrcodec import image
    from inrcodec.decoder import decode_parsed, output_size, parse
    from inrcodec.decoder.cpu import RowsDone
    from inrcodec.format import FormatError

    output = paths.into_folder(output, paths.decoded_name(src))
    if size is not None and (width is not None or height is not None):  # before the file is read
        raise click.UsageError("give --size or --width/--height, not both")
    _check_device(device, decode=True)

    def job():
        if not src.is_file():
            raise ValueError(f"{src}: no such file")
        try:
            stream = parse(src.read_bytes())
        except FormatError as e:
            raise FormatError(f"{src}: {e}") from None
        paths.check_output(output, force, src)
        hd = stream.header
        try:
            w, h = output_size((hd.width, hd.height), size, width, height)
        except ValueError as e:  # the size asked for: over the pixel limit (the options were checked above)
            raise ValueError(f"{src}: {e}") from None
        image.output_format(output, hd.channels, (w, h))
        arr, rows = np.empty((h, w, hd.channels), dtype=np.uint8), RowsDone(h)

        def render() -> None:
            try:
                decode_parsed(stream, size, width, height, device, out=arr, rows=rows)
            except FormatError as e:  # what only decoding finds: a missing prior, weights that overflow
                raise FormatError(f"{src}: {e}") from None

        # the PNG is compressed on a second thread as the bands finish (docs/performance.md)
        image.save_while_rendering(arr, output, render, rows, overwrite=force)
        return arr

    arr = run_guarded(job)
    if not quiet:
        click.echo(f"{output}: {arr.shape[1]}x{arr.shape[0]}")


@main.command()
@click.argument("src", type=paths.NonEmptyPath(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="print as JSON")
def info(src, as_json):
    """Header, sections and bytes of an .inr file."""
    from inrcodec.decoder import parse
    from inrcodec.format import container, entropy
    from inrcodec.format import latent as latent_format
    from inrcodec.metrics import bpp

    def job():
        if not src.is_file():
            raise ValueError(f"{src}: no such file")
        data = src.read_bytes()
        try:
            return data, parse(data)
        except container.FormatError as e:
            raise container.FormatError(f"{src}: {e}") from None

    data, stream = run_guarded(job)
    if isinstance(stream, latent_format.LatentFile):
        _info_latent(src, data, stream, as_json)
        return
    h = stream.header
    masks = stream.masks
    doc = {
        "file": str(src),
        "format_version": stream.version,
        "bytes": len(data),
        "bpp": bpp(len(data), h.width, h.height),
        "header": dict(h.__dict__),
        "parameters": sum(o * i + o for o, i in h.shapes()),
        "density": 1.0 if masks is None else float(masks.mean()),
        "coders": [container.WEIGHT_CODERS[c.coder] for c in stream.layers],
        "entropy_coders": [entropy.CODERS[c.entropy_coder] for c in stream.layers],
        "sections": stream.section_bytes,
    }
    if stream.regions is not None:
        doc["regions"] = {
            "kind": container.REGION_KINDS[stream.regions.kind],
            "count": stream.regions.count,
            "map": list(stream.regions.label_map().shape[::-1]),
        }
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(f"{src}: .inr version {doc['format_version']}, {len(data)} bytes, {doc['bpp']:.4f} bpp")
    click.echo(f"  image    {h.width}x{h.height}, {h.channels} channel(s)")
    click.echo(
        f"  network  SIREN {h.layers} x {h.hidden}, omega0 {h.omega0:g}/{h.omega_hidden:g}, "
        f"Fourier levels {h.pe_levels}, "
        f"{doc['parameters']} parameters, density {doc['density']:.3f}"
    )
    if "regions" in doc:
        r = doc["regions"]
        click.echo(f"  regions  {r['count']} ({r['kind']}, {r['map'][0]}x{r['map'][1]} map), one ticket each")
    click.echo(f"  coders   {', '.join(doc['coders'])}; entropy {', '.join(doc['entropy_coders'])}")
    if h.prior:
        shared = "; the file's mask is the prior's (format v6)" if stream.version == 6 else ""
        click.echo(f"  prior    {h.prior} (the weights are residuals from it{shared})")
    for name, n in stream.section_bytes.items():
        click.echo(f"  section  {name:<8} {n:>8} bytes")


def _info_latent(src: Path, data: bytes, f, as_json: bool) -> None:
    """``info`` for a version 5, 7, 8 or 9 file: grids, synthesis, the init it codes from, sections."""
    from inrcodec.format.latent import CONTEXTS, level_bytes
    from inrcodec.metrics import bpp
    from inrcodec.priors import latent as inits

    h = f.header
    init = inits.by_id(h.init).name if h.init else None  # read() has already found it
    doc = {
        "file": str(src),
        "format_version": data[4],
        "bytes": len(data),
        "bpp": bpp(len(data), h.width, h.height),
        "header": dict(h.__dict__),
        "levels": [
            {
                "size": [q.shape[2], q.shape[1]],
                "latents": int(q.size),
                "nonzero": int((q != 0).sum()),
                "bytes": round(b, 1),
            }
            for q, b in zip(f.latents, level_bytes(f))
        ],
        "synthesis_parameters": int(sum(t.size for t in f.tensors)),
        "context_parameters": 0 if f.context is None else int(sum(a.size for a in f.context)),
        "init": init,
        "sections": f.section_bytes,
    }
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(f"{src}: .inr version {doc['format_version']} (latent grids), {len(data)} bytes, {doc['bpp']:.4f} bpp")
    click.echo(f"  image      {h.width}x{h.height}, {h.channels} channel(s)")
    for i, lv in enumerate(doc["levels"]):
        w, hh = lv["size"]
        click.echo(
            f"  level {i}    {w}x{hh} x {h.latent_channels}, {lv['nonzero']} of {lv['latents']} latents nonzero, "
            f"{lv['bytes']:.0f} bytes"
        )
    kind = ("bilinear", "bicubic")[h.interpolation]
    act = ("sine", "relu")[h.activation]
    click.echo(
        f"  synthesis  {h.layers} x {h.hidden} {act} (omega {h.omega:g}), {kind} grids, Fourier levels "
        f"{h.pe_levels}, {doc['synthesis_parameters']} parameters"
    )
    model = f" ({doc['context_parameters']} parameters)" if h.context else ""
    click.echo(f"  entropy    {CONTEXTS[h.context]}{model}")
    if init:
        click.echo(f"  networks   coded as residuals from shipped init {h.init} ({init})")
    for name, n in f.section_bytes.items():
        click.echo(f"  section    {name:<9} {n:>8} bytes")


@main.command()
@click.option("--preset", type=click.Choice(list(PRESETS)), default="fast", show_default=True)
@click.option(
    "-o",
    "--outdir",
    type=paths.NonEmptyPath(file_okay=False, path_type=Path),
    default=Path("demo-out"),
    show_default=True,
)
@click.option("-f", "--force", is_flag=True, help="overwrite the demo's files in OUTDIR if they exist")
def demo(preset, outdir, force):
    """Encode the bundled sample image, decode it at native and double size, print bpp and PSNR.

    The default preset (fast) takes seconds and is not a rate-distortion setting: its figures are
    the demo's, not the codec's (README, 'Where it stands')."""
    from importlib import resources

    from inrcodec import image
    from inrcodec.config import preset as get_preset
    from inrcodec.decoder import decode as _decode

    outputs = [outdir / name for name in ("sample.inr", "sample.png", "sample@2x.png")]

    def check() -> None:
        """The three outputs, before any work: a file there is replaced only with --force."""
        if outdir.is_dir():
            for output in outputs:
                paths.check_output(output, force)

    def job():
        from inrcodec.encoder.pipeline import encode_array

        outdir.mkdir(parents=True, exist_ok=True)
        src = resources.files("inrcodec") / "data" / "sample.png"
        with resources.as_file(src) as path:
            arr = image.load(path)
        bar = Bar()
        try:
            with _on_threads(1):  # as every encode: the sample's bytes on any machine of this kind
                enc = encode_array(arr, get_preset(preset), None, bar)
        finally:
            bar.close()
        image.atomic_write(outputs[0], lambda f: f.write(enc.data), overwrite=force)
        native = _decode(enc.data)
        image.save(native, outputs[1], overwrite=force)
        image.save(_decode(enc.data, size=2 * max(arr.shape[:2])), outputs[2], overwrite=force)
        return arr, enc, native

    run_guarded(check)
    arr, enc, native = run_guarded(job)
    s = enc.stats
    click.echo(
        f"sample {arr.shape[1]}x{arr.shape[0]} -> {outdir / 'sample.inr'}: {s['bytes']} bytes, "
        f"{s['bpp']:.3f} bpp, PSNR {image.psnr(native, arr):.2f} dB "
        f"(encode {s['seconds']['fit_and_prune'] + s['seconds']['code']:.1f} s; preset {preset}: a demo, "
        "not a rate-distortion setting)"
    )
    click.echo(f"decoded: {outdir / 'sample.png'} (native), {outdir / 'sample@2x.png'} (2x, any size works)")


if __name__ == "__main__":
    main()
