"""Simulations on the template head: ground truth, noise model, SNR, reproducibility.

The signal is checked against MNE's own fixed-orientation forward model
(mne.apply_forward) and the SNR against MNE's whitener, so neither repeats
the code under test.
"""

import mne
import numpy as np
import pytest

from minnorm.teaching.metrics import localisation

from minnorm.teaching.simulate import (
    NoiseModel,
    Source,
    default_sources,
    noise_covariance,
    simulate_epochs,
    simulate_evoked,
    source_waveforms,
)
from minnorm.teaching.template import load_template, source_depth


pytestmark = pytest.mark.usefixtures("one_blas")  # see conftest.py


@pytest.fixture(scope="module")
def sim(head):
    return simulate_evoked(head, seed=0)


def _apply_forward(head, stc, info):
    """MNE's own prediction: fixed-orientation (vertex-normal) gain times the true moments."""
    fwd = mne.convert_forward_solution(head.forward, surf_ori=True, force_fixed=True,
                                       use_cps=False, verbose=False)
    return mne.apply_forward(fwd, stc, info, verbose=False).data


# --------------------------------------------------------------------------- ground truth


def test_true_sources_peak_at_their_vertices_and_latencies(head, sim):
    stc, truth = sim.stc_true, sim.truth
    assert stc.subject == "fsaverage"
    active = np.flatnonzero(np.abs(stc.data).max(axis=1))
    np.testing.assert_array_equal(active, np.sort(truth.indices))
    for k, source in enumerate(truth.sources):
        row = stc.data[truth.indices[k]]
        assert stc.times[np.abs(row).argmax()] == pytest.approx(source.latency, abs=0.5 / 500)
        assert row.max() == pytest.approx(source.amplitude * 1e-9, rel=1e-6)  # nA·m → A·m
        hemi = ("lh", "rh").index(truth.hemis[k])
        assert truth.vertices[k] in stc.vertices[hemi]
    assert truth.hemis == ("lh", "rh", "rh", "rh")


def test_sources_snap_to_the_nearest_template_vertex(head, sim):
    positions = head.source_positions_mm
    for source, index in zip(sim.truth.sources, sim.truth.indices):
        distance = np.linalg.norm(positions - source.position, axis=1)
        assert index == distance.argmin()
        assert distance[index] < 6.0  # ico4 sources are ~5 mm apart
    auditory = sim.truth.positions_mm[:2]
    assert np.all(np.abs(auditory[:, 0]) > 40) and np.all(np.abs(auditory[:, 2]) < 15)


def test_a_source_given_by_vertex_number(head):
    sim = simulate_evoked(head, sources=[Source("v", vertex=("rh", 100), latency=0.2)])
    assert sim.truth.vertices.tolist() == [100]
    assert sim.truth.indices.tolist() == [2562 + 100]
    np.testing.assert_allclose(sim.truth.positions_mm[0], 1e3 * head.src[1]["rr"][100])
    np.testing.assert_allclose(sim.truth.normals[0], head.src[1]["nn"][100])
    with pytest.raises(ValueError, match="vertex 5000 of lh is not a source of the ico4"):
        simulate_evoked(head, sources=[Source("x", vertex=("lh", 5000))])


def test_signal_is_the_forward_model_of_the_true_sources(head):
    quiet = simulate_evoked(head, snr=1e9, seed=1)
    expected = _apply_forward(head, quiet.stc_true, quiet.evoked.info)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(quiet.evoked.data, expected, atol=1e-6 * scale)


def test_depths_are_distances_to_the_inner_skull(head, sim):
    np.testing.assert_allclose(sim.truth.depths_mm, source_depth(head, sim.truth.positions_mm))
    assert np.all(sim.truth.depths_mm > 5) and np.all(sim.truth.depths_mm < 60)
    fusiform = sim.truth.names.index("fusiform-rh")
    temporal = sim.truth.names.index("temporal-rh")
    assert sim.truth.depths_mm[fusiform] > sim.truth.depths_mm[temporal]  # the deeper late source


def test_late_field_is_not_one_dipole(head, sim):
    """At 300 ms two sources with different orientations are active: the field has rank 2."""
    late = [k for k, s in enumerate(sim.truth.sources) if s.latency == 0.3]
    assert len(late) >= 2
    fwd = mne.convert_forward_solution(head.forward, surf_ori=True, force_fixed=True,
                                       use_cps=False, verbose=False)
    fields = fwd["sol"]["data"][:, sim.truth.indices[late]]
    cos = abs(fields[:, 0] @ fields[:, 1]) / np.linalg.norm(fields[:, 0]) / np.linalg.norm(fields[:, 1])
    assert cos < 0.9


