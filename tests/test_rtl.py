"""Region-adaptive tickets (inrcodec/encoder/rtl.py), format v2 through the real decoder, version 1
files, crafted v2 files, and the RTL experiment (inrcodec/experiments/routing.py), on 24x24
images: a few seconds each."""

from __future__ import annotations

import json
import struct
from dataclasses import replace

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers import GOLDEN, HEADER_AT, PLAIN_VERSION, REGEN, STATS_KEYS, Golden, fix_crc, sha256, synthetic_stream

import inrcodec
from inrcodec import config, image
from inrcodec.cli import main
from inrcodec.decoder import rebuild, rebuild_regions, render
from inrcodec.decoder.network import layer_arrays
from inrcodec.encoder import regions as R
from inrcodec.encoder import rtl
from inrcodec.encoder.fit import Target
from inrcodec.encoder.mask import Mask
from inrcodec.experiments import plots, routing
from inrcodec.format import FormatError, container, entropy
from inrcodec.siren import Architecture, Siren

TINY = replace(
    config.preset("fast"),
    arch=Architecture(hidden=16, layers=3),
    fit=replace(config.preset("fast").fit, steps=200, batch=576),
    prune=replace(config.preset("fast").prune, density=0.5, rate=0.5, steps=60, rewind="early:20"),
    coder=replace(config.preset("fast").coder, qat_steps=10),
)


QUICK = replace(
    TINY, fit=replace(TINY.fit, steps=40), prune=replace(TINY.prune, steps=20), coder=replace(TINY.coder, qat_steps=5)
)


