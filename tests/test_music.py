"""RAP-MUSIC and TRAP-MUSIC: equal to mne.beamformer on the sample data, and their invariants.

The engine (plain arrays) is checked on random gains: a noiseless dipole is found exactly,
two with independent time courses both, the batched scan equals MNE-Python's per-source SVDs
(rank-deficient and blind sources included), and the split goodness of fit adds up to the
fit's. The public functions are compared with MNE-Python's end to end (free, surface-oriented
and fixed forwards, MEG, MEG + EEG, a volume; the residual; no noise covariance for one
channel type).
"""

import inspect

import mne
import numpy as np
import pytest
from _compare import max_rel_err as rel

import minnorm
import minnorm.beamformer as mb
from minnorm.engine import music as em

TOL = 1e-6  # relative error against MNE-Python
N_DIP = 3  # RAP and TRAP differ from the third dipole on the data below

pytestmark = pytest.mark.usefixtures("one_blas")


@pytest.fixture(scope="module")
def evoked_n100(evoked_meeg):
    """The N100m window of the auditory response, 50–150 ms (61 samples)."""
    return evoked_meeg.copy().crop(0.05, 0.15)


def assert_same_dipoles(ours, ref):
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        assert isinstance(a, mne.Dipole)
        np.testing.assert_array_equal(a.pos, b.pos)  # the same sources were found
        np.testing.assert_allclose(a.times, b.times, rtol=0, atol=1e-12)
        for attr in ("amplitude", "ori", "gof"):
            assert rel(getattr(a, attr), getattr(b, attr)) < TOL, attr


# --------------------------------------------------------------------------- MNE-Python


@pytest.mark.parametrize("name, fwd_name, picks, orient", [
    ("rap_music", "fwd_surf_meg", "meg", "surf_ori"),  # converted to x, y, z: the free path
    ("trap_music", "fwd_surf_meg", "meg", "fixed"),
    ("rap_music", "fwd_surf_meeg", ["meg", "eeg"], "free"),
    ("trap_music", "fwd_vol_meg", "meg", "free"),
])  # MNE-Python's scan takes 1–3 s per call: each case once, with one of the two functions
def test_music_equals_mne(request, evoked_n100, noise_cov, fwd_name, picks, orient, name):
    fwd = request.getfixturevalue(fwd_name)
    if orient != "free":
        fwd = mne.convert_forward_solution(fwd, surf_ori=True, force_fixed=orient == "fixed",
                                           verbose=False)
    evoked = evoked_n100.copy().pick(picks)
    ref, ref_res = getattr(mne.beamformer, name)(evoked, fwd, noise_cov, n_dipoles=N_DIP,
                                                 return_residual=True, verbose=False)
    ours, res = getattr(mb, name)(evoked, fwd, noise_cov, n_dipoles=N_DIP,
                                  return_residual=True)
    assert_same_dipoles(ours, ref)
    assert res.ch_names == ref_res.ch_names
    assert rel(res.data, ref_res.data) < TOL
    assert [p["active"] for p in res.info["projs"]] == [p["active"] for p in ref_res.info["projs"]]
    if orient == "fixed":  # fixed dipoles point along their normals
        for dip in ours:
            assert np.allclose(np.linalg.norm(dip.ori, axis=1), 1.0)


def test_rap_and_trap_differ_as_mne(evoked_n100, noise_cov, fwd_surf_meg):
    """TRAP's truncation changes the third dipole on this data (so it is exercised above)."""
    evoked = evoked_n100.copy().pick("meg")
    rap = mb.rap_music(evoked, fwd_surf_meg, noise_cov, n_dipoles=N_DIP)
    trap = mb.trap_music(evoked, fwd_surf_meg, noise_cov, n_dipoles=N_DIP)
    assert [tuple(d.pos[0]) for d in rap[:2]] == [tuple(d.pos[0]) for d in trap[:2]]
    assert not np.array_equal(rap[2].pos, trap[2].pos)


def test_no_noise_cov_one_channel_type(evoked_n100, fwd_surf_meg):
    """None: σ = 1 (MNE's ad hoc covariance), for gradiometers alone."""
    evoked = evoked_n100.copy().pick("grad")
    ref = mne.beamformer.rap_music(evoked, fwd_surf_meg, None, n_dipoles=2, verbose=False)
    assert_same_dipoles(mb.rap_music(evoked, fwd_surf_meg, None, n_dipoles=2), ref)


def test_refusals(evoked_n100, noise_cov, fwd_surf_meg):
    evoked = evoked_n100.copy().pick("meg")
    # MNE-Python would whiten teslas and teslas per metre with σ = 1 alike
    with pytest.raises(ValueError, match="several sensor types requires a noise covariance"):
        mb.rap_music(evoked, fwd_surf_meg, None)
    for bad in (0, -1, 400):  # MNE-Python: an empty list, or an error from deep inside
        with pytest.raises(ValueError, match="n_dipoles must be between 1 and the number of "
                                             "channels"):
            mb.trap_music(evoked, fwd_surf_meg, noise_cov, n_dipoles=bad)
    with pytest.raises(TypeError, match="n_dipoles must be an int"):
        mb.rap_music(evoked, fwd_surf_meg, noise_cov, n_dipoles=2.0)
    with pytest.raises(TypeError, match="evoked must be an mne.Evoked"):
        mb.rap_music(evoked.data, fwd_surf_meg, noise_cov)
    with pytest.raises(TypeError, match="forward must be an mne.Forward"):
        mb.rap_music(evoked, {}, noise_cov)


