"""The rest of mne.minimum_norm's inverse-level names equal MNE-Python on the sample data.

INVERSE_METHODS, compute_rank_inverse, estimate_snr, apply_inverse_cov,
prepare_inverse_operator with ``prepared=True`` (minnorm's prepared operators
and MNE-Python's, eLORETA's included) and apply_inverse_tfr_epochs, compared
with MNE-Python on the "Left Auditory" evoked, its covariance and noisy epochs:
relative error below 1e-6 (MNE, dSPM, sLORETA) and 1e-3 (eLORETA). Operators:
loose 0.2 and fixed on the template cortex (MEG), loose on MEG+EEG, and free on
the volume grid with the magnetometers only (eLORETA's fit is fast there).
"""

import mne
import numpy as np
import pytest

import minnorm
from _compare import assert_same_stc, rel_err

LAMBDA2 = 1.0 / 9.0
TOL = {"MNE": 1e-6, "dSPM": 1e-6, "sLORETA": 1e-6, "eLORETA": 1e-3}
FREQS = [8.0, 12.0, 20.0]

# many small products and decompositions, and MNE-Python's own: OpenBLAS's spinning threads
# make them several times slower when the CPU is shared (see conftest.py)
pytestmark = pytest.mark.usefixtures("one_blas")


def assert_same(ours, ref, tol):
    """Source estimates alike (see _compare), of the same dtype (complex or real)."""
    assert ours.data.dtype == ref.data.dtype
    assert_same_stc(ours, ref, tol)


# name → (forward fixture, options, methods and pick_oris for apply_inverse_cov)
CONFIGS = {
    "loose": ("fwd_surf_meg", dict(loose=0.2), ("MNE", "dSPM", "sLORETA"), (None, "normal")),
    "fixed": ("fwd_surf_meg", dict(fixed=True), ("MNE", "dSPM", "sLORETA"), (None,)),
    "meeg": ("fwd_surf_meeg", dict(loose=0.2), ("dSPM",), (None, "normal")),
    "small": ("fwd_vol_meg", dict(loose=1.0), ("MNE", "dSPM", "sLORETA", "eLORETA"), (None,)),
}


SHARED = {"loose": "surf-meg-loose", "fixed": "surf-meg-fixed", "meeg": "surf-meeg-loose"}


@pytest.fixture(scope="module")
def operators(operators, request, evoked_meeg, noise_cov):
    """(MNE-Python's operator, minnorm's) per configuration, each made by its library; the
    session's (conftest) where they are the same, so the suite builds them once."""
    cache = {}

    def get(name):
        if name in SHARED:
            return operators(SHARED[name])
        if name not in cache:
            fwd_name, options, _, _ = CONFIGS[name]
            fwd = request.getfixturevalue(fwd_name)
            if name == "small":
                fwd = mne.pick_types_forward(fwd, meg="mag", eeg=False)
            cache[name] = (
                mne.minimum_norm.make_inverse_operator(evoked_meeg.info, fwd, noise_cov,
                                                       verbose=False, **options),
                minnorm.make_inverse_operator(evoked_meeg.info, fwd, noise_cov, **options))
        return cache[name]

    return get


@pytest.fixture(scope="module")
def mne_eloreta(operators, evoked_meeg):
    """MNE-Python's small operator prepared for eLORETA (its weights fitted once)."""
    return mne.minimum_norm.prepare_inverse_operator(operators("small")[0], evoked_meeg.nave,
                                                     LAMBDA2, "eLORETA", verbose=False)


@pytest.fixture(scope="module")
def epochs_tfr(epochs_meeg):
    """Complex Morlet coefficients of 3 epochs at 3 frequencies (decimated by 4)."""
    return epochs_meeg[:3].compute_tfr("morlet", freqs=FREQS, n_cycles=3, output="complex",
                                       return_itc=False, decim=4, verbose=False)


# --------------------------------------------------------------------------- names


def test_inverse_methods_is_mne():
    assert type(minnorm.INVERSE_METHODS) is type(mne.minimum_norm.INVERSE_METHODS)
    assert minnorm.INVERSE_METHODS == mne.minimum_norm.INVERSE_METHODS
    for name in ("INVERSE_METHODS", "compute_rank_inverse", "estimate_snr", "apply_inverse_cov",
                 "prepare_inverse_operator", "apply_inverse_tfr_epochs"):
        assert name in minnorm.__all__


