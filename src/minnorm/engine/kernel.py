"""Kernels: the inverse for one λ², method and number of averages.

From G = W L R**½ = U S Vᵀ (see :mod:`minnorm.inverse.operator`), with Γ = diag(s/(s²+λ²))::

    K = R**½ V Γ Uᵀ W P                           # (n_rows, M): the MNE kernel
      = leads @ fields                            # leads (n_rows, r), fields (r, M)

    dSPM    : ŝ_k / √(K C Kᵀ)_kk        = ‖(R**½ V Γ)_k‖                (Dale 2000)
    sLORETA : ŝ_k / √(K (G Gᵀ+λ²I) Kᵀ)_kk = ‖(R**½ V Γ √(1+s²/λ²))_k‖  (Pascual-Marqui 2002)
    eLORETA : R replaced by fitted weights, then MNE's formula          (Pascual-Marqui 2007)

For free orientations the noise norms of a location's three rows are
combined (√ of the sum of squares). For evoked data of ``nave`` averages
the noise covariance is C / nave: the kernel does not change, and the noise
norms scale by 1/√nave.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

from . import eloreta as _eloreta
from .linalg import svd_wide
from .checks import name_list, positive_number
from .names import METHODS
from .whitening import Whitener

__all__ = ["Kernel", "prepare_kernel", "METHODS"]

logger = logging.getLogger("minnorm")

Method = Literal["MNE", "dSPM", "sLORETA", "eLORETA"]
_CACHE_SIZE = 8


@dataclass(frozen=True, eq=False)
class Kernel:
    """The inverse for one (λ², method, nave), as low-rank factors.

    Attributes
    ----------
    method, lambda2, nave
        What it was prepared for.
    leads : ndarray of shape (n_rows, r)
        R**½ V Γ (eLORETA: with its weights).
    fields : ndarray of shape (r, M)
        Uᵀ W P: data → whitened components.
    noise_norm : ndarray of shape (n_sources,) or None
        1 / noise standard deviation per location (dSPM, sLORETA).
    eigen_fields : ndarray of shape (r, M)
        Uᵀ (for the residual).
    sing, reginv : ndarray of shape (r,)
        s and s / (s² + λ²).
    whitener : Whitener
        The noise model for ``nave``.
    eloreta_weights : ndarray of shape (n_rows,) or (n_sources, 3, 3), or None
        eLORETA only: R**½, the fitted source weights (a warm start for
        another λ²).
    """

    method: str
    lambda2: float
    nave: float
    leads: np.ndarray
    fields: np.ndarray
    noise_norm: np.ndarray | None
    eigen_fields: np.ndarray
    sing: np.ndarray
    reginv: np.ndarray
    whitener: Whitener
    eloreta_weights: np.ndarray | None = None

    def estimate_data(self, data: np.ndarray) -> np.ndarray:
        """The sensor data the estimate explains, C**½ U Π Uᵀ W P b  (Π = sΓ)."""
        Pi = self.sing * self.reginv
        return self.whitener.colorer @ (self.eigen_fields.T @ (Pi[:, np.newaxis] * (self.fields @ data)))


def check_lambda2(lambda2) -> float:
    """λ² must be a positive finite number."""
    try:
        value = float(lambda2)
    except (TypeError, ValueError):
        raise TypeError(f"lambda2 must be a number, got {lambda2!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"lambda2 must be > 0 (typically 1/SNR², e.g. 1/9), got {lambda2!r}")
    return value


def check_nave(nave) -> float:
    """The number of averages: a finite number > 0."""
    return positive_number(nave, "nave (number of averages)")


def check_method(method) -> str:
    """One of MNE, dSPM, sLORETA, eLORETA."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    return method


def regularized_inverse(sing: np.ndarray, lambda2: float, n_nonzero: int) -> np.ndarray:
    """Γ = s / (s² + λ²) on the first n_nonzero components, 0 beyond."""
    reginv = np.zeros_like(sing, dtype=np.float64)
    s = sing[:n_nonzero]
    with np.errstate(invalid="ignore", divide="ignore"):
        reginv[:n_nonzero] = np.where(s > 0, s / (s**2 + lambda2), 0.0)
    return reginv


def prepare_kernel(op, *, lambda2: float, method: Method = "dSPM", nave: float = 1,
                   method_params: dict | None = None) -> Kernel:
    """The kernel of ``op`` for (λ², method, nave), cached on the operator."""
    lambda2 = check_lambda2(lambda2)
    method = check_method(method)
    nave = check_nave(nave)
    params = _eloreta.check_params(method_params) if method == "eLORETA" else None
    key = (method, lambda2, float(nave), None if params is None else tuple(sorted(params.items())))
    cache = op._kernels
    if key not in cache:
        if len(cache) >= _CACHE_SIZE:
            cache.pop(next(iter(cache)))
        cache[key] = _build(op, lambda2, method, float(nave), params)
    return cache[key]


def _build(op, lambda2, method, nave, params) -> Kernel:
    whitener = op.whitener.scaled(nave)
    n_nonzero = whitener.n_nonzero
    source_std = np.sqrt(op.source_cov / nave)
    if method == "eLORETA":
        return _build_eloreta(op, lambda2, nave, whitener, source_std, params)
    reginv = regularized_inverse(op.sing, lambda2, n_nonzero)
    std_V = source_std[:, np.newaxis] * op.eigen_leads  # R**½ V, (n_rows, r)
    noise_norm = None
    if method != "MNE":
        weight = reginv if method == "dSPM" else reginv * np.sqrt(1.0 + op.sing**2 / lambda2)
        noise_norm = _noise_norm(std_V, weight, op.n_orient)
    leads = std_V * reginv
    _check_finite(std_V, leads, noise_norm, op.sing[:n_nonzero], lambda2, method)
    return Kernel(
        method=method, lambda2=lambda2, nave=nave, leads=leads,
        fields=op.eigen_fields @ (whitener.matrix @ whitener.proj),
        noise_norm=noise_norm, eigen_fields=op.eigen_fields, sing=op.sing,
        reginv=reginv, whitener=whitener,
    )


