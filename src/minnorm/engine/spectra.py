"""Source power by linearity: spectra and time-frequency power without source time courses.

A minimum-norm kernel is low rank, K = leads @ fields (r ≤ n_channels
components; see :mod:`minnorm.engine.kernel`). Every linear transform T of
time — a tapered Fourier transform, a Morlet wavelet — commutes with K, so
the transform of a source's time course is the expansion of the transform
of the r whitened components Y = fields @ b::

    T(ŝ_k) = ℓ_k · T(Y)                     # ℓ_k: row k of leads (r,)

and a power summed over "draws" i (tapers, epochs, real and imaginary parts)
is a quadratic form in the components' cross-spectrum::

    P_k(j) = Σ_i |ℓ_k · Z_i(j)|²  =  ℓ_kᵀ S(j) ℓ_k,      S(j) = Σ_i Re(Z_i(j) Z_i(j)ᴴ)  (r, r)

where j runs over frequencies (and times). Two routes give the same numbers:

direct   expand every draw, then square: 2·n_rows·r flops per (draw, j), real and
         imaginary parts as one real GEMM (:func:`power_rows`);
cross    form S(j) once (r² per draw), then ℓ_kᵀ S(j) ℓ_k: 2·n_rows·r² flops per j
         (:func:`cross_power_rows`).

The cross route is cheaper when the draws outnumber r/2 (many epochs or
windows); :func:`choose_route` compares the flop counts. Phase-locking
values need each draw's phase, so they take the direct route.

Per-row powers are combined over a location's 3 orientations as a sum
("sum": the power of the vector, rotation invariant) or as MNE-Python's
multitaper spectra combine them, √(Σ P²) ("rss": depends on the frames).
"""

from __future__ import annotations

import numpy as np
from scipy import fft as sp_fft

from .linalg import chunks, n_workers, run_parallel

__all__ = ["kept_subspace", "tapered_spectra", "wavelet_transform", "power_rows", "cross_power_rows",
           "cross_spectrum", "choose_route", "combine_rows", "ROUTES", "adaptive_psd"]

ROUTES = ("auto", "direct", "cross")
LOC_TILE = 384  # kernel rows per tile (a tile's values stay in the core's cache)
COL_TILE = 128  # output columns (frequencies, times) per tile


# --------------------------------------------------------------------------- the data kept


def kept_subspace(leads: np.ndarray, fields: np.ndarray, /, *, rtol: float = 1e-8) -> np.ndarray:
    """Orthonormal basis (M, k) of the kernel's right singular vectors with s > rtol · s₀.

    MNE-Python's ``pca=True`` replaces the kernel K = leads @ fields (n_rows, M)
    by its SVD and keeps the directions whose singular value exceeds 1e-8 of
    the largest; data outside them are dropped. With MEG and EEG together
    the EEG directions of K can fall below that (K's columns carry the
    channels' units), so this is not a no-op. The SVD comes from two QR
    decompositions, K = Q_L (R_L R_Fᵀ) Q_Fᵀ, and the small SVD of the middle
    factor, so the singular values are as accurate as K's own.
    """
    Q_F, R_F = np.linalg.qr(fields.T)  # fieldsᵀ = Q_F R_F: (M, r), (r, r)
    R_L = np.linalg.qr(leads.astype(np.float64), mode="r")
    _, s, Wt = np.linalg.svd(R_L @ R_F.T, full_matrices=False)
    keep = s > rtol * s[0] if len(s) and s[0] > 0 else np.zeros(len(s), bool)
    return Q_F @ Wt[keep].T


# --------------------------------------------------------------------------- transforms