def test_waveforms():
    sources = [Source("a", vertex=("lh", 0), amplitude=10, latency=0.1, width=0.02),
               Source("b", vertex=("lh", 1), amplitude=-5, latency=0.2, width=0.05, frequency=10)]
    times = np.array([0.1, 0.12, 0.2, 0.225])
    q = source_waveforms(sources, times)
    np.testing.assert_allclose(q[0, :2], [10e-9, 10e-9 * np.exp(-0.5)])
    assert q[1, 2] == pytest.approx(-5e-9)
    assert q[1, 3] == pytest.approx(0.0, abs=1e-20)  # a quarter period after the peak


# --------------------------------------------------------------------------- noise and SNR


def test_noise_covariance_is_symmetric_positive_definite_and_structured(sim):
    C = sim.noise_cov["data"]
    np.testing.assert_allclose(C, C.T)
    assert np.linalg.eigvalsh(C / np.sqrt(np.outer(np.diag(C), np.diag(C)))).min() > 0
    mags = mne.pick_types(sim.evoked.info, meg="mag")
    corr = C[np.ix_(mags, mags)] / np.sqrt(np.outer(np.diag(C)[mags], np.diag(C)[mags]))
    off = np.abs(corr[~np.eye(len(mags), dtype=bool)])
    assert off.mean() > 0.1  # brain noise: neighbouring sensors are correlated
    assert sim.noise_cov.ch_names == sim.evoked.ch_names


def test_physical_noise_levels(head):
    noise = NoiseModel()
    C = noise_covariance(head, noise=noise)["data"]
    info = head.info
    mags = mne.pick_types(info, meg="mag")
    grads = mne.pick_types(info, meg="grad")
    assert np.sqrt(np.mean(np.diag(C)[mags])) == pytest.approx(
        np.hypot(noise.brain_rms, noise.mag_rms), rel=1e-6)
    assert np.all(np.diag(C)[grads] > noise.grad_rms**2)
    physical = simulate_evoked(head, snr=None)
    np.testing.assert_allclose(physical.noise_cov["data"], C, atol=1e-12 * np.abs(C).max())


def _mne_whitened_gfp(sim):
    """SNR by MNE's whitener: whitened GFP of the noise-free evoked at its peak."""
    info = sim.evoked.info
    signal = _apply_forward_info(sim)
    cov = sim.noise_cov.copy()
    cov["data"] = cov["data"] / sim.nave
    W, _, rank = mne.cov.compute_whitener(cov, info, return_rank=True, verbose=False)
    return np.sqrt(np.max(np.sum((W @ signal) ** 2, axis=0)) / rank)


def _apply_forward_info(sim):
    """The noise-free data of a simulation (evoked or epochs), by MNE."""
    inst = sim.evoked if hasattr(sim, "evoked") else sim.epochs
    fwd = mne.convert_forward_solution(sim.forward, surf_ori=True, force_fixed=True,
                                       use_cps=False, verbose=False)
    return mne.apply_forward(fwd, sim.stc_true, inst.info, verbose=False).data


@pytest.mark.parametrize("snr", [1.0, 3.0, 10.0])
def test_snr_is_the_whitened_gfp_at_the_peak(head, snr):
    sim = simulate_evoked(head, snr=snr, nave=40)
    assert sim.snr == snr
    assert _mne_whitened_gfp(sim) == pytest.approx(snr, rel=1e-3)


def test_higher_snr_means_less_noise(head):
    residual = {}
    for snr in (2.0, 8.0):
        sim = simulate_evoked(head, snr=snr, seed=3)
        residual[snr] = np.linalg.norm(sim.evoked.data - _apply_forward_info(sim))
        assert sim.evoked.nave == 60
    assert residual[8.0] == pytest.approx(residual[2.0] / 4, rel=1e-6)  # same draw, scaled


def test_more_averages_less_evoked_noise_same_trial_covariance(head):
    a = simulate_evoked(head, snr=None, nave=10, seed=4)
    b = simulate_evoked(head, snr=None, nave=40, seed=4)
    C = a.noise_cov["data"]
    np.testing.assert_allclose(b.noise_cov["data"], C, atol=1e-12 * np.abs(C).max())
    ra = a.evoked.data - _apply_forward_info(a)
    rb = b.evoked.data - _apply_forward_info(b)
    assert np.linalg.norm(rb) == pytest.approx(np.linalg.norm(ra) / 2, rel=1e-6)
    assert b.snr == pytest.approx(2 * a.snr, rel=1e-6)