@pytest.mark.parametrize("name", ["loose", "fixed", "meeg", "small"])
def test_compute_rank_inverse_is_the_whitener_rank(operators, name):
    ref_op, op = operators(name)
    expected = mne.minimum_norm.compute_rank_inverse(ref_op)
    for inv in (op, ref_op):
        rank = minnorm.compute_rank_inverse(inv)
        assert type(rank) is type(expected)
        assert rank == expected
    assert minnorm.compute_rank_inverse(op) == np.sum(op.whitener.eig > 0)
    assert np.linalg.matrix_rank(op.whitener.matrix) == expected


# --------------------------------------------------------------------------- SNR


@pytest.mark.parametrize("name", ["meeg", "fixed"])
def test_estimate_snr_equals_mne(operators, evoked_meeg, name):
    ref_op, op = operators(name)
    snr_ref, est_ref = mne.minimum_norm.estimate_snr(evoked_meeg, ref_op, verbose=False)
    for inv in (op, ref_op):
        snr, est = minnorm.estimate_snr(evoked_meeg, inv)
        assert snr.shape == est.shape == evoked_meeg.times.shape
        assert rel_err(snr, snr_ref) < 1e-6
        low = snr_ref <= 1  # λ² = ∞ there: snr_est 0
        assert low.any() and (~low).any()
        np.testing.assert_array_equal(est == 0, low)
        np.testing.assert_allclose(est, est_ref, rtol=1e-9)


def test_estimate_snr_extremes_equal_mne(operators, evoked_meeg, mne_eloreta):
    ref_op, op = operators("fixed")
    strong = evoked_meeg.copy()
    strong.data *= 100  # no λ² on MNE-C's grid fits: MNE-Python warns, and so does minnorm
    with pytest.warns(RuntimeWarning, match="did not converge"):
        ref = mne.minimum_norm.estimate_snr(strong, ref_op, verbose=False)
    with pytest.warns(minnorm.MinnormWarning, match="did not converge"):
        ours = minnorm.estimate_snr(strong, op)
    np.testing.assert_allclose(ours[1], ref[1], rtol=1e-9)
    assert rel_err(ours[0], ref[0]) < 1e-6
    weak = evoked_meeg.copy()
    weak.data *= 1e-2  # snr ≤ 1 everywhere: snr_est 0
    ours = minnorm.estimate_snr(weak, op)
    ref = mne.minimum_norm.estimate_snr(weak, ref_op, verbose=False)
    assert not ours[1].any() and not ref[1].any()
    # an operator MNE-Python prepared for eLORETA: its SVD is eLORETA's, as MNE uses it
    mags = evoked_meeg.copy().pick("mag")
    ref = mne.minimum_norm.estimate_snr(mags, mne_eloreta, verbose=False)
    ours = minnorm.estimate_snr(mags, mne_eloreta)
    assert rel_err(ours[0], ref[0]) < 1e-6
    np.testing.assert_allclose(ours[1], ref[1], rtol=1e-9)
    assert minnorm.compute_rank_inverse(mne_eloreta) == \
        mne.minimum_norm.compute_rank_inverse(mne_eloreta)


def test_snr_and_rank_refuse_bad_input(operators, evoked_meeg):
    _, op = operators("fixed")
    with pytest.raises(TypeError, match="expected an mne.minimum_norm.InverseOperator, got str"):
        minnorm.compute_rank_inverse("inv.fif")
    with pytest.raises(TypeError, match="evoked must be an mne Evoked, got ndarray"):
        minnorm.estimate_snr(evoked_meeg.data, op)
    with pytest.raises(ValueError, match="estimate_snr needs real data, got complex"):
        minnorm.estimate_snr(evoked_meeg.copy().apply_hilbert(), op)
    with pytest.raises(ValueError, match="3 channels of the inverse operator are not in the data"):
        minnorm.estimate_snr(evoked_meeg.copy().drop_channels(op.ch_names[:3]), op)


# --------------------------------------------------------------------------- covariance


def _cov_cases():
    for name, (_, _, methods, pick_oris) in CONFIGS.items():
        for pick_ori in pick_oris:
            for method in methods:
                yield pytest.param(name, method, pick_ori, id=f"{name}-{method}-{pick_ori}")


