"""The SVD of a wide matrix (few channels × many sources) through its Gram matrix.

For G of shape (M, N) with M ≪ N (306 channels × 61 452 source components)::

    G Gᵀ = U Λ Uᵀ                   # (M, M): a symmetric rank-N update (syrk) and a small eigh
    W = Gᵀ U,  s = ‖W_i‖,  V = W / s   # G = U S Vᵀ

costs a syrk and a GEMM (3·M²·N flops, at the machine's matrix-multiply speed)
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

import contextlib
import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import linalg
from threadpoolctl import ThreadpoolController

__all__ = ["svd_wide", "sym_power", "real_matmul", "real_dtype", "complex_dtype", "n_workers",
           "run_parallel", "chunks", "stacked_matmul"]

WIDE = 4  # use the Gram matrix when N ≥ WIDE · M
SYM_RCOND = 1e-7  # sym_power: eigenvalues below this fraction of the largest count as 0


def svd_wide(G: np.ndarray, /) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD of G (M, N): U (M, r), s (r,) descending, Vᵀ (r, N), r = min(M, N).

    For wide G, ``Vt`` is the transpose of a C-contiguous (N, M) array, so
    ``Vt.T`` (V, the eigen-leads) needs no copy.
    """
    M, N = G.shape
    if N < WIDE * M:
        return linalg.svd(G, full_matrices=False)
    keep = np.flatnonzero(np.any(G != 0, axis=1))
    k = len(keep)
    Gk = G[keep] if k < M else G
    gram = Gk @ Gk.T  # numpy calls syrk for a matrix times its own transpose: half the flops
    lam, Uk = linalg.eigh(gram)
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


def sym_power(A: np.ndarray, power: float, *, reduce_rank: bool = False,
              what: str = "a matrix is not positive semi-definite") -> np.ndarray:
    """A**power of stacked symmetric (or Hermitian) PSD matrices (…, n, n), power ∈ {-1, -½, ½}.

    Eigenvalues below ``SYM_RCOND`` × the largest are dropped (a pseudo-inverse);
    ``reduce_rank`` also drops the smallest one. A clearly negative eigenvalue
    is a ValueError saying ``what``.
    """
    s, u = np.linalg.eigh(A)
    limit = s[..., -1:] * SYM_RCOND
    if not (s >= -limit).all():
        raise ValueError(what)
    s = s.copy()
    s[s <= limit] = np.inf if power < 0 else 0
    if reduce_rank:
        s[..., 0] = np.inf
    if abs(power) == 0.5:
        s = np.sqrt(s)
    s = 1.0 / s if power < 0 else s
    ut = u.swapaxes(-2, -1)
    return np.matmul(u * s[..., np.newaxis, :], ut.conj() if np.iscomplexobj(u) else ut)


def real_dtype(dtype) -> np.dtype:
    """float32/float64 for a real or complex floating dtype (complex128 → float64)."""
    return np.finfo(dtype).dtype


def complex_dtype(dtype) -> np.dtype:
    """complex64/complex128 for a real or complex floating dtype (float32 → complex64)."""
    return np.result_type(real_dtype(dtype), np.complex64)


def real_matmul(A: np.ndarray, B: np.ndarray, /, out: np.ndarray | None = None) -> np.ndarray:
    """A @ B for a real A (m, k) and a real or complex B (..., k, n), in real arithmetic.

    A complex B is read as a real (..., k, 2n) array of interleaved real and
    imaginary parts, so A @ B is one real GEMM on twice the columns (numpy's
    own A @ B would copy A to complex and spend four real products per
    term), written straight into ``out`` (complex, unit stride along n).
    """
    if not np.iscomplexobj(B):
        return np.matmul(A, B, out=out)
    ctype = complex_dtype(np.result_type(A, B))
    rtype = real_dtype(ctype)
    B = B.astype(ctype, copy=False)
    if B.strides[-1] != B.itemsize:
        B = np.ascontiguousarray(B)
    A = A.astype(rtype, copy=False)
    if out is None:
        return np.matmul(A, B.view(rtype)).view(ctype)
    np.matmul(A, B.view(rtype), out=out.view(rtype))
    return out


@functools.cache
def _threadpools() -> ThreadpoolController:
    """The process's BLAS/OpenMP thread pools, found once (a search costs ~5 ms)."""
    return ThreadpoolController()


def blas_threads(limit: int):
    """A context in which BLAS runs on at most ``limit`` threads."""
    return _threadpools().limit(limits=limit, user_api="blas")


def n_workers() -> int:
    """Threads for parallel numpy work: the BLAS's thread count (all cores by default)."""
    counts = [i["num_threads"] for i in _threadpools().info() if i["user_api"] == "blas"]
    return max(1, max(counts) if counts else (os.cpu_count() or 1))


def run_parallel(work, items) -> None:
    """``work(item)`` for every item, on :func:`n_workers` threads with one BLAS thread each.

    numpy releases the GIL in its loops and BLAS calls, so independent
    blocks of a large array operation run on every core.
    """
    items = list(items)
    workers = min(n_workers(), len(items))
    if workers <= 1:
        for item in items:
            work(item)
        return
    with blas_threads(1), ThreadPoolExecutor(workers) as pool:
        list(pool.map(work, items))


def chunks(n: int, size: int) -> list:
    """[(start, stop), …] covering range(n) in pieces of ``size``."""
    return [(k, min(k + size, n)) for k in range(0, n, size)]


def stacked_matmul(A: np.ndarray, B: np.ndarray, /, *, out: np.ndarray | None = None
                   ) -> np.ndarray:
    """A @ B for stacks of small matrices, (n, a, b) @ (n, b, c) → (n, a, c), the stack
    split over every core.

    numpy's matmul multiplies a stack one small matrix at a time on one core
    (the per-source 3 × 3 and 3 × M products of eLORETA and the beamformer:
    36–64 ms each for 20,484 sources, M = 306); einsum's own loops on halves of
    the stack on two threads took 13–27 ms for the (3 × M)(M × 3) products and
    the same as matmul's halves for (3 × 3)(3 × M).
    """
    n = len(A)
    if len(B) != n:
        raise ValueError(f"stacks of {n} and {len(B)} matrices: they must be as long")
    if out is None:
        out = np.empty((n, A.shape[1], B.shape[2]), dtype=np.result_type(A, B))

    def part(ab):
        sl = slice(*ab)
        np.einsum("kij,kjl->kil", A[sl], B[sl], out=out[sl])

    run_parallel(part, chunks(n, max(1, -(-n // n_workers()))))
    return out


@contextlib.contextmanager
def one_blas_thread():
    """Run BLAS/LAPACK on one thread inside the block.

    The build and the simulations make many tiny LAPACK calls (SciPy's
    Delaunay transforms inside MNE's interior check, 306 × 306 eigh); when
    the CPU is busy, OpenBLAS's spinning threads make each of them up to
    1000× slower (20 s instead of 20 ms), and threads gain nothing at that
    size.
    """
    with blas_threads(1):
        yield
