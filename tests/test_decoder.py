"""decoder/: output sizes, rebuilding, chunked rendering, determinism, import isolation, and the
golden files that guard the format's stability."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import GOLDEN, REGEN, REPO, SAMPLE, Golden, sha256, synthetic_file, synthetic_stream

from inrcodec import coords, image
from inrcodec.decoder import decode, output_size, rebuild, render
from inrcodec.decoder.network import layer_arrays
from inrcodec.format import container, entropy
from inrcodec.format.weights import dequantize
from inrcodec.image import MAX_PIXELS

CURRENT_GOLDEN = "format_v6_shared_mask.inr"  # the one INRCODEC_REGEN_GOLDEN=1 (re)writes: the newest version's
CURRENT_PRIOR = 2  # the shipped prior it names (width 80, a shared mask of density 0.5)
render_module = importlib.import_module("inrcodec.decoder.render")  # the package exports a function of that name


# --- sizes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,expected",
    [
        ({}, (48, 32)),
        ({"size": 96}, (96, 64)),  # longer side, aspect kept
        ({"size": 64}, (64, 43)),  # 32 * 64 / 48 = 42.67, rounded
        ({"size": 1}, (1, 1)),  # never below one pixel
        ({"width": 24}, (24, 16)),  # height follows
        ({"height": 8}, (12, 8)),  # width follows
        ({"width": 10, "height": 50}, (10, 50)),  # both: aspect not kept
    ],
)
def test_output_size(args, expected):
    assert output_size((48, 32), **args) == expected
    if set(args) <= {"size"}:  # a portrait image: the same, transposed
        assert output_size((32, 48), **args) == expected[::-1]


@pytest.mark.parametrize(
    "args",
    [
        {"size": 10, "width": 5},
        {"size": 10, "height": 5},
        {"width": 0},
        {"height": -3},
        {"width": 9000, "height": 9000},  # over MAX_PIXELS
    ],
)
def test_output_size_errors(args):
    with pytest.raises(ValueError):
        output_size((48, 32), **args)


def test_pixel_limit_is_inclusive():
    side = int(MAX_PIXELS**0.5)
    assert output_size((10, 10), width=side, height=MAX_PIXELS // side) == (side, MAX_PIXELS // side)


# --- rebuild and render -----------------------------------------------------------------------


def test_rebuild_puts_dequantized_values_at_surviving_positions():
    data = synthetic_file(sinr_layers=())
    stream = container.read(data)
    net = rebuild(stream)
    assert not net.training
    keeps = container.split_masks(stream.masks, stream.header)
    for w, b, keep, code in zip(net.weights, net.biases, keeps, stream.layers):
        w = w.detach().numpy()
        assert w.shape == keep.shape and not w[~keep].any()
        np.testing.assert_array_equal(w[keep], dequantize(code.values_q, code.step))
        np.testing.assert_array_equal(b.detach().numpy(), dequantize(code.bias_q, code.bias_step))
    assert net.arch.hidden == 8 and net.arch.layers == 2 and net.arch.out_features == 3


def test_render_in_bands_equals_one_pass(monkeypatch):
    net = rebuild(container.read(synthetic_file()))
    whole = render(net, 37, 23)
    monkeypatch.setattr(render_module, "CHUNK_PIXELS", 50)  # 1 row per band, then a partial last
    np.testing.assert_array_equal(render(net, 37, 23), whole)
    monkeypatch.setattr(render_module, "CHUNK_PIXELS", 100)  # 2 rows per band
    np.testing.assert_array_equal(render(net, 37, 23), whole)


def test_render_samples_pixel_centres():
    """The pixels of the network at (x, y) are what coords say: check one against a direct evaluation."""
    from inrcodec import coords

    net = rebuild(container.read(synthetic_file()))
    out = render(net, 12, 8)
    with torch.no_grad():
        direct = net(coords.grid(8, 12)).clamp(-1, 1).numpy()
    np.testing.assert_array_equal(out, image.from_unit(direct).reshape(8, 12, 3))


def test_decode_sizes_and_determinism(encoded_scalar):
    data = encoded_scalar.data
    native = decode(data, device="cpu")
    assert native.shape == (32, 48, 3) and native.dtype == np.uint8
    np.testing.assert_array_equal(decode(data, device="cpu"), native)  # same file, same pixels
    assert decode(data, size=96, device="cpu").shape == (64, 96, 3)
    assert decode(data, width=24, device="cpu").shape == (16, 24, 3)
    assert decode(data, width=5, height=7, device="cpu").shape == (7, 5, 3)


def test_upsampled_decode_is_the_same_picture(encoded_scalar, crop):
    """Rendering at 2x and averaging 2x2 blocks lands close to the native decode (any-resolution)."""
    big = decode(encoded_scalar.data, size=96, device="cpu").astype(np.float64)
    down = big.reshape(32, 2, 48, 2, 3).mean(axis=(1, 3)).round().astype(np.uint8)
    assert image.psnr(down, crop) > 24.0


# --- decoder isolation ----------------------------------------------------------------------------


def test_decoder_imports_neither_encoder_nor_sklearn(tmp_path):
    path = tmp_path / "x.inr"
    path.write_bytes(synthetic_file())
    script = textwrap.dedent(
        """
        import sys
        import inrcodec.decoder
        from inrcodec.decoder import decode
        from PIL import Image
        pixels = decode(open(sys.argv[1], "rb").read(), device="cpu")
        assert pixels.shape == (8, 12, 3)
        shared = decode(open(sys.argv[2], "rb").read(), device="cpu")  # v6: a prior with its mask
        assert shared.shape == (16, 24, 3)
        if "torch" in sys.modules:  # the CPU path is NumPy: torch's import costs more than a decode
            sys.exit(4)
        with Image.open(sys.argv[1]) as im:
            im.load()
        bad = [m for m in sys.modules if m.startswith(("inrcodec.encoder", "sklearn", "inrcodec.config"))]
        print("loaded:", bad)
        sys.exit(3 if bad else 0)
        """
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    v6 = str(GOLDEN / "format_v6_shared_mask.inr")
    res = subprocess.run(
        [sys.executable, "-c", script, str(path), v6], capture_output=True, text=True, env=env, cwd=REPO
    )
    assert res.returncode == 0, res.stdout + res.stderr


# --- golden files --------------------------------------------------------------------------------


def make_golden(entropy_coder: int = 0, prior: int = 0) -> bytes:
    """A tiny file with every feature of the current format: Fourier features, masks, scalar and
    SINR layers, range coded, residuals from a shipped prior of width 80 (regions have their own
    golden file, tests/test_rtl.py). With prior 2 (format_v6_shared_mask.inr) the mask is the
    prior's (no pruning, no MASKS section); with prior 1 (format_v4_prior.inr) half the weights are
    pruned by magnitude. ``entropy_coder`` 0 and ``prior`` 0 make the older goldens' features only
    (format_v3_mixed.inr, format_v4_range.inr).

    Runs only with INRCODEC_REGEN_GOLDEN=1; the bytes are committed under tests/golden/.
    """
    from inrcodec import priors
    from inrcodec.config import FitConfig
    from inrcodec.encoder import quantize, sparse_code
    from inrcodec.encoder.fit import Target, train
    from inrcodec.encoder.mask import Mask
    from inrcodec.siren import Architecture, Siren

    arr = image.load(SAMPLE)[96:112, 120:144]  # 24x16
    arch = Architecture(hidden=80, layers=3, pe_levels=6) if prior else Architecture(hidden=12, layers=2, pe_levels=3)
    net = Siren(arch, torch.Generator().manual_seed(0))
    anchor = None
    if prior:
        pw, pb = priors.arrays(prior)
        anchor = [torch.from_numpy(a.copy()) for a in pw], [torch.from_numpy(a.copy()) for a in pb]
        net.load(*anchor)
    target: Target = Target.of(arr, torch.device("cpu"))
    cfg = FitConfig(steps=60 if prior else 300, batch=384)
    shared = priors.mask(prior) if prior else None
    if shared is None:
        train(net, target, cfg, cfg.steps)
        mask = Mask.dense(list(net.weights)).prune(list(net.weights), 0.5)
        train(net, target, cfg, 20 if prior else 100, mask=mask, seed_offset=1)
    else:
        mask = Mask(tuple(torch.from_numpy(m.copy()) for m in shared))
        train(net, target, cfg, cfg.steps + 20, mask=mask)
    a = arch
    header = container.Header(24, 16, 3, a.hidden, a.layers, a.omega0, a.omega_hidden, a.pe_levels, prior)
    layers = []
    for i, (w, b, keep) in enumerate(zip(net.weights, net.biases, mask.keep)):
        values = w.detach().numpy()[keep.numpy()]
        bias = b.detach().numpy()
        if anchor is not None:  # the residuals from the prior
            values = values - anchor[0][i].numpy()[keep.numpy()]
            bias = bias - anchor[1][i].numpy()
        bstep = quantize.step_for(bias, 12)
        bq = quantize.quantize(bias, bstep)
        if i == 1:
            sc = sparse_code.encode(values, 16, 64, 6, 99, 8)
            layers.append(
                container.LayerCode(i, container.CODER_SINR, bstep, bq, sc.coef_step, sc.coef_q, sc.params, sc.indices)
            )
        else:
            step = quantize.step_for(values, 8)
            q = quantize.quantize(values, step)
            layers.append(container.LayerCode(i, container.CODER_SCALAR, bstep, bq, step, q))
    masks = np.concatenate([k.numpy().reshape(-1) for k in mask.keep])
    return container.write(header, masks, [replace(lc, entropy_coder=entropy_coder) for lc in layers])


def _golden_names() -> list[str]:
    names = set(Golden("inr_files.json").values.get("files", []))
    return sorted(names | {CURRENT_GOLDEN}) if REGEN else sorted(names)


def test_golden_files_are_listed():
    assert "format_v1_mixed.inr" in _golden_names()


@pytest.mark.parametrize("name", _golden_names())
def test_golden_file_decodes_to_pinned_pixels(name):
    """Old files must keep decoding: weights bit-exact, pixels as pinned (on this platform)."""
    golden = Golden("inr_files.json")
    path = GOLDEN / name
    if REGEN and name == CURRENT_GOLDEN:
        path.write_bytes(make_golden(entropy.RANGE, prior=CURRENT_PRIOR))
        golden.check("files", sorted(set(golden.values.get("files", [])) | {name}))
    data = path.read_bytes()
    stream = container.read(data)
    coders = [container.WEIGHT_CODERS[c.coder] for c in stream.layers]
    golden.check(f"{name}:coders", coders)
    ws, bs = layer_arrays(stream)
    # Weights are bit-exact on every platform (format/weights.py): a mismatch is a format break.
    golden.check(f"{name}:weights", sha256(np.concatenate([a.reshape(-1) for a in ws + bs])))
    # Pixels are deterministic on one platform; another may differ by float rounding.
    golden.check(f"{name}:pixels", sha256(decode(data, device="cpu")))
    golden.check(f"{name}:pixels_40x30", sha256(decode(data, width=40, height=30, device="cpu")))
    assert stream.masks is not None and "sinr" in coders and "scalar" in coders


def test_fourier_features_numpy_and_torch_agree():
    """The NumPy decoder's features are the torch encoder's up to the two libraries' float32 sine
    and cosine (the coordinates themselves exactly), and the version 3 golden file renders to
    the same pixels on both paths."""
    from inrcodec.decoder import cpu
    from inrcodec.decoder.network import rebuild
    from inrcodec.decoder.render import render
    from inrcodec.siren import fourier_features

    xy = np.random.default_rng(0).uniform(-1, 1, (500, 2)).astype(np.float32)
    for levels in (0, 1, 6, 12):
        got = cpu.fourier_features(xy, levels)
        want = fourier_features(torch.from_numpy(xy), levels).numpy()
        assert got.dtype == np.float32 and got.shape == want.shape == (500, 2 * (1 + 2 * levels))
        np.testing.assert_array_equal(got[:, :2], want[:, :2])
        np.testing.assert_allclose(got, want, atol=2e-6, rtol=0)
    data = (GOLDEN / "format_v3_mixed.inr").read_bytes()
    stream = container.read(data)
    assert stream.header.pe_levels == 3
    np.testing.assert_array_equal(decode(data, device="cpu"), render(rebuild(stream), 24, 16))


def test_first_layer_by_axis_is_the_first_layer():
    """The NumPy decoder splits W0 γ(x, y) into a per-column and a per-row term; it is the same
    layer up to float rounding, and the rendered pixels match the plain forward pass."""
    from dataclasses import replace

    from inrcodec.decoder import cpu
    from inrcodec.decoder.arrays import layer_arrays
    from inrcodec.image import from_unit

    header, masks, codes = synthetic_stream(width=40, height=30, hidden=16, density=1.0, sinr_layers=())
    header = replace(header, pe_levels=5)
    rng = np.random.default_rng(1)
    codes = [replace(c, values_q=rng.integers(-60, 60, n)) for c, n in zip(codes, container.n_weights(header))]
    stream = container.read(container.write(header, None, codes))
    ws, bs = layer_arrays(stream)
    xs, ys = coords.axis_np(40), coords.axis_np(30)
    split = cpu.axis_term(ys, ws[0], 1, 5)[:, None, :] + cpu.axis_term(xs, ws[0], 0, 5)[None, :, :] + bs[0]
    full = cpu.fourier_features(coords.rows_np(0, 30, 30, 40), 5) @ ws[0].T + bs[0]
    np.testing.assert_allclose(split.reshape(full.shape), full, rtol=0, atol=1e-5)
    plain = cpu.forward(coords.rows_np(0, 30, 30, 40), ws, bs, 30.0, 30.0, 5)
    plain = from_unit(np.clip(plain, -1, 1)).reshape(30, 40, 3).astype(int)
    got = cpu.render([ws], bs, 30.0, 30.0, 40, 30, threads=1, pe_levels=5).astype(int)
    assert np.abs(got - plain).max() <= 1 and (got == plain).mean() > 0.99


def test_numpy_render_is_the_same_on_any_number_of_threads(monkeypatch):
    """Bands are fixed by CHUNK_PIXELS, not by the thread count: threads change the time, never a pixel."""
    from inrcodec.decoder import cpu
    from inrcodec.decoder.arrays import layer_arrays, region_weights

    stream = container.read(synthetic_file())
    ws, bs = layer_arrays(stream)
    hd = stream.header
    monkeypatch.setattr(cpu, "CHUNK_PIXELS", 64)  # many bands on a small image
    one = cpu.render(region_weights(stream, ws), bs, hd.omega0, hd.omega_hidden, 40, 33, threads=1)
    for n in (2, 3, 8):
        np.testing.assert_array_equal(
            cpu.render(region_weights(stream, ws), bs, hd.omega0, hd.omega_hidden, 40, 33, threads=n), one
        )


def test_add_rows_is_the_broadcast_addition():
    """add_rows adds the bias ROW_GROUP rows at a time: the same float32 sums, bit for bit, for any
    row count (a remainder, fewer rows than a group) and width, and on a non-contiguous array."""
    from inrcodec.decoder import cpu

    rng = np.random.default_rng(0)
    for n, k in ((8192, 80), (1000, 80), (8192, 3), (5, 7), (cpu.ROW_GROUP, 1)):
        h = rng.standard_normal((n, k)).astype(np.float32) * 30
        b = rng.standard_normal(k).astype(np.float32)
        got = h.copy()
        cpu.add_rows(got, b)
        np.testing.assert_array_equal(got, h + b)
    h = rng.standard_normal((200, 12)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    view = h[:, ::2]  # not contiguous: added in place all the same
    want = view + b
    cpu.add_rows(view, b)
    np.testing.assert_array_equal(h[:, ::2], want)


def test_threads_from_the_environment(monkeypatch):
    from inrcodec.decoder import cpu

    monkeypatch.setenv(cpu.THREADS_ENV, "3")
    assert cpu.default_threads() == 3
    monkeypatch.delenv(cpu.THREADS_ENV)
    assert cpu.default_threads() >= 1
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(cpu.THREADS_ENV, bad)
        with pytest.raises(ValueError, match="INRCODEC_THREADS must be a positive integer"):
            cpu.default_threads()


def test_the_prior_golden_file_names_prior_1_and_decodes_through_it():
    """format_v4_prior.inr stores residuals from shipped prior 1: its header names it, and the
    weights the decoder rebuilds are the prior's plus the residuals (not the residuals alone)."""
    from inrcodec import priors

    data = (GOLDEN / "format_v4_prior.inr").read_bytes()
    stream = container.read(data)
    assert stream.version == 4 and stream.header.prior == 1
    assert {c.entropy_coder for c in stream.layers} == {entropy.RANGE}
    ws, _bs = layer_arrays(stream)
    keep = container.split_masks(stream.masks, stream.header)[0]
    residual = dequantize(stream.layers[0].values_q, stream.layers[0].step)
    np.testing.assert_array_equal(ws[0][keep], residual + priors.arrays(1)[0][0][keep])
    assert image.psnr(decode(data, device="cpu"), image.load(SAMPLE)[96:112, 120:144]) > 15


