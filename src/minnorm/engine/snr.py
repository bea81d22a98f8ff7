"""The SNR of whitened data as a function of time (MNE-C's noise regularisation).

With the operator's SVD G = U S Vᵀ and the whitened data w(t) (n_nonzero = the
rank of the whitened space), the predicted whitened data for λ² are
U diag(s²/(s²+λ²)) Uᵀ w(t), so the misfit in the components y = Uᵀ w is::

    err(λ², t) = Σ_k ((1 − f_k) y_k(t))²       f_k = s_k² / (s_k² + λ²)   (0 where s_k = 0)

``snr_est(t)`` = 1/√λ²(t) for the largest λ² on the grid 10 · 0.99ⁿ (n = 0 … 999)
whose misfit passes the χ²(n_nonzero) test at p = 0.001; λ² = ∞ (snr_est 0)
where the whitened power per dimension, snr², is ≤ 1, and 10 · 0.99¹⁰⁰⁰ where
no grid value passes (not converged). MNE-Python walks the grid one step at a
time for every sample; err falls monotonically along the grid (each term does,
in floating point too), so here a bisection over n finds the same grid point
for all samples at once in ⌈log₂ 1000⌉ = 10 steps.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import chi2

__all__ = ["estimate_snr", "LAMBDA2_GRID"]

P_VALUE = 1e-3
N_STEPS = 1000
# 10 · 0.99ⁿ, n = 0 … 1000, by repeated multiplication as MNE-Python computes it
LAMBDA2_GRID = np.cumprod(np.r_[10.0, np.full(N_STEPS, 0.99)])


def estimate_snr(white: np.ndarray, components: np.ndarray, sing: np.ndarray, *,
                 rank: int) -> tuple[np.ndarray, np.ndarray, int]:
    """SNR of whitened data, and the SNR estimated from the regularisation that fits it.

    Parameters
    ----------
    white : ndarray of shape (M, n_times)
        Whitened data W P b (real).
    components : ndarray of shape (r, n_times)
        y = Uᵀ W P b.
    sing : ndarray of shape (r,)
        Singular values s of the whitened, weighted gain.
    rank : int
        Dimension of the whitened space (degrees of freedom of the test).

    Returns
    -------
    snr : ndarray of shape (n_times,)
        √(‖w(t)‖² / rank).
    snr_est : ndarray of shape (n_times,)
        1/√λ²(t) (0 where snr ≤ 1).
    n_unconverged : int
        Samples that passed the test at no grid value.
    """
    snr2 = np.sum(white**2, axis=0) / rank
    lambda2 = np.full(snr2.shape, np.inf)
    fit = np.flatnonzero(snr2 > 1)
    step = _first_passing(components[:, fit], sing, chi2.isf(P_VALUE, rank))
    lambda2[fit] = LAMBDA2_GRID[step]
    return np.sqrt(snr2), 1.0 / np.sqrt(lambda2), int(np.sum(step == N_STEPS))


def _first_passing(Y, sing, threshold):
    """Per column of Y, the first grid step n with err(10 · 0.99ⁿ) < threshold (N_STEPS: none)."""
    lo = np.zeros(Y.shape[1], int)
    hi = np.full(Y.shape[1], N_STEPS)
    while True:
        todo = np.flatnonzero(lo < hi)
        if not len(todo):
            return lo
        mid = (lo[todo] + hi[todo]) // 2
        passes = _misfit(Y[:, todo], sing, LAMBDA2_GRID[mid]) < threshold
        hi[todo[passes]] = mid[passes]
        lo[todo[~passes]] = mid[~passes] + 1


def _misfit(Y, sing, lambda2):
    """err = Σ_k ((1 − f_k) y_k)² per column, with column j's λ² = lambda2[j]."""
    sing2 = (sing * sing)[:, np.newaxis]
    f = sing2 / (sing2 + lambda2[np.newaxis])
    f[sing == 0] = 0
    ew = Y * (1.0 - f)
    return np.sum(ew * ew, axis=0)
