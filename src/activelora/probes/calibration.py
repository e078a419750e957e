"""Calibration probes over per-example ``confidence`` and ``correct`` arrays.

``confidence[i]`` is the probability the model gives its own answer to example ``i`` (for a
generated answer: the sequence probability p(y|x)); ``correct[i]`` says whether that answer
was right. Every function takes 1-D arrays of equal length n >= 1, shape (n,).

Binning conventions (shared by :func:`ece`, :func:`mce` and :func:`reliability_table`):

* ``binning="width"`` (Guo et al. 2017, "On Calibration of Modern Neural Networks"):
  edges are ``edges[k] = k / bins`` (float64, correctly rounded, so 3/10 is the float 0.3);
  bin ``b`` is the half-open interval ``(edges[b], edges[b + 1]]`` except that bin 0 also
  holds 0, i.e. bin 0 is ``[0, edges[1]]``. Equivalently: the first bin whose upper edge is
  >= the confidence. A confidence exactly on an edge goes to the bin below it (0.3 is in
  bin 2 of 10, ``(0.2, 0.3]``); 1.0 is in the last bin.
* ``binning="mass"`` (equal-mass / adaptive bins, Nixon et al. 2019, "Measuring Calibration
  in Deep Learning"): let ``r_i`` be the number of examples with confidence strictly below
  ``confidence[i]``; example ``i`` goes to bin ``floor(r_i * bins / n)``. With distinct
  confidences the bins hold ``n // bins`` or ``n // bins + 1`` examples each. Ties are never
  split: every member of a group of equal confidences gets the rank of the group's first
  member, so the whole group lands in that member's bin. The result then does not depend on
  the order of the input, but bins can be uneven and some can be empty.

Empty bins contribute nothing to ECE and are skipped by MCE.

Bad arrays (empty, wrong shape, NaN, confidence outside [0, 1], correctness other than 0/1)
raise :class:`~activelora.errors.DataError`; bad settings (``bins``, ``binning``, ``eps``,
temperature) raise :class:`~activelora.errors.ConfigError`. Both subclass ``ValueError``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError

BINNINGS = ("width", "mass")
DEFAULT_EPS = 1e-12
# Temperature search range: wide enough for any realistic rescaling of sequence
# probabilities, narrow enough that separable data (optimum at T -> 0) stays finite.
DEFAULT_T_BOUNDS = (1e-2, 1e2)


# --------------------------------------------------------------------------- validation


def as_1d_float(values: Any, name: str) -> np.ndarray:
    """``values`` as a finite float64 array of shape (n,); DataError otherwise."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name}: expected an array of numbers ({exc})") from None
    if arr.ndim != 1:
        raise DataError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{name}: value at index {i} is not finite ({arr[i]!r})")
    return arr