def test_names_and_signatures_are_mne():
    for name in ("rap_music", "trap_music"):
        assert getattr(minnorm, name) is getattr(mb, name)
        assert name in mb.__all__ and name in minnorm.__all__
        ours = inspect.signature(getattr(mb, name)).parameters
        ref = inspect.signature(getattr(mne.beamformer, name)).parameters
        assert list(ours) == list(ref)
        assert [p.default for p in ours.values()] == [p.default for p in ref.values()]


# --------------------------------------------------------------------------- the engine


def _gain(rng, n_chan=40, n_src=150, n_ori=3):
    return rng.standard_normal((n_chan, n_src * n_ori))


@pytest.mark.parametrize("n_ori", [1, 3])
@pytest.mark.parametrize("trap", [False, True])
def test_noiseless_dipoles_found_exactly(n_ori, trap):
    rng = np.random.default_rng(0)
    gain = _gain(rng, n_ori=n_ori)
    sources = [17, 88]
    oris = [np.array([0.6, -0.0, 0.8]), np.array([0.0, 0.6, 0.8])] if n_ori == 3 else \
        [np.ones(1), np.ones(1)]
    waves = rng.standard_normal((2, 50))  # independent time courses
    fields = np.stack([gain[:, s * n_ori:(s + 1) * n_ori] @ o for s, o in zip(sources, oris)],
                      axis=1)
    fit = em.music(gain, fields @ waves, 2, n_ori=n_ori, trap=trap)
    order = np.argsort(fit.index)  # both correlate fully: either may come first
    assert list(fit.index[order]) == sources
    np.testing.assert_allclose(fit.subcorr, 1.0, atol=1e-10)
    for got, want in zip(fit.orient[order], oris):
        np.testing.assert_allclose(got, want / np.linalg.norm(want), atol=1e-10)
    np.testing.assert_allclose(fit.amplitude[order], waves, atol=1e-9)
    gof = em.split_gof(fields @ waves, fit.amplitude, fit.fields)
    np.testing.assert_allclose(gof.sum(axis=0), 100.0, atol=1e-8)


def _scan_by_svd(gain_t, phi, n_ori):
    """MNE-Python's scan, one source at a time: two SVDs each."""
    n_src = len(gain_t) // n_ori
    corr, oris = np.zeros(n_src), np.zeros((n_src, n_ori))
    for k in range(n_src):
        Gk = gain_t[k * n_ori:(k + 1) * n_ori].T
        U, s, Vt = np.linalg.svd(Gk, full_matrices=False)
        if s[0] == 0:
            continue
        r = max(int(np.sum(s > s[0] * 1e-6)), 2)
        U, s, Vt = U[:, :r], s[:r], Vt[:r]
        Uc, sc, _ = np.linalg.svd(U.T @ phi, full_matrices=False)
        x = Vt.T @ (Uc[:, 0] / s)
        corr[k], oris[k] = sc[0], x / np.linalg.norm(x)
    return corr, oris


@pytest.mark.parametrize("n_ori", [1, 3])
def test_batched_scan_equals_per_source_svd(n_ori):
    rng = np.random.default_rng(1)
    gain_t = _gain(rng, n_ori=n_ori).T.copy()
    if n_ori == 3:  # one direction unseen (a radial dipole in a sphere): rank 2
        gain_t[3 * 5 + 2] = 0.0
        # one nearly unseen (1e-8 of the strongest, under the 1e-6 cut): left out too
        U, _, Vt = np.linalg.svd(gain_t[3 * 9:3 * 10].T, full_matrices=False)
        gain_t[3 * 9:3 * 10] = ((U * [1.0, 0.5, 1e-8]) @ Vt).T
        # (a rank-1 source has no meaningful second component, which MNE-Python keeps:
        # its result there is LAPACK's arbitrary completion, not compared)
    gain_t[n_ori * 7:n_ori * 8] = 0.0  # blind: correlation 0
    phi = np.linalg.qr(rng.standard_normal((gain_t.shape[1], 4)))[0]
    corr, oris = em._scan(gain_t, phi, n_ori)
    ref_corr, ref_oris = _scan_by_svd(gain_t, phi, n_ori)
    np.testing.assert_allclose(corr, ref_corr, rtol=1e-12, atol=1e-14)
    signs = np.sign(np.sum(oris * ref_oris, axis=1, keepdims=True))
    signs[signs == 0] = 1
    np.testing.assert_allclose(oris * signs, ref_oris, atol=1e-10)
    assert corr[7] == 0 and not oris[7].any()


def test_split_gof_adds_up_to_the_fit():
    """Σ over dipoles = 100 (1 − ‖residual‖² / ‖data‖²) for a least-squares fit, per time."""
    rng = np.random.default_rng(2)
    gain, data = rng.standard_normal((30, 4)), rng.standard_normal((30, 20))
    amp = np.linalg.lstsq(gain, data, rcond=None)[0]
    gof = em.split_gof(data, amp, gain)
    res = data - gain @ amp
    np.testing.assert_allclose(gof.sum(axis=0),
                               100 * (1 - np.sum(res**2, axis=0) / np.sum(data**2, axis=0)),
                               rtol=1e-12)
