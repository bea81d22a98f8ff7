"""Source power spectra and induced power equal MNE-Python's, and obey their mathematics.

Against mne.minimum_norm on the real sample subject (relative error below 1e-6,
eLORETA 1e-3): compute_source_psd_epochs (multitaper, Hann, adaptive, sensor
spectra, labels, generators), compute_source_psd (Welch windows of a raw
recording, dB), source_induced_power (power, phase locking, baselines, labels
and label lists, decimation) and source_band_induced_power. Invariants:
Parseval per source, the cross-spectrum route equals expanding then squaring,
float32 close to float64, and a simulated 10 Hz source peaks at 10 Hz where it is.
"""

import mne
import numpy as np
import pytest

import minnorm
from _compare import assert_same_stc, rel_err

TOL = {"MNE": 1e-6, "dSPM": 1e-6, "sLORETA": 1e-6, "eLORETA": 1e-3}
FREQS = np.array([8.0, 12.0, 20.0])


def mne_op(operators, prepared_eloreta, name, method):
    """(MNE's operator, prepared, nave): for eLORETA the operator MNE prepared for the evoked's
    nave (its slow fit done once per session, MNE's own ``prepared=True`` path)."""
    if method != "eLORETA":
        return operators(name)[0], False, 1
    return prepared_eloreta(name, 1 / 9), True, prepared_eloreta(name, 1 / 9)["nave"]


# --------------------------------------------------------------------------- spectra of epochs


@pytest.mark.parametrize("name, method, pick_ori, bandwidth, adaptive", [
    ("surf-meeg-loose", "dSPM", None, 4.0, False),
    ("surf-meeg-loose", "sLORETA", "normal", 4.0, False),
    ("surf-meeg-loose", "MNE", None, "hann", False),
    ("surf-meeg-loose", "eLORETA", None, 4.0, False),
    ("surf-meeg-fixed-rankinfo", "dSPM", None, 12.0, True),
    ("vol-meeg-nodepth", "sLORETA", None, 4.0, False),
])
def test_psd_epochs_equals_mne(operators, prepared_eloreta, epochs_meeg, name, method, pick_ori,
                               bandwidth, adaptive):
    n = 2 if method == "dSPM" and not adaptive else 1  # MNE-Python takes ~1 s an epoch here
    epochs = epochs_meeg[:n]
    ref_op, prepared, nave = mne_op(operators, prepared_eloreta, name, method)
    kw = dict(method=method, pick_ori=pick_ori, bandwidth=bandwidth, adaptive=adaptive,
              fmin=2.0, fmax=40.0, return_sensor=True, nave=nave,
              low_bias=not adaptive)  # adaptive: weakly concentrated tapers, where weights matter
    ref = mne.minimum_norm.compute_source_psd_epochs(epochs, ref_op, 1 / 9, prepared=prepared,
                                                     verbose=False, **kw)
    ours = minnorm.compute_source_psd_epochs(epochs, operators(name)[1], 1 / 9, **kw)
    assert len(ours) == len(ref) == n
    for (stc, sensor), (stc_ref, sensor_ref) in zip(ours, ref):
        assert_same_stc(stc, stc_ref, TOL[method])
        assert sensor.ch_names == sensor_ref.ch_names and sensor.comment == sensor_ref.comment
        assert sensor.info["sfreq"] == pytest.approx(sensor_ref.info["sfreq"])
        # with pca=True the sensor spectra are of the data projected on the kernel's subspace,
        # which for eLORETA depends on its fitted weights (MNE's fitted to a 1e-4 change here)
        assert rel_err(sensor.data, sensor_ref.data) < TOL[method]
    arrays = minnorm.compute_source_psd_epochs(epochs, operators(name)[1], 1 / 9,
                                               return_array=True, **kw)
    assert arrays[0].shape == (n, *ours[0][0].data.shape)
    assert rel_err(arrays[0][-1], ours[-1][0].data) < 1e-12
    assert rel_err(arrays[1][0], ours[0][1].data) < 1e-12
    gen = minnorm.compute_source_psd_epochs(epochs, operators(name)[1], 1 / 9,
                                            return_generator=True, **kw)
    assert not isinstance(gen, list)
    for (stc, _), (stc_list, _) in zip(gen, ours):
        assert rel_err(stc, stc_list) < 1e-12