@pytest.mark.parametrize("name, method, pick_ori", list(_cov_cases()))
def test_apply_inverse_cov_equals_mne(operators, mne_eloreta, evoked_meeg, noise_cov, name,
                                      method, pick_ori):
    ref_op, op = operators(name)
    if method == "eLORETA":  # MNE-Python's own prepared=True path: its fit once
        ref_op, prepared = mne_eloreta, True
    else:
        prepared = False
    ref = mne.minimum_norm.apply_inverse_cov(noise_cov, evoked_meeg.info, ref_op, nave=3,
                                             lambda2=LAMBDA2, method=method, pick_ori=pick_ori,
                                             prepared=prepared, verbose=False)
    ours = minnorm.apply_inverse_cov(noise_cov, evoked_meeg.info, op, nave=3, lambda2=LAMBDA2,
                                     method=method, pick_ori=pick_ori)
    assert ours.data.shape == (sum(len(v) for v in ours.vertices), 1)
    assert_same(ours, ref, TOL[method])
    assert np.all(ours.data > 0)


@pytest.mark.parametrize("pick_ori", [None, "normal"])
def test_apply_inverse_cov_label_equals_mne(operators, evoked_meeg, noise_cov, template_labels,
                                            pick_ori):
    ref_op, op = operators("loose")
    for label in template_labels:  # left, right and both hemispheres
        ref = mne.minimum_norm.apply_inverse_cov(noise_cov, evoked_meeg.info, ref_op,
                                                 method="sLORETA", pick_ori=pick_ori,
                                                 label=label, verbose=False)
        ours = minnorm.apply_inverse_cov(noise_cov, evoked_meeg.info, op, method="sLORETA",
                                         pick_ori=pick_ori, label=label)
        assert_same(ours, ref, 1e-6)


@pytest.mark.parametrize("name, method", [("small", "MNE"), ("loose", "dSPM"), ("fixed", "MNE")])
def test_apply_inverse_cov_is_the_mean_power_of_the_estimates(operators, evoked_meeg, name,
                                                              method):
    """diag(K C Kᵀ) = mean_t (K b_t)² for C = mean_t b_t b_tᵀ (sum over x, y, z when free)."""
    _, op = operators(name)
    picks = mne.pick_channels(evoked_meeg.ch_names, op.ch_names, ordered=True)
    data = evoked_meeg.data[picks]
    cov = mne.Covariance(data @ data.T / data.shape[1], list(op.ch_names), bads=[], projs=[],
                         nfree=data.shape[1])
    power = minnorm.apply_inverse_cov(cov, evoked_meeg.info, op, nave=evoked_meeg.nave,
                                      method=method)
    stc = minnorm.apply_inverse(evoked_meeg, op, LAMBDA2, method)  # pick_ori None: the norm
    assert rel_err(power.data[:, 0], np.mean(stc.data**2, axis=1)) < 1e-10
    # a diagonal covariance (MNE-Python fails on it: IndexError) is its diagonal matrix
    diag = minnorm.apply_inverse_cov(cov.as_diag(), evoked_meeg.info, op, method=method)
    full = mne.Covariance(np.diag(np.diag(cov.data)), list(op.ch_names), bads=[], projs=[],
                          nfree=1)
    assert rel_err(diag, minnorm.apply_inverse_cov(full, evoked_meeg.info, op, method=method)) \
        < 1e-12


def test_apply_inverse_cov_refuses_bad_input(operators, evoked_meeg, noise_cov):
    ref_op, op = operators("loose")
    info = evoked_meeg.info
    with pytest.raises(ValueError, match='pick_ori must be None or "normal"'):
        minnorm.apply_inverse_cov(noise_cov, info, op, pick_ori="vector")
    with pytest.raises(ValueError):  # MNE-Python refuses it too
        mne.minimum_norm.apply_inverse_cov(noise_cov, info, ref_op, pick_ori="vector")
    with pytest.raises(TypeError, match="cov must be an mne.Covariance, got Evoked"):
        minnorm.apply_inverse_cov(evoked_meeg, info, op)
    with pytest.raises(TypeError, match="info must be an mne.Info, got Evoked"):
        minnorm.apply_inverse_cov(noise_cov, evoked_meeg, op)
    with pytest.raises(TypeError, match="expected an mne.minimum_norm.InverseOperator, got str"):
        minnorm.apply_inverse_cov(noise_cov, info, "inv.fif")
    with pytest.raises(ValueError, match="3 channels of the inverse operator are not in the "
                                         "covariance"):
        minnorm.apply_inverse_cov(noise_cov.copy().pick_channels(noise_cov.ch_names[3:]), info,
                                  op)
    with pytest.raises(ValueError, match="lambda2='gcv' chooses λ² from the data"):
        minnorm.apply_inverse_cov(noise_cov, info, op, lambda2="gcv")


