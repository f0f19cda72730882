"""The CUDA path (issue 16 item 5): encode on the GPU, the GPU decode against the NumPy decode, a
4096 px render. Marked ``gpu``; skipped, with the reason, where CUDA is not available.
scripts/gpu-check runs them (``pytest -m gpu``) on a machine with a GPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import tiny_config

from inrcodec import decode, image

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (scripts/gpu-check runs these on a GPU)"),
]


@pytest.fixture(scope="module")
def cuda_encoded(crop):
    from inrcodec.encoder.pipeline import encode_array

    return encode_array(crop, tiny_config(), "cuda")


def test_encode_on_cuda(crop, cuda_encoded):
    """A whole encode on the GPU writes a file that the NumPy decoder reads back to the picture."""
    pixels = decode(cuda_encoded.data, device="cpu")
    assert pixels.shape == crop.shape
    assert image.psnr(pixels, crop) > 18


def test_adaround_on_cuda(crop):
    """An encode with AdaRound's rounding on the GPU: its file decodes on the CPU to the PSNR the
    encoder measured on the GPU (within 0.05 dB: the two decoders differ by a grey level at most)."""
    from dataclasses import replace

    from inrcodec.encoder.pipeline import encode_array
    from inrcodec.format import container

    cfg = tiny_config(steps=120, adaround_steps=150, adaround_start="unrounded")  # pruned to 60 %: the mask too
    enc = encode_array(crop, cfg, "cuda")
    plain = encode_array(crop, replace(cfg, coder=replace(cfg.coder, adaround_steps=0)), "cuda")
    levels = zip(container.read(enc.data).layers, container.read(plain.data).layers)
    assert any(a.values_q.tolist() != b.values_q.tolist() for a, b in levels)  # AdaRound chose other levels
    assert image.psnr(decode(enc.data, device="cpu"), crop) == pytest.approx(enc.stats["psnr"], abs=0.05)


@pytest.mark.parametrize("fused", [False, True])
def test_fused_step_on_cuda(crop, fused):
    """Both fit steps run on CUDA and fit the crop."""
    from dataclasses import replace

    from inrcodec.encoder.fit import Target, evaluate, train
    from inrcodec.siren import Architecture, Siren

    target = Target.of(crop, torch.device("cuda"))
    net = Siren(Architecture(hidden=32, layers=3, pe_levels=6), torch.Generator().manual_seed(0)).cuda()
    train(net, target, replace(tiny_config().fit, fused=fused), 300)
    assert evaluate(net, target) > 22


def test_cuda_decode_equals_numpy_within_one_grey_level(encoded_scalar):
    data = encoded_scalar.data
    for kwargs in ({}, {"size": 300}):
        gpu = decode(data, device="cuda", **kwargs).astype(np.int16)
        cpu = decode(data, device="cpu", **kwargs).astype(np.int16)
        assert gpu.shape == cpu.shape
        assert np.abs(gpu - cpu).max() <= 1


def test_4096_px_render_on_cuda(encoded_scalar):
    out = decode(encoded_scalar.data, size=4096, device="cuda")
    assert max(out.shape[:2]) == 4096
    ref = decode(encoded_scalar.data, size=4096, device="cpu")
    assert np.abs(out.astype(np.int16) - ref.astype(np.int16)).max() <= 1


def test_latent_grid_file_decodes_on_cuda_as_on_the_cpu(crop):
    """A latent-grid file (format version 8): the CUDA render within one grey level of NumPy's."""
    from inrcodec.encoder import latent

    data = latent.fit(crop, latent.LatentConfig(levels=3, hidden=8, steps=40, batch=256, context="checkerboard")).data
    for size in (None, 4096):
        gpu = decode(data, size=size, device="cuda").astype(int)
        cpu = decode(data, size=size, device="cpu").astype(int)
        assert gpu.shape == cpu.shape and np.abs(gpu - cpu).max() <= 1


def test_latent_grid_fit_on_cuda_matches_the_cpu_fit(crop):
    """The grid family's training steps on the GPU (``latent.fit(device="cuda")``): a step reads
    the same draws as on the CPU, so its loss and gradient agree within float rounding; a whole
    fit's trajectory parts from the CPU's in its last bits, and seeds alone move this tiny fit
    over 3 dB (31.2 to 34.5 on the CPU), so the fit is held to a floor a broken step would miss,
    its bytes to within a fifth of the CPU's, and the NumPy decoder reads its file."""
    import copy

    from inrcodec import coords
    from inrcodec.encoder import latent
    from inrcodec.pixels import to_unit

    cfg = latent.LatentConfig(
        levels=3, hidden=16, steps=300, batch=1536, context="checkerboard", quantizer="soft-fast", tune_steps=20
    )
    torch.manual_seed(0)
    model = latent.LatentImage(32, 48, cfg)
    with torch.no_grad():
        model.flat.normal_(0, 1)
    xy, colours = coords.grid(32, 48), torch.from_numpy(to_unit(crop).reshape(-1, 3))
    pixels = torch.randperm(32 * 48)[:500]
    grads = []
    for m, dev in ((model, "cpu"), (copy.deepcopy(model).to("cuda"), "cuda")):
        step = latent.Step(m, torch.Generator().manual_seed(0))
        loss, _ = step.loss(xy.to(dev), colours.to(dev), pixels.to(dev), 0.3)
        grads.append((float(loss.detach()), torch.autograd.grad(loss, m.flat)[0].cpu()))
    assert grads[1][0] == pytest.approx(grads[0][0], rel=1e-4)
    assert torch.allclose(grads[1][1], grads[0][1], rtol=1e-3, atol=1e-6)
    cpu = latent.fit(crop, cfg)
    gpu = latent.fit(crop, cfg, device="cuda")
    assert decode(gpu.data, device="cpu").shape == crop.shape
    assert gpu.psnr > 28 and abs(len(gpu.data) / len(cpu.data) - 1) < 0.2


@pytest.mark.parametrize("second_order", [False, True])
def test_prior_training_on_cuda(tmp_path, second_order):
    """Meta-training (``inrcodec prior train --device cuda``) runs on the GPU, lowers its loss and
    writes its log (tiny network and images, as tests/test_meta.py trains on the CPU)."""
    import json

    from inrcodec.encoder import meta

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:16, 0:16] / 16
    base = np.stack([0.5 + 0.3 * np.sin(2 * np.pi * (x + 0.5 * y) + c) for c in range(3)], -1)
    images = [np.clip((base + rng.uniform(-0.1, 0.1, 3)) * 255, 0, 255).astype(np.uint8) for _ in range(4)]
    cfg = meta.MetaConfig(
        hidden=16, layers=2, pe_levels=2, outer_steps=40, outer_lr=3e-3, inner_lr=1e-3, meta_batch=2, pixels=64,
        probe_every=0, log_every=5, checkpoint_every=0, checkpoint_seconds=1e9, second_order=second_order,
    )  # fmt: skip
    torch.cuda.reset_peak_memory_stats()
    state = meta.train(cfg, tmp_path / "run", tmp_path, images=images, device="cuda")
    assert torch.cuda.max_memory_allocated() > 0  # it ran there, not on a silent fall-back
    losses = [r["loss"] for r in state.log]
    assert np.mean(losses[-2:]) < 0.7 * np.mean(losses[:2])
    assert json.loads((tmp_path / "run" / meta.CONFIG).read_text())["device"].startswith("cuda")
