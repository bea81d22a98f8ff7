"""Resolution metrics of a linear inverse, in one pass over tiles of R, without the n² matrix.

The resolution matrix of a kernel K and a leadfield L is R = K L: column j
is the point-spread function (PSF) of source j — the estimate of a unit
dipole there — and row i the cross-talk function (CTF) of source i — how
much every source leaks into the estimate at i (Hauk, Stenroos & Treder
2022; Molins et al. 2008). A minimum-norm kernel is low rank,
K = leads @ fields (r ≤ n_channels components), so::

    R = A @ B,      A = leads (n_rows, r),   B = fields @ L (r, n_cols)

and any block of rows, A[rows] @ B, costs 2·r flops per value and needs
nothing bigger than the block. One pass over row tiles of R gives every CTF
whole and every PSF in parts, whose sums are accumulated (only the PSFs'
``maxrad_ext``, which needs each PSF's peak first, revisits the few tiles
that can exceed its threshold); see :func:`lowrank_metrics`. With 3 rows
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
squared distances come from the moments Σw, Σw·loc, Σw·loc² (one small
GEMM per tile), so no distance matrix is formed.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from .expand import source_rows
from .linalg import chunks, n_workers, run_parallel
from .memory import parse_memory
from .names import FUNCTIONS, METRICS

__all__ = ["METRICS", "FUNCTIONS", "rectify", "function_metrics", "dense_metrics",
           "lowrank_metrics", "normalise_amplitudes", "tile_bytes", "plan_bytes", "spatial_order",
           "moment_basis"]

logger = logging.getLogger("minnorm")

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


def moment_basis(loc: np.ndarray) -> np.ndarray:
    """(n, 7): 1, x, y, z, x², y², z² per source — w @ basis gives a function's moments."""
    return np.column_stack([np.ones(len(loc)), loc, loc * loc])


def _from_moments(metrics, l0, m1=None, m2=None, mr=None) -> dict:
    """cog_err, sd_ext and maxrad_ext from moments (b, 7) of |f|, f² and the
    supra-threshold set about the true sources ``l0`` (b, 3)."""

    def offsets(m):  # Σ w (loc_c − l0_c)² per axis: (b, 3)
        return m[:, 4:7] - 2 * l0 * m[:, 1:4] + m[:, :1] * l0 * l0

    out = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        if "cog_err" in metrics:
            out["cog_err"] = np.linalg.norm(m1[:, 1:4] / m1[:, :1] - l0, axis=1)
        if "sd_ext" in metrics:
            out["sd_ext"] = np.sqrt(np.maximum(offsets(m2).sum(axis=1), 0.0) / m2[:, 0])
    if "maxrad_ext" in metrics:
        out["maxrad_ext"] = np.sqrt(np.maximum(offsets(mr).max(axis=1), 0.0))
    return out


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
    basis = moment_basis(loc)
    l0 = loc[index]  # (b, 3)
    peak_at = np.argmax(Fa, axis=1)
    peak = Fa[np.arange(len(Fa)), peak_at]
    out, m1, m2, mr = {}, None, None, None
    if "peak_err" in metrics:
        out["peak_err"] = np.linalg.norm(loc[peak_at] - l0, axis=1)
    if "cog_err" in metrics:
        m1 = Fa @ basis
    if "maxrad_ext" in metrics:
        mr = (Fa > threshold * peak[:, np.newaxis]).astype(np.float64) @ basis
    if raw is None and "sum_amp" in metrics:
        out["sum_amp"] = Fa.sum(axis=1)
    if "sd_ext" in metrics:
        m2 = np.multiply(Fa, Fa, out=Fa) @ basis  # f², in place: |f| is not needed any more
    del Fa
    out.update(_from_moments(metrics, l0, m1, m2, mr))
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
    """Working bytes per source of a tile: its rows of R, their norm and |·|, the metric
    temporaries (|f| or f², the threshold mask)."""
    return 8 * (2 * group * n + 4 * n)


