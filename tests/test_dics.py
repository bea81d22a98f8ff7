"""DICS: equal to mne.beamformer's make_dics and apply_dics* on the sample data, its invariants, files.

The data: 20 epochs of the "Left Auditory" response plus noise drawn from the sample noise
covariance, and 20 epochs of that noise alone; their Morlet CSDs at 10 and 20 Hz (3 cycles,
every 4th sample: 2,100 per CSD) over the whole epoch (MEG, or gradiometers for the filters
without a noise CSD).
"""

import inspect

import mne
import numpy as np
import pytest
from _compare import max_rel_err as rel
from _forwards import make_noisy_epochs

import minnorm
import minnorm.beamformer as mb
from minnorm.beamformer import dics as dics_module

TOL = 1e-6  # relative error against MNE-Python
FREQS = [10.0, 20.0]

pytestmark = pytest.mark.usefixtures("one_blas")


@pytest.fixture(scope="module")
def meg(evoked_meeg, noise_cov):
    """(signal epochs, noise epochs, their CSDs, the gradiometers' signal CSD), MEG only."""
    evoked = evoked_meeg.copy().pick("meg")
    cov = mne.pick_channels_cov(noise_cov, include=evoked.ch_names, ordered=True, verbose=False)
    silent = evoked.copy()
    silent.data[:] = 0.0
    epochs = make_noisy_epochs(evoked, cov, n_epochs=20, seed=0)
    noise = make_noisy_epochs(silent, cov, n_epochs=20, seed=1)
    csd = mne.time_frequency.csd_morlet(epochs, FREQS, n_cycles=3, decim=4, verbose=False)
    noise_csd = mne.time_frequency.csd_morlet(noise, FREQS, n_cycles=3, decim=4, verbose=False)
    grads = [c for c, t in zip(epochs.ch_names, epochs.get_channel_types()) if t == "grad"]
    grad_csd = csd.copy().pick_channels(grads, ordered=True)  # the same as the grads' own CSD
    return epochs, csd, noise_csd, grad_csd


@pytest.fixture(scope="module")
def fwd_surf_ori(fwd_surf_meg):
    return mne.convert_forward_solution(fwd_surf_meg, surf_ori=True, verbose=False)


# name → (forward fixture, gradiometers alone without a noise CSD, make_dics options)
CONFIGS = {
    "default": ("fwd_surf_meg", False, dict()),
    "ung-maxpower": ("fwd_surf_meg", False, dict(weight_norm="unit-noise-gain",
                                                 pick_ori="max-power")),
    "nai-vector-nodepth": ("fwd_surf_meg", False, dict(weight_norm="nai", pick_ori="vector",
                                                       depth=None)),
    "ungi-normal-single": ("fwd_surf_ori", False, dict(weight_norm="unit-noise-gain-invariant",
                                                       pick_ori="normal", inversion="single")),
    "complex-grad": ("fwd_surf_meg", True, dict(real_filter=False, reg=0.1)),
    "complex-grad-maxpower": ("fwd_surf_meg", True, dict(real_filter=False,
                                                          pick_ori="max-power")),
    "vol-vector": ("fwd_vol_meg", False, dict(pick_ori="vector", rank="info")),
    "label-maxpower": ("fwd_surf_meg", False, dict(label=2, pick_ori="max-power",
                                                   weight_norm="unit-noise-gain-invariant")),
}


@pytest.fixture(scope="module")
def filters(request, meg, template_labels):
    """(MNE's filters, minnorm's, the CSD they were made from) per configuration."""
    epochs, csd, noise_csd, grad_csd = meg
    cache = {}

    def get(name):
        if name not in cache:
            fwd_name, grad, options = CONFIGS[name]
            fwd = request.getfixturevalue(fwd_name)
            info = epochs.copy().pick("grad").info if grad else epochs.info
            data_csd = grad_csd if grad else csd
            kw = dict(options, noise_csd=None if grad else noise_csd)
            if "label" in kw:  # the bilateral auditory label
                kw["label"] = template_labels[kw["label"]]
            ref = mne.beamformer.make_dics(info, fwd, data_csd, verbose=False, **kw)
            cache[name] = ref, mb.make_dics(info, fwd, data_csd, **kw), data_csd
        return cache[name]

    return get


