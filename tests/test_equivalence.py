"""minnorm equals mne.minimum_norm on the real sample subject.

Relative error ‖minnorm − MNE‖_F / ‖MNE‖_F below 1e-6 (MNE, dSPM, sLORETA)
and 1e-3 (eLORETA), for surface, volume, mixed and discrete source spaces,
MEG and MEG+EEG, loose / free / fixed orientation, with and without depth
weighting, every method and pick_ori, several λ², evoked, epochs and raw,
labels and residuals.
"""

import mne
import numpy as np
import pytest

import minnorm
from _compare import assert_same_stc, rel_err
from _operators import CONFIGS

TOL = {"MNE": 1e-6, "dSPM": 1e-6, "sLORETA": 1e-6, "eLORETA": 1e-3}
METHODS = list(TOL)

LAMBDAS = [1.0 / 9.0, 1.0, 1e-2]


def _cases():
    """Every configuration, pick_ori and method at λ² = 1/9, and at one other λ² — large (1)
    and small (1e-2) on alternate configurations — so both ends are covered for each kind."""
    for k, (name, (_, _, pick_oris)) in enumerate(CONFIGS.items()):
        for pick_ori in pick_oris:
            for method in METHODS:
                lambdas = [LAMBDAS[0], LAMBDAS[1 + k % 2]] if method != "eLORETA" else \
                    LAMBDAS[:1]
                if method == "eLORETA" and pick_ori == "vector" and name != "vol-meg":
                    continue  # eLORETA's vector output: checked on one operator (slow in MNE)
                for lambda2 in lambdas:
                    yield pytest.param(name, method, pick_ori, lambda2,
                                       id=f"{name}-{method}-{pick_ori}-{lambda2:.3g}")


@pytest.mark.parametrize("name, method, pick_ori, lambda2", list(_cases()))
def test_apply_inverse_evoked(operators, prepared_eloreta, evoked_meeg, name, method, pick_ori,
                              lambda2):
    ref_op, op = operators(name)
    if method == "eLORETA":
        ref = mne.minimum_norm.apply_inverse(evoked_meeg, prepared_eloreta(name, lambda2), lambda2,
                                             method, pick_ori=pick_ori, prepared=True,
                                             verbose=False)
    else:
        ref = mne.minimum_norm.apply_inverse(evoked_meeg, ref_op, lambda2, method,
                                             pick_ori=pick_ori, verbose=False)
    ours = minnorm.apply_inverse(evoked_meeg, op, lambda2, method, pick_ori=pick_ori)
    assert_same_stc(ours, ref, TOL[method])


@pytest.mark.parametrize("name", list(CONFIGS))
def test_operator_matches(operators, name):
    ref, op = operators(name)
    assert list(op.ch_names) == ref["noise_cov"]["names"]
    assert op.n_nonzero == int(np.sum(ref["noise_cov"]["eig"] > 0))
    assert op.source_ori == {1: "fixed", 2: "free"}[ref["source_ori"]]
    np.testing.assert_allclose(op.sing, ref["sing"], rtol=1e-6, atol=1e-9 * ref["sing"][0])
    np.testing.assert_allclose(op.source_cov, ref["source_cov"]["data"], rtol=1e-6)
    for key in ("depth_prior", "orient_prior"):
        if ref[key] is None:
            assert getattr(op, key) is None
        else:
            np.testing.assert_allclose(getattr(op, key), ref[key]["data"], rtol=1e-9)
    # the tangential pair of a loose/free surface operator is the degenerate eigenbasis
    # of I − n nᵀ: any last-bit difference in n turns it, and vector PSFs/CTFs (and
    # spectra combined over components) see it, so minnorm's must be MNE-Python's own
    np.testing.assert_allclose(op.source_nn, ref["source_nn"], atol=1e-12)


@pytest.mark.parametrize("name", ["surf-meg-loose", "surf-meeg-loose", "vol-meg", "surf-meg-fixed"])
@pytest.mark.parametrize("method", ["dSPM", "MNE", "sLORETA"])
def test_residual(operators, evoked_meeg, name, method):
    ref_op, op = operators(name)
    _, ref = mne.minimum_norm.apply_inverse(evoked_meeg, ref_op, 1 / 9, method,
                                            return_residual=True, verbose=False)
    _, ours = minnorm.apply_inverse(evoked_meeg, op, 1 / 9, method, return_residual=True)
    assert isinstance(ours, mne.Evoked)
    assert ours.ch_names == ref.ch_names
    assert rel_err(ours.data, ref.data) < 1e-6


def _combos(names, methods, pick_oris, slow_once=("eLORETA",)):
    """Valid (name, method, pick_ori) combinations; slow methods only on the first."""
    for name in names:
        for method in methods:
            for pick_ori in pick_oris:
                if pick_ori not in CONFIGS[name][2]:
                    continue  # e.g. "normal" on a fixed or volume operator
                if method in slow_once and name != names[0]:
                    continue
                yield pytest.param(name, method, pick_ori, id=f"{name}-{method}-{pick_ori}")


@pytest.mark.parametrize("name, method, pick_ori", list(_combos(
    ["surf-meg-loose", "surf-meeg-loose", "surf-meg-fixed"], METHODS, [None, "normal"])))
def test_label(operators, prepared_eloreta, evoked_meeg, template_labels, name, method,
               pick_ori):
    ref_op, op = operators(name)
    prepared = method == "eLORETA"  # MNE's weights fitted once (see prepared_eloreta)
    if prepared:
        ref_op = prepared_eloreta(name, LAMBDAS[0])
    for label in template_labels:  # left, right and both hemispheres
        ref = mne.minimum_norm.apply_inverse(evoked_meeg, ref_op, LAMBDAS[0], method,
                                             pick_ori=pick_ori, label=label, prepared=prepared,
                                             verbose=False)
        ours = minnorm.apply_inverse(evoked_meeg, op, LAMBDAS[0], method, pick_ori=pick_ori,
                                     label=label)
        assert_same_stc(ours, ref, TOL[method])