def picture(h: int = 24, w: int = 24) -> np.ndarray:
    """Smooth gradients on the left, a disc on the right: two regions with different content."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    arr = np.stack([x, y, 0.5 + 0.4 * np.sin(9 * x)], axis=2)
    disc = (x - 0.75) ** 2 + (y - 0.5) ** 2 < 0.04
    arr[disc] = (0.9, 0.2, 0.1)
    return np.round(arr * 255).astype(np.uint8)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks: one thread is ~10x faster than two on a busy 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def grid_file() -> tuple[bytes, dict]:
    torch.manual_seed(0)
    enc = rtl.encode_regions(picture(), TINY, R.parse_spec("grid:1x2"), device="cpu")
    return enc.data, enc.stats


def tiny_net(k: int = 3) -> tuple[Siren, Target, list[Mask], list[torch.Tensor]]:
    net = Siren(Architecture(hidden=8, layers=2), torch.Generator().manual_seed(1))
    target = Target.of(picture(), torch.device("cpu"))
    gen = torch.Generator().manual_seed(2)
    masks = [Mask(tuple(torch.rand(w.shape, generator=gen) < 0.5 for w in net.weights)) for _ in range(k)]
    idx = list(torch.arange(target.n).chunk(k))
    return net, target, masks, idx


def test_each_regions_gradient_touches_only_its_mask():
    net, target, masks, idx = tiny_net()
    for mask, pick in zip(masks, idx):
        net.zero_grad()
        rtl.region_loss(net, target, mask, pick).backward()
        for w, keep in zip(net.weights, mask.keep):
            assert torch.all(w.grad[~keep] == 0)
            assert torch.any(w.grad[keep] != 0)


def test_joint_training_keeps_one_tensor_and_leaves_unused_weights_alone():
    net, target, masks, idx = tiny_net()
    before = [w.detach().clone() for w in net.weights]
    one = [masks[0]]  # only region 0 trains: weights outside its mask must not move at all
    rtl.joint_train(net, target, one, idx[:1], replace(TINY.fit, batch=64), steps=5)
    for w, w0, keep in zip(net.weights, before, masks[0].keep):
        assert torch.equal(w.detach()[~keep], torch.zeros_like(w0[~keep]))  # zeroed, never updated
        assert not torch.equal(w.detach()[keep], w0[keep])
    rtl.joint_train(net, target, masks, idx, replace(TINY.fit, batch=64), steps=5)
    keep_any = rtl.union(masks)
    assert len(list(net.weights)) == 3  # one shared tensor per layer, not one per ticket
    for w, u in zip(net.weights, keep_any.keep):
        assert torch.all(w.detach()[~u] == 0)


def test_extraction_prunes_each_ticket_on_its_own_pixels():
    net, target, _, idx = tiny_net(2)
    dense = [Mask.dense(list(net.weights))] * 2
    start = net.state()
    masks = rtl.extract(net, target, dense, idx, start, replace(TINY.fit, batch=64), 20, 0.5, 1)
    assert all(abs(m.density() - 0.5) < 0.01 for m in masks)
    assert masks[0].jaccard(masks[1]) != masks[0].jaccard(masks[0])  # different pixels, different tickets
    assert all(torch.equal(a, b) for a, b in zip(net.weights, start[0]))  # rewound


def test_mean_jaccard():
    net, _, masks, _ = tiny_net(2)
    assert rtl.mean_jaccard([masks[0], masks[0]])["all"] == 1.0
    inv = Mask(tuple(~k for k in masks[0].keep))
    d = masks[0].density()
    assert rtl.mean_jaccard([masks[0], inv]) == {
        "per_layer": [0.0, 0.0, 0.0],
        "all": 0.0,
        "chance": round(d * (1 - d) / (1 - d * (1 - d)), 4),
    }


def test_v2_round_trip_through_the_decoder(grid_file):
    data, stats = grid_file
    stream = container.read(data)
    assert data[4] == PLAIN_VERSION == stream.version  # regions need no version 4 feature
    assert stream.regions.kind == container.REGION_GRID and stream.regions.count == 2
    rm = stream.region_masks
    assert rm.shape == (2, stream.masks.size) and np.array_equal(rm.any(axis=0), stream.masks)
    assert not np.array_equal(rm[0], rm[1])
    # The weights are stored once, on the union of the two tickets.
    n_values = sum(code.values_q.size for code in stream.layers)
    assert n_values == int(stream.masks.sum()) == stats["stored_params"] - sum(o for o, _ in stream.header.shapes())
    decoded = inrcodec.decode(data, device="cpu")
    assert image.psnr(decoded, picture()) == pytest.approx(stats["psnr"])
    assert stats["psnr"] > 20.0  # ~21.8 dB; with the tickets swapped ~10 dB, the union alone ~14 dB
    assert len(stats["jaccard"]) == 1 and 0 < stats["jaccard"][0]["all"] < 1
    # Each pixel through its region's ticket: region 0 is the left half.
    net = rebuild(stream)
    nets = rebuild_regions(stream, net)
    left = render(net.eval(), 24, 24, replace(nets, weights=[nets.weights[0]] * 2))
    right = render(net.eval(), 24, 24, replace(nets, weights=[nets.weights[1]] * 2))
    assert np.array_equal(decoded[:, :12], left[:, :12]) and np.array_equal(decoded[:, 12:], right[:, 12:])
    assert not np.array_equal(left, right)
    # Any resolution: at twice the size, the label map is resampled by pixel centres.
    big = inrcodec.decode(data, size=48, device="cpu")
    assert big.shape == (48, 48, 3) and image.psnr(big[::2, ::2], picture()) > 20.0


def test_label_regions_round_trip_and_cost_bytes():
    spec = R.parse_spec("kmeans:2@3")
    enc = rtl.encode_regions(picture(), QUICK, spec, device="cpu")
    stream = container.read(enc.data)
    assert stream.regions.kind == container.REGION_LABELS and stream.regions.labels.shape == (8, 8)
    assert enc.stats["sections"]["regions"] > 6  # the coded label map is in the file and counted
    assert image.psnr(inrcodec.decode(enc.data, device="cpu"), picture()) == pytest.approx(enc.stats["psnr"])


def test_one_region_and_dense_tickets_stay_expressible():
    net, _, masks, _ = tiny_net(1)
    header = container.Header(24, 24, 3, 8, 2, 30.0, 30.0)
    code = rtl.code_regions(*net.state(), masks, header, container.Regions.grid(1, 1), TINY.coder, 8)
    stream = container.read(code.data)
    assert stream.regions.count == 1 and stream.region_masks is None
    assert np.array_equal(stream.masks, masks[0].flat().numpy())
    dense = [Mask.dense(list(net.weights))] * 2
    code = rtl.code_regions(*net.state(), dense, header, container.Regions.grid(1, 2), TINY.coder, 8)
    stream = container.read(code.data)
    assert stream.masks is None and "masks" not in stream.section_bytes
    assert inrcodec.decode(code.data).shape == (24, 24, 3)


def test_version_1_files_still_decode():
    """The committed v1 golden file (its pixels are pinned by test_decoder) reads as v1, one region."""
    data = (GOLDEN / "format_v1_mixed.inr").read_bytes()
    stream = container.read(data)
    assert data[4] == 1 and stream.version == 1 and stream.regions is None and stream.region_masks is None
    net = rebuild(stream)
    assert rebuild_regions(stream, net) is None
    assert np.array_equal(inrcodec.decode(data, device="cpu"), render(net, 24, 16))
    # A v1 file knows no REGIONS section.
    with pytest.raises(FormatError, match="unknown section kind 3"):
        container.read(craft(data, [(container.SECTION_REGIONS, bytes([0, 1, 2]))], version=1))


def make_v2_golden() -> bytes:
    """A tiny v2 file with every v2 feature: a coded label map (3 regions, 6x4 cells over a 12x8
    image), 3 overlapping masks on their union, scalar and SINR layers. No training: random codes."""
    header, union, layers = synthetic_stream(seed=7, density=0.7)
    rng = np.random.default_rng(8)
    region_masks = np.zeros((3, union.size), dtype=bool)
    region_masks[rng.integers(0, 3, union.size), np.arange(union.size)] = True  # every weight has an owner
    region_masks |= rng.random((3, union.size)) < 0.4
    region_masks &= union
    labels = np.array([[0, 0, 1, 1, 1, 2], [0, 0, 1, 1, 2, 2], [0, 1, 1, 2, 2, 2], [0, 0, 0, 2, 2, 2]], np.uint8)
    regions = container.Regions(container.REGION_LABELS, 3, labels=labels)
    return container.write(header, union, layers, regions=regions, region_masks=region_masks)


def test_v2_golden_file_decodes_to_pinned_pixels():
    """Format v2 stays stable: INRCODEC_REGEN_GOLDEN=1 rewrites the file and its pinned values."""
    path = GOLDEN / "format_v2_regions.inr"
    golden = Golden("format_v2_regions.json")
    if REGEN and container.FORMAT_VERSION == 2:  # a later writer no longer writes version 2
        path.write_bytes(make_v2_golden())
    data = path.read_bytes()
    stream = container.read(data)
    assert data[4] == 2 and stream.regions.kind == container.REGION_LABELS and stream.regions.count == 3
    assert stream.region_masks.shape == (3, stream.masks.size)
    golden.check("sections", stream.section_bytes)
    golden.check("labels", sha256(stream.regions.labels))
    golden.check("region_masks", sha256(stream.region_masks))
    ws, bs = layer_arrays(stream)
    golden.check("weights", sha256(np.concatenate([a.reshape(-1) for a in ws + bs])))
    golden.check("pixels", sha256(inrcodec.decode(data, device="cpu")))
    golden.check("pixels_40x30", sha256(inrcodec.decode(data, width=40, height=30, device="cpu")))


def craft(data: bytes, first: list[tuple[int, bytes]], version: int | None = None, drop: int = 0) -> bytes:
    """``data`` with sections put in front (and the first ``drop`` removed), n_sections and CRC fixed."""
    at = HEADER_AT + container.header_struct(data[4]).size  # the body starts after this file's header
    head = bytearray(data[:at])
    if version is not None:
        assert container.header_struct(version).size == at - HEADER_AT, "same header layout only"
        head[4] = version
    sections, pos, body = [], 0, data[at:-4]
    while pos < len(body):
        kind, n = container.SECTION_FRAME.unpack_from(body, pos)
        sections.append((kind, body[pos + 5 : pos + 5 + n]))
        pos += 5 + n
    sections = first + sections[drop:]
    head[at - 1] = len(sections)  # n_sections is the last header byte
    return fix_crc(bytes(head) + b"".join(container.SECTION_FRAME.pack(k, len(p)) + p for k, p in sections) + bytes(4))


def labels_payload(count: int, mw: int, mh: int, labels: bytes | None = None) -> bytes:
    raw = bytes(mw * mh) if labels is None else labels
    return struct.pack("<BBHH", container.REGION_LABELS, count, mw, mh) + entropy.compress(raw)


def test_v2_crafted_files_raise_format_error_only(grid_file):
    data, _ = grid_file
    assert container.read(craft(data, [(3, bytes([0, 1, 2]))], drop=1)).regions.count == 2
    bad = {
        "unknown region kind": [(3, bytes([7, 1, 2]))],
        "grid 0x2": [(3, bytes([0, 0, 2]))],
        "grid 30x1": [(3, bytes([0, 30, 1]))],  # finer than the 24-pixel image
        "grid 9x9": [(3, bytes([0, 9, 9]))],  # over MAX_REGIONS
        "grid bytes": [(3, bytes([0, 1, 2, 0]))],
        "label map too wide": [(3, labels_payload(2, 60000, 1))],
        "label map absurd": [(3, struct.pack("<BBHH", 1, 2, 65535, 65535) + entropy.compress(bytes(1000)))],
        "label map short": [(3, labels_payload(2, 4, 4, bytes(15)))],
        "label of no region": [(3, labels_payload(2, 2, 2, bytes([0, 1, 2, 0])))],
        "zero regions": [(3, labels_payload(0, 2, 2))],
        "65 regions": [(3, labels_payload(65, 2, 2))],
        "regions twice": [(3, bytes([0, 1, 2]))] * 2,
        "empty regions": [(3, b"")],
    }
    for name, sections in bad.items():
        with pytest.raises(FormatError):
            container.read(craft(data, sections, drop=1))
            pytest.fail(name)
    # Masks for three regions in a file that declares two: a pattern bit of no region.
    stream = container.read(data)
    rm = np.concatenate([stream.region_masks, stream.region_masks[:1]])
    payload = entropy.compress(container.pack_patterns(rm))
    with pytest.raises(FormatError):
        container.read(craft(data, [(3, bytes([0, 1, 2])), (1, payload)], drop=2))
    # Regions after the masks.
    union = entropy.compress(container.pack_bits(stream.masks))
    with pytest.raises(FormatError, match="misplaced"):
        container.read(craft(data, [(1, union), (3, bytes([0, 1, 2]))], drop=2))
    later = container.FORMAT_VERSION + 1
    with pytest.raises(FormatError, match=f"version {later}"):
        container.read(data[:4] + bytes([later]) + data[5:])
    for n in range(len(data)):  # every truncation
        with pytest.raises(FormatError):
            container.read(data[:n])


def test_cli_encode_regions_json_and_info(tmp_path, monkeypatch):
    monkeypatch.setitem(config.PRESETS, "fast", QUICK)
    src = tmp_path / "pic.png"
    image.save(picture(), src)
    args = ["encode", str(src), "--preset", "fast", "--steps", "100", "--json"]
    res = CliRunner().invoke(main, args + ["--regions", "grid:1x2"])
    assert res.exit_code == 0, res.output
    stats = json.loads(res.output)
    assert STATS_KEYS <= set(stats)  # what a single-mask encode reports, and more
    assert stats["regions"]["count"] == 2 and len(stats["jaccard"]) == 1
    assert len(stats["jaccard"][0]["per_layer"]) == 4
    res = CliRunner().invoke(main, ["info", str(tmp_path / "pic.inr"), "--json"])
    doc = json.loads(res.output)
    assert doc["format_version"] == PLAIN_VERSION
    assert doc["regions"] == {"kind": "grid", "count": 2, "map": [2, 1]}
    res = CliRunner().invoke(main, args + ["--regions", "hexagons", "-o", str(tmp_path / "other.inr")])
    assert res.exit_code == 1 and "Error: bad --regions" in res.output


def test_experiment_runs_and_resumes(tmp_path):
    cfg = routing.RtlConfig(
        hidden=12,
        layers=2,
        fit_steps=60,
        batch=576,
        rewind="early:20",
        retrain_steps=20,
        extract_steps=10,
        qat_steps=5,
        levels=(50,),
    )
    arr, spec = picture(), R.parse_spec("grid:1x2")
    first = routing.run(arr, cfg, spec, tmp_path / "run", device="cpu", source="pic")
    more = routing.run(arr, replace(cfg, levels=(50, 75)), spec, tmp_path / "run", device="cpu", source="pic")
    assert more["levels"][0] == first["levels"][0]  # resumed, not recomputed
    lv = more["levels"][1]
    for key in ("imp", "rtl"):
        data = (tmp_path / "run" / lv[key]["file"]).read_bytes()
        assert len(data) == lv[key]["bytes"]
        assert image.psnr(inrcodec.decode(data, device="cpu"), arr) == pytest.approx(lv[key]["psnr"], abs=1e-3)
    assert lv["rtl"]["density"] == 0.25 and lv["imp"]["density"] == 0.25
    assert json.loads((tmp_path / "run" / "results.json").read_text())["levels"][1] == lv
    # Resumed = uninterrupted: the same numbers (all but the timings) from one run of both levels.
    whole = routing.run(arr, replace(cfg, levels=(50, 75)), spec, tmp_path / "whole", device="cpu", source="pic")

    def untimed(rec):
        return {m: {k: v for k, v in rec[m].items() if "seconds" not in k} for m in ("imp", "rtl")}

    assert [untimed(x) for x in whole["levels"]] == [untimed(x) for x in more["levels"]]
    assert plots.rtl_run(more, tmp_path / "run") == [tmp_path / "run" / "rtl.png"]
    assert (tmp_path / "run" / "rtl.png").stat().st_size > 1000
    with pytest.raises(ValueError, match=r"another set-up \(config.hidden differ\)"):
        routing.run(arr, replace(cfg, hidden=10), spec, tmp_path / "run", device="cpu", source="pic")
    with pytest.raises(ValueError, match=r"another set-up \(config.levels differ\)"):  # done levels stay done
        routing.run(arr, replace(cfg, levels=(60,)), spec, tmp_path / "run", device="cpu", source="pic")