@pytest.mark.parametrize("name", CONFIGS)
def test_make_dics_and_csd_power_equal_mne(filters, name):
    ref, ours, csd = filters(name)
    assert isinstance(ours, mne.beamformer.Beamformer) and isinstance(ours, minnorm.Beamformer)
    assert set(ours) == set(ref)
    assert ours["weights"].shape == ref["weights"].shape == (len(FREQS),) + ours["weights"].shape[1:]
    assert ours["weights"].dtype == ref["weights"].dtype
    assert rel(ours["weights"], ref["weights"]) < TOL
    for key in ("ch_names", "pick_ori", "weight_norm", "inversion", "is_free_ori", "src_type",
                "n_sources"):
        assert ours[key] == ref[key], key
    assert rel(ours["whitener"], ref["whitener"]) < TOL
    np.testing.assert_allclose(ours["proj"], ref["proj"], rtol=0, atol=1e-12)
    if ref["max_power_ori"] is None:
        assert ours["max_power_ori"] is None
    else:
        assert rel(ours["max_power_ori"], ref["max_power_ori"]) < 1e-5  # unit vectors
    power_ref, freqs_ref = mne.beamformer.apply_dics_csd(csd, ref, verbose=False)
    for filt in (ours, ref):  # minnorm applies MNE-Python's filters too
        power, freqs = mb.apply_dics_csd(csd, filt)
        assert type(power) is type(power_ref) and freqs == freqs_ref
        assert rel(power.data, power_ref.data) < TOL


@pytest.mark.parametrize("name", ["default", "nai-vector-nodepth", "complex-grad", "vol-vector"])
def test_apply_dics_equals_mne(filters, meg, evoked_meeg, name):
    ref, ours, _ = filters(name)
    evoked = evoked_meeg.copy().pick(ours["ch_names"])
    stcs_ref = mne.beamformer.apply_dics(evoked, ref, verbose=False)
    stcs = mb.apply_dics(evoked, ours)
    assert len(stcs) == len(stcs_ref) == len(FREQS)
    for stc, stc_ref in zip(stcs, stcs_ref):
        assert type(stc) is type(stc_ref)
        assert rel(stc.data, stc_ref.data) < TOL
        assert stc.tmin == stc_ref.tmin and stc.tstep == stc_ref.tstep
    # one frequency: the estimate itself; epochs, batched and as a generator
    epochs = meg[0].copy().pick(ours["ch_names"])[:4]
    one_ref, one = _one_frequency(ref), _one_frequency(ours)
    assert type(mb.apply_dics(evoked, one)) is type(stcs_ref[0])
    ep_ref = mne.beamformer.apply_dics_epochs(epochs, one_ref, verbose=False)
    for got in (mb.apply_dics_epochs(epochs, one),
                list(mb.apply_dics_epochs(epochs, one, return_generator=True))):
        assert len(got) == len(ep_ref)
        for stc, stc_ref in zip(got, ep_ref):
            assert type(stc) is type(stc_ref)
            assert rel(stc.data, stc_ref.data) < TOL


def _one_frequency(filters):
    """The filter of the first frequency alone (its CSD too)."""
    one = filters.copy()
    one["weights"] = filters["weights"][:1]
    one["csd"] = filters["csd"].pick_frequency(index=0)
    if filters["max_power_ori"] is not None:
        one["max_power_ori"] = filters["max_power_ori"][:1]
    return one