def test_drawn_noise_has_the_stated_covariance(head):
    """Whitened by the true C, the single-trial noise has unit variance."""
    epochs = simulate_epochs(head, n_epochs=60, snr=None, seed=5,
                             noise=NoiseModel(lowpass=40.0))
    clean = _apply_forward_info(epochs)
    noise = (epochs.epochs.get_data() - clean[None]).transpose(1, 0, 2).reshape(306, -1)
    C = epochs.noise_cov["data"]
    W = np.linalg.inv(np.linalg.cholesky(C))
    white = W @ noise
    assert np.mean(white**2) == pytest.approx(1.0, abs=0.05)
    assert np.std(np.mean(white**2, axis=1)) < 0.2  # every whitened direction, not just on average


# --------------------------------------------------------------------------- reproducibility


def test_same_seed_same_data_other_seed_other_noise(head, sim):
    again = simulate_evoked(head, seed=0)
    # equal up to BLAS rounding (the module fixture may have run with other BLAS threads)
    np.testing.assert_allclose(again.evoked.data, sim.evoked.data, rtol=1e-9,
                               atol=1e-12 * np.abs(sim.evoked.data).max())
    other = simulate_evoked(head, seed=1)
    difference = np.abs(other.evoked.data - sim.evoked.data).max()
    assert difference > 0.1 * np.abs(sim.evoked.data).max()  # a different noise draw
    np.testing.assert_array_equal(other.stc_true.data, sim.stc_true.data)  # no BLAS: exact
    # C = σ² F Fᵀ + white is a BLAS product: equal up to its rounding, not bitwise
    C = sim.noise_cov["data"]
    np.testing.assert_allclose(other.noise_cov["data"], C, rtol=1e-10,
                               atol=1e-12 * np.abs(C).max())


def test_epochs_reproducible(head):
    kw = dict(n_epochs=5, amplitude_jitter=0.3)
    a = simulate_epochs(head, seed=7, **kw)
    b = simulate_epochs(head, seed=7, **kw)
    c = simulate_epochs(head, seed=8, **kw)
    data = a.epochs.get_data()
    np.testing.assert_allclose(b.epochs.get_data(), data, rtol=1e-9,  # BLAS rounding only
                               atol=1e-12 * np.abs(data).max())
    np.testing.assert_array_equal(a.amplitudes, b.amplitudes)
    assert not np.allclose(a.amplitudes, c.amplitudes)


# --------------------------------------------------------------------------- epochs


