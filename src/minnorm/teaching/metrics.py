"""How good is an estimate? Measures against a known truth, and the L-curve.

* peak localisation error (PLE): distance from the true source to the peak of
  the estimate in the true source's region (the sources nearer to it than to
  any other true source), at the true source's peak time;
* spatial dispersion (SD, Molins et al. 2008): √(Σ dₖ² aₖ² / Σ aₖ²) over the
  same region, dₖ the distance to the true source, aₖ the estimate;
* depth of the estimated peak versus the true depth: the minimum norm's
  surface bias shows as peaks shallower than the truth;
* explained variance of the whitened data;
* the L-curve: the two terms of F(λ²) = ‖y − G v‖² + λ² ‖v‖² over λ².
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engine.kernel import regularized_inverse

__all__ = ["Localisation", "localisation", "LCurve", "lcurve", "explained_variance"]


@dataclass(frozen=True)
class Localisation:
    """Localisation of each true source by one estimate.

    Attributes
    ----------
    peak_index : ndarray of int, shape (n_true,)
        Source index of the estimate's peak in each true source's region.
    ple : ndarray of shape (n_true,)
        Peak localisation error (units of the positions).
    sd : ndarray of shape (n_true,)
        Spatial dispersion (units of the positions).
    peak_depth, true_depth : ndarray of shape (n_true,)
        Depth of the estimated peak and of the true source.
    """

    peak_index: np.ndarray
    ple: np.ndarray
    sd: np.ndarray
    peak_depth: np.ndarray
    true_depth: np.ndarray


def localisation(
    amplitudes: np.ndarray,
    /,
    *,
    positions: np.ndarray,
    true_index: np.ndarray,
    depth: np.ndarray,
) -> Localisation:
    """Localisation measures of an estimate against the true sources.

    Parameters
    ----------
    amplitudes : ndarray of shape (n_true, n_sources)
        Estimated amplitude of every source at each true source's peak time
        (non-negative: a norm or an absolute value).
    positions : ndarray of shape (n_sources, 3)
    true_index : ndarray of int, shape (n_true,)
        Source index of each true source.
    depth : ndarray of shape (n_sources,)
        Depth of every source (e.g. distance to the inner skull).

    Returns
    -------
    loc : Localisation
    """
    true_pos = positions[true_index]
    dist = np.linalg.norm(positions[:, np.newaxis] - true_pos[np.newaxis], axis=-1)
    region = np.argmin(dist, axis=1)  # nearest true source of every source
    peaks, ple, sd = [], [], []
    for i, amp in enumerate(np.abs(amplitudes)):
        members = np.flatnonzero(region == i)
        peak = members[np.argmax(amp[members])]
        a2 = amp[members] ** 2
        peaks.append(peak)
        ple.append(dist[peak, i])
        sd.append(np.sqrt(np.sum(dist[members, i] ** 2 * a2) / np.sum(a2)))
    peaks = np.array(peaks)
    return Localisation(peak_index=peaks, ple=np.array(ple), sd=np.array(sd),
                        peak_depth=depth[peaks], true_depth=depth[true_index])


@dataclass(frozen=True)
class LCurve:
    """The trade-off the regularisation makes, for a range of λ².

    Attributes
    ----------
    lambda2 : ndarray of shape (n,)
    residual : ndarray of shape (n,)
        ‖y − G v‖ (whitened data misfit, root mean square over time points;
        ≈ √n_channels means "fits down to the noise").
    norm : ndarray of shape (n,)
        ‖v‖ (the weighted source norm, root mean square over time points).
    """

    lambda2: np.ndarray
    residual: np.ndarray
    norm: np.ndarray

    @property
    def cost(self) -> np.ndarray:
        """F = ‖y − G v‖² + λ² ‖v‖² at each λ²."""
        return self.residual**2 + self.lambda2 * self.norm**2


def lcurve(op, data: np.ndarray, /, *, lambda2: np.ndarray, nave: float = 1) -> LCurve:
    """Both terms of the minimum-norm cost over λ², from the operator's SVD.

    With y = W P b and w = Uᵀ y, for each λ² (Γ = s/(s²+λ²))::

        ‖v‖² = Σ (Γ w)²          ‖y − G v‖² = Σ ((1 − sΓ) w)²

    Parameters
    ----------
    op : InverseOperator
    data : ndarray of shape (M,) or (M, n_times)
        Sensor data; with several time points both terms are averaged over
        them (so ‖y − Gv‖² ≈ n_channels means "fits down to the noise").
    lambda2 : ndarray of shape (n,)
    nave : float
        Number of averages (the noise covariance is C / nave).
    """
    white = op.whitener.scaled(nave)
    w = op.eigen_fields @ (white.matrix @ (white.proj @ data))
    w2 = (w**2).reshape(len(w), -1).mean(axis=1)
    lambdas = np.asarray(lambda2, dtype=float)
    residual, norm = [], []
    for lam in lambdas:
        gamma = regularized_inverse(op.sing, lam, op.n_nonzero)
        norm.append(np.sqrt(np.sum(gamma**2 * w2)))
        residual.append(np.sqrt(np.sum((1 - op.sing * gamma) ** 2 * w2)))
    return LCurve(lambdas, np.array(residual), np.array(norm))


def explained_variance(kernel, data: np.ndarray) -> float:
    """1 − ‖W P (b − b̂)‖² / ‖W P b‖², b̂ the data the estimate explains."""
    white = kernel.whitener.matrix @ kernel.whitener.proj
    residual = white @ (data - kernel.estimate_data(data))
    return float(1 - np.sum(residual**2) / np.sum((white @ data) ** 2))
