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


def svd_wide(G: np.ndarray, /) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD of G (M, N): U (M, r), s (r,) descending, Vᵀ (r, N), r = min(M, N).

    For wide G, ``Vt`` is the transpose of a C-contiguous (N, M) array, so
    ``Vt.T`` (V, the eigen-leads) needs no copy.
    """
    M, N = G.shape
    if N < WIDE * M:
        return linalg.svd(G, full_matrices=False)
    keep = np.flatnonzero(np.any(G != 0, axis=1))
    Gk = G[keep] if len(keep) < M else G
    k = len(keep)
    lam, Uk = linalg.eigh(Gk @ Gk.T)
    Uk = np.ascontiguousarray(Uk[:, ::-1])
    V = np.zeros((N, M))  # columns s_i v_i, then v_i; zero for the discarded rows
    if k == M:
        np.matmul(Gk.T, Uk, out=V)
    else:
        V[:, :k] = Gk.T @ Uk
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
