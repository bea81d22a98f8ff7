"""The SVD of a wide matrix (few channels × many sources) through its Gram matrix.

For G of shape (M, N) with M ≪ N (306 channels × 61 452 source components)::

    G Gᵀ = U Λ Uᵀ                   # (M, M): one GEMM and a small eigh
    W = Gᵀ U,  s = ‖W_i‖,  V = W / s   # G = U S Vᵀ

costs two GEMMs (4·M²·N flops, at the machine's matrix-multiply speed)
instead of LAPACK's bidiagonalisation of the long rows, which is bound by
memory bandwidth and 10–50× slower here. Taking s as the norm of Gᵀu
rather than √λ keeps the small singular values accurate; the kernels built
from (U, s, V) agree with those from LAPACK's SVD to ~1e-13 on the sample
data (condition numbers up to 3·10⁵).

Rows of G that are exactly zero (the whitener's discarded directions) are
left out of the eigenproblem and come back as singular values 0 with unit
vectors in U and zero columns in V.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

__all__ = ["svd_wide"]

WIDE = 4  # use the Gram matrix when N ≥ WIDE · M


def svd_wide(G: np.ndarray, /, *, left: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD of G (M, N), or of ``left @ G`` without forming it.

    Returns U (M, r), s (r,) descending, Vᵀ (r, N), r = min(M, N). With
    ``left`` (M, K), e.g. a whitener before a weighted gain, the Gram matrix
    is ``left (G Gᵀ) leftᵀ`` (one symmetric rank-K update, half a GEMM's
    flops) and V = Gᵀ (leftᵀ U) / s, so the product is never made.

    For wide G, ``Vt`` is the transpose of a C-contiguous (N, M) array, so
    ``Vt.T`` (V, the eigen-leads) needs no copy.
    """
    K, N = G.shape
    M = K if left is None else left.shape[0]
    if N < WIDE * M:
        return linalg.svd(G if left is None else left @ G, full_matrices=False)
    rows = G if left is None else left
    keep = np.flatnonzero(np.any(rows != 0, axis=1))
    k = len(keep)
    if left is None:
        Gk = G[keep] if k < M else G
        gram = Gk @ Gk.T
    else:
        Wk = left[keep] if k < M else left
        gram = Wk @ (G @ G.T) @ Wk.T  # G @ G.T: numpy calls syrk for a matrix times its transpose
    lam, Uk = linalg.eigh(gram)
    Uk = np.ascontiguousarray(Uk[:, ::-1])
    V = np.zeros((N, M))  # columns s_i v_i, then v_i; zero for the discarded rows
    factor, back = (Gk, Uk) if left is None else (G, Wk.T @ Uk)
    if k == M:
        np.matmul(factor.T, back, out=V)
    else:
        V[:, :k] = factor.T @ back
    s = np.sqrt(np.einsum("ij,ij->j", V[:, :k], V[:, :k]))
    order = np.argsort(-s, kind="stable")
    if np.any(order != np.arange(k)):  # rarely: eigenvalue order ≠ norm order at rounding level
        s, Uk, V[:, :k] = s[order], Uk[:, order], V[:, order]
    with np.errstate(divide="ignore", invalid="ignore"):
        V[:, :k] /= np.where(s > 0, s, np.inf)
    U = np.zeros((M, M))
    U[keep, :k] = Uk
    null = np.setdiff1d(np.arange(M), keep)
    U[null, k + np.arange(len(null))] = 1.0
    return U, np.concatenate([s, np.zeros(M - k)]), V.T