def test_psd_epochs_label_and_no_pca(operators, epochs_meeg, template_labels):
    ref_op, op = operators("surf-meeg-loose")
    label = template_labels[0]
    kw = dict(method="dSPM", label=label, fmax=30.0, pca=False, return_sensor=True)
    ref = mne.minimum_norm.compute_source_psd_epochs(epochs_meeg[:1], ref_op, 1 / 9,
                                                     verbose=False, **kw)
    ours = minnorm.compute_source_psd_epochs(epochs_meeg[:1], op, 1 / 9, **kw)
    assert_same_stc(ours[0][0], ref[0][0], 1e-6)
    assert rel_err(ours[0][1].data, ref[0][1].data) < 1e-12  # pca=False: the sensors as given
    label_pca = minnorm.compute_source_psd_epochs(epochs_meeg[:1], op, 1 / 9, method="dSPM",
                                                  label=label, fmax=30.0, return_sensor=True)
    assert rel_err(label_pca[0][1].data, ours[0][1].data) > 1e-3  # pca: the label's row space


# --------------------------------------------------------------------------- raw


@pytest.mark.parametrize("method, pick_ori, dB, bandwidth", [
    ("dSPM", None, False, "hann"), ("MNE", "normal", True, "hann"), ("sLORETA", None, False, 12.0)])
def test_psd_raw_equals_mne(operators, raw_meeg, method, pick_ori, dB, bandwidth):
    ref_op, op = operators("surf-meeg-loose")
    kw = dict(method=method, pick_ori=pick_ori, dB=dB, n_fft=64, overlap=0.25, tmin=0.1,
              tmax=0.9, fmax=100.0, bandwidth=bandwidth, return_sensor=True)
    stc_ref, sensor_ref = mne.minimum_norm.compute_source_psd(raw_meeg, ref_op, 1 / 9,
                                                              verbose=False, **kw)
    with pytest.warns(minnorm.MinnormWarning, match="pca=True drops .* EEG directions"):
        stc, sensor = minnorm.compute_source_psd(raw_meeg, op, 1 / 9, **kw)  # MEG+EEG
    power = (lambda x: 10 ** (x / 10)) if dB else (lambda x: x)  # compare powers, not their logs
    assert_same_stc(stc, stc_ref, 1e-6)
    assert rel_err(power(stc.data), power(stc_ref.data)) < 1e-6
    assert sensor.nave == sensor_ref.nave > 1
    assert rel_err(power(sensor.data), power(sensor_ref.data)) < 1e-6


# --------------------------------------------------------------------------- induced power


@pytest.mark.parametrize("name, method, pick_ori, baseline, mode", [
    ("surf-meeg-loose", "dSPM", None, (None, 0.0), "logratio"),
    ("surf-meeg-loose", "MNE", "normal", (None, 0.0), "percent"),
    ("surf-meeg-loose", "eLORETA", None, None, "logratio"),
    ("surf-meeg-fixed-rankinfo", "sLORETA", None, (-0.1, 0.0), "zscore"),
    ("vol-meeg-nodepth", "dSPM", None, None, "mean"),
])
def test_induced_power_equals_mne(operators, prepared_eloreta, epochs_meeg, name, method,
                                  pick_ori, baseline, mode):
    ref_op, prepared, nave = mne_op(operators, prepared_eloreta, name, method)
    epochs, freqs = epochs_meeg[:6], FREQS[:2]
    kw = dict(method=method, pick_ori=pick_ori, n_cycles=freqs / 4, decim=2, baseline=baseline,
              baseline_mode=mode, nave=nave)
    power_ref, plv_ref = mne.minimum_norm.source_induced_power(
        epochs, ref_op, freqs, prepared=prepared, verbose=False, **kw)
    power, plv = minnorm.source_induced_power(epochs, operators(name)[1], freqs, **kw)
    assert rel_err(power, power_ref) < TOL[method]
    assert rel_err(plv, plv_ref) < TOL[method]
    if prepared:  # MNE's own prepared operator, as MNE applies it
        power_mne_op = minnorm.source_induced_power(epochs, ref_op, freqs, prepared=True,
                                                    return_plv=False, **kw)
        assert rel_err(power_mne_op, power_ref) < 1e-6
    assert np.all((plv >= 0) & (plv <= 1 + 1e-12))


