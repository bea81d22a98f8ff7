"""Source power from a sensor covariance (or cross-spectral density), with a low-rank kernel.

For a kernel K = leads @ fields (see :mod:`minnorm.engine.kernel`) and a
sensor covariance C, the covariance of the estimates is K C Kᵀ; its diagonal,
the power of each source row, needs neither K (n_rows × M) nor K C Kᵀ::

    Q = fields C fieldsᵀ                        # (r, r): C in the kernel's components
    diag(K C Kᵀ)_k = leads_k Q leads_kᵀ         # one row of leads at a time

then the sum over a location's three rows (free orientation: the power of
the vector) and the square of the noise normalisation (dSPM, sLORETA).
"""

from __future__ import annotations

import numpy as np

__all__ = ["source_power"]

ROW_TILE = 4096  # rows of leads per product with Q


def source_power(leads: np.ndarray, fields: np.ndarray, cov: np.ndarray, /, *, group: int = 1,
                 scale: np.ndarray | None = None) -> np.ndarray:
    """Re diag(K C Kᴴ), summed over groups of ``group`` rows, times scale².

    Parameters
    ----------
    leads : ndarray of shape (n_rows, r)
        Real, or complex (a complex DICS filter).
    fields : ndarray of shape (r, M)
        Real.
    cov : ndarray of shape (M, M)
        Sensor covariance C (symmetric), or a cross-spectral density (Hermitian), in the
        order of ``fields``' columns. With real leads only its real part counts:
        Re(ℓ C ℓᵀ) = ℓ Re(C) ℓᵀ, one real product.
    group : 1 or 3
        Rows whose powers add up to one output (3: a free location's x, y, z).
    scale : ndarray of shape (n_rows // group,) or None
        Noise normalisation per output (its square multiplies the power).

    Returns
    -------
    power : ndarray of shape (n_rows // group,)
    """
    Q = fields @ cov @ fields.T
    complex_leads = np.iscomplexobj(leads)
    Q = Q if complex_leads else Q.real
    power = np.empty(len(leads))
    for k in range(0, len(leads), ROW_TILE):
        rows = leads[k:k + ROW_TILE]
        power[k:k + ROW_TILE] = np.einsum("kr,kr->k", rows @ Q,
                                          rows.conj() if complex_leads else rows).real
    if group == 3:
        power = power.reshape(-1, 3).sum(axis=1)
    if scale is not None:
        power *= scale**2
    return power
