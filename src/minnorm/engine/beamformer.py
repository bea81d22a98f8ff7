"""LCMV beamformer filters, batched over sources (Van Veen et al. 1997; Sekihara & Nagarajan 2008).

The beamformer is a spatial filter per source k that passes the source's own
field with unit gain and minimises the output power of everything else::

    W_k = (L_kᵀ C⁻¹ L_k)⁻¹ L_kᵀ C⁻¹          # (n_ori, M), unit gain: W_k L_k = I
    C⁻¹ = (C_m + μ I)⁺_rank,  μ = reg · trace(C_m) / M   # diagonal loading

C_m is the data covariance in whitened sensor space (W_n C_m W_nᵀ, W_n the
noise whitener), L the whitened gain (depth-weighted when asked); for DICS, C_m is
one frequency's cross-spectral density, complex Hermitian unless its real part is
taken (transposes of C_m's side are then conjugate transposes). All sources
are computed at once: the n_ori × M numerators L_kᵀ C⁻¹ come from ONE matrix
product (Lᵀ C⁻¹, n_rows × M), and every n_ori × n_ori denominator, inverse,
orientation and normalisation is a stacked array handled by ``np.linalg``'s
batched routines — no loop over sources. Weight normalisations:

    "unit-noise-gain"            W_k / √diag(W_k W_kᵀ)    (noise gain 1 per row)
    "nai"                        the above / √σ²_noise     (neural activity index)
    "unit-noise-gain-invariant"  (A_k A_kᵀ)^-½ A_k,  A_k = L_kᵀ C⁻¹   (rotation invariant)

This module never imports mne: arrays in, arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .linalg import one_blas_thread, stacked_matmul, sym_power

__all__ = ["WEIGHT_NORMS", "PICK_ORIS", "INVERSIONS", "LcmvFilter", "check_options",
           "make_filter", "whiten_covariance", "regularized_inverse",
           "lcmv_filter", "nai_noise", "SINGULAR_RATIO"]

WEIGHT_NORMS = ("unit-noise-gain-invariant", "unit-noise-gain", "nai", None)
PICK_ORIS = ("normal", "max-power", "vector", None)
INVERSIONS = ("matrix", "single")
SINGULAR_RATIO = 1e6  # a source's gain whose largest/smallest singular value exceeds this is singular
_NOT_PSD = ("a source's filter matrix is not positive semi-definite: check that the data "
            "covariance is a covariance (symmetric, PSD)")


@dataclass(frozen=True, eq=False)
class LcmvFilter:
    """A computed filter.

    Attributes
    ----------
    weights : ndarray of shape (n_sources·n_ori, M)
        Rows act on whitened (and projected) data.
    max_power_ori : ndarray of shape (n_sources, 3) or None
        The orientation of each source with ``pick_ori="max-power"``.
    n_ori : int
        Rows per source in ``weights`` (1 or 3).
    """

    weights: np.ndarray
    max_power_ori: np.ndarray | None
    n_ori: int
    cov_eig: np.ndarray | None = None  # eigenvalues of the whitened data covariance


def make_filter(gain: np.ndarray, cov: np.ndarray, whitener: np.ndarray, /, *, reg: float,
                rank: int, n_ori: int, weight_norm, pick_ori, reduce_rank: bool, inversion: str,
                nn: np.ndarray) -> LcmvFilter:
    """The LCMV filter from the whitened gain and the (unwhitened) data covariance.

    Parameters
    ----------
    gain : ndarray of shape (M, n_sources·n_ori)
        Whitened (depth-weighted) gain.
    cov : ndarray of shape (M, M)
        Data covariance C_m in sensor units; whitened here.
    whitener : ndarray of shape (M, M)
    reg, rank
        Diagonal loading (fraction of the mean eigenvalue) and the rank kept.
    n_ori, weight_norm, pick_ori, reduce_rank, inversion, nn
        As :func:`lcmv_filter`.
    """
    check_options(weight_norm=weight_norm, pick_ori=pick_ori, inversion=inversion,
                  reduce_rank=reduce_rank, n_ori=n_ori)
    cov_w = whiten_covariance(cov, whitener)
    cov_inv, loading, eig = regularized_inverse(cov_w, reg, rank)
    result = lcmv_filter(gain, cov_inv, n_ori=n_ori, weight_norm=weight_norm, pick_ori=pick_ori,
                         reduce_rank=reduce_rank, inversion=inversion, nn=nn)
    weights = result.weights
    if weight_norm == "nai":
        weights = weights / np.sqrt(nai_noise(eig, rank, loading))
    return LcmvFilter(weights, result.max_power_ori, result.n_ori, eig)


def check_options(*, weight_norm, pick_ori, inversion, reduce_rank, n_ori: int) -> None:
    """The option combinations MNE-Python accepts (ValueError naming the fix otherwise)."""
    for name, value, allowed in (("weight_norm", weight_norm, WEIGHT_NORMS),
                                 ("pick_ori", pick_ori, PICK_ORIS),
                                 ("inversion", inversion, INVERSIONS),
                                 ("reduce_rank", reduce_rank, (True, False))):
        if not _is_one_of(value, allowed):
            raise ValueError(f"Invalid value for the {name!r} parameter. Allowed values are "
                             f"{', '.join(map(repr, allowed))}, but got {value!r} instead.")
    if inversion == "single" and n_ori > 1 and pick_ori == "vector" \
            and weight_norm == "unit-noise-gain-invariant":
        raise ValueError('Cannot use pick_ori="vector" with inversion="single" and '
                         'weight_norm="unit-noise-gain-invariant": use inversion="matrix" '
                         'or another weight_norm')
    if reduce_rank and inversion == "single":
        raise ValueError('reduce_rank cannot be used with inversion="single": use '
                         'inversion="matrix" (e.g. for a rank-deficient spherical MEG model) '
                         "or reduce_rank=False")


def _is_one_of(value, allowed) -> bool:
    if isinstance(value, np.ndarray):
        return False
    try:
        return value in allowed
    except TypeError:  # e.g. an object whose == fails
        return False


def whiten_covariance(cov: np.ndarray, whitener: np.ndarray) -> np.ndarray:
    """W C Wᵀ, made exactly symmetric (Hermitian for a cross-spectral density: large whitening
    coefficients round unevenly). (M, M)."""
    cov_w = whitener @ cov @ whitener.T
    return (cov_w + cov_w.T.conj()) / 2.0


def regularized_inverse(cov: np.ndarray, reg: float, rank: int) -> tuple[np.ndarray, float,
                                                                       np.ndarray]:
    """(C + μ I)⁺ keeping the ``rank`` largest eigenvalues; μ = reg · mean |eigenvalue|.

    C + μ I has C's eigenvectors, so one eigendecomposition serves both.

    Returns
    -------
    cov_inv : ndarray of shape (M, M)
    loading : float
        μ, the value added to the diagonal.
    eig : ndarray of shape (M,)
        C's eigenvalues, ascending.
    """
    n = len(cov)
    if not 0 <= rank <= n:
        raise ValueError(f"rank must be in [0, {n}] for a {n} × {n} covariance, got {rank}")
    with one_blas_thread():  # M × M: threads gain nothing, and spin when the CPU is busy
        eig, vec = np.linalg.eigh(cov)
    loading = float(reg * np.mean(np.abs(eig)))
    loaded = eig + loading
    order = np.argsort(np.abs(loaded))[::-1][:rank]  # the rank largest in magnitude
    kept, vec = loaded[order], vec[:, order]
    keep = np.abs(kept) > 0
    return (vec[:, keep] / kept[keep]) @ vec[:, keep].T.conj(), loading, eig


def _invert(blocks: np.ndarray, *, reduce_rank: bool, inversion: str) -> np.ndarray:
    """Inverse of each n_ori × n_ori block: whole ("matrix") or its diagonal ("single")."""
    if blocks.shape[1:] == (1, 1):
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / blocks
        inv[~np.isfinite(inv)] = 1.0
        return inv
    if inversion == "matrix":
        return sym_power(blocks, -1, reduce_rank=reduce_rank, what=_NOT_PSD)
    with np.errstate(divide="ignore"):
        diag = 1.0 / np.diagonal(blocks, axis1=1, axis2=2)
    return diag[:, :, np.newaxis] * np.eye(blocks.shape[1])


def _check_singular(gram: np.ndarray) -> None:
    """Each free source's gain must have rank 3 (s₁ ≤ 10⁶ s₃, from the eigenvalues of LₖᵀLₖ)."""
    eig = np.clip(np.linalg.eigvalsh(gram), 0, None)
    if (np.sqrt(eig[:, -1]) > SINGULAR_RATIO * np.sqrt(eig[:, 0])).any():
        raise ValueError("Singular matrix detected when estimating spatial filters: use "
                         "reduce_rank=True (a rank-deficient forward, e.g. MEG in a sphere)")