@pytest.mark.parametrize("name", ["default", "complex-grad"])
def test_apply_dics_tfr_epochs_equals_mne(filters, meg, name):
    ref, ours, _ = filters(name)
    epochs = meg[0].copy().pick(ours["ch_names"])[:3]
    tfr = epochs.compute_tfr("morlet", freqs=FREQS, n_cycles=4, output="complex",
                             return_itc=False, decim=4, verbose=False)
    stcs_ref = mne.beamformer.apply_dics_tfr_epochs(tfr, ref, verbose=False)
    for got in (mb.apply_dics_tfr_epochs(tfr, ours),
                list(mb.apply_dics_tfr_epochs(tfr, ours, return_generator=True))):
        assert len(got) == len(stcs_ref)
        for per_freq, per_freq_ref in zip(got, stcs_ref):
            assert len(per_freq) == len(per_freq_ref) == len(FREQS)
            for stc, stc_ref in zip(per_freq, per_freq_ref):
                assert type(stc) is type(stc_ref) and stc.data.dtype == stc_ref.data.dtype
                assert rel(stc.data, stc_ref.data) < TOL
    with pytest.raises(ValueError, match="the time-frequency data have 1 frequencies and the "
                                         "filters 2"):
        mb.apply_dics_tfr_epochs(tfr.copy().crop(fmin=9, fmax=11), ours)


def test_unit_gain_per_frequency(meg, fwd_surf_meg):
    """Without weight normalisation or depth, each frequency's filter passes its source's
    whitened field with gain 1: W_k(f) L_k = I, L from MNE-Python's forward."""
    epochs, csd, noise_csd, _ = meg
    filt = mb.make_dics(epochs.info, fwd_surf_meg, csd, noise_csd=noise_csd, pick_ori="vector",
                        depth=None)
    assert filt["weight_norm"] is None and not fwd_surf_meg["surf_ori"]
    rows = [fwd_surf_meg["sol"]["row_names"].index(c) for c in filt["ch_names"]]
    gain = np.asarray(filt["whitener"]) @ fwd_surf_meg["sol"]["data"][rows]
    Lk = gain.reshape(gain.shape[0], -1, 3).transpose(1, 0, 2)
    for W in filt["weights"]:
        gain_k = np.matmul(W.reshape(-1, 3, W.shape[1]), Lk)
        np.testing.assert_allclose(gain_k, np.broadcast_to(np.eye(3), gain_k.shape), atol=1e-8)


def test_files_go_both_ways_with_mne(filters, tmp_path):
    ref, ours, csd = filters("ung-maxpower")
    ours.save(tmp_path / "ours-dics.h5")
    read_by_mne = mne.beamformer.read_beamformer(tmp_path / "ours-dics.h5")
    ref.save(tmp_path / "mne-dics.h5", verbose=False)
    read_by_us = minnorm.read_beamformer(tmp_path / "mne-dics.h5")
    for back, orig in ((read_by_mne, ours), (read_by_us, ref)):
        assert rel(back["weights"], orig["weights"]) == 0
        power = mb.apply_dics_csd(csd, back)[0]
        assert rel(power.data, mne.beamformer.apply_dics_csd(csd, ref, verbose=False)[0].data) \
            < TOL


