"""Dipole scan, localisation measures and the L-curve, on a real forward."""

import numpy as np
import pytest

import minnorm
from minnorm.teaching.dipole import fit_dipole_scan
from minnorm.engine.kernel import prepare_kernel
from minnorm.teaching.metrics import explained_variance, lcurve, localisation


@pytest.fixture(scope="module")
def vol_problem(fwd_vol_meg, evoked_meeg, noise_cov):
    op = minnorm.make_inverse_operator(evoked_meeg.info, fwd_vol_meg, noise_cov)
    rows = [fwd_vol_meg["sol"]["row_names"].index(c) for c in op.ch_names]
    gain = np.asarray(fwd_vol_meg["sol"]["data"][rows], float)
    whitener = op.whitener.matrix @ op.whitener.proj
    return op, gain, whitener, fwd_vol_meg["source_rr"]


def test_dipole_scan_recovers_a_single_dipole(vol_problem):
    op, gain, whitener, rr = vol_problem
    true, moment = 123, np.array([10e-9, -5e-9, 3e-9])
    b = gain[:, 3 * true:3 * true + 3] @ moment
    fit = fit_dipole_scan(gain, b, whitener=whitener, positions=rr, time=0.1)
    assert fit.index == true
    assert fit.gof == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(fit.moment, moment, rtol=1e-6)
    assert np.all(fit.gof_all <= fit.gof + 1e-12)
    np.testing.assert_allclose(fit.position, rr[true])


def test_dipole_scan_fits_two_distant_sources_poorly(vol_problem):
    op, gain, whitener, rr = vol_problem
    # two sources at opposite sides of the head, each field as strong as the other
    left, right = np.argmin(rr[:, 0]), np.argmax(rr[:, 0])
    fields = []
    for k in (left, right):
        g = whitener @ gain[:, 3 * k:3 * k + 3]
        q = np.linalg.svd(g)[2][0]  # the orientation the sensors see best
        fields.append(gain[:, 3 * k:3 * k + 3] @ q / np.linalg.norm(g @ q))
    single = fit_dipole_scan(gain, fields[0], whitener=whitener, positions=rr)
    both = fit_dipole_scan(gain, fields[0] + fields[1], whitener=whitener, positions=rr)
    assert single.gof == pytest.approx(1.0, abs=1e-9)
    assert both.gof < 0.7


def test_localisation_of_a_perfect_estimate_is_zero(vol_problem):
    _, _, _, rr = vol_problem
    true = np.array([5, 300])
    amp = np.zeros((2, len(rr)))
    amp[0, 5] = amp[1, 300] = 1.0
    amp[0, 300] = 5.0  # the other source is bright, but in its own region
    depth = np.linalg.norm(rr - rr.mean(0), axis=1)
    loc = localisation(amp, positions=rr, true_index=true, depth=depth)
    np.testing.assert_array_equal(loc.peak_index, true)
    np.testing.assert_allclose(loc.ple, 0)
    np.testing.assert_allclose(loc.sd, 0)
    np.testing.assert_allclose(loc.peak_depth, loc.true_depth)
    # a blurred estimate has a dispersion, a shifted one a localisation error
    amp[0] = np.exp(-np.linalg.norm(rr - rr[7], axis=1) / 0.02)
    loc = localisation(amp, positions=rr, true_index=true, depth=depth)
    assert loc.ple[0] == pytest.approx(np.linalg.norm(rr[7] - rr[5]))
    assert loc.sd[0] > 0.01


def test_lcurve_is_monotonic_and_matches_the_estimate(vol_problem, evoked_meeg):
    op, gain, whitener, _ = vol_problem
    rows = [evoked_meeg.ch_names.index(c) for c in op.ch_names]
    b = evoked_meeg.data[rows][:, 200]
    lambdas = np.logspace(-4, 2, 13)
    curve = lcurve(op, b, lambda2=lambdas, nave=evoked_meeg.nave)
    assert np.all(np.diff(curve.residual) > 0) and np.all(np.diff(curve.norm) < 0)
    # direct computation at λ² = 1/9 from the kernel
    kernel = prepare_kernel(op, lambda2=1 / 9, method="MNE", nave=evoked_meeg.nave)
    s_hat = kernel.leads @ (kernel.fields @ b)  # every row (3 per source), no norm
    v = s_hat / np.sqrt(op.source_cov / evoked_meeg.nave)
    G = (op.eigen_fields.T * op.sing) @ op.eigen_leads.T
    y = op.whitener.scaled(evoked_meeg.nave).matrix @ (op.whitener.proj @ b)
    direct = lcurve(op, b, lambda2=[1 / 9], nave=evoked_meeg.nave)
    assert direct.norm[0] == pytest.approx(np.linalg.norm(v), rel=1e-8)
    assert direct.residual[0] == pytest.approx(np.linalg.norm(y - G @ v), rel=1e-8)
    ev = explained_variance(kernel, b[:, None])
    assert ev == pytest.approx(1 - direct.residual[0] ** 2 / np.sum(y**2), rel=1e-8)
