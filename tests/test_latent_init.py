"""The latent family's shipped network inits (inrcodec/encoder/latent_init.py)."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import pytest
import torch

from inrcodec.config import (
    LATENT_LADDER,
    LATENT_LOW_FULL_LADDER,
    LATENT_PRESET_LADDER,
    LATENT_PRESETS,
    LATENT_RDO_LADDER,
    latent_record,
)
from inrcodec.encoder import latent, latent_init


def test_the_shipped_init_is_pinned_and_fits_the_quarter_resolution_points():
    values = latent_init.arrays("quarter-v1")
    assert all(v.dtype == np.float32 for v in values.values())
    assert [latent_init.fits(p, "quarter-v1") for p in LATENT_RDO_LADDER] == [True] * 3 + [False] * 6
    assert [latent_init.fits(p, "half-v1") for p in LATENT_RDO_LADDER] == [False] * 3 + [True] * 3 + [False] * 3
    assert [latent_init.fits(p, "quarter-v2") for p in LATENT_RDO_LADDER] == [True] * 3 + [False] * 6
    assert [latent_init.fits(p, "full-v1") for p in LATENT_RDO_LADDER] == [False] * 6 + [True] * 3
    # the presets' ladder: three 1/4-resolution, then seven full-resolution points, each from the init of
    # its shape, the four-pass points (the 1/4-resolution ones and the top) from the four-pass twins
    # (grid-medium, off the ladder, from half-v1)
    assert [p.init for p in LATENT_LOW_FULL_LADDER] == ["quarter-v2"] * 3 + ["full-v1"] * 7
    twins = {"quarter-v2": "quarter-4p-v1", "full-v1": "full-4p-v1"}
    assert [p.init for p in LATENT_PRESET_LADDER] == [
        twins[q.init] if p.context == "four-pass" else q.init
        for p, q in zip(LATENT_PRESET_LADDER, LATENT_LOW_FULL_LADDER, strict=True)
    ]
    assert [p.lam for p in LATENT_PRESET_LADDER if p.context == "four-pass"] == [3.2e-2, 1.6e-2, 8e-3, 2.5e-4]
    assert all(latent_init.fits(p, p.init) for p in LATENT_PRESET_LADDER)
    medium = LATENT_PRESETS["grid-medium"]
    assert medium.init == "half-v1" and latent_init.fits(medium, "half-v1")
    assert latent_init.fits(LATENT_PRESETS["grid-low"], "quarter-v1")
    assert not latent_init.fits(replace(LATENT_PRESETS["grid-low"], context_hidden=8), "quarter-v1")
    with pytest.raises(ValueError, match="unknown latent init 'nope'"):
        latent_init.arrays("nope")


def test_a_changed_init_file_is_refused(monkeypatch):
    bad = replace(latent_init.INITS["quarter-v1"], sha256="0" * 64)
    monkeypatch.setitem(latent_init.INITS, "quarter-v1", bad)
    with pytest.raises(ValueError, match="does not match its SHA-256"):
        latent_init.arrays("quarter-v1")


def test_a_model_starts_from_the_init_and_the_seeded_draws_are_unchanged():
    """The networks hold the init's values; everything else the seed draws is as without it."""
    cfg = replace(LATENT_PRESETS["grid-low"], init="", context="checkerboard")  # its network as the init's
    torch.manual_seed(cfg.seed)
    plain = latent.LatentImage(64, 48, cfg)
    after_plain = torch.rand(4)
    torch.manual_seed(cfg.seed)
    model = latent.LatentImage(64, 48, replace(cfg, init="quarter-v1"))
    assert torch.equal(torch.rand(4), after_plain)
    values = latent_init.arrays("quarter-v1")
    for key, v in model.linears.state_dict().items():
        assert np.array_equal(v.numpy(), values[f"linears.{key}"])
    for key, v in model.arm.state_dict().items():
        assert np.array_equal(v.numpy(), values[f"arm.{key}"])
    assert not torch.equal(model.linears[0].weight, plain.linears[0].weight)
    with pytest.raises(ValueError, match="'quarter-v1' is for another network shape"):
        latent.LatentImage(64, 48, replace(LATENT_PRESETS["grid-medium"], init="quarter-v1"))
    with pytest.raises(ValueError, match="has a context network; the config has none"):
        latent.LatentImage(64, 48, replace(cfg, context="none", init="quarter-v1"))