def lcmv_filter(gain: np.ndarray, cov_inv: np.ndarray, /, *, n_ori: int, weight_norm,
                pick_ori, reduce_rank: bool, inversion: str, nn: np.ndarray) -> LcmvFilter:
    """The unit-gain filter of every source, re-oriented and normalised as asked.

    Parameters
    ----------
    gain : ndarray of shape (M, n_sources·n_ori)
        Whitened (depth-weighted) gain, each source's n_ori columns together.
    cov_inv : ndarray of shape (M, M)
        The regularised inverse of the whitened data covariance.
    n_ori : 1 or 3
    nn : ndarray of shape (n_sources, 3)
        Normals: the sign of each max-power orientation follows them.

    Returns
    -------
    LcmvFilter (without the "nai" noise scaling: :func:`make_filter` applies it)
    """
    M = gain.shape[0]
    n_src = gain.shape[1] // n_ori
    if gain.T.flags.c_contiguous:  # rows of Lᵀ contiguous: the stacked products run on BLAS
        Lk = gain.T.reshape(n_src, n_ori, M).swapaxes(1, 2)  # (n_src, M, n_ori), a view
    else:
        Lk = gain.reshape(M, n_src, n_ori).transpose(1, 0, 2)  # (n_src, M, n_ori), a view
    numer = (gain.T @ cov_inv).reshape(n_src, n_ori, M)  # L_kᵀ C⁻¹: one GEMM for all sources
    if n_ori == 3:
        gram = stacked_matmul(Lk.swapaxes(1, 2), Lk)
        if not reduce_rank:
            _check_singular(gram)
        else:  # L_k → L_k (I − v vᵀ): its smallest singular direction v removed
            v = np.linalg.eigh(gram)[1][:, :, :1]
            keep = np.eye(3) - np.matmul(v, v.swapaxes(1, 2))  # (n_src, 3, 3), symmetric
            numer = stacked_matmul(keep, numer)
            Lk = stacked_matmul(Lk, keep)
    denom = stacked_matmul(numer, Lk)  # L_kᵀ C⁻¹ L_k  (n_src, n_ori, n_ori)
    max_power_ori = None
    if pick_ori == "max-power":
        ori = _max_power_orientation(numer, denom, weight_norm=weight_norm,
                                     reduce_rank=reduce_rank, inversion=inversion, nn=nn)
        max_power_ori = ori
        numer = stacked_matmul(ori[:, np.newaxis, :], numer)  # (n_src, 1, M)
        denom = np.einsum("ki,kij,kj->k", ori, denom, ori)[:, np.newaxis, np.newaxis]
        n_ori = 1
    elif pick_ori == "normal" and n_ori == 3:
        numer, denom = numer[:, 2:3], denom[:, 2:3, 2:3]
        n_ori = 1
    if weight_norm == "unit-noise-gain-invariant":  # (A_k A_kᴴ)^-½ A_k: no denominator
        W = stacked_matmul(sym_power(stacked_matmul(numer, _ct(numer)), -0.5, what=_NOT_PSD),
                           numer)
    else:
        W = stacked_matmul(_invert(denom, reduce_rank=reduce_rank, inversion=inversion), numer)
    if weight_norm in ("unit-noise-gain", "nai"):
        noise = np.sqrt(np.einsum("kim,kim->ki", W, W.conj()).real)[:, :, np.newaxis]
        noise[noise == 0] = np.inf
        W /= noise  # W is new: divided in place
    return LcmvFilter(W.reshape(n_src * n_ori, M), max_power_ori, n_ori)


