"""Resolution metrics of a linear inverse, tile by tile, without the n² matrix.

The resolution matrix of a kernel K and a leadfield L is R = K L: column j
is the point-spread function (PSF) of source j — the estimate of a unit
dipole there — and row i the cross-talk function (CTF) of source i — how
much every source leaks into the estimate at i (Hauk, Stenroos & Treder
2022; Molins et al. 2008). A minimum-norm kernel is low rank,
K = leads @ fields (r ≤ n_channels components), so::

    R = A @ B,      A = leads (n_rows, r),   B = fields @ L (r, n_cols)

and any block of PSFs, A @ B[:, block], or of CTFs, A[rows] @ B, costs
2·r flops per value and needs nothing bigger than the block. With 3 rows
per source (free or loose inverse) and one column per source (fixed-
orientation forward), each source's 3 rows are combined by their Euclidean
norm ("rectified"), as MNE-Python does.

Metrics of a function f (absolute values; locations ``loc`` in cm; the
true source at l₀)::

    peak_err    ‖loc[argmax |f|] − l₀‖
    cog_err     ‖Σ|f| loc / Σ|f| − l₀‖
    sd_ext      √(Σ f² ‖loc − l₀‖² / Σ f²)                 (Molins 2008, eq. 12)
    maxrad_ext  √(max over x, y, z of Σ_{|f| > t·max|f|} (loc − l₀)²)
    peak_amp    max|f| / (the largest over sources)
    sum_amp     Σ|f| / (the largest over sources)

``maxrad_ext`` is MNE-Python's value: its indexing sums the squared offsets
of the supra-threshold sources per axis and takes the largest axis, rather
than the largest distance; minnorm reproduces it so results agree. Sums of
squared distances come from the moments Σw, Σw·loc, Σw·‖loc‖² (one small
GEMM per tile), so no distance matrix is formed.
"""

from __future__ import annotations

import logging

import numpy as np

from .linalg import chunks, n_workers, run_parallel
from .memory import parse_memory

__all__ = ["METRICS", "FUNCTIONS", "rectify", "function_metrics", "dense_metrics",
           "lowrank_metrics", "normalise_amplitudes", "tile_bytes"]

logger = logging.getLogger("minnorm")

METRICS = ("peak_err", "cog_err", "sd_ext", "maxrad_ext", "peak_amp", "sum_amp")
FUNCTIONS = ("psf", "ctf")
_AMPLITUDE = ("peak_amp", "sum_amp")


def rectify(F: np.ndarray, group: int, *, axis: int) -> np.ndarray:
    """Norm over each source's ``group`` entries along ``axis`` (adjacent entries).

    ``axis=1``: (b, group·n) → (b, n), PSFs as rows; ``axis=0``: (group·b, n) → (b, n),
    CTFs from consecutive rows. Group 1 returns F.
    """
    if group == 1:
        return F
    if axis == 1:
        parts = F.reshape(F.shape[0], -1, group)
        return np.sqrt(np.einsum("bng,bng->bn", parts, parts))
    parts = F.reshape(-1, group, F.shape[1])
    return np.sqrt(np.einsum("bgn,bgn->bn", parts, parts))


def function_metrics(F: np.ndarray, loc: np.ndarray, index: np.ndarray, metrics, *,
                     threshold: float = 0.5, raw: np.ndarray | None = None) -> dict:
    """Metrics of complete functions, one per row.

    Parameters
    ----------
    F : ndarray of shape (b, n)
        Row k is the (rectified) PSF or CTF of source ``index[k]``; C-contiguous
        (every reduction runs along the rows' unit stride).
    loc : ndarray of shape (n, 3)
        Source locations (cm), centred (see :func:`_centred`).
    index : ndarray of shape (b,)
    metrics : sequence of str
    threshold : float
        Amplitude fraction for ``maxrad_ext``.
    raw : ndarray of shape (b, m) or None
        The functions before rectification, for the amplitude metrics of
        PSFs of a free inverse (MNE-Python takes max and sum over every row).

    Returns
    -------
    dict metric → ndarray of shape (b,); amplitudes not yet normalised.
    """
    Fa = np.abs(F)
    rows = np.arange(len(Fa))
    l0 = loc[index]  # (b, 3)
    peak_at = np.argmax(Fa, axis=1)
    peak = Fa[rows, peak_at]
    out = {}
    if "peak_err" in metrics:
        out["peak_err"] = np.linalg.norm(loc[peak_at] - l0, axis=1)
    if "cog_err" in metrics:
        moments = Fa @ np.column_stack([np.ones(len(loc)), loc])  # Σ|f|, Σ|f| loc
        with np.errstate(invalid="ignore", divide="ignore"):
            cog = moments[:, 1:] / moments[:, :1]
        out["cog_err"] = np.linalg.norm(cog - l0, axis=1)
    if "maxrad_ext" in metrics:
        above = (Fa > threshold * peak[:, np.newaxis]).astype(np.float64)
        moments = above @ np.column_stack([np.ones(len(loc)), loc, loc * loc])
        n, s1, s2 = moments[:, :1], moments[:, 1:4], moments[:, 4:7]
        del above
        per_axis = s2 - 2 * l0 * s1 + n * l0 * l0  # Σ (loc_c − l0_c)² over the set
        out["maxrad_ext"] = np.sqrt(np.maximum(per_axis.max(axis=1), 0.0))
    if raw is None and "sum_amp" in metrics:
        out["sum_amp"] = Fa.sum(axis=1)
    if "sd_ext" in metrics:
        np.multiply(Fa, Fa, out=Fa)  # f², in place: |f| is not needed any more
        moments = Fa @ np.column_stack([np.ones(len(loc)), loc, (loc * loc).sum(axis=1)])
        s0, s1, s2 = moments[:, 0], moments[:, 1:4], moments[:, 4]
        spread = s2 - 2 * np.einsum("bc,bc->b", s1, l0) + (l0 * l0).sum(axis=1) * s0
        with np.errstate(invalid="ignore", divide="ignore"):
            out["sd_ext"] = np.sqrt(np.maximum(spread, 0.0) / s0)
    del Fa
    if raw is not None:
        amp = np.abs(raw)
        peak = amp.max(axis=1)
        if "sum_amp" in metrics:
            out["sum_amp"] = amp.sum(axis=1)
    if "peak_amp" in metrics:
        out["peak_amp"] = peak
    return out


