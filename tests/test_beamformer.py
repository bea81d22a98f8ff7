"""The LCMV beamformer: equal to mne.beamformer on the sample data, its invariants, its files.

MNE-Python's and minnorm's filters are made once per configuration (module fixture).
The grid of every option combination (weight_norm × pick_ori × inversion × reduce_rank)
is compared on the real arrays of one problem through MNE-Python's filter core
(``mne.beamformer._compute_beamformer``), which costs milliseconds; the public
``make_lcmv`` is compared end to end on configurations that cover the edges (channel
types, noise covariance or none, free/fixed/surface-oriented forwards, volumes,
labels, depth).
"""

import mne
import numpy as np
import pytest
from _compare import max_rel_err as rel
from mne.beamformer._compute_beamformer import _compute_beamformer as mne_compute_beamformer

import minnorm
from minnorm import _mne
from minnorm.beamformer.apply import filter_expander
from minnorm.decoding import SourceTransformer
from minnorm.engine import beamformer as bf
from minnorm.engine.expand import working_bytes
from minnorm.engine.power import source_power

TOL = 1e-6  # relative error, filters and estimates

pytestmark = pytest.mark.usefixtures("one_blas")  # small products; see conftest.py


@pytest.fixture(scope="module")
def data_cov(epochs_meeg):
    """Data covariance of the 12 noisy epochs from 0 s (signal + noise), 366 MEG+EEG channels."""
    epochs = epochs_meeg.copy().apply_baseline((None, 0), verbose=False)
    return mne.compute_covariance(epochs, tmin=0.0, verbose=False)


@pytest.fixture(scope="module")
def few_epochs(epochs_meeg):
    """3 of the epochs, 0 … 0.2 s (121 samples): enough for batching, cheap for MNE-Python."""
    return epochs_meeg[:3].crop(0.0, 0.2, verbose=False)


@pytest.fixture(scope="module")
def fwd_surf_ori(fwd_surf_meeg):
    return mne.convert_forward_solution(fwd_surf_meeg, surf_ori=True, verbose=False)


@pytest.fixture(scope="module")
def fwd_fixed(fwd_surf_meg):
    return mne.convert_forward_solution(fwd_surf_meg, surf_ori=True, force_fixed=True,
                                        verbose=False)


# name → (forward fixture, channels, with noise covariance, make_lcmv options)
CONFIGS = {
    "surf-meeg": ("fwd_surf_meeg", None, True, dict()),
    "surf-meeg-normal-ung-depth": ("fwd_surf_ori", None, True,
                                   dict(pick_ori="normal", weight_norm="unit-noise-gain",
                                        depth=0.8)),
    "surf-meeg-vector-nai": ("fwd_surf_meeg", None, True,
                             dict(pick_ori="vector", weight_norm="nai", reg=0.1)),
    "surf-meg-maxpower-single": ("fwd_surf_meg", "meg", True,
                                 dict(pick_ori="max-power", weight_norm=None, inversion="single")),
    "surf-eeg-adhoc": ("fwd_surf_meeg", "eeg", False, dict()),
    "surf-grad-adhoc-maxpower-rr": ("fwd_surf_meg", "grad", False,
                                    dict(pick_ori="max-power", weight_norm="nai",
                                         reduce_rank=True)),
    "surf-fixed-ung-depth": ("fwd_fixed", "meg", True,
                             dict(weight_norm="unit-noise-gain", depth=0.8)),
    "surf-label-maxpower": ("fwd_surf_meeg", None, True,
                            dict(label=2, pick_ori="max-power", weight_norm="unit-noise-gain")),
    "vol-meg-vector": ("fwd_vol_meg", "meg", True, dict(pick_ori="vector")),
    "vol-meeg-maxpower-rr-depth": ("fwd_vol_meeg", None, True,
                                   dict(pick_ori="max-power", reduce_rank=True, depth=0.8)),
    "mixed-meg-vector": ("fwd_mixed_meg", "meg", True, dict(pick_ori="vector")),
}


def pick_info(info, channels):
    if channels is None:
        return info
    types = dict(meg=dict(meg=True), eeg=dict(meg=False, eeg=True), grad=dict(meg="grad"))
    return mne.pick_info(info, mne.pick_types(info, **types[channels]))


