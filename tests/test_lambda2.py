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
from _cli_files import evoked_one, files  # noqa: F401  (fixtures)

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


# --------------------------------------------------------------------------
# The real sample recording
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def inv(evoked_meeg, fwd_surf_meeg, noise_cov):
    import minnorm

    return minnorm.make_inverse_operator(evoked_meeg.info, fwd_surf_meeg, noise_cov,
                                         loose=0.2, depth=0.8)


@pytest.mark.parametrize("rule", reg.RULES)
def test_each_rule_on_the_sample_evoked(evoked_meeg, inv, rule):
    import minnorm

    choice = minnorm.choose_lambda2(evoked_meeg, inv, rule, tmin=0.0, tmax=0.2)
    assert isinstance(choice, minnorm.Lambda2Choice)
    assert np.isfinite(choice.lambda2) and choice.grid[0] <= choice.lambda2 <= choice.grid[-1]
    assert choice.snr == pytest.approx(1 / np.sqrt(choice.lambda2))
    assert choice.nave == evoked_meeg.nave and choice.curve.shape == choice.grid.shape
    assert choice.n_times == np.sum((evoked_meeg.times >= 0) & (evoked_meeg.times <= 0.2))
    fig = choice.plot()
    assert len(fig.axes) == 1
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_nave_changes_the_evidence(evoked_meeg, inv):
    import minnorm

    at_nave = minnorm.choose_lambda2(evoked_meeg, inv, "evidence").lambda2
    at_one = minnorm.choose_lambda2(evoked_meeg, inv, "evidence", nave=1).lambda2
    assert at_one > 1.5 * at_nave  # with C instead of C/nave, the data look noisier


def test_apply_inverse_with_a_rule_equals_the_chosen_number(evoked_meeg, inv, caplog):
    import minnorm

    value = minnorm.choose_lambda2(evoked_meeg, inv, "gcv").lambda2
    with caplog.at_level(logging.INFO, logger="minnorm"):
        stc = minnorm.apply_inverse(evoked_meeg, inv, "gcv", method="dSPM")
    assert any("chosen by gcv" in r.getMessage() and f"{value:.4g}" in r.getMessage()
               for r in caplog.records)
    ref = minnorm.apply_inverse(evoked_meeg, inv, value, method="dSPM")
    np.testing.assert_allclose(stc.data, ref.data, rtol=1e-12, atol=0)


def test_epochs_raw_files_and_decoding_with_a_rule(epochs_meeg, raw_meeg, inv, tmp_path):
    import minnorm
    from minnorm.decoding import SourceTransformer

    value = minnorm.choose_lambda2(epochs_meeg, inv, "evidence").lambda2
    assert minnorm.choose_lambda2(epochs_meeg, inv, "evidence").nave == len(epochs_meeg)
    arr = minnorm.apply_inverse_epochs(epochs_meeg, inv, "evidence", "MNE", return_array=True)
    ref = minnorm.apply_inverse_epochs(epochs_meeg, inv, value, "MNE", return_array=True)
    np.testing.assert_allclose(arr, ref, rtol=1e-12)
    stcs = minnorm.apply_inverse_epochs(epochs_meeg, inv, "evidence", "MNE")
    np.testing.assert_allclose(stcs[3].data, ref[3], rtol=1e-10)
    f = minnorm.write_inverse_epochs(tmp_path / "e.h5", epochs_meeg, inv, "evidence", "MNE")
    with minnorm.read_source_array(f) as r:
        assert r.lambda2 == pytest.approx(value, rel=1e-12)
    st = SourceTransformer(inv, lambda2="evidence", method="MNE").fit(epochs_meeg)
    assert st.lambda2_ == pytest.approx(value, rel=1e-12)
    X = epochs_meeg.get_data(picks=list(inv.ch_names))
    st_arr = SourceTransformer(inv, lambda2="evidence", method="MNE").fit(X)
    assert st_arr.lambda2_ == pytest.approx(value, rel=1e-9)

    start, stop = 30, 200
    t = raw_meeg.times
    raw_value = minnorm.choose_lambda2(raw_meeg, inv, "gcv", tmin=t[start],
                                       tmax=t[stop - 1]).lambda2
    stc = minnorm.apply_inverse_raw(raw_meeg, inv, "gcv", "MNE", start=start, stop=stop)
    ref = minnorm.apply_inverse_raw(raw_meeg, inv, raw_value, "MNE", start=start, stop=stop)
    np.testing.assert_allclose(stc.data, ref.data, rtol=1e-12)


