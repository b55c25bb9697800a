"""Statistics of a gradient signal g(x) over a 1-D input grid (Balduzzi et al. 2017,
arXiv:1702.08591): correlation between points, autocorrelation by lag, the slope of the
power spectrum, and the white- and brown-noise references the paper compares nets with.
Plain numpy on whatever ``shatter`` measured; no model in sight.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

def correlation_matrix(G: np.ndarray | torch.Tensor | Sequence[Any]) -> np.ndarray:
    """Pearson correlation between grid points i and j, over the columns of ``G``: (n, n).

    ``G`` is (n, k): row i holds k gradients at point x_i, e.g. the k units of
    ``feature_gradients`` (correlation over units), or the input gradients of k nets with
    different seeds stacked as columns (correlation over seeds, the expectation over
    weights in Balduzzi et al.'s Theorems 1 and 3). A sequence of 1-D signals is read as one
    signal per seed and stacked as columns. Points with no variation get correlation 0.
    """
    if isinstance(G, (list, tuple)):
        G = np.stack([np.asarray(g, dtype=float).ravel() for g in G], axis=1)
    G = np.asarray(G, dtype=float)
    if G.ndim != 2 or G.shape[1] < 2:
        raise ValueError("need a matrix (points x units or points x seeds) with at least 2 columns")
    with np.errstate(invalid="ignore", divide="ignore"):
        C = np.corrcoef(G)
    C = np.nan_to_num(C, nan=0.0)
    np.fill_diagonal(C, 1.0)
    return C


def autocorrelation(g: np.ndarray | torch.Tensor | Sequence[float],
                    max_lag: int | None = None) -> np.ndarray:
    """Normalised autocorrelation of the mean-centred signal, lags 0..max_lag (lag 0 = 1).

    r(k) = Σ_t g_t g_{t+k} / Σ_t g_t² (the usual biased estimator), as in the
    autocorrelation plots of Balduzzi et al. 2017, Fig. 2. White noise: r(1) ≈ 0 (±1/√n);
    brown noise: r(1) ≈ 1. Default ``max_lag`` = n // 2. A constant signal (perfectly
    smooth, e.g. a linear net) gets r = 1 at every lag.
    """
    g = np.asarray(g, dtype=float).ravel()
    n = g.size
    max_lag = n // 2 if max_lag is None else int(max_lag)
    if n < 2 or not 0 <= max_lag < n:
        raise ValueError(f"max_lag must be between 0 and {n - 1} for a signal of {n} points")
    g = g - g.mean()
    energy = float(g @ g)
    if energy <= 1e-300 * n:
        return np.ones(max_lag + 1)
    return np.array([g[:n - k] @ g[k:] for k in range(max_lag + 1)]) / energy


def spectrum_slope(g: np.ndarray | torch.Tensor | Sequence[float]) -> float:
    """Slope of log power vs log frequency (least squares over the non-DC frequencies).

    White noise ≈ 0; brown noise ≈ −2 in theory (Balduzzi et al. 2017 call ResNet gradients
    "brown"). On a finite discrete random walk this estimator gives ≈ −1.8, because its
    spectrum 1/(4·sin²(πf)) flattens near the Nyquist frequency.
    """
    g = np.asarray(g, dtype=float).ravel()
    if g.size < 4:
        raise ValueError("need at least 4 points to fit a spectrum slope")
    power = np.abs(np.fft.rfft(g - g.mean()))[1:] ** 2
    freq = np.fft.rfftfreq(g.size)[1:]
    return float(np.polyfit(np.log(freq), np.log(power + 1e-300), 1)[0])


def white_noise(n: int, seed: int = 0) -> np.ndarray:
    """n i.i.d. standard normal samples: the 'shattered' reference."""
    return np.random.default_rng(seed).standard_normal(n)


def brown_noise(n: int, seed: int = 0) -> np.ndarray:
    """Cumulative sum of white noise (a random walk): the ResNet reference."""
    return np.cumsum(white_noise(n, seed))


def noise_references(n: int, seed: int = 0, max_lag: int | None = None) -> dict[str, dict[str, list[float]]]:
    """White and brown noise of length ``n`` with their autocorrelations: the two references
    Balduzzi et al. 2017 (Fig. 1-2) draw beside the nets' gradients. JSON-safe, for figures."""
    n = max(int(n), 2)
    return {name: {"gradients": sig.tolist(), "autocorr": autocorrelation(sig, max_lag).tolist()}
            for name, sig in (("white noise", white_noise(n, seed)), ("brown noise", brown_noise(n, seed)))}