def test_refusals(meg, filters, fwd_surf_meg, evoked_meeg, noise_cov):
    epochs, csd, noise_csd, _ = meg
    with pytest.raises(ValueError, match="several sensor types requires a noise covariance"):
        mb.make_dics(epochs.info, fwd_surf_meg, csd)  # MNE-Python refuses it too
    with pytest.raises(ValueError, match="real_filter=False with a noise_csd is not supported"):
        mb.make_dics(epochs.info, fwd_surf_meg, csd, noise_csd=noise_csd, real_filter=False)
    with pytest.raises(TypeError, match="csd must be an mne.time_frequency.CrossSpectralDensity"):
        mb.make_dics(epochs.info, fwd_surf_meg, mne.make_ad_hoc_cov(epochs.info))
    ref, ours, _ = filters("default")
    with pytest.raises(ValueError, match="only works on DICS beamformer weights that have been "
                                         "computed for a single frequency"):
        mb.apply_dics_epochs(epochs[:2], ours)
    with pytest.raises(ValueError, match="the CSD has 1 frequencies and the filters 2"):
        mb.apply_dics_csd(csd.pick_frequency(index=0), ours)
    with pytest.raises(TypeError, match="csd must be an mne.time_frequency.CrossSpectralDensity"):
        mb.apply_dics_csd(noise_cov, ours)
    data_cov = mne.compute_covariance(epochs.copy().apply_baseline(verbose=False), verbose=False)
    lcmv = mb.make_lcmv(epochs.info, fwd_surf_meg, data_cov, noise_cov=noise_cov)
    with pytest.raises(ValueError, match="filters must be a DICS beamformer, got a LCMV one"):
        mb.apply_dics(evoked_meeg.copy().pick("meg"), lcmv)


@pytest.mark.parametrize("name", ["default", "complex-grad"])  # real: tiled; complex: a loop
def test_blocks_of_epochs_equal_one_block(filters, meg, monkeypatch, name):
    _, ours, _ = filters(name)
    one = _one_frequency(ours)
    epochs = meg[0].copy().pick(ours["ch_names"])[:5]
    whole = mb.apply_dics_epochs(epochs, one)
    monkeypatch.setattr(dics_module, "DEFAULT_MAX_MEMORY", 1)  # one epoch per block
    assert dics_module._block_size(one, len(epochs.times)) == 1
    for stc, ref in zip(mb.apply_dics_epochs(epochs, one), whole, strict=True):
        assert rel(stc.data, ref.data) < 1e-12


def test_every_public_name_of_mne_beamformer():
    """A script switches by changing its import line: the same names, parameters, defaults."""
    public = [n for n in dir(mne.beamformer) if not n.startswith("_")
              and not inspect.ismodule(getattr(mne.beamformer, n))]
    assert len(public) == 15
    for name in public:
        ours = getattr(mb, name)
        assert name in mb.__all__ and getattr(minnorm, name) is ours
        if inspect.isfunction(getattr(mne.beamformer, name)):
            ref = inspect.signature(getattr(mne.beamformer, name)).parameters
            got = inspect.signature(ours).parameters
            assert [p for p in ref if p not in got] == [], name
            for p in ref:
                assert got[p].default == ref[p].default, (name, p)


def test_complex_max_power_with_normalisation(meg, fwd_surf_meg):
    """real_filter=False, a weight normalisation, max-power: the orientation comes from the
    real part of a matrix that is no longer a product of symmetric ones, and at a source
    whose leading eigenvalues come out as a complex pair MNE-Python keeps a complex
    "orientation"; minnorm its real direction. Everywhere else the filters are equal."""
    grad_csd = meg[3]
    info = meg[0].copy().pick("grad").info
    kw = dict(real_filter=False, weight_norm="unit-noise-gain", pick_ori="max-power")
    ref = mne.beamformer.make_dics(info, fwd_surf_meg, grad_csd, verbose=False, **kw)
    ours = mb.make_dics(info, fwd_surf_meg, grad_csd, **kw)
    odd = np.abs(np.imag(ref["max_power_ori"])).max(axis=-1) > 0  # (n_freqs, n_sources)
    assert 0 < odd.sum() < 5  # one source at 10 Hz on this data
    assert not np.iscomplexobj(ours["max_power_ori"])
    np.testing.assert_allclose(np.linalg.norm(ours["max_power_ori"], axis=-1), 1.0, rtol=1e-12)
    assert rel(ours["max_power_ori"][~odd], ref["max_power_ori"][~odd].real) < 1e-5
    assert rel(ours["weights"][~odd], ref["weights"][~odd]) < TOL