def _assembled(blocks, shape):
    """The blocks of a stream put back in place (raw data: no epoch axis)."""
    out = np.full(shape, np.nan)
    for b in blocks:
        where = (b.epochs, ..., b.times) if len(shape) == 3 else (..., b.times)
        out[where] = b.data
    assert not np.isnan(out).any()
    return out


def test_labels_and_streams_with_a_rule(evoked_meeg, epochs_meeg, raw_meeg, inv,
                                        template_labels):
    """lambda2="gcv" at extract_label_time_course and iter_inverse_epochs/_raw is the same
    call with the number choose_lambda2 gives on the same data (evoked, the epochs'
    average with nave × their number, the raw window)."""
    import minnorm

    labels = template_labels[:2]
    epochs = epochs_meeg[:2]
    start, stop = 30, 200
    t = raw_meeg.times
    chosen = {"evoked": minnorm.choose_lambda2(evoked_meeg, inv, "gcv").lambda2,
              "epochs": minnorm.choose_lambda2(epochs, inv, "gcv").lambda2,
              "raw": minnorm.choose_lambda2(raw_meeg, inv, "gcv", tmin=t[start],
                                            tmax=t[stop - 1]).lambda2}
    assert len(set(chosen.values())) == 3  # three different data, three choices
    for name, data, extra in [("evoked", evoked_meeg, {}), ("epochs", epochs, {}),
                              ("raw", raw_meeg, dict(start=start, stop=stop))]:
        got = minnorm.extract_label_time_course(data, inv, labels, "gcv", "dSPM",
                                                mode="mean_flip", **extra)
        ref = minnorm.extract_label_time_course(data, inv, labels, chosen[name], "dSPM",
                                                mode="mean_flip", **extra)
        np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-12, err_msg=name)
    # budgets that cut the streams into several blocks: λ² is chosen once, from all the data
    got = list(minnorm.iter_inverse_epochs(epochs, inv, "gcv", "MNE", max_memory="20MB"))
    ref = list(minnorm.iter_inverse_epochs(epochs, inv, chosen["epochs"], "MNE",
                                           max_memory="20MB"))
    assert len(got) == len(ref) > 1
    shape = (len(epochs), inv.n_sources, len(epochs.times))
    np.testing.assert_allclose(_assembled(got, shape), _assembled(ref, shape), rtol=1e-12)
    got = list(minnorm.iter_inverse_raw(raw_meeg, inv, "gcv", "MNE", start=start, stop=stop,
                                        max_memory="5MB"))
    ref = list(minnorm.iter_inverse_raw(raw_meeg, inv, chosen["raw"], "MNE", start=start,
                                        stop=stop, max_memory="5MB"))
    assert len(got) == len(ref) > 1
    shape = (inv.n_sources, stop - start)
    np.testing.assert_allclose(_assembled(got, shape), _assembled(ref, shape), rtol=1e-12)


def test_bad_rule_is_one_line_listing_the_rules(evoked_meeg, inv):
    import minnorm

    for bad in ("gvc", -1.0):
        with pytest.raises(ValueError) as err:
            minnorm.apply_inverse(evoked_meeg, inv, bad)
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="'gcv', 'lcurve', 'discrepancy', 'evidence', 'cv'"):
        minnorm.apply_inverse(evoked_meeg, inv, "gvc")
    with pytest.raises(ValueError, match="rule must be one of 'gcv'"):
        minnorm.choose_lambda2(evoked_meeg, inv, "best")


def test_cli_apply_with_a_rule(files, evoked_one, tmp_path, capsys):  # noqa: F811
    import mne

    import minnorm
    from _cli_files import evoked_args, run

    code, out, err = run(capsys, *evoked_args(files), "--method", "MNE", "--lambda2", "gcv",
                         "--out", tmp_path / "g")
    assert code == 0, err
    fwd = mne.read_forward_solution(files.fwd_vol, verbose="error")
    op = minnorm.make_inverse_operator(evoked_one.info, fwd,
                                       mne.read_cov(files.cov, verbose="error"))
    value = minnorm.choose_lambda2(evoked_one, op, "gcv").lambda2
    assert f"λ² = {value:.4g}, chosen by gcv" in out
    expected = minnorm.apply_inverse(evoked_one, op, value, "MNE")
    read = mne.read_source_estimate(tmp_path / "g-vl.stc")
    np.testing.assert_allclose(read.data, expected.data, rtol=1e-5, atol=1e-6 * np.abs(
        expected.data).max())
    code, _, err = run(capsys, *evoked_args(files), "--lambda2", "best", "--out", tmp_path / "b")
    assert code == 2 and "'gcv', 'lcurve'" in err and err.count("\n") == 1
