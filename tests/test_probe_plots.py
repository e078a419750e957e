"""Probe plots: each writes a real PNG, headless, without touching pyplot or the global backend."""

from __future__ import annotations

import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from activelora.errors import DataError
from activelora.probes import (
    plot_confidence_histogram,
    plot_gap_scatter,
    plot_reliability,
    plot_round_curves,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk; fails unless the file is a PNG."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def probe_data():
    rng = np.random.default_rng(0)
    z = rng.normal(1.0, 2.0, 200)
    conf = 1 / (1 + np.exp(-1.8 * z))
    correct = rng.random(200) < 1 / (1 + np.exp(-z))
    u_base = rng.random(200)
    u_full = 0.5 * u_base + 0.5 * rng.random(200)
    return conf, correct, u_base, u_full


def curves():
    xs = [20, 40, 60]
    return {
        "accuracy": {s: [(x, 0.3 + 0.005 * x + 0.05 * i, 0.03) for x in xs]
                     for i, s in enumerate(["random", "star"])},
        "spearman": {"random": [(20, None, None), (40, 0.2, 0.1), (60, 0.4, None)],
                     "star": [(60, 0.5, 0.05), (20, 0.1, 0.05)]},  # unsorted x is fine
        "ece": {"star": [(20, 0.2, 0.0)]},  # a strategy missing from a panel
    }


@pytest.mark.parametrize("name", ["reliability", "reliability_mass", "histogram", "scatter", "curves"])
def test_each_plot_writes_a_png(tmp_path, probe_data, name):
    conf, correct, u_base, u_full = probe_data
    path = tmp_path / "sub" / f"{name}.png"  # the folder does not exist yet
    draw = {
        "reliability": lambda: plot_reliability(conf, correct, 10, path),
        "reliability_mass": lambda: plot_reliability(conf, correct, 10, path, binning="mass"),
        "histogram": lambda: plot_confidence_histogram(conf, correct, path),
        "scatter": lambda: plot_gap_scatter(u_base, u_full, correct, path),
        "curves": lambda: plot_round_curves(curves(), path),
    }[name]
    assert draw() == path
    width, height = png_size(path)
    assert width >= 300 and height >= 300
    assert path.stat().st_size > 5000  # an empty canvas compresses to far less


def test_degenerate_inputs_still_plot(tmp_path):
    # one example, one confidence value, all one class, constant uncertainties
    for binning in ("width", "mass"):
        png_size(plot_reliability([1.0], [False], 10, tmp_path / f"r_{binning}.png", binning=binning))
    png_size(plot_confidence_histogram([0.5, 0.5], [True, True], tmp_path / "h.png"))
    png_size(plot_gap_scatter([0.1, 0.1], [0.2, 0.2], [True, True], tmp_path / "s.png"))
    png_size(plot_round_curves({"ece": {"random": [(10, 0.1, 0.0)]}}, tmp_path / "c.png"))


def test_bad_inputs_raise(tmp_path):
    with pytest.raises(DataError, match="differ in length"):
        plot_gap_scatter([0.1, 0.2], [0.1], [True, False], tmp_path / "x.png")
    with pytest.raises(DataError, match="outside"):
        plot_reliability([1.5], [True], 10, tmp_path / "x.png")
    with pytest.raises(DataError, match="no curves"):
        plot_round_curves({}, tmp_path / "x.png")
    with pytest.raises(DataError, match="labels, mean, std"):
        plot_round_curves({"ece": {"random": [(10, 0.1)]}}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_no_pyplot_and_no_backend_change(tmp_path):
    # A fresh interpreter: other tests in this process may have imported pyplot themselves.
    code = textwrap.dedent(f"""
        import sys
        import matplotlib
        before = matplotlib.rcParams._get_backend_or_none()
        from activelora.probes import plot_reliability
        assert "matplotlib.pyplot" not in sys.modules, "import pulled in pyplot"
        plot_reliability([0.2, 0.9], [0, 1], 5, {str(tmp_path / 'r.png')!r})
        assert "matplotlib.pyplot" not in sys.modules, "drawing pulled in pyplot"
        assert matplotlib.rcParams._get_backend_or_none() == before
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    png_size(tmp_path / "r.png")