# --------------------------------------------------------------------------- prepared


@pytest.mark.parametrize("method", ["MNE", "dSPM", "sLORETA"])
def test_prepared_operators_equal_mne(operators, evoked_meeg, epochs_meeg, raw_meeg, method):
    """minnorm's prepared operator and MNE-Python's, applied with prepared=True by minnorm,
    equal MNE-Python's prepared=True on evoked, epochs (list and array) and raw data."""
    ref_op, op = operators("loose")
    nave = evoked_meeg.nave
    ref_prep = mne.minimum_norm.prepare_inverse_operator(ref_op, nave, LAMBDA2, method,
                                                         verbose=False)
    ours = minnorm.prepare_inverse_operator(op, nave, LAMBDA2, method)
    assert isinstance(ours, minnorm.InverseOperator) and op.prepared is None
    assert (ours.prepared.method, ours.prepared.lambda2, ours.prepared.nave) == \
        (method, LAMBDA2, nave)
    assert any((k.method, k.lambda2, k.nave) == (method, LAMBDA2, nave)
               for k in ours._kernels.values())  # computed already, before any apply
    for inv in (ours, ref_prep):
        ref = mne.minimum_norm.apply_inverse(evoked_meeg, ref_prep, LAMBDA2, method,
                                             pick_ori="normal", prepared=True, verbose=False)
        assert_same(minnorm.apply_inverse(evoked_meeg, inv, LAMBDA2, method,
                                              pick_ori="normal", prepared=True), ref, 1e-6)
        epochs = epochs_meeg[:2]
        ref = mne.minimum_norm.apply_inverse_epochs(epochs, ref_prep, LAMBDA2, method,
                                                    nave=nave, prepared=True, verbose=False)
        got = minnorm.apply_inverse_epochs(epochs, inv, LAMBDA2, method, nave=nave, prepared=True)
        for stc, stc_ref in zip(got, ref, strict=True):
            assert_same(stc, stc_ref, 1e-6)
        array = minnorm.apply_inverse_epochs(epochs, inv, LAMBDA2, method, nave=nave,
                                             prepared=True, return_array=True)
        assert rel_err(array, np.array([s.data for s in ref])) < 1e-6
        ref = mne.minimum_norm.apply_inverse_raw(raw_meeg, ref_prep, LAMBDA2, method, nave=nave,
                                                 stop=100, prepared=True, verbose=False)
        assert_same(minnorm.apply_inverse_raw(raw_meeg, inv, LAMBDA2, method, nave=nave,
                                                  stop=100, prepared=True), ref, 1e-6)


@pytest.mark.parametrize("pick_ori", [None, "vector"])
def test_prepared_eloreta_equals_mne(operators, evoked_meeg, mne_eloreta, pick_ori):
    """MNE-Python's eLORETA-prepared operator (its SVD replaced, its source covariance NaN)
    and minnorm's, with prepared=True, give MNE-Python's prepared=True estimate."""
    _, op = operators("small")
    ref = mne.minimum_norm.apply_inverse(evoked_meeg, mne_eloreta, LAMBDA2, "eLORETA",
                                         pick_ori=pick_ori, prepared=True, verbose=False)
    ours = minnorm.prepare_inverse_operator(op, evoked_meeg.nave, LAMBDA2, "eLORETA")
    for inv in (mne_eloreta, ours):
        stc = minnorm.apply_inverse(evoked_meeg, inv, LAMBDA2, "eLORETA", pick_ori=pick_ori,
                                    prepared=True)
        assert_same(stc, ref, TOL["eLORETA"])
    with pytest.raises(ValueError, match="prepared for eLORETA and cannot be reused"):
        minnorm.apply_inverse(evoked_meeg, mne_eloreta, LAMBDA2, "eLORETA")  # not prepared=True
    with pytest.raises(ValueError, match="method='MNE', but the inverse operator was prepared "
                                         "for 'eLORETA'"):  # MNE-Python: eLORETA's numbers
        minnorm.apply_inverse(evoked_meeg, mne_eloreta, LAMBDA2, "MNE", prepared=True)