def test_induced_power_labels(operators, epochs_meeg, template_labels):
    ref_op, op = operators("surf-meeg-loose")
    labels = template_labels[:2]
    kw = dict(method="dSPM", n_cycles=2.0, return_plv=False)
    ref = mne.minimum_norm.source_induced_power(epochs_meeg, ref_op, FREQS, label=labels,
                                                verbose=False, **kw)
    ours = minnorm.source_induced_power(epochs_meeg, op, FREQS, label=labels, **kw)
    assert ours.shape == (2, len(FREQS), len(epochs_meeg.times))
    assert rel_err(ours, ref) < 1e-6
    one_ref, plv_ref = mne.minimum_norm.source_induced_power(
        epochs_meeg, ref_op, FREQS, label=template_labels[2], method="dSPM", n_cycles=2.0,
        verbose=False)
    one, plv = minnorm.source_induced_power(epochs_meeg, op, FREQS, label=template_labels[2],
                                            method="dSPM", n_cycles=2.0)
    assert rel_err(one, one_ref) < 1e-6 and rel_err(plv, plv_ref) < 1e-6
    with pytest.raises(RuntimeError, match="Phase-locking value cannot be calculated"):
        minnorm.source_induced_power(epochs_meeg, op, FREQS, label=labels, n_cycles=2.0)
    with pytest.raises(RuntimeError, match="overlapping"):
        minnorm.source_induced_power(epochs_meeg, op, FREQS, label=[labels[0], template_labels[2]],
                                     n_cycles=2.0, return_plv=False)


def test_band_induced_power_equals_mne(operators, epochs_meeg):
    ref_op, op = operators("surf-meeg-loose")
    bands = dict(alpha=[8, 12], beta=[15, 20])
    kw = dict(method="dSPM", n_cycles=2.0, df=2, decim=3, baseline=(None, 0.0))
    ref = mne.minimum_norm.source_band_induced_power(epochs_meeg, ref_op, bands, verbose=False,
                                                     **kw)
    ours = minnorm.source_band_induced_power(epochs_meeg, op, bands, **kw)
    assert list(ours) == list(ref)
    for name in bands:
        assert_same_stc(ours[name], ref[name], 1e-6)
    fixed = operators("surf-meeg-fixed-rankinfo")[1]
    with pytest.raises(ValueError, match="normal"):  # MNE refuses a fixed operator as well
        minnorm.source_band_induced_power(epochs_meeg, fixed, bands, n_cycles=2.0)


# --------------------------------------------------------------------------- invariants


def test_parseval_per_source(operators, epochs_meeg):
    """Σ_f P_k(f) = N Σ_t Σ_tapers c_t h_t(τ)² (ŝ_k(τ) − mean)²: the spectrum holds the power."""
    op = operators("surf-meg-loose")[1]
    epochs = epochs_meeg[:2]
    n = len(epochs.times)
    for bandwidth in ("hann", 4.0):
        psd = minnorm.compute_source_psd_epochs(epochs, op, 1 / 9, "MNE", pick_ori="normal",
                                                fmin=0, fmax=np.inf, bandwidth=bandwidth)
        stcs = minnorm.apply_inverse_epochs(epochs, op, 1 / 9, "MNE", pick_ori="normal")
        tapers, eigvals, _ = minnorm._mne.spectra.multitaper_windows(
            n, epochs.info["sfreq"], bandwidth, True, False)
        weights = eigvals / eigvals.sum()
        for p, stc in zip(psd, stcs):
            x = stc.data - stc.data.mean(axis=1, keepdims=True)
            energy = n * sum(w * (x**2 * h**2).sum(axis=1) for w, h in zip(weights, tapers))
            np.testing.assert_allclose(p.data.sum(axis=1), energy, rtol=1e-9)