def _max_power_orientation(numer, denom, *, weight_norm, reduce_rank, inversion, nn):
    """The orientation of largest output power per source (Sekihara & Nagarajan 2008, eq. 4.47).

    Without weight normalisation: the principal eigenvector of (LᵀC⁻¹L)⁻¹;
    with it: of (LᵀC⁻²L)⁻¹ (LᵀC⁻¹L). Signs follow the normals.

    For a complex CSD the eigenvectors are those of the matrix's real part (MNE-Python's
    rule); with a weight normalisation that real part is not a product of symmetric
    matrices, and a source's leading pair can come out complex (MNE-Python then keeps a
    complex "orientation"): minnorm takes its real direction, normalised.
    """
    if weight_norm is None:
        ori_numer, ori_denom = np.eye(3)[np.newaxis], denom
    else:
        ori_numer, ori_denom = denom, stacked_matmul(numer, _ct(numer))  # LᵀC⁻²L
    pick = np.matmul(_invert(ori_denom, reduce_rank=reduce_rank, inversion=inversion),
                     ori_numer)
    vals, vecs = np.linalg.eig(pick.real)  # not symmetric; a CSD's: its real part (MNE's)
    best = np.argsort(np.abs(vals), axis=-1)[:, -1]  # on equal magnitudes, MNE-Python's pick
    ori = vecs[np.arange(len(vecs)), :, best].real
    if np.iscomplexobj(vecs):  # a complex pair somewhere: its real direction, unit length
        ori /= np.linalg.norm(ori, axis=1, keepdims=True)
    signs = np.sign(np.sum(ori * nn, axis=1, keepdims=True))
    signs[signs == 0] = 1.0
    return ori * signs


def _ct(A: np.ndarray) -> np.ndarray:
    """The conjugate transpose of a stack of matrices (a view when real)."""
    A = A.swapaxes(-2, -1)
    return A.conj() if np.iscomplexobj(A) else A


def nai_noise(eig: np.ndarray, rank: int, loading: float) -> float:
    """The noise level of the neural activity index: the rank-th largest eigenvalue ``eig``
    (ascending) of the unregularised whitened data covariance, or the loading if larger."""
    return max(float(eig[-rank]), loading)