@pytest.mark.parametrize("name, method, pick_ori", list(_combos(
    ["vol-meeg-nodepth", "surf-meeg-loose", "surf-meeg-fixed-rankinfo"], METHODS,
    [None, "normal", "vector"])))
def test_epochs(operators, prepared_eloreta, evoked_meeg, epochs_meeg, name, method, pick_ori):
    ref_op, op = operators(name)
    kw = dict(pick_ori=pick_ori, method=method)
    if method == "eLORETA":  # MNE's weights fitted once (prepared=True), for the evoked's nave
        ref_op, kw["nave"] = prepared_eloreta(name, 1 / 9), evoked_meeg.nave
    ref = mne.minimum_norm.apply_inverse_epochs(epochs_meeg, ref_op, 1 / 9, verbose=False,
                                                prepared=method == "eLORETA", **kw)
    ours = minnorm.apply_inverse_epochs(epochs_meeg, op, 1 / 9, **kw)
    assert len(ours) == len(ref) == len(epochs_meeg)
    for a, b in zip(ours, ref):
        assert_same_stc(a, b, TOL[method])
    gen = minnorm.apply_inverse_epochs(epochs_meeg, op, 1 / 9, return_generator=True, **kw)
    assert not isinstance(gen, list)
    assert_same_stc(next(iter(gen)), ref[0], TOL[method])


@pytest.mark.parametrize("name, method, pick_ori", list(_combos(
    ["vol-meeg-nodepth", "surf-meeg-loose", "surf-meeg-fixed-rankinfo"], METHODS, [None])))
def test_raw(operators, raw_meeg, name, method, pick_ori):
    ref_op, op = operators(name)
    kw = dict(method=method, start=10, stop=300)
    ref = mne.minimum_norm.apply_inverse_raw(raw_meeg, ref_op, 1 / 9, verbose=False, **kw)
    ours = minnorm.apply_inverse_raw(raw_meeg, op, 1 / 9, **kw)
    assert_same_stc(ours, ref, TOL[method])
    chunked = minnorm.apply_inverse_raw(raw_meeg, op, 1 / 9, buffer_size=37, **kw)
    assert rel_err(chunked, ours) < 1e-12


@pytest.mark.parametrize("name", ["surf-meg-loose", "surf-meeg-fixed-rankinfo", "vol-meeg-nodepth",
                                  "mixed-meg"])
def test_file_round_trip(operators, evoked_meeg, tmp_path, name):
    """minnorm writes, MNE reads and applies; MNE writes, minnorm reads and applies."""
    ref_op, op = operators(name)
    fname = tmp_path / "ours-inv.fif"
    minnorm.write_inverse_operator(fname, op)
    with pytest.raises(OSError, match="exists"):
        minnorm.write_inverse_operator(fname, op)
    from_ours = mne.minimum_norm.read_inverse_operator(fname, verbose=False)
    ref_fname = tmp_path / "mne-inv.fif"
    mne.minimum_norm.write_inverse_operator(ref_fname, ref_op, verbose=False)
    ours_from_mne = minnorm.read_inverse_operator(ref_fname)
    for method in ("dSPM", "sLORETA"):
        ref = mne.minimum_norm.apply_inverse(evoked_meeg, ref_op, 1 / 9, method, verbose=False)
        a = mne.minimum_norm.apply_inverse(evoked_meeg, from_ours, 1 / 9, method, verbose=False)
        b = minnorm.apply_inverse(evoked_meeg, ours_from_mne, 1 / 9, method)
        c = minnorm.apply_inverse(evoked_meeg, ref_op, 1 / 9, method)  # MNE object accepted
        for stc in (a, b, c):
            assert_same_stc(stc, ref, 1e-6)


def test_to_mne_round_trip(operators, evoked_meeg):
    _, op = operators("surf-meg-loose")
    back = minnorm.InverseOperator.from_mne(op.to_mne())
    for field in ("eigen_fields", "sing", "eigen_leads", "source_cov", "source_nn", "noise_cov"):
        np.testing.assert_array_equal(getattr(back, field), getattr(op, field))  # copies
    np.testing.assert_array_equal(back.whitener.eig, op.whitener.eig)
    a = minnorm.apply_inverse(evoked_meeg, back, 1 / 9, "dSPM")
    b = minnorm.apply_inverse(evoked_meeg, op, 1 / 9, "dSPM")
    # from_mne recomputes the SSP projector (an SVD), and op's kernel may be cached from
    # another test: equal up to BLAS/LAPACK rounding
    np.testing.assert_allclose(a.data, b.data, rtol=1e-10, atol=1e-12 * np.abs(b.data).max())


def test_inputs_are_not_modified(fwd_surf_meg, evoked_meeg, noise_cov):
    fwd_data = fwd_surf_meg["sol"]["data"].copy()
    cov_data = noise_cov.data.copy()
    ev_data = evoked_meeg.data.copy()
    bads = list(evoked_meeg.info["bads"])
    op = minnorm.make_inverse_operator(evoked_meeg.info, fwd_surf_meg, noise_cov)
    minnorm.apply_inverse(evoked_meeg, op, 1 / 9, "sLORETA", return_residual=True)
    np.testing.assert_array_equal(fwd_surf_meg["sol"]["data"], fwd_data)
    np.testing.assert_array_equal(noise_cov.data, cov_data)
    np.testing.assert_array_equal(evoked_meeg.data, ev_data)
    assert evoked_meeg.info["bads"] == bads