def test_stationary_power_is_the_variance(operators, evoked_meeg):
    """White noise of known variance: the spectrum's mean over frequencies is that variance."""
    op = operators("surf-meg-loose")[1]
    rng = np.random.default_rng(3)
    info = evoked_meeg.info
    epochs = mne.EpochsArray(rng.standard_normal((40, len(info["ch_names"]), 256)) * 1e-13,
                             info, verbose=False)
    psd = minnorm.compute_source_psd_epochs(epochs, op, 1 / 9, "MNE", pick_ori="normal",
                                            fmin=0, fmax=np.inf, bandwidth="hann")
    mean_psd = np.mean([p.data.mean(axis=1) for p in psd], axis=0)
    K = minnorm.prepare_kernel(op, lambda2=1 / 9, method="MNE")
    normal = K.leads[2::3] @ K.fields  # the normal rows of the kernel, (n, M)
    variance = np.sum(normal**2, axis=1) * 1e-26  # white data: var ŝ = ‖k‖² σ²
    # Parseval: Σ_f P(f) = N Σ_t w(t)² var ŝ over the N // 2 + 1 one-sided frequencies
    window = minnorm._mne.spectra.multitaper_windows(256, info["sfreq"], "hann", False, False)[0]
    ratio = mean_psd / (variance * np.sum(window**2) * 256 / (256 // 2 + 1))
    assert np.median(ratio) == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize("pick_ori", [None, "normal"])
def test_routes_agree(operators, epochs_meeg, raw_meeg, pick_ori):
    """Cross-spectra first, expanding then squaring, and expanding the time courses first
    (then their FFTs) are the same numbers; so is float32, to its precision."""
    op = operators("surf-meg-loose")[1]
    kw = dict(method="dSPM", pick_ori=pick_ori, n_cycles=2.0, decim=4)
    epochs = epochs_meeg[:6]
    direct, plv = minnorm.source_induced_power(epochs, op, FREQS[:2], route="direct", **kw)
    cross, plv_cross = minnorm.source_induced_power(epochs, op, FREQS[:2], route="cross", **kw)
    assert rel_err(cross, direct) < 1e-10 and rel_err(plv_cross, plv) < 1e-12
    f32 = minnorm.source_induced_power(epochs, op, FREQS[:2], dtype="float32",
                                       return_plv=False, **kw)
    assert 0 < rel_err(f32, direct) < 1e-5
    kw = dict(method="dSPM", fmax=30.0, pick_ori=pick_ori)
    routes = ("direct", "time") if pick_ori is None else ("direct", "time", "cross")
    psd = {route: minnorm.compute_source_psd_epochs(epochs_meeg[:1], op, 1 / 9, route=route,
                                                    **kw) for route in routes}
    for route in routes[1:]:
        assert max(rel_err(x, y) for x, y in zip(psd[route], psd["direct"])) < 1e-10
    kw = dict(method="dSPM", pick_ori=pick_ori, n_fft=64, fmax=80.0)
    raw = {route: minnorm.compute_source_psd(raw_meeg, op, 1 / 9, route=route, **kw)
           for route in routes}
    for route in routes[1:]:
        assert rel_err(raw[route], raw["direct"]) < 1e-10
    if pick_ori is None:  # MNE's √ΣP² per window is not a sum over windows
        with pytest.raises(ValueError, match="does not apply"):
            minnorm.compute_source_psd(raw_meeg, op, 1 / 9, route="cross", **kw)


def test_ten_hertz_source_found(fwd_surf_meg, noise_cov, evoked_meeg, operators):
    """A 10 Hz dipole in noise: its spectrum and its induced power peak at 10 Hz, at the source."""
    op = operators("surf-meg-loose")[1]
    fwd = mne.convert_forward_solution(fwd_surf_meg, surf_ori=True, force_fixed=True,
                                       verbose=False)
    info = mne.pick_info(evoked_meeg.info, mne.pick_types(evoked_meeg.info, meg=True))
    picks = [fwd["sol"]["row_names"].index(c) for c in info["ch_names"]]
    gain = fwd["sol"]["data"][picks]
    source = int(np.argmax(np.linalg.norm(gain, axis=0)))  # a superficial source
    sfreq, n_times, rng = info["sfreq"], 600, np.random.default_rng(0)
    t = np.arange(n_times) / sfreq
    cov = noise_cov.copy().pick_channels(info["ch_names"], ordered=True).data
    noise = rng.multivariate_normal(np.zeros(len(cov)), cov, size=(12, n_times))
    phase = rng.uniform(0, 2 * np.pi, 12)
    signal = 30e-9 * np.sin(2 * np.pi * 10 * t[np.newaxis] + phase[:, np.newaxis])
    data = gain[:, source][np.newaxis, :, np.newaxis] * signal[:, np.newaxis] \
        + noise.transpose(0, 2, 1)
    epochs = mne.EpochsArray(data, info, verbose=False)
    psd = minnorm.compute_source_psd_epochs(epochs, op, 1 / 9, "dSPM", fmin=2, fmax=40)
    mean = np.mean([p.data for p in psd], axis=0)
    peak_source, peak_freq = np.unravel_index(np.argmax(mean), mean.shape)
    assert psd[0].times[peak_freq] == pytest.approx(10.0, abs=psd[0].tstep)
    where = np.concatenate([s["rr"][s["vertno"]] for s in fwd["src"]])
    assert np.linalg.norm(where[peak_source] - where[source]) < 0.02  # within 2 cm
    power = minnorm.source_induced_power(epochs, op, np.array([6.0, 10.0, 16.0]), n_cycles=3.0,
                                         method="dSPM", return_plv=False).mean(axis=2)
    assert np.argmax(power.max(axis=0)) == 1
    assert np.linalg.norm(where[np.argmax(power[:, 1])] - where[source]) < 0.02


# --------------------------------------------------------------------------- refusals


def test_refusals(operators, epochs_meeg, raw_meeg):
    op = operators("surf-meg-loose")[1]
    with pytest.raises(ValueError, match='pick_ori must be None or "normal"'):
        minnorm.compute_source_psd_epochs(epochs_meeg[:1], op, pick_ori="vector")
    with pytest.raises(ValueError, match="baseline_mode must be one of"):
        minnorm.source_induced_power(epochs_meeg, op, FREQS, baseline=(None, 0),
                                     baseline_mode="nonsense")
    with pytest.raises(ValueError, match="wavelets .* longer than the signal"):
        minnorm.source_induced_power(epochs_meeg, op, np.array([1.0]), n_cycles=7.0)
    with pytest.raises(ValueError, match="real data"):
        minnorm.compute_source_psd_epochs(epochs_meeg[:1].copy().apply_hilbert(), op)
    with pytest.raises(ValueError, match="Overlap must be at least 0"):
        minnorm.compute_source_psd(raw_meeg, op, overlap=1.0)
    with pytest.raises(ValueError, match="route must be one of"):
        minnorm.compute_source_psd_epochs(epochs_meeg[:1], op, route="fast")
    with pytest.raises(TypeError, match="label must be"):
        minnorm.compute_source_psd_epochs(epochs_meeg[:1], op, label=["not a label"])
    with pytest.raises(ValueError, match="decim must be"):
        minnorm.source_induced_power(epochs_meeg, op, FREQS, decim=0)