def _check_finite(std_V, leads, noise_norm, sing, lambda2, method) -> None:
    """The kernel must give finite estimates: refuse what would make them NaN.

    A source the sensors cannot see (zero gain, e.g. at the centre of a
    spherical head) has zero rows in R**½ V and no noise to normalise by. With
    λ² far above s², s/(s² + λ²) and with it dSPM's noise variance underflow
    (1/0: NaN estimates); far below, the kernel can overflow.
    """
    n_loc = len(std_V) if noise_norm is None else len(noise_norm)
    bad = ~np.all(np.isfinite(leads), axis=1).reshape(n_loc, -1).any(axis=1)
    if noise_norm is not None:
        bad |= ~np.isfinite(noise_norm)
    if not bad.any():
        return
    seen = std_V[:, :len(sing)][:, sing > 0]  # the components the data carry
    blind = bad & ~np.any(seen.reshape(n_loc, -1), axis=1)
    if blind.any():
        raise ValueError(
            f"{int(blind.sum())} sources (index {name_list([int(k) for k in np.flatnonzero(blind)], 4)}) have zero "
            f"gain: no sensor sees them (e.g. the centre of a spherical head model), so their "
            f"{method} estimate would be NaN; leave them out of the source space (e.g. "
            "mne.setup_volume_source_space(..., exclude=10.0)) or use method='MNE'")
    direction = "large" if lambda2 > np.max(sing, initial=0.0) ** 2 else "small"
    raise ValueError(
        f"lambda2 = {lambda2:g} is too {direction} for this operator: the {method} kernel "
        f"of {int(bad.sum())} sources leaves floating-point range (NaN estimates); whitened "
        f"singular values run from {np.min(sing, initial=np.inf):.3g} to "
        f"{np.max(sing, initial=0.0):.3g}, so use a lambda2 near their squares (typically "
        "1/9, i.e. snr 3)")


def _noise_norm(std_V, weight, n_orient):
    """1 / ‖(R**½ V diag(weight))_k‖ per location (rows combined for 3 orientations)."""
    var = np.einsum("kr,kr->k", std_V, std_V * weight**2)
    if n_orient == 3:
        var = var.reshape(-1, 3).sum(axis=1)
    with np.errstate(divide="ignore"):  # var 0: refused by _check_finite
        return 1.0 / np.sqrt(var)


def _build_eloreta(op, lambda2, nave, whitener, source_std, params) -> Kernel:
    logger.info("Fitting eLORETA weights (λ² = %g)", lambda2)
    # The whitened gain without priors, G = U S Vᵀ R**-½, lives in the span of its n
    # components: eLORETA runs on Uᵀ G = S Vᵀ R**-½ (n × n_rows), where MNE-Python's
    # (G R Gᵀ + λ²I)⁺ restricted to the n largest directions is a plain inverse.
    n = whitener.n_nonzero
    Gt = op.eigen_leads[:, :n] * op.sing[:n]  # Gᵀ, source-major as eigen_leads: no transposes
    Gt /= source_std[:, np.newaxis]
    orient_std = np.ones(len(Gt)) if op.orient_prior is None else np.sqrt(op.orient_prior)
    R_sqrt = _eloreta.eloreta_weights(
        Gt.T, orient_std=orient_std, n_orient=op.n_orient, lambda2=lambda2,
        n_nonzero=n, R_init=_warm_start(op, lambda2, nave, params), **params,
    )
    GR = _eloreta.weight_rows(R_sqrt, Gt)  # (G R**½)ᵀ
    U, sing, Vt = svd_wide(GR.T)  # U: (n, n), in the components
    reginv = regularized_inverse(sing, lambda2, n)
    V = Vt.T  # svd_wide's own C-ordered (n_rows, n) array
    V *= reginv
    leads = _eloreta.weight_rows(R_sqrt, V, out=GR)  # R**½ V Γ, in GR's memory
    _check_finite(leads, leads, None, sing[:n], lambda2, "eLORETA")  # Γ > 0 where s > 0
    eigen_fields = U.T @ op.eigen_fields[:n]  # back to sensors: (n, M)
    return Kernel(
        method="eLORETA", lambda2=lambda2, nave=nave, leads=leads,
        fields=eigen_fields @ (whitener.matrix @ whitener.proj), noise_norm=None,
        eigen_fields=eigen_fields, sing=sing, reginv=reginv, whitener=whitener,
        eloreta_weights=R_sqrt,
    )


def _warm_start(op, lambda2, nave, params):
    """R of the cached eLORETA kernel whose λ² is nearest (log scale), or None.

    Same nave and options only. The fixed point does not depend on the
    start, so this changes the result by no more than the tolerance ``eps``
    allows; it only saves iterations when λ² is swept.
    """
    options = tuple(sorted(params.items()))
    same = [k for key, k in op._kernels.items()
            if key[0] == "eLORETA" and key[2] == nave and key[3] == options]
    if not same:
        return None
    near = min(same, key=lambda k: abs(np.log(k.lambda2 / lambda2)))
    logger.info("eLORETA: starting from the weights for λ² = %g", near.lambda2)
    W = near.eloreta_weights
    return W**2 if W.ndim == 1 else np.matmul(W, W)
