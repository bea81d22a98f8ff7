"""Choosing λ² from the data (issue 15): each rule against a brute-force computation,
then on the real sample evoked, and ``lambda2="gcv"`` at the entry points.

The brute force forms what the engine avoids: the influence matrix A = G Gᵀ (G Gᵀ + λ²I)⁻¹,
the source estimate x = Gᵀ (G Gᵀ + λ²I)⁻¹ z, curvature by finite differences, the evidence
as the full Gaussian log density (scipy.stats.multivariate_normal), and each fold's fit from
the explicit gain rows.
"""

import logging

import numpy as np
import pytest
from scipy import stats

from minnorm.engine import regularisation as reg

LAMBDAS = np.array([1e-3, 0.03, 0.3, 2.0, 30.0])


def random_problem(seed=0, n=12, p=40, rank=None, T=7, snr=1.0):
    """Whitened gain G (n × p, optionally rank-deficient), data z = G x + noise."""
    rng = np.random.default_rng(seed)
    rank = n if rank is None else rank
    G = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, p)) / np.sqrt(p)
    z = snr * G @ rng.standard_normal((p, T)) + rng.standard_normal((n, T))
    U, s, Vt = np.linalg.svd(G, full_matrices=False)
    s = np.where(s > 1e-10 * s[0], s, 0.0)
    return G, z, reg.make_problem(s, U.T, z, n, with_cv=True)


def influence(G, lam):
    GG = G @ G.T
    return GG @ np.linalg.inv(GG + lam * np.eye(len(G)))


@pytest.mark.parametrize("rank", [None, 8])
def test_gcv_against_influence_matrix(rank):
    G, z, p = random_problem(rank=rank)
    n, T = z.shape
    for lam in LAMBDAS:
        I_A = np.eye(n) - influence(G, lam)
        brute = np.sum((I_A @ z) ** 2) / (T * np.trace(I_A) ** 2)
        assert reg.gcv(p, lam) == pytest.approx(brute, rel=1e-8)
        assert reg.residual(p, lam) == pytest.approx(np.sum((I_A @ z) ** 2), rel=1e-8)


def test_lcurve_parts_and_curvature_against_finite_differences():
    G, z, p = random_problem(seed=1, rank=9)
    U = np.linalg.svd(G, full_matrices=False)[0][:, :9]

    def brute(u):
        lam = np.exp(u)
        x = G.T @ np.linalg.solve(G @ G.T + lam * np.eye(len(G)), z)
        rho = np.sum((U.T @ (z - G @ x)) ** 2)  # misfit within the components
        return np.log(rho), np.log(np.sum(x**2))

    h = 1e-3
    for lam in LAMBDAS:
        u = np.log(lam)
        (a0, b0), (ap, bp), (am, bm) = brute(u), brute(u + h), brute(u - h)
        a1, b1 = (ap - am) / (2 * h), (bp - bm) / (2 * h)
        a2, b2 = (ap - 2 * a0 + am) / h**2, (bp - 2 * b0 + bm) / h**2
        kappa = (a1 * b2 - a2 * b1) / (a1**2 + b1**2) ** 1.5
        (rho, _, _), (eta, _, _) = reg.lcurve_parts(p, lam)
        assert np.log(rho) == pytest.approx(a0, rel=1e-8)
        assert np.log(eta) == pytest.approx(b0, rel=1e-8)
        assert reg.curvature(p, lam) == pytest.approx(kappa, rel=1e-4, abs=1e-6)


def test_evidence_against_full_gaussian():
    G, z, p = random_problem(seed=2, rank=10, snr=2.0)
    n = len(G)

    def brute(lam):
        cov = G @ G.T / lam + np.eye(n)
        return stats.multivariate_normal(np.zeros(n), cov).logpdf(z.T).sum()

    ref = brute(LAMBDAS[0]) - reg.evidence(p, LAMBDAS[0])  # the constant
    for lam in LAMBDAS[1:]:
        assert reg.evidence(p, lam) + ref == pytest.approx(brute(lam), rel=1e-9)


def test_cv_against_explicit_folds():
    G, z, p = random_problem(seed=3, n=15, T=4)
    n, T = z.shape
    for lam in LAMBDAS:
        err = 0.0
        for test in reg._folds(n, reg.CV_FOLDS):
            train = np.setdiff1d(np.arange(n), test)
            Gt = G[train]
            x = Gt.T @ np.linalg.solve(Gt @ Gt.T + lam * np.eye(len(train)), z[train])
            err += np.sum((z[test] - G[test] @ x) ** 2)
        assert reg.cv_error(p, lam) == pytest.approx(err / (n * T), rel=1e-8)


@pytest.mark.parametrize("rule", reg.RULES)
def test_choose_finds_the_optimum_between_grid_points(rule):
    G, z, p = random_problem(seed=4, n=30, p=80, T=20, snr=1.0)
    grid = reg.lambda2_grid(p.sing, 81)
    lam, curve, inside = reg.choose(p, rule, grid)
    assert inside and grid[0] < lam < grid[-1]
    assert np.allclose(curve, [reg.criterion(p, rule, g) for g in grid], rtol=1e-10)
    if rule == "discrepancy":
        I_A = np.eye(len(G)) - influence(G, lam)
        assert np.sum((I_A @ z) ** 2) == pytest.approx(z.size, rel=1e-6)
        return
    sign = 1 if reg.GOAL[rule] == "min" else -1
    best = sign * reg.criterion(p, rule, lam)
    fine = np.exp(np.linspace(np.log(lam) - 0.2, np.log(lam) + 0.2, 401))
    assert best <= np.min(sign * np.array([reg.criterion(p, rule, f) for f in fine])) + 1e-9
    assert best <= np.min(sign * curve) + 1e-12