def test_prepared_true_semantics(operators, evoked_meeg):
    ref_op, op = operators("fixed")
    evoked = evoked_meeg
    # not prepared: refused, as MNE-Python refuses it
    with pytest.raises(ValueError, match="has not been prepared"):
        mne.minimum_norm.apply_inverse(evoked, ref_op, LAMBDA2, prepared=True, verbose=False)
    for inv in (op, ref_op):
        with pytest.raises(ValueError, match="has not been prepared, but prepared=True"):
            minnorm.apply_inverse(evoked, inv, LAMBDA2, prepared=True)
    ref_dspm = mne.minimum_norm.prepare_inverse_operator(ref_op, 1, LAMBDA2, "dSPM",
                                                         verbose=False)
    ours_dspm = minnorm.prepare_inverse_operator(ref_op, 1, LAMBDA2, "dSPM")
    for inv in (ref_dspm, ours_dspm):
        # MNE-Python silently returns dSPM's numbers for sLORETA: refused
        with pytest.raises(ValueError, match="method='sLORETA', but the inverse operator was "
                                             "prepared for 'dSPM'"):
            minnorm.apply_inverse(evoked, inv, LAMBDA2, "sLORETA", prepared=True)
        # MNE-Python ignores lambda2 and uses the prepared one: refused
        with pytest.raises(ValueError, match="lambda2=1.0, but the inverse operator was "
                                             "prepared for lambda2=0.111111"):
            minnorm.apply_inverse(evoked, inv, 1.0, "dSPM", prepared=True)
        # another nave: the prepared one is used (MNE-Python's numbers), with a warning
        ref = mne.minimum_norm.apply_inverse(evoked, ref_dspm, LAMBDA2, "dSPM", prepared=True,
                                             verbose=False)
        with pytest.warns(minnorm.MinnormWarning, match="nave=3 is not used: the inverse "
                                                        "operator was prepared for nave=1"):
            ours = minnorm.apply_inverse(evoked, inv, LAMBDA2, "dSPM", prepared=True)
        assert_same(ours, ref, 1e-6)
        # MNE on an operator prepared for dSPM: the kernel without normalisation, as MNE
        ref = mne.minimum_norm.apply_inverse(evoked, ref_dspm, LAMBDA2, "MNE", prepared=True,
                                             verbose=False)
        with pytest.warns(minnorm.MinnormWarning, match="nave=3 is not used"):
            assert_same(minnorm.apply_inverse(evoked, inv, LAMBDA2, "MNE", prepared=True),
                            ref, 1e-6)
    # MNE-Python fails (TypeError) for dSPM on an operator prepared for MNE: refused
    ref_mne = mne.minimum_norm.prepare_inverse_operator(ref_op, 3, LAMBDA2, "MNE", verbose=False)
    with pytest.raises(TypeError):
        mne.minimum_norm.apply_inverse(evoked, ref_mne, LAMBDA2, "dSPM", prepared=True,
                                       verbose=False)
    with pytest.raises(ValueError, match="method='dSPM', but the inverse operator was prepared "
                                         "for 'MNE'"):
        minnorm.apply_inverse(evoked, ref_mne, LAMBDA2, "dSPM", prepared=True)
    # prepared=False: the arguments, whatever the operator was prepared for (MNE re-prepares)
    ref = mne.minimum_norm.apply_inverse(evoked, ref_mne, 1.0, "sLORETA", verbose=False)
    for inv in (ref_mne, ours_dspm):
        assert_same(minnorm.apply_inverse(evoked, inv, 1.0, "sLORETA"), ref, 1e-6)