@pytest.fixture(scope="module")
def filters(request, evoked_meeg, data_cov, noise_cov, template_labels):
    """(MNE's filter, minnorm's filter, info) per configuration, made once."""
    cache = {}

    def get(name):
        if name not in cache:
            fwd_name, channels, with_noise, options = CONFIGS[name]
            fwd = request.getfixturevalue(fwd_name)
            options = dict(options)
            if "label" in options:
                options["label"] = template_labels[options["label"]]
            info = pick_info(evoked_meeg.info, channels)
            args = (info, fwd, data_cov)
            ncov = noise_cov if with_noise else None
            ref = mne.beamformer.make_lcmv(*args, noise_cov=ncov, verbose=False, **options)
            ours = minnorm.make_lcmv(*args, noise_cov=ncov, **options)
            cache[name] = ref, ours, info
        return cache[name]

    return get


@pytest.mark.parametrize("name", CONFIGS)
def test_make_lcmv_equals_mne(filters, evoked_meeg, name):
    ref, ours, _ = filters(name)
    assert isinstance(ours, mne.beamformer.Beamformer) and isinstance(ours, minnorm.Beamformer)
    assert set(ours) == set(ref)
    assert rel(ours["weights"], ref["weights"]) < TOL
    assert rel(ours["whitener"], ref["whitener"]) < TOL
    np.testing.assert_allclose(ours["proj"], ref["proj"], atol=1e-12)
    for key in ("kind", "weight_norm", "pick_ori", "ch_names", "is_ssp", "is_free_ori",
                "n_sources", "src_type", "subject", "rank", "inversion"):
        assert ours[key] == ref[key], key
    for ours_v, ref_v in zip(ours["vertices"], ref["vertices"]):
        np.testing.assert_array_equal(ours_v, ref_v)
    if ref["max_power_ori"] is None:
        assert ours["max_power_ori"] is None
    else:
        assert rel(ours["max_power_ori"], ref["max_power_ori"]) < TOL
    np.testing.assert_allclose(ours["noise_cov"].data, ref["noise_cov"].data, rtol=1e-12)
    if name == "surf-label-maxpower" or ours["pick_ori"] == "vector" and "label" in name:
        return
    stc_ref = mne.beamformer.apply_lcmv(evoked_meeg, ref, verbose=False)
    for stc in (minnorm.apply_lcmv(evoked_meeg, ours),  # ours, ours on MNE's, MNE's on ours
                minnorm.apply_lcmv(evoked_meeg, ref),
                mne.beamformer.apply_lcmv(evoked_meeg, ours, verbose=False)):
        assert type(stc) is type(stc_ref)
        assert rel(stc.data, stc_ref.data) < TOL
        assert stc.tmin == stc_ref.tmin and stc.tstep == stc_ref.tstep
        assert stc.subject == stc_ref.subject


def test_label_filter_estimates(filters, evoked_meeg):
    ref, ours, _ = filters("surf-label-maxpower")
    stc_ref = mne.beamformer.apply_lcmv(evoked_meeg, ref, verbose=False)
    stc = minnorm.apply_lcmv(evoked_meeg, ours)
    assert rel(stc.data, stc_ref.data) < TOL
    assert [len(v) for v in stc.vertices] == [len(v) for v in stc_ref.vertices]


@pytest.fixture(scope="module")
def label_problem(fwd_surf_ori, evoked_meeg, data_cov, noise_cov, template_labels):
    """The arrays of one small real problem: EEG (60 channels, whitened), surface-oriented
    gain of the auditory labels' sources (free orientation)."""
    return _mne.read_lcmv_inputs(pick_info(evoked_meeg.info, "eeg"), fwd_surf_ori, data_cov,
                                 noise_cov, label=template_labels[2], pick_ori=None,
                                 rank="info", depth=None, inversion="matrix")


GRID = [(wn, po, inv, rr) for wn in bf.WEIGHT_NORMS for po in bf.PICK_ORIS
        for inv in bf.INVERSIONS for rr in (False, True)]