def test_epochs_scale_sources_per_trial_and_carry_conditions(head):
    n = 6
    conditions = np.array([1, 2] * (n // 2))
    late = np.array([s.latency == 0.3 for s in default_sources()])
    scale = np.where(late, np.where(conditions[:, None] == 2, 2.0, 0.0), 1.0)
    sim = simulate_epochs(head, n_epochs=n, snr=1e9, amplitude_scale=scale, conditions=conditions)
    np.testing.assert_array_equal(sim.amplitudes, scale)
    np.testing.assert_array_equal(sim.epochs.events[:, 2], conditions)
    assert sim.epochs.event_id == {"1": 1, "2": 2}
    data = sim.epochs.get_data()
    for e in (0, 1):
        stc = sim.stc_true.copy()
        stc.data[sim.truth.indices] *= scale[e][:, None]
        expected = _apply_forward(head, stc, sim.epochs.info)
        np.testing.assert_allclose(data[e], expected, atol=1e-6 * np.abs(expected).max())
    at_300 = sim.epochs.time_as_index(0.3)[0]
    assert np.abs(data[1, :, at_300]).max() > 3 * np.abs(data[0, :, at_300]).max()


def test_amplitude_jitter_varies_trials(head):
    sim = simulate_epochs(head, n_epochs=100, amplitude_jitter=0.2, seed=2)
    assert np.std(sim.amplitudes) == pytest.approx(0.2, rel=0.15)
    assert np.mean(sim.amplitudes) == pytest.approx(1.0, abs=0.05)


def test_epochs_snr_is_that_of_their_average(head):
    sim = simulate_epochs(head, n_epochs=30, snr=4.0)
    assert sim.snr == 4.0
    cov = sim.noise_cov.copy()
    cov["data"] = cov["data"] / 30
    W, _, rank = mne.cov.compute_whitener(cov, sim.epochs.info, return_rank=True, verbose=False)
    signal = _apply_forward_info(sim)
    assert np.sqrt(np.max(np.sum((W @ signal) ** 2, axis=0)) / rank) == pytest.approx(4.0, rel=1e-3)


# --------------------------------------------------------------------------- EEG


@pytest.fixture(scope="module")
def eeg_head(cache_dir):
    return load_template(spacing="ico3", conductor="sphere", eeg=True, cache_dir=cache_dir,
                         progress=False)


def test_eeg_evoked_is_average_referenced(eeg_head):
    sim = simulate_evoked(eeg_head, snr=5.0, sources=default_sources()[:2])
    projs = sim.evoked.info["projs"]
    assert len(projs) == 1 and projs[0]["active"] and "Average EEG reference" in projs[0]["desc"]
    eeg = mne.pick_types(sim.evoked.info, meg=False, eeg=True)
    np.testing.assert_allclose(sim.evoked.data[eeg].mean(axis=0), 0.0, atol=1e-15)
    assert len(sim.noise_cov["projs"]) == 1
    W, _, rank = mne.cov.compute_whitener(sim.noise_cov, sim.evoked.info, return_rank=True,
                                          verbose=False)
    assert rank == len(sim.evoked.ch_names) - 1  # the reference removes one dimension
    epochs = simulate_epochs(eeg_head, n_epochs=3, sources=default_sources()[:2])
    assert epochs.epochs.info["projs"][0]["active"]


# --------------------------------------------------------------------------- peaks and errors


class _Depths:
    """Depths (mm) below the inner skull of the head's sources, indexed like an array and
    computed only for the sources asked for (``localisation`` reads those of the peaks and
    of the true sources): the exact distance of all 5124 to the skull takes ~5 s."""

    def __init__(self, head):
        self.head = head

    def __getitem__(self, index):
        return source_depth(self.head, self.head.source_positions_mm[index])


@pytest.fixture(scope="module")
def depth(head):
    return _Depths(head)


def _localise(head, depth, sim, stc):
    times = [int(np.argmin(np.abs(stc.times - lat))) for lat in sim.truth.latencies]
    return localisation(np.abs(stc.data[:, times].T), positions=head.source_positions_mm,
                        true_index=sim.truth.indices, depth=depth)


def test_localisation_of_the_truth_itself_is_exact(head, depth):
    sources = default_sources()[:3]  # one source per hemisphere and latency
    sim = simulate_evoked(head, sources=sources)
    loc = _localise(head, depth, sim, sim.stc_true)
    np.testing.assert_array_equal(loc.peak_index, sim.truth.indices)
    np.testing.assert_allclose(loc.ple, 0.0)
    np.testing.assert_allclose(loc.peak_depth, sim.truth.depths_mm, rtol=1e-6)


def test_minimum_norm_estimate_is_pulled_to_the_surface(head, depth, sim):
    inv = mne.minimum_norm.make_inverse_operator(sim.evoked.info, sim.forward, sim.noise_cov,
                                                 loose=0.2, depth=None, verbose=False)
    stc = mne.minimum_norm.apply_inverse(sim.evoked, inv, 1 / 9, "MNE", verbose=False)
    loc = _localise(head, depth, sim, stc)
    assert np.all(loc.ple < 40)
    # without depth weighting the MNE estimate is pulled towards the surface
    assert np.mean(loc.peak_depth) < np.mean(loc.true_depth)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("kwargs, match", [
    (dict(position=(1, 2, 3), vertex=("lh", 1)), "exactly one of position"),
    (dict(), "exactly one of position"),
    (dict(vertex=("xh", 1)), "vertex must be"),
    (dict(position=(1, 2)), "position must be"),
    (dict(position=(1, 2, 3), width=0), "width must be > 0"),
])
def test_invalid_sources_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Source("bad", **kwargs)


def test_invalid_simulation_arguments_are_named(head):
    with pytest.raises(ValueError, match="snr must be > 0"):
        simulate_evoked(head, snr=-1.0)
    with pytest.raises(ValueError, match="nave must be a positive integer"):
        simulate_evoked(head, nave=0)
    with pytest.raises(ValueError, match=r"amplitude_scale must have shape \(n_epochs, n_sources\)"):
        simulate_epochs(head, n_epochs=3, amplitude_scale=np.ones(3))
    with pytest.raises(ValueError, match="tmin must be < tmax"):
        simulate_evoked(head, tmin=0.5, tmax=0.1)