def as_confidence(confidence: Any, name: str = "confidence") -> np.ndarray:
    """Confidences as float64 (n,), each in [0, 1]."""
    arr = as_1d_float(confidence, name)
    bad = (arr < 0.0) | (arr > 1.0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{name}: value at index {i} is {arr[i]!r}, outside [0, 1]")
    return arr


def as_correct(correct: Any, name: str = "correct") -> np.ndarray:
    """Correctness as float64 (n,) of 0.0/1.0; accepts bools or numbers that are exactly 0 or 1."""
    arr = as_1d_float(correct, name)
    bad = (arr != 0.0) & (arr != 1.0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{name}: value at index {i} is {arr[i]!r}; expected 0/1 or a bool")
    return arr


def check_same_length(**arrays: np.ndarray) -> int:
    """The common length of the arrays; DataError if they differ or are empty."""
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise DataError(f"arrays differ in length: {shown}")
    n = next(iter(lengths.values()))
    if n == 0:
        raise DataError(f"{' and '.join(lengths)} are empty; need at least one example")
    return n


def _pair(confidence: Any, correct: Any) -> tuple[np.ndarray, np.ndarray]:
    conf = as_confidence(confidence)
    corr = as_correct(correct)
    check_same_length(confidence=conf, correct=corr)
    return conf, corr


def _check_bins(bins: Any) -> int:
    # bool is an int subclass; bins=True is a mistake, not one bin.
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ConfigError(f"bins must be a positive integer, got {bins!r}")
    return int(bins)


def _check_binning(binning: Any) -> str:
    if binning not in BINNINGS:
        raise ConfigError(f"binning must be one of {', '.join(BINNINGS)}; got {binning!r}")
    return binning


def _check_eps(eps: Any) -> float:
    if not (isinstance(eps, (int, float)) and 0.0 < eps < 0.5):
        raise ConfigError(f"eps must be a number in (0, 0.5), got {eps!r}")
    return float(eps)


# --------------------------------------------------------------------------- binning


def _width_edges(bins: int) -> np.ndarray:
    # k / bins, not np.linspace (which gives 3 * 0.1 = 0.30000000000000004 for k = 3).
    return np.arange(bins + 1, dtype=np.float64) / bins


def bin_index(confidence: np.ndarray, bins: int, binning: str) -> np.ndarray:
    """Bin of each example, int64 (n,), in [0, bins), by the conventions in the module docstring."""
    n = len(confidence)
    if binning == "width":
        edges = _width_edges(bins)
        # side="left" gives i with edges[i-1] < c <= edges[i]: the (lo, hi] convention.
        idx = np.searchsorted(edges, confidence, side="left") - 1
        return np.clip(idx, 0, bins - 1)  # c == 0 gives -1: it belongs to bin 0
    # "mass": rank = number of strictly smaller confidences, identical for all tied members.
    below = np.searchsorted(np.sort(confidence), confidence, side="left")
    return (below * bins) // n  # exact integer arithmetic, no float rounding at boundaries


def _bin_sums(conf: np.ndarray, corr: np.ndarray, bins: int, binning: str):
    idx = bin_index(conf, bins, binning)
    count = np.bincount(idx, minlength=bins)
    sum_conf = np.bincount(idx, weights=conf, minlength=bins)
    sum_corr = np.bincount(idx, weights=corr, minlength=bins)
    return idx, count, sum_conf, sum_corr


# --------------------------------------------------------------------------- metrics


def _clip(conf: np.ndarray, eps: float) -> np.ndarray:
    # For eps below 2**-53, 1 - eps rounds to 1.0 and log(1 - p) would be -inf: the upper
    # limit is then the largest float below 1. Long generated answers can have sequence
    # probabilities far below the default eps; pass a smaller eps to keep them apart.
    return np.clip(conf, eps, min(1.0 - eps, np.nextafter(1.0, 0.0)))


def ece(confidence: Any, correct: Any, bins: int = 10, binning: str = "width") -> float:
    """Expected calibration error, ``sum_b |B_b|/n * |acc(B_b) - conf(B_b)|``.

    Guo et al. 2017 (equal-width bins); Nixon et al. 2019 for ``binning="mass"``.
    In [0, 1]; 0 when every bin's accuracy equals its mean confidence.
    """
    conf, corr = _pair(confidence, correct)
    _, _, sum_conf, sum_corr = _bin_sums(conf, corr, _check_bins(bins), _check_binning(binning))
    # |B|/n * |sum_corr/|B| - sum_conf/|B|| = |sum_corr - sum_conf| / n; empty bins give 0.
    return float(np.abs(sum_corr - sum_conf).sum() / len(conf))


def mce(confidence: Any, correct: Any, bins: int = 10, binning: str = "width") -> float:
    """Maximum calibration error, ``max_b |acc(B_b) - conf(B_b)|`` over non-empty bins (Guo et al. 2017)."""
    conf, corr = _pair(confidence, correct)
    _, count, sum_conf, sum_corr = _bin_sums(conf, corr, _check_bins(bins), _check_binning(binning))
    full = count > 0  # at least one bin is non-empty because n >= 1
    return float(np.max(np.abs(sum_corr[full] - sum_conf[full]) / count[full]))


def brier(confidence: Any, correct: Any) -> float:
    """Brier score of correctness, ``mean_i (conf_i - correct_i)^2`` (Brier 1950). In [0, 1]."""
    conf, corr = _pair(confidence, correct)
    return float(np.mean((conf - corr) ** 2))


def nll(confidence: Any, correct: Any, eps: float = DEFAULT_EPS) -> float:
    """Negative log-likelihood of correctness under the confidence (binary cross-entropy).

    ``-mean_i [y_i log p_i + (1 - y_i) log(1 - p_i)]`` with ``p = clip(conf, eps, 1 - eps)``
    so that a confident mistake costs ``-log(eps)`` (about 27.6 for the default) and not inf.
    ``eps`` may be as small as about 1e-300; the upper limit never rounds to 1.0.
    """
    conf, corr = _pair(confidence, correct)
    p = _clip(conf, _check_eps(eps))
    return float(-np.mean(corr * np.log(p) + (1.0 - corr) * np.log1p(-p)))


def reliability_table(
    confidence: Any, correct: Any, bins: int = 10, binning: str = "width"
) -> list[dict[str, Any]]:
    """One row per bin (always ``bins`` rows, bin ``b`` at index ``b``), JSON-safe.

    Keys: ``lo``, ``hi`` (the bin's edges for ``"width"``; for ``"mass"`` the smallest and
    largest confidence it holds, ``None`` when empty), ``count``, ``confidence`` (mean
    confidence) and ``accuracy`` (``None`` when the bin is empty).
    ECE is ``sum(count / n * |accuracy - confidence|)`` over the rows.
    """
    conf, corr = _pair(confidence, correct)
    bins, binning = _check_bins(bins), _check_binning(binning)
    idx, count, sum_conf, sum_corr = _bin_sums(conf, corr, bins, binning)
    if binning == "width":
        edges = _width_edges(bins)
        lo: list[float | None] = [float(e) for e in edges[:-1]]
        hi: list[float | None] = [float(e) for e in edges[1:]]
    else:
        lo, hi = [None] * bins, [None] * bins
        for b in np.flatnonzero(count):
            members = conf[idx == b]
            lo[b], hi[b] = float(members.min()), float(members.max())
    rows = []
    for b in range(bins):
        c = int(count[b])
        rows.append({
            "lo": lo[b],
            "hi": hi[b],
            "count": c,
            "confidence": float(sum_conf[b] / c) if c else None,
            "accuracy": float(sum_corr[b] / c) if c else None,
        })
    return rows


def calibration_report(confidence: Any, correct: Any, bins: int = 10) -> dict[str, Any]:
    """All calibration numbers at once, as plain JSON-safe floats and ints (never NaN).

    Keys: ``ece`` (equal-width), ``ece_equal_mass``, ``mce`` (equal-width), ``brier``,
    ``nll``, ``mean_confidence``, ``accuracy``, ``n``, ``bins``.
    Empty input raises :class:`~activelora.errors.DataError` (every number would be undefined).
    """
    conf, corr = _pair(confidence, correct)
    bins = _check_bins(bins)
    return {
        "ece": ece(conf, corr, bins, "width"),
        "ece_equal_mass": ece(conf, corr, bins, "mass"),
        "mce": mce(conf, corr, bins, "width"),
        "brier": brier(conf, corr),
        "nll": nll(conf, corr),
        "mean_confidence": float(conf.mean()),
        "accuracy": float(corr.mean()),
        "n": int(len(conf)),
        "bins": bins,
    }


# --------------------------------------------------------------------------- temperature


def _logit(conf: np.ndarray, eps: float) -> np.ndarray:
    p = _clip(conf, eps)
    return np.log(p) - np.log1p(-p)


def _sigmoid(t: np.ndarray) -> np.ndarray:
    # exp(-log(1 + e^-t)) never overflows, for either sign of t.
    return np.exp(-np.logaddexp(0.0, -t))


def _check_temperature(temperature: Any) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.floating)):
        raise ConfigError(f"temperature must be a positive number, got {temperature!r}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ConfigError(f"temperature must be a positive finite number, got {temperature!r}")
    return float(temperature)


def apply_temperature(confidence: Any, temperature: float, eps: float = DEFAULT_EPS) -> np.ndarray:
    """Rescaled confidences ``sigmoid(logit(conf) / T)``, float64 (n,).

    Confidences are clipped to ``[eps, 1 - eps]`` before the logit, so 0 and 1 map to
    ``sigmoid(±logit(1 - eps) / T)``. ``T > 1`` pulls towards 0.5 (less confident),
    ``T < 1`` pushes towards 0 and 1. See :func:`fit_temperature`.
    """
    conf = as_confidence(confidence)
    t = _check_temperature(temperature)
    return _sigmoid(_logit(conf, _check_eps(eps)) / t)


def fit_temperature(
    confidence: Any,
    correct: Any,
    *,
    bounds: tuple[float, float] = DEFAULT_T_BOUNDS,
    eps: float = DEFAULT_EPS,
    tol: float = 1e-10,
) -> float:
    """Temperature ``T`` in ``bounds`` minimising the NLL of correctness on a labelled split.

    Temperature scaling (Guo et al. 2017, Sec. 4.2) divides the logits by one scalar ``T``.
    Our confidences are probabilities p(y|x) of a generated answer, a binary "is it right?"
    forecast, so we scale its log-odds (a Platt-style binary temperature with no bias term):

        conf_T = sigmoid(z / T),   z = logit(clip(conf, eps, 1 - eps)),
        T* = argmin_T  mean_i  y_i softplus(-z_i / T) + (1 - y_i) softplus(z_i / T).

    With ``beta = 1/T`` this is a one-feature logistic regression, convex in ``beta``, so
    the minimiser is where ``f'(beta) = mean_i z_i (sigmoid(beta z_i) - y_i)`` crosses zero;
    we find it by Newton steps kept inside a shrinking bracket (bisection on ``log T`` when
    a step leaves it). If the minimum lies outside ``bounds`` the nearer bound is returned:
    perfectly separated data push ``T`` to the lower bound, confidences that carry no signal
    (or anti-signal) to the upper one. When ``f`` is flat (every z = 0) we return 1.0.
    Fit on held-out data, never on the examples the model was trained on. Sequence
    probabilities of long answers can fall below ``eps`` and would all get the same logit:
    pass a smaller ``eps`` (down to about 1e-300) to keep them apart.
    """
    conf, corr = _pair(confidence, correct)
    eps = _check_eps(eps)
    try:
        t_lo, t_hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ConfigError(f"bounds must be two numbers (low, high), got {bounds!r}") from None
    if not (0 < t_lo < t_hi and math.isfinite(t_hi)):
        raise ConfigError(f"bounds must satisfy 0 < low < high < inf, got {bounds!r}")
    z = _logit(conf, eps)
    if not np.any(z):
        return 1.0

    def grad(beta: float) -> float:
        return float(np.mean(z * (_sigmoid(beta * z) - corr)))

    def hess(beta: float) -> float:
        s = _sigmoid(beta * z)
        return float(np.mean(z * z * s * (1.0 - s)))

    b_lo, b_hi = 1.0 / t_hi, 1.0 / t_lo  # f' is non-decreasing in beta
    if grad(b_lo) >= 0.0:
        return t_hi
    if grad(b_hi) <= 0.0:
        return t_lo
    beta = 1.0
    if not b_lo < beta < b_hi:
        beta = math.sqrt(b_lo * b_hi)
    for _ in range(200):
        g = grad(beta)
        if g > 0.0:
            b_hi = beta
        elif g < 0.0:
            b_lo = beta
        else:
            break
        h = hess(beta)
        step = beta - g / h if h > 0.0 else math.nan
        # Newton is quadratic near the root; far from it (flat sigmoid) it can overshoot.
        if not b_lo < step < b_hi:
            step = math.sqrt(b_lo * b_hi)
        done = abs(step - beta) <= tol * beta
        beta = step
        if done:
            break
    return float(1.0 / beta)