@pytest.mark.parametrize("weight_norm, pick_ori, inversion, reduce_rank", GRID)
def test_every_option_combination_equals_mne(label_problem, weight_norm, pick_ori, inversion,
                                             reduce_rank):
    p = label_problem
    args = (p.gain, p.cov, 0.05, 3, weight_norm, pick_ori, reduce_rank, p.rank)
    kwargs = dict(inversion=inversion, nn=p.nn, orient_std=np.ones(p.gain.shape[1]),
                  whitener=p.whitener)
    options = dict(reg=0.05, rank=p.rank, n_ori=3, weight_norm=weight_norm, pick_ori=pick_ori,
                   reduce_rank=reduce_rank, inversion=inversion, nn=p.nn)
    try:
        ref_w, ref_ori = mne_compute_beamformer(*args, **kwargs)
    except ValueError as err:
        message = str(err).split(";")[0].split(":")[0].rstrip(".")
        with pytest.raises(ValueError, match=message.replace('"', '.').replace("(", ".")
                           .replace(")", ".")):
            bf.make_filter(p.gain, p.cov, p.whitener, **options)
        return
    ours = bf.make_filter(p.gain, p.cov, p.whitener, **options)
    assert rel(ours.weights, ref_w) < TOL
    if ref_ori is not None:
        assert rel(ours.max_power_ori, ref_ori) < TOL