def test_prepare_inverse_operator_refuses_bad_input(operators):
    ref_op, op = operators("fixed")
    with pytest.raises(TypeError, match='copy must be True, False or "non-src", got 1.5'):
        minnorm.prepare_inverse_operator(op, 1, LAMBDA2, copy=1.5)
    with pytest.raises(ValueError, match='copy must be True, False or "non-src", got \'src\''):
        minnorm.prepare_inverse_operator(op, 1, LAMBDA2, copy="src")
    with pytest.raises(ValueError, match="nave"):
        minnorm.prepare_inverse_operator(op, 0, LAMBDA2)
    with pytest.raises(ValueError, match="method must be one of"):
        minnorm.prepare_inverse_operator(op, 1, LAMBDA2, "LORETA")
    with pytest.raises(TypeError, match="lambda2 must be a number, got 'gcv'"):
        minnorm.prepare_inverse_operator(op, 1, "gcv")
    before = {k: ref_op[k] for k in ref_op}
    arrays = [ref_op["noise_cov"]["data"].copy(), ref_op["noise_cov"]["eig"].copy(),
              ref_op["source_cov"]["data"].copy()]
    minnorm.prepare_inverse_operator(ref_op, 2, LAMBDA2, "dSPM", copy=False)
    assert set(ref_op) == set(before) and ref_op["nave"] == 1  # MNE's operator untouched
    assert all(ref_op[k] is v for k, v in before.items())
    for old, new in zip(arrays, [ref_op["noise_cov"]["data"], ref_op["noise_cov"]["eig"],
                                 ref_op["source_cov"]["data"]]):
        np.testing.assert_array_equal(old, new)


# --------------------------------------------------------------------------- time-frequency


def _stcs_data(stcs):
    return np.array([[stc.data for stc in per_freq] for per_freq in stcs])


@pytest.mark.parametrize("pick_ori, method", [(None, "dSPM"), ("normal", "sLORETA"),
                                              ("vector", "MNE")])
def test_apply_inverse_tfr_epochs_equals_mne(operators, epochs_tfr, method, pick_ori):
    ref_op, op = operators("loose")
    ref = mne.minimum_norm.apply_inverse_tfr_epochs(epochs_tfr, ref_op, LAMBDA2, method,
                                                    pick_ori=pick_ori, verbose=False)
    ours = minnorm.apply_inverse_tfr_epochs(epochs_tfr, op, LAMBDA2, method, pick_ori=pick_ori)
    assert isinstance(ours, list) and len(ours) == len(FREQS)
    for per_freq, per_freq_ref in zip(ours, ref, strict=True):
        assert isinstance(per_freq, list)
        for stc, stc_ref in zip(per_freq, per_freq_ref, strict=True):
            assert_same(stc, stc_ref, TOL[method])
    generated = minnorm.apply_inverse_tfr_epochs(epochs_tfr, op, LAMBDA2, method,
                                                 pick_ori=pick_ori, return_generator=True,
                                                 max_memory="2MB")  # blocks of one epoch
    assert not isinstance(generated, list)
    assert not isinstance(next(iter(generated)), list)
    generated = minnorm.apply_inverse_tfr_epochs(epochs_tfr, op, LAMBDA2, method,
                                                 pick_ori=pick_ori, return_generator=True)
    assert rel_err(_stcs_data(list(g) for g in generated), _stcs_data(ours)) < 1e-12
    array = minnorm.apply_inverse_tfr_epochs(epochs_tfr, op, LAMBDA2, method, pick_ori=pick_ori,
                                             return_array=True)
    assert array.dtype == ours[0][0].data.dtype
    assert rel_err(array, _stcs_data(ref)) < TOL[method]
    by_freq = minnorm.apply_inverse_tfr_epochs(epochs_tfr, op, LAMBDA2, method,
                                               pick_ori=pick_ori, return_array=True,
                                               return_generator=True)
    assert rel_err(np.array(list(by_freq)), array) < 1e-12


