"""Transforms of the whitened components: tapered Fourier spectra and Morlet wavelets.

A minimum-norm kernel is low rank, K = leads @ fields (r ≤ n_channels
components; see :mod:`minnorm.engine.kernel`). Every linear transform T of
time — a tapered Fourier transform, a Morlet wavelet — commutes with K, so
the transform of a source's time course is the expansion of the transform
of the r whitened components Y = fields @ b::

    T(ŝ_k) = ℓ_k · T(Y)                     # ℓ_k: row k of leads (r,)

and a source's power is a quadratic form in them (:mod:`minnorm.engine.quadratic`).
Here: the transforms (:func:`tapered_spectra`, :func:`wavelet_transform`), the
subspace MNE-Python's ``pca`` keeps (:func:`kept_subspace`), and Thomson's
adaptive weights (:func:`adaptive_psd`), which are per source and so applied
to expanded spectra.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import fft as sp_fft

__all__ = ["kept_subspace", "tapered_spectra", "wavelet_transform", "adaptive_psd",
           "variance_weights"]


# --------------------------------------------------------------------------- the data kept


def kept_subspace(leads: np.ndarray, fields: np.ndarray, /, *,
                  rtol: float = 1e-8) -> tuple[np.ndarray, int]:
    """Orthonormal basis (M, k) of the kernel's right singular vectors with s > rtol · s₀.

    MNE-Python's ``pca=True`` replaces the kernel K = leads @ fields (n_rows, M)
    by its SVD and keeps the directions whose singular value exceeds 1e-8 of
    the largest; data outside them are dropped. With MEG and EEG together
    the EEG directions of K can fall below that (K's columns carry the
    channels' units), so this is not a no-op. The SVD comes from two QR
    decompositions, K = Q_L (R_L R_Fᵀ) Q_Fᵀ, and the small SVD of the middle
    factor, so the singular values are as accurate as K's own.

    Returns
    -------
    basis : ndarray of shape (M, k)
    dropped : int
        Directions K does have (s > 1e-12 · s₀) that the bound drops.
    """
    Q_F, R_F = np.linalg.qr(fields.T)  # fieldsᵀ = Q_F R_F: (M, r), (r, r)
    R_L = np.linalg.qr(leads.astype(np.float64), mode="r")
    _, s, Wt = np.linalg.svd(R_L @ R_F.T, full_matrices=False)
    if not len(s) or s[0] <= 0:
        return Q_F[:, :0], 0
    keep = s > rtol * s[0]
    return Q_F @ Wt[keep].T, int(np.sum(~keep & (s > 1e-12 * s[0])))


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
        even length) divided by √2. (May be a transposed view.)

    Notes
    -----
    Where the FFT's length is slow (a prime such as 601 samples goes through
    Bluestein's algorithm) and few frequencies are kept, the kept frequencies
    come from one real GEMM with the tapered DFT matrix instead
    (:func:`dft_is_cheaper`): 601 samples, 3 tapers, 201 frequencies, 100
    epochs × 306 components: ~0.8 s instead of 1.4 s of FFTs.
    """
    n_times = Y.shape[-1]
    Y = Y - Y.mean(axis=-1, keepdims=True)
    scale = np.ones(len(freq_idx))
    scale[freq_idx == 0] = 1 / np.sqrt(2.0)
    if n_times % 2 == 0:
        scale[freq_idx == n_times // 2] = 1 / np.sqrt(2.0)
    if dft_is_cheaper(n_times, len(freq_idx) * len(tapers), len(tapers)):
        D = _dft(n_times, tuple(int(f) for f in freq_idx))  # (n_times, n_freqs, 2): cos, −sin
        D = tapers.T[:, :, np.newaxis, np.newaxis] * (D * scale[:, np.newaxis])[:, np.newaxis]
        X = np.matmul(Y.reshape(-1, n_times), D.reshape(n_times, -1))  # (n·r, tap·f·2)
        X = X.view(np.complex128).reshape(len(Y), Y.shape[1], len(tapers), len(freq_idx))
        return X.transpose(0, 2, 1, 3)
    X = np.empty((len(Y), len(tapers), Y.shape[1], len(freq_idx)), np.complex128)
    for t, taper in enumerate(tapers):
        X[:, t] = sp_fft.rfft(Y * taper, axis=-1, workers=-1)[..., freq_idx]
    X *= scale
    return X


def dft_is_cheaper(n_times: int, n_columns: int, n_tapers: int) -> bool:
    """Whether a real GEMM with the DFT matrix of ``n_columns`` kept (taper, frequency)
    pairs costs less than ``n_tapers`` real FFTs of ``n_times``, per signal.

    GEMM: 4·n_times flops per pair. FFT: 2.5·L·log₂L flops of a tenth of the
    GEMM's speed, L = n_times for a fast length, else three FFTs of the
    Bluestein length next_fast_len(2·n_times − 1) (measured at 601 samples:
    15.6 µs per FFT against 8.8 µs of GEMM per taper for 201 frequencies).
    """
    if sp_fft.next_fast_len(n_times, real=True) == n_times:
        fft = 25.0 * n_times * np.log2(max(n_times, 2))
    else:
        L = sp_fft.next_fast_len(2 * n_times - 1)
        fft = 3 * 25.0 * L * np.log2(L)
    return 4.0 * n_times * n_columns < n_tapers * fft


@functools.lru_cache(maxsize=8)
def _dft(n_times: int, freq_idx: tuple) -> np.ndarray:
    """cos and −sin of 2π·t·f/n_times for t < n_times and f in ``freq_idx``: (n_times, n_f, 2).

    The phase t·f is reduced modulo n_times in integers, so every angle is exact to
    float64's rounding whatever the length.
    """
    t = np.arange(n_times)[:, np.newaxis]
    angle = 2 * np.pi * ((t * np.asarray(freq_idx)) % n_times) / n_times
    D = np.stack([np.cos(angle), -np.sin(angle)], axis=-1)
    D.flags.writeable = False
    return D


def wavelet_transform(Y_hat: np.ndarray, wavelet: np.ndarray, *, n_times: int,
                      n_fft: int, decim: slice) -> np.ndarray:
    """Convolution with one wavelet, "same" mode, by FFT: (n, r, n_fft//2+1) → (n, r, T').

    ``Y_hat`` is ``rfft(Y, n_fft)`` of real signals, computed once for every
    wavelet; a complex wavelet is two real ones, so the result is two real
    inverse transforms: numpy's ``convolve(y, w, "same")`` (the centred n_times
    samples of the full convolution), decimated by ``decim``, complex.
    """
    start = (len(wavelet) - 1) // 2
    keep = np.arange(start, start + n_times)[decim]
    out = np.empty(Y_hat.shape[:-1] + (len(keep),), np.result_type(Y_hat.dtype, np.complex64))
    for part, w in (("real", wavelet.real), ("imag", wavelet.imag)):
        W_hat = sp_fft.rfft(w, n_fft).astype(Y_hat.dtype, copy=False)
        full = sp_fft.irfft(Y_hat * W_hat, n_fft, axis=-1, workers=-1)
        getattr(out, part)[...] = full[..., keep]
    return out


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


def variance_weights(n_freqs: int) -> np.ndarray:
    """c_f with σ² = Σ_f c_f P(f): MNE-Python's trapezoid integral of a one-sided spectrum.

    The trapezoid rule with step π / n_freqs, divided by 2π (the signal's
    variance that the adaptive weights compare each taper's leakage with).
    """
    c = np.full(n_freqs, np.pi / n_freqs)
    c[[0, -1]] /= 2
    return c / (2 * np.pi)


def _weighted(power, w):
    """Σ w² P / Σ w² · 2 over tapers (axis 1)."""
    w2 = w * w
    return 2 * np.sum(w2 * power, axis=1) / np.sum(w2, axis=-2)