REFUSED = [  # (forward fixture, channels, noise covariance, options, MNE's exception, message)
    ("fwd_surf_meeg", None, True, dict(rank="full"), ValueError,  # MNE only warns at first
     "not positive semi-definite"),
    ("fwd_surf_meeg", None, False, {}, ValueError, "several sensor types requires a noise "
                                                   "covariance"),
    ("fwd_vol_meg", "meg", True, dict(pick_ori="normal"), ValueError,
     "Normal orientation can only be picked when a forward operator oriented in surface"),
    ("fwd_surf_meeg", None, True, dict(pick_ori="normal"), ValueError,
     "Normal orientation can only be picked when a forward operator oriented in surface"),
    ("fwd_fixed", "meg", True, dict(pick_ori="max-power"), ValueError,
     "can only be picked when a forward operator with free orientation"),
    ("fwd_surf_meeg", None, True, dict(weight_norm="foo"), ValueError,
     "Invalid value for the 'weight_norm' parameter"),
    ("fwd_surf_meeg", None, True, dict(pick_ori="foo"), ValueError,
     "Invalid value for the 'pick_ori' parameter"),
    ("fwd_surf_meeg", None, True, dict(inversion="foo"), ValueError,
     "Invalid value for the 'inversion' parameter"),
    ("fwd_surf_meeg", None, True, dict(reduce_rank=True, inversion="single"), ValueError,
     'reduce_rank cannot be used with inversion="single"'),
    ("fwd_surf_meeg", None, True, dict(pick_ori="vector", inversion="single"), ValueError,
     'Cannot use pick_ori="vector" with inversion="single"'),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # MNE-Python's, on the bad inputs
@pytest.mark.parametrize("fwd_name, channels, with_noise, options, exc, message", REFUSED)
def test_refusals_match_mne(request, evoked_meeg, data_cov, noise_cov, template_labels,
                            fwd_name, channels, with_noise, options, exc, message):
    fwd = request.getfixturevalue(fwd_name)
    info = pick_info(evoked_meeg.info, channels)
    kwargs = dict(noise_cov=noise_cov if with_noise else None, **options)
    if fwd_name == "fwd_surf_meeg" and with_noise and "rank" not in options:
        # refused late: a label keeps MNE-Python quick
        kwargs["label"] = template_labels[0]
    with pytest.raises(exc, match=message):
        mne.beamformer.make_lcmv(info, fwd, data_cov, verbose=False, **kwargs)
    with pytest.raises(ValueError, match=message) as err:
        minnorm.make_lcmv(info, fwd, data_cov, **kwargs)
    assert "\n" not in str(err.value)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # MNE-Python's: too few samples
def test_rank_mismatch_is_refused_as_mne(evoked_meeg, epochs_meeg, noise_cov, fwd_surf_meeg,
                                         template_labels):
    short = mne.compute_covariance(epochs_meeg[:1], tmin=0.0, tmax=0.1, verbose=False)
    kwargs = dict(noise_cov=noise_cov, rank=None, label=template_labels[0])
    message = r"meg data rank \(61\) did not match the noise rank \(303\)"
    with pytest.raises(ValueError, match=message):
        mne.beamformer.make_lcmv(evoked_meeg.info, fwd_surf_meeg, short, verbose=False, **kwargs)
    with pytest.raises(ValueError, match=message + ": pass rank='info'"):
        minnorm.make_lcmv(evoked_meeg.info, fwd_surf_meeg, short, **kwargs)


def test_bad_data_are_refused(filters, evoked_meeg, data_cov, fwd_surf_meeg):
    """NaN in data or covariances, missing channels, other projectors: one-line errors."""
    _, ours, info = filters("surf-eeg-adhoc")
    evoked = evoked_meeg.copy()
    evoked.data[evoked.ch_names.index("EEG 010"), 5] = np.nan
    with pytest.raises(ValueError, match="data contains 1 NaN.*EEG 010"):
        minnorm.apply_lcmv(evoked, ours)
    with pytest.raises(ValueError, match="computed with channel EEG 001 which is not present"):
        minnorm.apply_lcmv(evoked_meeg.copy().drop_channels(["EEG 001"]), ours)
    eeg = [c for c in evoked_meeg.ch_names if c.startswith("EEG")]
    vector = np.random.default_rng(0).standard_normal((1, len(eeg)))
    extra = mne.Projection(data=dict(nrow=1, ncol=len(eeg), row_names=None, col_names=eeg,
                                     data=vector), kind=1, desc="another", active=False)
    with pytest.raises(ValueError, match="SSP projections present in the data do not match"):
        minnorm.apply_lcmv(evoked_meeg.copy().add_proj([extra]), ours)
    cov = data_cov.copy()
    k = cov.ch_names.index("EEG 010")
    cov["data"] = cov["data"].copy()
    cov["data"][k, k] = np.inf
    with pytest.raises(ValueError, match="data covariance contains 1 NaN or Inf.*EEG 010"):
        minnorm.make_lcmv(info, fwd_surf_meeg, cov)


def test_singular_gain_is_refused_unless_reduce_rank(label_problem):
    p = label_problem
    gain = p.gain.copy()
    gain[:, 2::3] = 0  # every source blind to its normal component, as MEG in a sphere
    options = dict(reg=0.05, rank=p.rank, n_ori=3, weight_norm=None, pick_ori=None,
                   inversion="matrix", nn=p.nn)
    with pytest.raises(ValueError, match="Singular matrix detected.*reduce_rank=True"):
        bf.make_filter(gain, p.cov, p.whitener, reduce_rank=False, **options)
    assert np.isfinite(bf.make_filter(gain, p.cov, p.whitener, reduce_rank=True,
                                      **options).weights).all()


# ---------------------------------------------------------------------------------------------
# Invariants
# ---------------------------------------------------------------------------------------------

def _filter(p, cov_inv, **options):
    return bf.lcmv_filter(p.gain, cov_inv, n_ori=3, reduce_rank=False, inversion="matrix",
                          nn=p.nn, **options)


@pytest.fixture(scope="module")
def cov_inv(label_problem):
    p = label_problem
    return bf.regularized_inverse(bf.whiten_covariance(p.cov, p.whitener), 0.05, p.rank)[0]


@pytest.mark.parametrize("pick_ori", [None, "vector", "normal", "max-power"])
def test_unit_gain(label_problem, cov_inv, pick_ori):
    """W_k L_k = I (3 × 3) for a free filter, 1 along the picked orientation."""
    p = label_problem
    f = _filter(p, cov_inv, weight_norm=None, pick_ori=pick_ori)
    Lk = p.gain.reshape(len(p.gain), -1, 3).transpose(1, 0, 2)  # (n_sources, M, 3)
    if pick_ori == "normal":
        Lk = Lk[:, :, 2:]
    elif pick_ori == "max-power":
        Lk = np.matmul(Lk, f.max_power_ori[:, :, np.newaxis])
    Wk = f.weights.reshape(len(Lk), f.n_ori, -1)
    np.testing.assert_allclose(np.matmul(Wk, Lk), np.broadcast_to(np.eye(f.n_ori), (len(Lk),
                               f.n_ori, f.n_ori)), atol=1e-9)


@pytest.mark.parametrize("weight_norm", ["unit-noise-gain", "unit-noise-gain-invariant"])
def test_unit_noise_gain(label_problem, cov_inv, weight_norm):
    """White noise (whitened space, covariance I) passes with gain 1 per output; the invariant
    normalisation makes each source's 3 × 3 noise covariance W_k W_kᵀ the identity."""
    p = label_problem
    f = _filter(p, cov_inv, weight_norm=weight_norm, pick_ori="vector")
    Wk = f.weights.reshape(-1, 3, f.weights.shape[1])
    noise = np.matmul(Wk, Wk.swapaxes(1, 2))
    np.testing.assert_allclose(np.diagonal(noise, axis1=1, axis2=2), 1.0, rtol=1e-10)
    if weight_norm == "unit-noise-gain-invariant":
        np.testing.assert_allclose(noise, np.broadcast_to(np.eye(3), noise.shape), atol=1e-10)
    scalar = _filter(p, cov_inv, weight_norm=weight_norm, pick_ori="max-power")
    np.testing.assert_allclose(np.linalg.norm(scalar.weights, axis=1), 1.0, rtol=1e-10)


@pytest.fixture(scope="module")
def cortex(fwd_surf_ori, evoked_meeg, data_cov, noise_cov):
    """Whitened gradiometer gain of the whole template cortex (surface orientation)."""
    info = pick_info(evoked_meeg.info, "grad")
    return _mne.read_lcmv_inputs(info, fwd_surf_ori, data_cov, noise_cov, label=None,
                                 pick_ori=None, rank="info", depth=None, inversion="matrix")


def _normal_filter(p, cov_w, weight_norm):
    cov_inv = bf.regularized_inverse(cov_w, 0.05, len(cov_w))[0]
    return bf.lcmv_filter(p.gain, cov_inv, n_ori=3, weight_norm=weight_norm, pick_ori="normal",
                          reduce_rank=False, inversion="matrix", nn=p.nn).weights


@pytest.mark.parametrize("source", [0, 333, 700, 1100])
def test_single_source_without_noise_is_localised_exactly(cortex, source):
    """Data from one source (normal orientation), no noise: the power map peaks at it."""
    field = cortex.gain[:, 3 * source + 2]
    W = _normal_filter(cortex, np.outer(field, field), "unit-noise-gain")
    power = source_power(W, np.eye(len(field)), np.outer(field, field))
    assert np.argmax(power) == source


def test_correlated_sources_are_suppressed(cortex, fwd_surf_ori, template_labels, capsys):
    """Two perfectly correlated sources (the bilateral N100m) cancel in the unit-gain filter:
    the output power at each is a small fraction of its power when they are independent."""
    src = fwd_surf_ori["src"]
    k = [int(_mne.label_vertices(lab, src)[1][0]) for lab in template_labels[:2]]
    a, b = (cortex.gain[:, 3 * s + 2] for s in k)
    independent, correlated = np.outer(a, a) + np.outer(b, b), np.outer(a + b, a + b)
    ratios = []
    for s in k:
        power = [source_power(_normal_filter(cortex, c, None), np.eye(len(c)), c)[s]
                 for c in (independent, correlated)]
        ratios.append(power[1] / power[0])
    with capsys.disabled():
        print(f"\ncorrelated/independent output power at the two sources: "
              f"{ratios[0]:.2e}, {ratios[1]:.2e} ({10 * np.log10(max(ratios)):.0f} dB)")
    assert max(ratios) < 1e-3  # measured 5.5e-05 and 7.4e-09 (−43 dB) with reg=0.05


# ---------------------------------------------------------------------------------------------
# Applying: epochs (batched), raw, covariance, resolution matrix, decoding
# ---------------------------------------------------------------------------------------------

def one_epoch_budget(filters, epochs) -> int:
    """A max_memory that lets one epoch, not two, into a block."""
    fields = _mne.filter_fields(filters, None)
    ex = filter_expander(filters, fields)
    per_sample, tiles = working_bytes(ex, len(epochs.times), M=len(fields), stream=True)
    return int(tiles + 1.5 * per_sample * len(epochs.times))


@pytest.mark.parametrize("name", ["surf-meeg", "vol-meg-vector"])
def test_epochs_batched_equal_mne_per_epoch(filters, few_epochs, name):
    ref, ours, _ = filters(name)
    max_memory = one_epoch_budget(ours, few_epochs)
    stcs_ref = mne.beamformer.apply_lcmv_epochs(few_epochs, ref, verbose=False)
    stcs = minnorm.apply_lcmv_epochs(few_epochs, ours)
    assert len(stcs) == len(stcs_ref)
    assert all(type(s) is type(r) for s, r in zip(stcs, stcs_ref))
    data_ref = np.stack([s.data for s in stcs_ref])
    assert rel(np.stack([s.data for s in stcs]), data_ref) < TOL
    generated = minnorm.apply_lcmv_epochs(few_epochs, ours, return_generator=True,
                                          max_memory=max_memory)  # blocks of one epoch
    assert not isinstance(generated, list)
    assert rel(np.stack([s.data for s in generated]), np.stack([s.data for s in stcs])) < 1e-12
    array = minnorm.apply_lcmv_epochs(few_epochs, ours, return_array=True)
    assert rel(array, data_ref) < TOL
    single = minnorm.apply_lcmv_epochs(few_epochs, ours, return_array=True, dtype="float32")
    assert single.dtype == np.float32 and rel(single, data_ref) < 1e-5
    blocks = list(minnorm.apply_lcmv_epochs(few_epochs, ours, return_array=True,
                                            return_generator=True, max_memory=max_memory))
    assert len(blocks) == len(few_epochs)
    assert rel(np.concatenate([b.data for b in blocks]), array) < 1e-12


def test_complex_data_as_mne(filters, evoked_meeg, few_epochs):
    """Hilbert-transformed data: real norms over orientations, complex vectors, as MNE-Python."""
    ref, ours, _ = filters("surf-meeg")
    evoked = evoked_meeg.copy().apply_hilbert()
    stc_ref = mne.beamformer.apply_lcmv(evoked, ref, verbose=False)
    stc = minnorm.apply_lcmv(evoked, ours)
    assert stc.data.dtype == stc_ref.data.dtype == np.float64
    assert rel(stc.data, stc_ref.data) < TOL
    ref, ours, _ = filters("vol-meg-vector")
    epochs = few_epochs.copy().apply_hilbert()
    data_ref = np.stack([s.data for s in mne.beamformer.apply_lcmv_epochs(epochs, ref,
                                                                          verbose=False)])
    data = minnorm.apply_lcmv_epochs(epochs, ours, return_array=True, dtype="float32")
    assert data.dtype == np.complex64 and rel(data, data_ref) < 1e-5


def test_lazy_epochs_equal_preloaded(filters, few_epochs):
    """Epochs read from a raw recording block by block give the same estimates."""
    _, ours, _ = filters("surf-meeg")
    raw = mne.io.RawArray(np.concatenate(few_epochs.get_data(), axis=-1), few_epochs.info,
                          verbose=False)
    n_times = len(few_epochs.times)
    events = np.c_[np.arange(len(few_epochs)) * n_times, np.zeros(len(few_epochs), int),
                   np.ones(len(few_epochs), int)]
    lazy = mne.Epochs(raw, events, tmin=0.0, tmax=(n_times - 1) / raw.info["sfreq"],
                      baseline=None, preload=False, verbose=False)
    expected = minnorm.apply_lcmv_epochs(few_epochs, ours, return_array=True)
    assert rel(minnorm.apply_lcmv_epochs(lazy, ours, return_array=True), expected) < 1e-10
    stcs = minnorm.apply_lcmv_epochs(lazy, ours, return_generator=True)
    assert rel(np.stack([s.data for s in stcs]), expected) < 1e-10


def test_raw_and_covariance_equal_mne(filters, epochs_meeg, data_cov):
    ref, ours, _ = filters("surf-meeg")
    raw = mne.io.RawArray(np.concatenate(epochs_meeg.get_data(), axis=-1), epochs_meeg.info,
                          verbose=False)
    stc_ref = mne.beamformer.apply_lcmv_raw(raw, ref, start=100, stop=700, verbose=False)
    stc = minnorm.apply_lcmv_raw(raw, ours, start=100, stop=700)
    assert rel(stc.data, stc_ref.data) < TOL and stc.tmin == stc_ref.tmin
    for name in ("surf-meeg", "surf-meeg-normal-ung-depth"):
        ref, ours, _ = filters(name)
        power_ref = mne.beamformer.apply_lcmv_cov(data_cov, ref, verbose=False)
        power = minnorm.apply_lcmv_cov(data_cov, ours)
        assert type(power) is type(power_ref) and rel(power.data, power_ref.data) < TOL


@pytest.mark.parametrize("name", ["surf-meeg", "surf-meeg-normal-ung-depth"])
def test_resolution_matrix_equals_mne(filters, request, name):
    ref, ours, info = filters(name)
    fwd = request.getfixturevalue(CONFIGS[name][0])
    resmat_ref = mne.beamformer.make_lcmv_resolution_matrix(ref, fwd, info)
    resmat = minnorm.make_lcmv_resolution_matrix(ours, fwd, info)
    assert rel(resmat, resmat_ref) < TOL
    if ours["pick_ori"] == "normal":  # PSFs of the beamformer, by the resolution functions
        psf = minnorm.get_point_spread(resmat, fwd["src"], [10, 700], mode=None)
        psf_ref = mne.minimum_norm.get_point_spread(resmat_ref, fwd["src"], [10, 700], mode=None)
        assert rel(psf.data, psf_ref.data) < TOL


def test_source_transformer_takes_a_filter(filters, few_epochs):
    ref, ours, _ = filters("surf-meeg-normal-ung-depth")
    expected = np.stack([s.data for s in mne.beamformer.apply_lcmv_epochs(few_epochs, ref,
                                                                          verbose=False)])
    for filt in (ours, ref):
        features = SourceTransformer(filt).fit_transform(few_epochs)
        assert rel(features, expected) < TOL
    rows = [few_epochs.ch_names.index(c) for c in ours["ch_names"]]
    averaged = SourceTransformer(ours, average_time=True).fit_transform(
        few_epochs.get_data()[:, rows])
    assert rel(averaged, expected.mean(axis=-1)) < TOL
    with pytest.raises(ValueError, match="pick_ori must be None with a beamformer"):
        SourceTransformer(ours, pick_ori="normal").fit(few_epochs)


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------

def test_files_go_both_ways_with_mne(filters, evoked_meeg, tmp_path):
    ref, ours, _ = filters("surf-eeg-adhoc")  # 60 channels: h5io writes each name apart
    ours.save(tmp_path / "ours-lcmv.h5")
    read_by_mne = mne.beamformer.read_beamformer(tmp_path / "ours-lcmv.h5")
    ref.save(tmp_path / "mne-lcmv.h5", verbose=False)
    read_by_us = minnorm.read_beamformer(tmp_path / "mne-lcmv.h5")
    assert isinstance(read_by_us, minnorm.Beamformer)
    stc_ref = mne.beamformer.apply_lcmv(evoked_meeg, ref, verbose=False)
    for filt in (read_by_mne, read_by_us):
        assert set(filt) == set(ref)
        assert rel(filt["weights"], ref["weights"]) < TOL
        assert isinstance(filt["data_cov"], mne.Covariance)
        assert rel(mne.beamformer.apply_lcmv(evoked_meeg, filt, verbose=False).data,
                   stc_ref.data) < TOL
        assert rel(minnorm.apply_lcmv(evoked_meeg, filt).data, stc_ref.data) < TOL
    with pytest.raises(FileExistsError, match="overwrite"):
        ours.save(tmp_path / "ours-lcmv.h5")
    ours.save(tmp_path / "ours-lcmv.h5", overwrite=True)
    with pytest.raises(FileNotFoundError, match="no beamformer file"):
        minnorm.read_beamformer(tmp_path / "missing-lcmv.h5")