def test_apply_inverse_tfr_epochs_operator_per_frequency(operators, epochs_tfr, mne_eloreta,
                                                         template_labels):
    """A list with one operator per frequency (MNE's, minnorm's, prepared or not), a label,
    float32 arrays, and eLORETA through MNE-Python's prepared operator."""
    (ref_loose, loose), (ref_fixed, fixed) = operators("loose"), operators("fixed")
    label = template_labels[2]
    ref = mne.minimum_norm.apply_inverse_tfr_epochs(
        epochs_tfr, [ref_loose, ref_fixed, ref_loose], LAMBDA2, "dSPM", label=label,
        verbose=False)
    for ops in ([loose, fixed, loose], (ref_loose, fixed, loose)):
        ours = minnorm.apply_inverse_tfr_epochs(epochs_tfr, ops, LAMBDA2, "dSPM", label=label)
        for per_freq, per_freq_ref in zip(ours, ref, strict=True):
            for stc, stc_ref in zip(per_freq, per_freq_ref, strict=True):
                assert_same(stc, stc_ref, 1e-6)
    ref = mne.minimum_norm.apply_inverse_tfr_epochs(epochs_tfr, ref_loose, LAMBDA2, "sLORETA",
                                                    verbose=False)
    array = minnorm.apply_inverse_tfr_epochs(epochs_tfr, [loose, ref_loose, loose], LAMBDA2,
                                             "sLORETA", return_array=True, dtype="float32")
    assert array.dtype == np.float32  # pick_ori None on free/loose operators: real norms
    assert rel_err(array, _stcs_data(ref)) < 1e-5
    mags = epochs_tfr.copy().pick("mag")
    ref = mne.minimum_norm.apply_inverse_tfr_epochs(mags, mne_eloreta, LAMBDA2, "eLORETA",
                                                    pick_ori="vector", prepared=True,
                                                    verbose=False)
    with pytest.warns(minnorm.MinnormWarning, match="nave=1 is not used"):  # prepared for 3
        ours = minnorm.apply_inverse_tfr_epochs(mags, [mne_eloreta] * len(FREQS), LAMBDA2,
                                                "eLORETA", pick_ori="vector", prepared=True)
    assert type(ours[0][0]) is type(ref[0][0])
    assert rel_err(_stcs_data(ours), _stcs_data(ref)) < TOL["eLORETA"]


def test_apply_inverse_tfr_epochs_refuses_bad_input(operators, epochs_tfr, epochs_meeg):
    ref_op, op = operators("loose")
    power = epochs_meeg[:2].compute_tfr("morlet", freqs=FREQS[:2], n_cycles=3, output="power",
                                        return_itc=False, average=False, decim=4, verbose=False)
    with pytest.raises(RuntimeError, match="must be complex"):  # MNE-Python's type
        mne.minimum_norm.apply_inverse_tfr_epochs(power, ref_op, LAMBDA2, verbose=False)
    for error in (RuntimeError, ValueError):
        with pytest.raises(error, match='must be complex .* output="complex"'):
            minnorm.apply_inverse_tfr_epochs(power, op, LAMBDA2)
    with pytest.raises(ValueError, match="Expected 3 inverse operators"):
        mne.minimum_norm.apply_inverse_tfr_epochs(epochs_tfr, [ref_op] * 2, LAMBDA2)
    with pytest.raises(ValueError, match="Expected 3 inverse operators .*, got 2"):
        minnorm.apply_inverse_tfr_epochs(epochs_tfr, [op] * 2, LAMBDA2)
    with pytest.raises(TypeError, match="epochs_tfr must be an mne.time_frequency.EpochsTFR, "
                                        "got EpochsArray"):
        minnorm.apply_inverse_tfr_epochs(epochs_meeg, op, LAMBDA2)
    with pytest.raises(ValueError, match="dtype='float32' applies to return_array=True only"):
        minnorm.apply_inverse_tfr_epochs(epochs_tfr, op, LAMBDA2, dtype="float32")
    # a fixed operator's estimates are complex, a loose one's norms real: no common array
    _, fixed = operators("fixed")
    with pytest.raises(ValueError, match="return_array needs the same sources and output"):
        minnorm.apply_inverse_tfr_epochs(epochs_tfr, [op, fixed, op], LAMBDA2, return_array=True)
    # multitaper coefficients carry a taper axis: MNE-Python fails on them, minnorm says why
    tapers = epochs_meeg[:1].compute_tfr("multitaper", freqs=FREQS[:2], n_cycles=4,
                                         output="complex", return_itc=False, verbose=False)
    with pytest.raises(ValueError, match="taper"):
        minnorm.apply_inverse_tfr_epochs(tapers, op, LAMBDA2)