def normalise_amplitudes(values: dict) -> dict:
    """peak_amp and sum_amp relative to their largest value over sources."""
    for metric in _AMPLITUDE:
        if metric in values:
            values[metric] = values[metric] / values[metric].max()
    return values


def _centred(loc: np.ndarray) -> np.ndarray:
    """Locations (m) in cm, about their centroid: the moments above then lose no digits."""
    loc = 100.0 * np.asarray(loc, dtype=np.float64)
    return loc - loc.mean(axis=0)


def dense_metrics(resmat: np.ndarray, loc: np.ndarray, function: str, metrics, *,
                  threshold: float = 0.5, tile: int = 256) -> dict:
    """Metrics of the PSFs or CTFs of a resolution matrix held in memory.

    ``resmat`` is (n, n), or (k·n, n) for an inverse with k rows per source
    (rectified); ``loc`` (n, 3) in metres. Returns dict metric → (n,).
    """
    n = len(loc)
    group = resmat.shape[0] // n
    loc = _centred(loc)
    out = {m: np.empty(n) for m in metrics}

    def work(span):
        cols = slice(*span)
        raw = None
        if function == "psf":
            block = np.ascontiguousarray(resmat[:, cols].T)  # PSFs as rows
            F = rectify(block, group, axis=1)
            raw = block if group > 1 else None
        else:
            F = np.ascontiguousarray(rectify(resmat[group * span[0]:group * span[1]], group,
                                             axis=0))
        for m, v in function_metrics(F, loc, np.arange(*span), metrics, threshold=threshold,
                                     raw=raw).items():
            out[m][cols] = v

    run_parallel(work, chunks(n, tile))
    return normalise_amplitudes(out)


def tile_bytes(n: int, group: int) -> int:
    """Working bytes per tile column: the product and its absolute values, the norm and
    the metric temporaries (|f|, f² or the threshold mask)."""
    return 8 * (2 * group * n + 4 * n)


def lowrank_metrics(A: np.ndarray, B: np.ndarray, loc: np.ndarray, *, functions, metrics,
                    threshold: float = 0.5, max_memory=None) -> dict:
    """Metrics of every PSF and CTF of R = A @ B, tile by tile.

    Parameters
    ----------
    A : ndarray of shape (group·n, r)
        The kernel's rows (noise normalisation folded in), ``group`` per source.
    B : ndarray of shape (r, n)
        The kernel's fields times the leadfield (one column per source).
    loc : ndarray of shape (n, 3)
        Source locations in metres.
    functions, metrics : sequences of str
    threshold : float
    max_memory : int | str | None
        Budget for the tiles of all workers together.

    Returns
    -------
    dict (function, metric) → ndarray of shape (n,)
    """
    n = B.shape[1]
    group = A.shape[0] // n
    loc = _centred(loc)
    budget = parse_memory(max_memory)
    workers = n_workers()
    width = budget // (workers * tile_bytes(n, group))
    if width < 1:
        raise ValueError(
            f"max_memory={budget} bytes is too small for one resolution function of {n} "
            f"sources: give at least {workers * tile_bytes(n, group)} bytes (e.g. '256MB')")
    width = int(min(width, 1024, -(-n // workers)))
    logger.info("Resolution metrics: %d sources, tiles of %d functions on %d threads",
                n, width, workers)
    out = {}
    for function in functions:
        values = {m: np.empty(n) for m in metrics}

        def work(span, function=function, values=values):
            if function == "psf":
                block = B[:, span[0]:span[1]].T @ A.T  # (b, group·n): PSFs as rows
                F, raw = rectify(block, group, axis=1), (block if group > 1 else None)
            else:
                F, raw = rectify(A[group * span[0]:group * span[1]] @ B, group, axis=0), None
            for m, v in function_metrics(F, loc, np.arange(*span), metrics,
                                         threshold=threshold, raw=raw).items():
                values[m][span[0]:span[1]] = v

        run_parallel(work, chunks(n, width))
        for m, v in normalise_amplitudes(values).items():
            out[function, m] = v
    return out
