"""The experiments on a plain install (no matplotlib), their options, and their shared checkpoint
helper (inrcodec/experiments/, inrcodec/cli/experiments.py): tiny runs, seconds in all."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import REPO

from inrcodec import image
from inrcodec.cli import main
from inrcodec.experiments import checkpoint, plots, routing

COMMITTED = REPO / "docs" / "rtl"  # the committed RTL runs


@pytest.fixture
def no_matplotlib(monkeypatch):
    """matplotlib cannot be imported, as on a plain ``pip install -e .`` (it is in the bench extra)."""
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)
    assert not plots.available()


@pytest.fixture
def pic(tmp_path):
    y, x = np.mgrid[0:40, 0:56] / 56.0
    arr = np.stack([np.sin(7 * x) * 0.5 + 0.5, np.cos(5 * y) * 0.5 + 0.5, (x + y) % 1.0], axis=2)
    path = tmp_path / "pic.png"
    image.save(np.round(arr * 255).astype(np.uint8), path)
    return path


def run_plain(args: list[str], later: str) -> str:
    """Run a command without matplotlib: it succeeds and says once how to draw the plots later."""
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    skipped = [line for line in res.output.splitlines() if "plots skipped" in line]
    assert skipped == [
        "plots skipped (matplotlib is not installed); to draw them: pip install matplotlib (or the bench extra), "
        f"then {later}"
    ]
    return res.output


def test_lottery_finishes_without_matplotlib(no_matplotlib, pic, tmp_path):
    out = tmp_path / "lot"
    args = ["lottery", str(pic), "-o", str(out), "--size", "16", "--hidden", "8", "--layers", "2", "--steps", "5"]
    output = run_plain(
        args + ["--rounds", "2", "--grid-rounds", "0,1", "-q"], f"inrcodec lottery --plots-only {out} --grid-rounds 0,1"
    )
    assert f"{out}: results.json, results.csv, jaccard.csv (" in output
    for name in ("results.json", "results.csv", "jaccard.csv", "state.pt"):
        assert (out / name).stat().st_size > 0
    assert [p.name for p in out.glob("*.png")] == ["target.png"]  # the plots are not there
    assert len(json.loads((out / "results.json").read_text())["rounds"]) == 2
    # Asked for plots alone without matplotlib: an error, one line.
    again = CliRunner().invoke(main, ["lottery", "--plots-only", str(out)])
    assert again.exit_code == 1 and again.output == (
        "Error: matplotlib is not installed; pip install matplotlib (or the bench extra)\n"
    )


def test_rtl_quick_try_finishes_without_matplotlib(no_matplotlib, pic, tmp_path):
    out = tmp_path / "rtl"
    args = ["rtl", str(pic), "-o", str(out), "--size", "24", "--steps", "30", "--levels", "50", "--hidden", "8"]
    output = run_plain(args + ["--layers", "2", "--regions", "grid:1x2"], f"inrcodec rtl --plots-only {out}")
    assert f"{out}: results.json, *.inr (" in output
    doc = json.loads((out / "results.json").read_text())
    assert doc["setup"]["shape"] == [17, 24, 3]  # 40x56 shrunk to a longer side of 24
    cfg = doc["setup"]["config"]  # --steps 30 scales the preset's 1500 / 600 / 300 / 100 and early:100
    assert (cfg["fit_steps"], cfg["retrain_steps"], cfg["extract_steps"], cfg["qat_steps"]) == (30, 12, 6, 2)
    assert cfg["rewind"] == "early:2" and cfg["levels"] == [50]
    for name in ("results.json", "state.pt", "dense.inr", "imp_s50.inr", "rtl_s50.inr"):
        assert (out / name).stat().st_size > 0
    assert not (out / "rtl.png").exists()


def test_plots_only_draws_a_finished_run(tmp_path):
    """The command a plain install prints, run once matplotlib is there."""
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.json").write_text((COMMITTED / "kodim01" / "results.json").read_text())
    res = CliRunner().invoke(main, ["rtl", "--plots-only", str(out)])
    assert res.exit_code == 0, res.output
    assert res.output == f"{out}: rtl.png\n" and (out / "rtl.png").stat().st_size > 1000


@pytest.mark.parametrize(
    "args, message",
    [
        (["lottery", "PIC", "--prune", "1.5"], "Invalid value for '--prune'"),
        (["lottery", "PIC", "--tickets", "winner,winner"], "give each ticket once"),
        (["lottery", "PIC", "--grid-rounds", "0,x"], "give integers separated by commas"),
        (["lottery", "PIC", "--size", "4"], "Invalid value for '--size'"),
        (["lottery"], "Missing argument 'SRC'"),
        (["lottery", "PIC", "--plots-only", "."], "not both"),
        (["rtl", "PIC", "--levels", "75,50"], "increasing percentages in (0, 100)"),
        (["rtl", "PIC", "--levels", "50,100"], "increasing percentages in (0, 100)"),
        (["rtl", "PIC", "--steps", "0"], "Invalid value for '--steps'"),
        (["rtl", "PIC", "--size", "32", "--region-map", "PIC"], "--size cannot be used with --region-map"),
        (["rtl", "missing.png"], "does not exist"),
    ],
)
def test_bad_options_are_refused_before_any_work(pic, tmp_path, args, message):
    args = [str(pic) if a == "PIC" else a for a in args]
    res = CliRunner().invoke(main, args + ["-o", str(tmp_path / "out")])
    assert res.exit_code == 2 and message in res.output, res.output
    assert not (tmp_path / "out").exists()


def test_check_same_setup():
    old = {"source": "a.png", "config": {"hidden": 8, "levels": [25, 50], "rounds": 3}}
    ok = [
        {"source": "a.png", "config": {"hidden": 8, "levels": (25, 50, 75), "rounds": 3}},  # levels extended
        {"source": "a.png", "config": {"hidden": 8, "levels": [25], "rounds": 3}},  # or cut short
    ]
    for new in ok:
        checkpoint.check_same_setup("run", old, new, grows="config.levels")
    bad = {"source": "b.png", "config": {"hidden": 9, "levels": [30, 50], "rounds": 4}}
    with pytest.raises(ValueError) as e:
        checkpoint.check_same_setup("run", old, bad, grows="config.levels")
    assert str(e.value) == (
        "run holds a run with another set-up (config.hidden, config.levels, config.rounds, source differ); "
        "use another -o or --fresh"
    )
    checkpoint.check_same_setup("run", {"hidden": 8, "rounds": 3}, {"hidden": 8, "rounds": 9}, grows="rounds")


def test_rtl_summary_runs_without_matplotlib(tmp_path):
    """``python -m inrcodec.experiments.routing summarize`` on the committed runs: the tables are
    the committed ones, and the plots are skipped with one line when matplotlib is missing."""
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'matplotlib':\n"
        "            raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from inrcodec.experiments.routing import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    runs = [str(COMMITTED / n) for n in ("kodim01", "kodim05", "kodim15", "kodim23")]
    proc = subprocess.run(
        [sys.executable, "-c", blocker, "summarize", str(tmp_path), *runs], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("plots skipped (summary.png, regions.png)")
    assert (tmp_path / "summary.md").read_text() == (COMMITTED / "summary.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.md"]


def test_scaled_config_keeps_the_shape():
    cfg = routing.PRESETS["cpu"].scaled(3000)
    assert (cfg.fit_steps, cfg.retrain_steps, cfg.extract_steps, cfg.qat_steps, cfg.rewind) == (
        3000, 1200, 600, 200, "early:200",
    )  # fmt: skip
    assert routing.PRESETS["cpu"].scaled(1500) == routing.PRESETS["cpu"]
