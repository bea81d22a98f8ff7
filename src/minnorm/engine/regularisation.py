"""Rules that choose λ² from the data, all from the SVD the operator already has.

With the whitener for the data's ``nave`` (C / nave), the whitened, weighted gain
G = U S Vᵀ and the whitened data z(t) = W P b(t) (n whitened channels, n = the
noise covariance's rank), the data in the components are y = Uᵀ z (r × T) and
what lies outside them has energy e⊥ = ‖z‖² − ‖y‖². With u = log λ² and, per
component, f = λ²/(s² + λ²) (the part of yᵢ left in the residual) and
g = s/(s² + λ²) (the weighted source norm per unit of yᵢ), summed over the
window's T samples (Eᵢ = Σₜ yᵢₜ²)::

    residual   ρ(λ²) = Σ fᵢ² Eᵢ          (+ e⊥ for GCV and the discrepancy)
    source     η(λ²) = Σ gᵢ² Eᵢ
    dof        tr A  = Σ s²/(s² + λ²) = Σ (1 − fᵢ)

    gcv          minimise  (ρ + e⊥) / (T · (n − tr A)²)
    lcurve       maximise  κ(u), the signed curvature of (log ρ, log η)
    discrepancy  solve     ρ + e⊥ = n · T            (Morozov, τ = 1)
    evidence     maximise  log p(y | λ²),  yᵢₜ ~ N(0, sᵢ²/λ² + 1)
    cv           minimise  Σ over K folds of whitened channels of the
                 held-out prediction error (see :func:`cv_error`)

Derivatives in u (primes), used for the L-curve's curvature::

    fᵢ' = fᵢ(1 − fᵢ)             (gᵢ²)' = −2 fᵢ gᵢ²
    ρ'  = Σ 2 fᵢ²(1 − fᵢ) Eᵢ      ρ''   = Σ 2 fᵢ(1 − fᵢ)(2fᵢ − 3fᵢ²) Eᵢ
    η'  = −Σ 2 fᵢ gᵢ² Eᵢ          η''   = −Σ 2 fᵢ(1 − 3fᵢ) gᵢ² Eᵢ
    a = log ρ, b = log η:  a' = ρ'/ρ,  a'' = ρ''/ρ − a'²  (b alike)
    κ = (a' b'' − a'' b') / (a'² + b'²)^{3/2}   (positive at the corner)

Plain arrays only; the data-facing API is :mod:`minnorm.inverse.lambda2`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from .kernel import check_lambda2
from .names import RULES

__all__ = ["RULES", "Problem", "lambda2_grid", "criterion", "choose", "cv_error",
           "lcurve_parts", "lambda2_or_rule"]

# what each rule does with its curve: the chosen λ² is where the curve is...
GOAL = {"gcv": "min", "lcurve": "max", "discrepancy": "root", "evidence": "max", "cv": "min"}
CV_FOLDS = 5
CV_SEED = 0


@dataclass(frozen=True)
class Problem:
    """The data of one window in the operator's components.

    Attributes
    ----------
    sing : ndarray (r,)
        Singular values of the whitened, weighted gain (those > 0 kept).
    energy : ndarray (r,)
        Eᵢ = Σₜ |yᵢₜ|², the data's energy in each component.
    outside : float
        e⊥: whitened energy outside the components (≥ 0).
    n : int
        Dimension of the whitened space (noise covariance rank).
    n_times : int
        T, the samples summed over.
    folds : tuple of CVFold or None
        For the cross-validation only: one per fold of whitened channels.
    """

    sing: np.ndarray
    energy: np.ndarray
    outside: float
    n: int
    n_times: int
    folds: tuple | None = None


@dataclass(frozen=True, eq=False)
class CVFold:
    """One fold's quadratic form of the held-out error in d = sₜᵣ/(sₜᵣ² + λ²) (see _cv_folds).

    Attributes
    ----------
    test_energy : float
        ‖zₜₑ‖², the held-out rows' whitened energy.
    c : ndarray (q,)
    H : ndarray (q, q)
    sing : ndarray (q,)
        sₜᵣ, singular values of the training rows.
    n_test : int
        Held-out rows.
    """

    test_energy: float
    c: np.ndarray
    H: np.ndarray
    sing: np.ndarray
    n_test: int


def make_problem(sing, eigen_fields, white_data, n, *, with_cv=False) -> Problem:
    """From s, Uᵀ (r, n) and z (n, T): the whitened data in the whitened space only."""
    keep = sing > 0
    sing = np.asarray(sing, float)[keep]
    Ut = eigen_fields[keep]
    y = Ut @ white_data
    energy = np.sum(np.abs(y) ** 2, axis=1)
    total = float(np.sum(np.abs(white_data) ** 2))
    outside = max(total - float(energy.sum()), 0.0)
    folds = _cv_folds(Ut.T * sing, white_data) if with_cv else None
    return Problem(sing, energy, outside, int(n), white_data.shape[1], folds)


def _cv_folds(B, z, k: int = CV_FOLDS) -> tuple:
    """Per fold, from one SVD Bₜᵣ = Uₜᵣ diag(sₜᵣ) Vₜᵣᵀ of the training rows of B::

        P = Bₜₑ Vₜᵣ,  q = Uₜᵣᵀ zₜᵣ,  c_k = Re Σₜ (Pᵀ zₜₑ)*_kt q_kt,
        H = Re(q qᴴ) ∘ (PᵀP),  so with d = sₜᵣ/(sₜᵣ² + λ²):
        ‖zₜₑ − P diag(d) q‖² = ‖zₜₑ‖² − 2 dᵀc + dᵀHd      (O(r²) per λ²)
    """
    out = []
    for test in _folds(len(B), k):
        train = np.setdiff1d(np.arange(len(B)), test)
        Uf, sf, Vft = np.linalg.svd(B[train], full_matrices=False)
        P, q = B[test] @ Vft.T, Uf.T @ z[train]
        c = np.sum(np.conj(P.T @ z[test]) * q, axis=1).real
        H = (q @ q.conj().T).real * (P.T @ P)
        out.append(CVFold(float(np.sum(np.abs(z[test]) ** 2)), c, H, sf, len(test)))
    return tuple(out)


def lambda2_grid(sing, n_points: int = 161) -> np.ndarray:
    """λ² from 1e-6 to 1e4 times the mean s² (1 for MNE's trace-scaled gain), log-spaced."""
    scale = float(np.mean(np.asarray(sing) ** 2))
    return scale * np.logspace(-6, 4, n_points)


def _f(p: Problem, lambda2):
    lam = np.asarray(lambda2, float)[..., np.newaxis]
    s2 = p.sing**2
    return lam / (s2 + lam), s2


def residual(p: Problem, lambda2):
    """ρ(λ²) + e⊥: the whitened residual energy of the MNE fit."""
    f, _ = _f(p, lambda2)
    return np.sum(f**2 * p.energy, axis=-1) + p.outside


def gcv(p: Problem, lambda2):
    f, _ = _f(p, lambda2)
    dof_left = p.n - np.sum(1.0 - f, axis=-1)  # tr(I − A)
    return residual(p, lambda2) / (p.n_times * dof_left**2)


def lcurve_parts(p: Problem, lambda2):
    """(ρ, η) and their first and second derivatives in u = log λ²."""
    f, s2 = _f(p, lambda2)
    lam = np.asarray(lambda2, float)[..., np.newaxis]
    g2 = s2 / (s2 + lam) ** 2
    E = p.energy
    rho = np.sum(f**2 * E, axis=-1)
    rho1 = np.sum(2 * f**2 * (1 - f) * E, axis=-1)
    rho2 = np.sum(2 * f * (1 - f) * (2 * f - 3 * f**2) * E, axis=-1)
    eta = np.sum(g2 * E, axis=-1)
    eta1 = -np.sum(2 * f * g2 * E, axis=-1)
    eta2 = -np.sum(2 * f * (1 - 3 * f) * g2 * E, axis=-1)
    return (rho, rho1, rho2), (eta, eta1, eta2)


def curvature(p: Problem, lambda2):
    """κ of the curve (log ρ, log η) at λ²; its maximum is the L-curve's corner."""
    (rho, rho1, rho2), (eta, eta1, eta2) = lcurve_parts(p, lambda2)
    a1, b1 = rho1 / rho, eta1 / eta
    a2, b2 = rho2 / rho - a1**2, eta2 / eta - b1**2
    return (a1 * b2 - a2 * b1) / (a1**2 + b1**2) ** 1.5


def discrepancy(p: Problem, lambda2):
    """log of residual / (n · T): 0 where the residual is as large as the noise."""
    return np.log(residual(p, lambda2) / (p.n * p.n_times))


def evidence(p: Problem, lambda2):
    """log p(y | λ²) up to a constant: yᵢₜ ~ N(0, sᵢ²/λ² + 1), independent."""
    lam = np.asarray(lambda2, float)[..., np.newaxis]
    var = p.sing**2 / lam + 1.0
    return -0.5 * np.sum(p.n_times * np.log(var) + p.energy / var, axis=-1)


def _folds(n: int, k: int) -> list:
    order = np.random.default_rng(CV_SEED).permutation(n)
    return [np.sort(part) for part in np.array_split(order, k)]


def cv_error(p: Problem, lambda2):
    """K-fold cross-validation over whitened channels, divided by n · T.

    The rows of ``gain`` and ``data`` are whitened channels (the whitener's
    eigen-directions for the data's nave): their noise is independent with
    unit variance, so held-out rows test the fit with noise it never saw
    (raw sensors would share correlated noise across folds). Sources are
    x = V c (the minimum-norm solution of any subset of rows lies in the span
    of V); per fold, c = (BₜᵣᵀBₜᵣ + λ²I)⁻¹ Bₜᵣᵀ zₜᵣ with B = U S, and the error
    is ‖zₜₑ − Bₜₑ c‖², all through one SVD of Bₜᵣ.
    """
    lam = np.atleast_1d(np.asarray(lambda2, float))
    total = np.zeros(len(lam))
    for f in p.folds:
        d = f.sing / (f.sing**2 + lam[:, np.newaxis])  # (n_λ, q)
        total += f.test_energy - 2 * d @ f.c + np.einsum("lk,kj,lj->l", d, f.H, d)
    n = sum(f.n_test for f in p.folds)
    out = total / (n * p.n_times)
    return out if np.ndim(lambda2) else out[0]


CURVES = {"gcv": gcv, "lcurve": curvature, "discrepancy": discrepancy, "evidence": evidence,
          "cv": cv_error}


def criterion(p: Problem, rule: str, lambda2):
    """The rule's curve at λ² (array in, array out)."""
    return CURVES[rule](p, lambda2)


def choose(p: Problem, rule: str, grid: np.ndarray) -> tuple[float, np.ndarray, bool]:
    """(λ², the curve on the grid, whether the optimum is inside the grid).

    The best grid point is refined between its neighbours on log λ²
    (bounded scalar minimisation; for the discrepancy, Brent's root finder
    between the grid points where the curve changes sign). At a grid edge
    the edge is returned and the flag is False.
    """
    curve = criterion(p, rule, grid)
    u = np.log(grid)
    if GOAL[rule] == "root":
        return _root(p, curve, u, grid)
    sign = 1.0 if GOAL[rule] == "min" else -1.0
    values = np.where(np.isfinite(curve), sign * curve, np.inf)
    k = int(np.argmin(values))
    if k in (0, len(grid) - 1):
        return float(grid[k]), curve, False
    res = optimize.minimize_scalar(lambda x: sign * float(criterion(p, rule, np.exp(x))),
                                   bounds=(u[k - 1], u[k + 1]), method="bounded",
                                   options={"xatol": 1e-6})
    best = res.x if sign * float(criterion(p, rule, np.exp(res.x))) <= values[k] else u[k]
    return float(np.exp(best)), curve, True


def _root(p, curve, u, grid):
    above = curve > 0  # residual increases with λ²
    if above.all():
        return float(grid[0]), curve, False
    if not above.any():
        return float(grid[-1]), curve, False
    k = int(np.argmax(above))  # first grid point above the noise level
    x = optimize.brentq(lambda x: float(discrepancy(p, np.exp(x))), u[k - 1], u[k],
                        xtol=1e-10)
    return float(np.exp(x)), curve, True


def lambda2_or_rule(value):
    """A λ² (a positive finite number, returned as float) or the name of a rule (returned as is)."""
    if isinstance(value, str):
        rule = value.strip().lower()
        if rule in RULES:
            return rule
        try:
            number = float(value)
        except ValueError:
            raise ValueError(
                f"lambda2 must be a number > 0 (e.g. 1/9) or one of the rules "
                f"{', '.join(repr(r) for r in RULES)} that choose it from the data, "
                f"got {value!r}") from None
        return check_lambda2(number)
    return check_lambda2(value)