def test_the_init_field_leaves_earlier_records_alone():
    """latent_record omits init at "" (the committed results keep their fingerprints)."""
    cfg = LATENT_LADDER[5]
    assert "init" not in latent_record(cfg)
    assert latent_record(replace(cfg, init="quarter-v1"))["init"] == "quarter-v1"


@pytest.mark.parametrize("channels", [1, 4])
def test_grey_and_rgba_images_keep_the_random_init(channels):
    """The inits have three outputs and were measured on RGB: a grey or RGBA fit starts as it did
    before them, and fits (the shape check) says so."""
    cfg = LATENT_PRESETS["grid-low"]
    torch.manual_seed(cfg.seed)
    plain = latent.LatentImage(32, 24, replace(cfg, init=""), channels)
    torch.manual_seed(cfg.seed)
    model = latent.LatentImage(32, 24, cfg, channels)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), plain.state_dict().values()))
    assert not latent_init.fits(cfg, "quarter-v1", channels) and latent_init.fits(cfg, "quarter-v1", 3)


def test_every_shipped_init_is_package_data():
    """An editable install reads the files from the tree; a wheel has only what pyproject names."""
    from fnmatch import fnmatch
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib", reason="tomllib is in Python 3.11+")
    root = Path(latent_init.__file__).parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["inrcodec"]
    for init in latent_init.INITS.values():
        assert any(fnmatch(f"priors/data/{init.file}", pat) for pat in patterns), init.file


# each init and the probe's output it was exported from (committed beside its rows and log)
EXPORTED_FROM = {
    "quarter-v1": "shared-prior-probe",
    "half-v1": "shared-prior-probe-half",
    "quarter-v2": "shared-prior-probe-41",
    "full-v1": "shared-prior-probe-full",
    "quarter-4p-v1": "shared-prior-probe-41-fourpass",
    "full-4p-v1": "shared-prior-probe-full-fourpass",
}


@pytest.mark.parametrize("name", list(latent_init.INITS))
def test_every_init_is_exported_again_to_the_same_bytes(name, tmp_path):
    """The export is deterministic and each shipped file is the committed training run's networks:
    shared_prior_probe --export, rerun, gives the pinned SHA-256; it never writes over a file."""
    from benchmarks import shared_prior_probe as sp
    from benchmarks.runner import REPO

    shared = REPO / "benchmarks" / "results" / "latent" / EXPORTED_FROM[name] / "shared.pt"
    dest = tmp_path / "init.npz"
    assert sp.export(shared, dest) == 0
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == latent_init.INITS[name].sha256
    before = dest.stat().st_mtime_ns
    assert sp.export(shared, dest) == 2 and dest.stat().st_mtime_ns == before
    assert sp.export(tmp_path / "none.pt", tmp_path / "other.npz") == 2 and not (tmp_path / "other.npz").exists()


def test_four_pass_inits_fit_only_four_pass_points():
    """A four-pass init's context network reads 20 integers: it fits a point with format v9's
    model and not a checkerboard one, while a checkerboard init fits both (widened)."""
    from inrcodec.config import LATENT_PRESETS

    low = replace(LATENT_PRESETS["grid-low"], init="", context="checkerboard")
    assert latent_init.fits(replace(low, context="four-pass"), "quarter-4p-v1")
    assert not latent_init.fits(low, "quarter-4p-v1")
    assert latent_init.fits(replace(low, context="four-pass"), "quarter-v2") and latent_init.fits(low, "quarter-v2")
    with pytest.raises(ValueError, match="'quarter-4p-v1' is for another context network than the config's"):
        latent.LatentImage(64, 48, replace(low, init="quarter-4p-v1"))  # 20 columns under the checkerboard