def spatial_order(loc: np.ndarray) -> np.ndarray:
    """Sources along a Morton (Z-order) curve of their positions.

    Consecutive sources are near each other, so a tile of them is a compact
    patch of cortex and touches the supra-threshold part of few PSFs.
    """
    q = loc - loc.min(axis=0)
    q = (q / (q.max() or 1.0) * 1023).astype(np.uint64)  # 10 bits per axis
    code = np.zeros(len(loc), np.uint64)
    for bit in range(10):
        for axis in range(3):
            code |= ((q[:, axis] >> np.uint64(bit)) & np.uint64(1)) << np.uint64(3 * bit + axis)
    return np.argsort(code, kind="stable")


def plan_bytes(n: int, group: int, width: int, *, column_maxima: bool = True,
               workers: int | None = None) -> int:
    """Working bytes with tiles of ``width`` sources: every worker's tile and, for the
    PSFs' ``maxrad_ext``, one column maximum per tile and source (for its second pass)."""
    workers = n_workers() if workers is None else workers
    maxima = -(-n // width) * n * 8 if column_maxima else 0
    return width * workers * tile_bytes(n, group) + maxima


def _plan(n: int, group: int, max_memory, column_maxima: bool) -> int:
    """The tallest tile (≤ 1024 sources, ≥ 1 per worker) that the budget allows."""
    budget = parse_memory(max_memory)
    workers = n_workers()
    top = int(min(1024, -(-n // workers)))
    need = [plan_bytes(n, group, w, column_maxima=column_maxima, workers=workers)
            for w in range(1, top + 1)]
    fits = [w for w, b in zip(range(1, top + 1), need) if b <= budget]
    if not fits:
        raise ValueError(f"max_memory={budget} bytes is too small for the resolution functions "
                         f"of {n} sources: give at least {min(need)} bytes (e.g. '256MB')")
    return max(fits)


class _PointSpread:
    """PSF statistics summed over row tiles of R (a PSF is a column: it needs every tile).

    Per column j: the peak |R_ij| and its source, the moments (:func:`moment_basis`)
    of |R_ij| and R_ij² over i and, for 3 rows per source, the maximum and sum of |R|
    over the raw rows (MNE-Python's PSF amplitudes). ``maxrad_ext`` needs the peak
    first: a second pass over only the (tile, column) pairs whose tile maximum
    exceeds threshold × peak gives the moments of the supra-threshold set.
    """

    def __init__(self, n, n_tiles, group, maxima):
        self.lock = threading.Lock()
        self.peak, self.at = np.full(n, -np.inf), np.zeros(n, np.intp)
        self.m1, self.m2, self.mr = (np.zeros((7, n)) for _ in range(3))  # moments, transposed
        self.raw_max = np.zeros(n) if group > 1 else None
        self.raw_sum = np.zeros(n) if group > 1 else None
        self.tile_max = np.empty((n_tiles, n) if maxima else (0, n))

    def add(self, t, src, Ra, basis, raw_max, raw_sum):
        """Tile ``t`` (sources ``src``, rows |R| ``Ra``); Ra is overwritten."""
        best, at = Ra[0].copy(), np.zeros(Ra.shape[1], np.intp)
        for k in range(1, len(Ra)):  # running argmax: 2× faster than argmax(axis=0)
            better = Ra[k] > best
            np.copyto(best, Ra[k], where=better)
            at[better] = k
        m1 = basis[src].T @ Ra
        m2 = basis[src].T @ np.multiply(Ra, Ra, out=Ra)
        if len(self.tile_max):
            self.tile_max[t] = best
        with self.lock:
            wins = (best > self.peak) | ((best == self.peak) & (src[at] < self.at))
            self.peak[wins], self.at[wins] = best[wins], src[at][wins]
            self.m1 += m1
            self.m2 += m2
            if raw_max is not None:
                np.maximum(self.raw_max, raw_max, out=self.raw_max)
                self.raw_sum += raw_sum

    def add_above(self, src, Rc, cols, threshold, basis):
        """Moments of the tile's entries above threshold × peak, for columns ``cols``."""
        mr = basis[src].T @ (Rc > threshold * self.peak[cols]).astype(np.float64)
        with self.lock:
            self.mr[:, cols] += mr

    def metrics(self, loc, metrics) -> dict:
        out = _from_moments(metrics, loc, self.m1.T, self.m2.T, self.mr.T)
        if "peak_err" in metrics:
            out["peak_err"] = np.linalg.norm(loc[self.at] - loc, axis=1)
        if "peak_amp" in metrics:
            out["peak_amp"] = self.peak if self.raw_max is None else self.raw_max
        if "sum_amp" in metrics:
            out["sum_amp"] = self.m1[0] if self.raw_sum is None else self.raw_sum
        return out


def lowrank_metrics(A: np.ndarray, B: np.ndarray, loc: np.ndarray, *, functions, metrics,
                    threshold: float = 0.5, max_memory=None, width: int | None = None) -> dict:
    """Metrics of every PSF and CTF of R = A @ B, in one pass over row tiles of R.

    Tiles of rows of R (sources in :func:`spatial_order`) are formed on every
    core: each holds complete CTFs (rows), whose metrics are computed at once,
    and a part of every PSF (columns), whose sums are accumulated
    (:class:`_PointSpread`). PSF ``maxrad_ext`` needs each PSF's peak, so it
    takes a second pass over only the (tile, PSF) pairs that can exceed
    threshold × peak — a small part of R, as PSFs are local.

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
        Budget for the tiles of all workers together (see :func:`plan_bytes`).
    width : int | None
        Sources per tile; default: the most that ``max_memory`` allows.

    Returns
    -------
    dict (function, metric) → ndarray of shape (n,)
    """
    n = B.shape[1]
    group = A.shape[0] // n
    loc = _centred(loc)
    maxima = "psf" in functions and "maxrad_ext" in metrics
    width = _plan(n, group, max_memory, maxima) if width is None else int(width)
    basis = moment_basis(loc)
    order = spatial_order(loc)
    tiles = [order[a:b] for a, b in chunks(n, width)]
    logger.info("Resolution metrics: %d sources, %d tiles of %d on %d threads", n, len(tiles),
                width, n_workers())
    psf = _PointSpread(n, len(tiles), group, maxima) if "psf" in functions else None
    ctf = {m: np.empty(n) for m in metrics} if "ctf" in functions else None

    def first(t):
        src = tiles[t]
        T = A[source_rows(src, group)] @ B  # (group·b, n): the tile's rows of R
        raw_max = raw_sum = None
        if psf is not None and group > 1:
            raw_max = np.maximum(T.max(axis=0), -T.min(axis=0))
        Ra = rectify(T, group, axis=0)
        if group > 1:
            if psf is not None:
                raw_sum = np.abs(T, out=T).sum(axis=0)
            del T
        else:
            Ra = np.abs(Ra, out=Ra)
        if ctf is not None:
            for m, v in function_metrics(Ra, loc, src, metrics, threshold=threshold).items():
                ctf[m][src] = v
        if psf is not None:
            psf.add(t, src, Ra, basis, raw_max, raw_sum)

    def second(t):
        src = tiles[t]
        cols = np.flatnonzero(psf.tile_max[t] > threshold * psf.peak)
        if len(cols):
            Rc = rectify(A[source_rows(src, group)] @ B[:, cols], group, axis=0)
            psf.add_above(src, np.abs(Rc, out=Rc), cols, threshold, basis)

    run_parallel(first, range(len(tiles)))
    out = {}
    if psf is not None:
        if "maxrad_ext" in metrics:
            run_parallel(second, range(len(tiles)))
        out.update({("psf", m): v for m, v in
                    normalise_amplitudes(psf.metrics(loc, metrics)).items()})
    if ctf is not None:
        out.update({("ctf", m): v for m, v in normalise_amplitudes(ctf).items()})
    return out