def tapered_spectra(Y: np.ndarray, tapers: np.ndarray, freq_idx: np.ndarray) -> np.ndarray:
    """Fourier transforms of tapered, demeaned signals, one-sided as MNE-Python's multitaper.

    Parameters
    ----------
    Y : ndarray of shape (n, r, n_times)
        Real signals (e.g. the whitened components of n epochs).
    tapers : ndarray of shape (n_tapers, n_times)
    freq_idx : ndarray of int
        Which of the n_times // 2 + 1 frequencies to keep.

    Returns
    -------
    X : ndarray of shape (n, n_tapers, r, n_freqs), complex
        rfft(taper · (y − mean y)); the DC term (and the Nyquist term of an
        even length) divided by √2.
    """
    n_times = Y.shape[-1]
    Y = Y - Y.mean(axis=-1, keepdims=True)
    X = np.empty((len(Y), len(tapers), Y.shape[1], len(freq_idx)), np.complex128)
    for t, taper in enumerate(tapers):
        X[:, t] = sp_fft.rfft(Y * taper, axis=-1, workers=-1)[..., freq_idx]
    X[..., freq_idx == 0] /= np.sqrt(2.0)
    if n_times % 2 == 0:
        X[..., freq_idx == n_times // 2] /= np.sqrt(2.0)
    return X


def wavelet_transform(Y_hat: np.ndarray, wavelet: np.ndarray, *, n_times: int,
                      n_fft: int, decim: slice) -> np.ndarray:
    """Convolution with one wavelet, "same" mode, by FFT: (n, r, n_fft) spectra → (n, r, T').

    ``Y_hat`` is ``fft(Y, n_fft)`` of the signals; the result is numpy's
    ``convolve(y, w, "same")`` (the centred n_times samples of the full
    convolution), decimated by ``decim``.
    """
    W_hat = sp_fft.fft(wavelet, n_fft)
    full = sp_fft.ifft(Y_hat * W_hat, axis=-1, workers=-1)
    start = (len(wavelet) - 1) // 2
    return full[..., start:start + n_times][..., decim]


# --------------------------------------------------------------------------- expansion


def choose_route(n_draws: int, r: int, route: str = "auto") -> str:
    """"direct" or "cross": the cheaper of 2·n_draws and r real columns per output."""
    if route not in ROUTES:
        raise ValueError(f"route must be one of {list(ROUTES)}, got {route!r}")
    if route != "auto":
        return route
    return "cross" if r < 2 * n_draws else "direct"


def combine_rows(P: np.ndarray, group: int, how: str) -> np.ndarray:
    """Per-row powers (n_rows, …) → per location: "sum" or "rss" (√ΣP²) over ``group`` rows."""
    if group == 1:
        return P
    P = P.reshape(-1, group, *P.shape[1:])
    return P.sum(axis=1) if how == "sum" else np.sqrt(np.einsum("kg...,kg...->k...", P, P))


def power_rows(leads: np.ndarray, Z: np.ndarray, out: np.ndarray, /, *, group: int = 1,
               combine: str = "sum", phase: np.ndarray | None = None,
               phase_row: int = 0) -> None:
    """out[k, j] += Σ_i |ℓ_k · Z[i, :, j]|², combined over each location's ``group`` rows.

    Parameters
    ----------
    leads : ndarray of shape (n_rows, r)
        Real (float64 or float32: the GEMMs run in this dtype).
    Z : ndarray of shape (n_draws, r, n_cols)
        Complex or real draws (complex: real and imaginary parts are summed).
    out : ndarray of shape (n_rows // group, n_cols)
        Accumulated into (float64).
    group, combine
        Rows per location and how their powers combine ("sum" or "rss"; "rss"
        needs one call with every draw, as it is not additive).
    phase : ndarray of shape (n_rows // group, n_cols), complex, optional
        Accumulates Σ_i z/|z| of each location's row ``phase_row`` (phase locking).
    """
    n_out = len(leads) // group
    dtype = leads.dtype
    is_complex = np.iscomplexobj(Z)
    cdtype = np.result_type(dtype, np.complex64)
    Zr = np.ascontiguousarray(Z, dtype=cdtype if is_complex else dtype)
    if is_complex:
        Zr = Zr.view(dtype)  # (n_draws, r, 2·n_cols): real and imaginary parts interleaved
    width = 2 if is_complex else 1
    n_cols = Zr.shape[-1] // width
    loc_tile = max(1, LOC_TILE // group)

    def work(tile):
        (k0, k1), (j0, j1) = tile
        lead = leads[group * k0:group * k1]
        val = np.empty((len(lead), width * (j1 - j0)), dtype)  # stays in cache
        acc = np.zeros(val.shape, np.float64)
        for Zi in Zr:
            np.matmul(lead, Zi[:, width * j0:width * j1], out=val)
            if phase is not None:
                _add_phase(val[phase_row::group], phase[k0:k1, j0:j1], is_complex)
            np.multiply(val, val, out=val)
            acc += val
        if is_complex:
            acc = acc.reshape(len(lead), -1, 2).sum(axis=-1)
        out[k0:k1, j0:j1] += combine_rows(acc, group, combine)

    tiles = [(k, j) for k in chunks(n_out, loc_tile) for j in chunks(n_cols, COL_TILE)]
    run_parallel(work, tiles)


def _add_phase(val, phase, is_complex) -> None:
    """phase += z / |z| for the values z of a tile (interleaved real, imaginary for complex)."""
    if not is_complex:
        with np.errstate(invalid="ignore", divide="ignore"):
            phase += val / np.abs(val)
        return
    re, im = val[:, 0::2], val[:, 1::2]
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = 1.0 / np.sqrt(re * re + im * im)
    phase.real += re * inv
    phase.imag += im * inv


def cross_spectrum(Z: np.ndarray, /) -> np.ndarray:
    """S(j) = Σ_i Re(Z_i(j) Z_i(j)ᴴ) for draws Z (n_draws, r, n_cols) → (n_cols, r, r)."""
    Zj = np.moveaxis(Z, -1, 0)  # (n_cols, n_draws, r)
    if np.iscomplexobj(Zj):
        Zj = np.concatenate([Zj.real, Zj.imag], axis=1)
    return np.matmul(Zj.transpose(0, 2, 1), Zj)


def cross_power_rows(leads: np.ndarray, S: np.ndarray, out: np.ndarray, /, *,
                     group: int = 1, combine: str = "sum") -> None:
    """out[k, j] += ℓ_kᵀ S(j) ℓ_k combined over ``group`` rows; S of shape (n_cols, r, r)."""
    n_out = len(leads) // group
    S = S.astype(leads.dtype, copy=False)

    def work(tile):
        k0, k1 = tile
        lead = leads[group * k0:group * k1]
        acc = np.empty((len(lead), len(S)), np.float64)
        for j, Sj in enumerate(S):
            acc[:, j] = np.einsum("kr,kr->k", lead @ Sj, lead)
        out[k0:k1] += combine_rows(acc, group, combine)

    run_parallel(work, chunks(n_out, max(1, min(LOC_TILE, -(-n_out // n_workers())))))


# --------------------------------------------------------------------------- adaptive weights


def adaptive_psd(X: np.ndarray, eigvals: np.ndarray, variance: np.ndarray, *,
                 max_iter: int = 250) -> np.ndarray:
    """Thomson's adaptive multitaper PSD of signals, as MNE-Python iterates it.

    Parameters
    ----------
    X : ndarray of shape (n_signals, n_tapers, n_freqs), complex
        Tapered spectra at the frequencies kept.
    eigvals : ndarray of shape (n_tapers,)
        The tapers' concentrations λ_t.
    variance : ndarray of shape (n_signals,)
        Each signal's variance σ² (the integral of its fixed-weight spectrum).

    Each signal iterates, until the mean square change of its weights is
    below 1e-10 at every frequency (or ``max_iter``)::

        d_t(f) = √λ_t S(f) / (λ_t S(f) + (1 − λ_t) σ²),   S(f) = Σ d_t² |X_t|² / Σ d_t² · 2

    starting from the fixed-weight estimate of the first two tapers.
    Signals are iterated together; each stops at its own criterion.
    """
    power = (X.real**2 + X.imag**2)  # (n, t, f)
    lam = eigvals[:, np.newaxis]
    rt = np.sqrt(eigvals)[:, np.newaxis]
    psd = _weighted(power[:, :2], rt[:2])
    err = np.zeros_like(power)
    active = np.arange(len(X))
    var = variance[:, np.newaxis, np.newaxis]
    for _ in range(max_iter):
        S = psd[active][:, np.newaxis]
        d = S / (lam * S + (1 - lam) * var[active]) * rt
        change = err[active] - d
        done = np.max(np.mean(change**2, axis=1), axis=1) < 1e-10
        keep = active[~done]
        psd[keep] = _weighted(power[keep], d[~done])
        err[keep] = d[~done]
        active = keep
        if not len(active):
            break
    return psd


def _weighted(power, w):
    """Σ w² P / Σ w² · 2 over tapers (axis 1)."""
    w2 = w * w
    return 2 * np.sum(w2 * power, axis=1) / np.sum(w2, axis=-2)