def test_the_shared_mask_golden_file_takes_its_mask_from_prior_2():
    """format_v6_shared_mask.inr names shipped prior 2, which carries a mask of density 0.5: the
    file has no MASKS section, and every weight off that mask decodes to exactly zero."""
    from inrcodec import priors

    assert priors.mask(1) is None  # the dense prior
    shared = priors.mask(2)
    assert sum(int(m.sum()) for m in shared) == round(0.5 * sum(m.size for m in shared))
    data = (GOLDEN / "format_v6_shared_mask.inr").read_bytes()
    stream = container.read(data)
    assert data[4] == 6 and stream.header.prior == 2 and "masks" not in stream.section_bytes
    ws, _bs = layer_arrays(stream)
    for w, m, p in zip(ws, shared, priors.arrays(2)[0]):
        assert not w[~m].any() and not p[~m].any()
    assert image.psnr(decode(data, device="cpu"), image.load(SAMPLE)[96:112, 120:144]) > 15


def test_decoding_into_an_array_marks_every_band_and_gives_the_same_pixels(monkeypatch):
    """decode_parsed(out=, rows=): the pixels of a plain decode, every row marked done by the
    return, the NumPy renders' bands one by one (what the CLI's writer follows)."""
    from inrcodec.decoder import cpu, decode_parsed, parse

    stream = parse(synthetic_file())
    monkeypatch.setattr(cpu, "CHUNK_PIXELS", 80)  # bands of two rows at 40x30
    marks = []

    class Rows(cpu.RowsDone):
        def mark(self, y0: int, y1: int) -> None:
            marks.append((y0, y1))
            super().mark(y0, y1)

    for device in ("cpu", "torch-cpu"):
        out, rows = np.zeros((30, 40, 3), np.uint8), Rows(30)
        marks.clear()
        assert decode_parsed(stream, width=40, height=30, device=device, out=out, rows=rows) is out
        assert np.array_equal(out, decode_parsed(stream, width=40, height=30, device=device))
        rows.wait(30)  # returns: every row is done
        bands = [(y, y + 2) for y in range(0, 30, 2)] if device == "cpu" else []  # torch: no bands marked
        assert sorted(marks) == bands  # and every row done by the return (rows.wait above)
    with pytest.raises(ValueError, match="out must be"):
        decode_parsed(stream, width=40, height=30, device="cpu", out=np.zeros((30, 41, 3), np.uint8))


def test_rows_done_waits_for_the_first_rows_and_stops_on_abort():
    from inrcodec.decoder.cpu import RenderAborted, RowsDone

    rows = RowsDone(10)
    rows.mark(4, 10)
    rows.mark(0, 4)
    rows.wait(10)  # both bands, out of order: done
    rows = RowsDone(10)
    rows.mark(0, 4)
    rows.wait(4)
    rows.abort()
    with pytest.raises(RenderAborted):
        rows.wait(5)
    with pytest.raises(RenderAborted):  # also for rows already done: the writer's last check
        rows.wait(2)
    rows = RowsDone(10)
    rows.mark(0, 4)
    rows.finish()  # after some bands: every row
    rows.wait(10)
