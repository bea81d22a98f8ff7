"""Complex data (Hilbert-transformed) give what MNE-Python gives, on every path.

MNE-Python applies the same kernel to complex data: ``pick_ori=None`` on a
free/loose operator returns the real norm √(Σ |x|²) over orientations,
"normal", "vector" and fixed operators return complex estimates, and dSPM /
sLORETA / eLORETA normalise them as real ones. Compared here on the real
sample recording (the "Left Auditory" evoked, 3 noisy epochs simulated from
it, 1 s of raw data), each after ``apply_hilbert``, with a loose surface
operator (template cortex, MEG+EEG) and a free volume one (MEG); eLORETA on
the volume grid with the magnetometers only (its fit is the slow part).
"""

import warnings

import mne
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import minnorm
from minnorm.engine import expand
from minnorm.inverse import stream as batch
from minnorm.io import read_estimates_array, write_source_estimate
from minnorm.teaching.parcellate import parcellate

LAMBDA2 = 1.0 / 9.0
TOL = {"MNE": 1e-6, "dSPM": 1e-6, "sLORETA": 1e-6, "eLORETA": 1e-3}
FLOAT32_TOL = 1e-5
N_EPOCHS = 3

pytestmark = pytest.mark.filterwarnings("error::numpy.exceptions.ComplexWarning")


def rel_err(ours, ref):
    return np.linalg.norm(ours - ref) / np.linalg.norm(ref)


def make_ops(info, fwd, noise_cov, **kw):
    """(MNE's, minnorm's) operator: minnorm's as MNE's InverseOperator, which MNE applies to
    the same estimates as its own (test_equivalence); the application is under test here."""
    op = minnorm.make_inverse_operator(info, fwd, noise_cov, depth=0.8, **kw)
    return op.to_mne(), op


@pytest.fixture(scope="module")
def surf_ops(evoked_meeg, fwd_surf_meeg, noise_cov):
    """Loose 0.2 operators on the template cortex, MEG+EEG."""
    return make_ops(evoked_meeg.info, fwd_surf_meeg, noise_cov, loose=0.2)


@pytest.fixture(scope="module")
def vol_ops(evoked_meeg, fwd_vol_meg, noise_cov):
    """Free operators on the 12 mm volume grid, MEG."""
    return make_ops(evoked_meeg.info, fwd_vol_meg, noise_cov, loose=1.0)


@pytest.fixture(scope="module")
def small_ops(evoked_meeg, fwd_vol_meg, noise_cov):
    """Free operators on the volume grid, magnetometers only: eLORETA's small case."""
    fwd = mne.pick_types_forward(fwd_vol_meg, meg="mag", eeg=False)
    return make_ops(evoked_meeg.info, fwd, noise_cov, loose=1.0)


def prepared(inv, nave, method):
    """MNE's operator prepared once for several calls (prepared=True)."""
    return mne.minimum_norm.prepare_inverse_operator(inv, nave, LAMBDA2, method, verbose=False)


@pytest.fixture(scope="module")
def ops(request):
    return request.getfixturevalue(f"{request.param}_ops")


@pytest.fixture(scope="module")
def evoked(evoked_meeg):
    return evoked_meeg.copy().apply_hilbert()


@pytest.fixture(scope="module")
def epochs(epochs_meeg):
    return epochs_meeg[:N_EPOCHS].apply_hilbert()


@pytest.fixture(scope="module")
def raw(raw_meeg):
    return raw_meeg.copy().apply_hilbert()


def expected_dtype(inv, pick_ori, real=np.float64):
    """MNE's: the norm over orientations is real, everything else complex."""
    free = inv["source_ori"] == mne.io.constants.FIFF.FIFFV_MNE_FREE_ORI
    return np.dtype(real) if free and pick_ori is None \
        else np.result_type(real, np.complex64)


# --------------------------------------------------------------------------- evoked


def pick_oris(op):
    return (None, "normal", "vector") if op.src.kind == "surface" else (None, "vector")


@pytest.mark.parametrize("ops", ["surf", "vol"], indirect=True)
@pytest.mark.parametrize("method", ["MNE", "dSPM", "sLORETA"])
def test_evoked_and_residual_equal_mne(ops, evoked, method):
    inv, op = ops
    prep = prepared(inv, evoked.nave, method)
    for pick_ori in pick_oris(op):
        ref, ref_res = mne.minimum_norm.apply_inverse(evoked, prep, LAMBDA2, method,
                                                      pick_ori=pick_ori, return_residual=True,
                                                      prepared=True, verbose=False)
        stc, res = minnorm.apply_inverse(evoked, op, LAMBDA2, method, pick_ori=pick_ori,
                                         return_residual=True, verbose=True)  # logs |x|²
        assert type(stc) is type(ref)
        assert stc.data.dtype == ref.data.dtype == expected_dtype(inv, pick_ori), pick_ori
        assert rel_err(stc.data, ref.data) < TOL[method], pick_ori
        assert res.data.dtype == ref_res.data.dtype
        assert rel_err(res.data, ref_res.data) < 1e-6


def test_eloreta_equals_mne(small_ops, evoked, epochs):
    """The small case (102 magnetometers, volume grid): evoked and the epochs array."""
    inv, op = small_ops
    prep = prepared(inv, evoked.nave, "eLORETA")
    for pick_ori in (None, "vector"):
        ref = mne.minimum_norm.apply_inverse(evoked, prep, LAMBDA2, "eLORETA", pick_ori=pick_ori,
                                             prepared=True, verbose=False)
        ours = minnorm.apply_inverse(evoked, op, LAMBDA2, "eLORETA", pick_ori=pick_ori)
        assert ours.data.dtype == ref.data.dtype == expected_dtype(inv, pick_ori)
        assert rel_err(ours.data, ref.data) < TOL["eLORETA"]
    nave = evoked.nave  # the same fitted weights (MNE fits them in every prepare)
    ref = np.array([s.data for s in mne.minimum_norm.apply_inverse_epochs(
        epochs, prep, LAMBDA2, "eLORETA", nave=nave, prepared=True, verbose=False)])
    arr = minnorm.apply_inverse_epochs(epochs, op, LAMBDA2, "eLORETA", nave=nave,
                                       return_array=True)
    assert arr.dtype == np.float64 and rel_err(arr, ref) < TOL["eLORETA"]


# --------------------------------------------------------------------------- epochs


def budget(op, inst, *, samples, n_times, **kw):
    """A max_memory that streams complex data of ``n_times`` samples in ``samples`` pieces."""
    kind = "epochs" if isinstance(inst, mne.BaseEpochs) else "raw"
    s = batch._setup(inst, kind, op, n_epochs=1, n_times=n_times, stream=True,
                     lambda2=LAMBDA2, nave=1, method_params=None, label=None, use_cps=True,
                     dtype="float64", max_memory=None, **kw)
    per_sample, tiles = expand.working_bytes(s.ex, n_times, M=len(s.rows), stream=True,
                                            complex_data=True)
    return tiles + per_sample * samples


def assemble_blocks(blocks, shape, dtype):
    out = np.full(shape, np.nan, dtype)
    for b in blocks:
        out[b.epochs, ..., b.times] = b.data
    assert not np.isnan(out).any()  # every value written
    return out


@pytest.mark.parametrize("ops,method,pick_ori", [
    ("surf", "dSPM", None), ("surf", "sLORETA", "normal"), ("vol", "sLORETA", None),
    ("vol", "MNE", "vector"),  # surface vectors: the evoked test (the same expansion)
], indirect=["ops"])
def test_epochs_every_path_equals_mne(ops, epochs, method, pick_ori, tmp_path):
    inv, op = ops
    ref = np.array([s.data for s in mne.minimum_norm.apply_inverse_epochs(
        epochs, inv, LAMBDA2, method, pick_ori=pick_ori, verbose=False)])
    assert ref.dtype == expected_dtype(inv, pick_ori)
    kw = dict(method=method, pick_ori=pick_ori)
    listed = minnorm.apply_inverse_epochs(epochs, op, LAMBDA2, **kw)
    assert rel_err(np.array([s.data for s in listed]), ref) < TOL[method]
    generated = minnorm.apply_inverse_epochs(epochs, op, LAMBDA2, return_generator=True, **kw)
    assert rel_err(next(generated).data, ref[0]) < TOL[method]
    arr = minnorm.apply_inverse_epochs(epochs, op, LAMBDA2, return_array=True, **kw)
    assert arr.dtype == ref.dtype and rel_err(arr, ref) < TOL[method]
    arr32 = minnorm.apply_inverse_epochs(epochs, op, LAMBDA2, return_array=True,
                                         dtype="float32", **kw)
    assert arr32.dtype == expected_dtype(inv, pick_ori, np.float32)
    assert rel_err(arr32, ref) < FLOAT32_TOL
    T = len(epochs.times)
    one_epoch = budget(op, epochs, samples=T, n_times=T, **kw)
    blocks = list(minnorm.iter_inverse_epochs(epochs, op, LAMBDA2, max_memory=one_epoch, **kw))
    assert len(blocks) == N_EPOCHS
    assert rel_err(assemble_blocks(blocks, ref.shape, ref.dtype), ref) < TOL[method]
    fname = minnorm.write_inverse_epochs(tmp_path / "est.h5", epochs, op, LAMBDA2,
                                         max_memory=one_epoch, **kw)
    with minnorm.read_source_array(fname) as f:
        assert f.data.dtype == ref.dtype
        np.testing.assert_allclose(f.data[1], arr[1], rtol=1e-12, atol=0)
    back = read_estimates_array(fname)
    assert rel_err(back.data, ref) < TOL[method]
    assert rel_err(back.to_mne()[2].data, ref[2]) < TOL[method]


def test_lazy_epochs_of_complex_raw_equal_mne(surf_ops, raw):
    inv, op = surf_ops
    events = np.array([[raw.first_samp + 30 + 80 * k, 0, 1] for k in range(3)])
    lazy = mne.Epochs(raw, events, tmin=0, tmax=0.2, baseline=None, preload=False,
                      verbose=False)
    ref = np.array([s.data for s in mne.minimum_norm.apply_inverse_epochs(
        lazy, inv, LAMBDA2, "dSPM", pick_ori="normal", verbose=False)])
    arr = minnorm.apply_inverse_epochs(lazy, op, LAMBDA2, "dSPM", pick_ori="normal",
                                       return_array=True)
    assert ref.dtype == arr.dtype == np.complex128
    assert rel_err(arr, ref) < 1e-6


# --------------------------------------------------------------------------- raw


@pytest.mark.parametrize("ops,pick_ori", [("surf", None), ("surf", "normal"), ("vol", "vector")],
                         indirect=["ops"])
def test_raw_every_path_equals_mne(ops, raw, pick_ori, tmp_path):
    inv, op = ops
    ref = mne.minimum_norm.apply_inverse_raw(raw, inv, LAMBDA2, "dSPM", start=10, stop=250,
                                             pick_ori=pick_ori, verbose=False).data
    assert ref.dtype == expected_dtype(inv, pick_ori)
    kw = dict(start=10, stop=250, pick_ori=pick_ori)
    for buffer_size in (None, 70):
        stc = minnorm.apply_inverse_raw(raw, op, LAMBDA2, "dSPM", buffer_size=buffer_size, **kw)
        assert stc.data.dtype == ref.dtype and rel_err(stc.data, ref) < 1e-6
    (whole,) = minnorm.iter_inverse_raw(raw, op, LAMBDA2, "dSPM", **kw)
    assert whole.data.dtype == ref.dtype and rel_err(whole.data, ref) < 1e-6
    pieces = budget(op, raw, samples=100, n_times=240, method="dSPM", pick_ori=pick_ori)
    blocks = list(minnorm.iter_inverse_raw(raw, op, LAMBDA2, "dSPM", max_memory=pieces, **kw))
    assert [b.data.shape[-1] for b in blocks] == [100, 100, 40]
    data = np.concatenate([b.data for b in blocks], axis=-1)
    assert data.dtype == ref.dtype and rel_err(data, ref) < 1e-6
    fname = minnorm.write_inverse_raw(tmp_path / "raw.h5", raw, op, LAMBDA2, "dSPM",
                                      max_memory=pieces, **kw)
    with minnorm.read_source_array(fname) as f:
        assert f.data.dtype == ref.dtype
        np.testing.assert_allclose(f.data[()], data, rtol=1e-12, atol=0)


# --------------------------------------------------------------------------- labels


@pytest.fixture(scope="module")
def labels(surf_ops, template_labels):
    """Two hemispheres (more sources than components: pca_flip's QR path) and the small
    auditory labels (and their BiHemiLabel)."""
    return parcellate(surf_ops[1].src, 2, seed=0) + template_labels[2:]


@pytest.fixture(scope="module")
def mne_epoch_stcs(surf_ops, epochs):
    cache = {}

    def get(pick_ori):
        if pick_ori not in cache:
            cache[pick_ori] = mne.minimum_norm.apply_inverse_epochs(
                epochs[:2], surf_ops[0], LAMBDA2, "dSPM", pick_ori=pick_ori, verbose=False)
        return cache[pick_ori]

    return get


def mne_extract(stcs, labels, src, mode):
    """One BLAS thread: MNE's SVDs per label crawl on a busy 2-core machine with two."""
    with threadpool_limits(1, user_api="blas"):
        return np.array(mne.extract_label_time_course(stcs, labels, src, mode=mode,
                                                      verbose=False))


@pytest.mark.parametrize("pick_ori", [None, "normal", "vector"])
def test_label_time_courses_equal_mne(surf_ops, labels, epochs, mne_epoch_stcs, pick_ori):
    inv, op = surf_ops
    modes = ("mean", "max") if pick_ori == "vector" else ("mean", "mean_flip", "pca_flip", "max")
    for mode in modes:
        ref = mne_extract(mne_epoch_stcs(pick_ori), labels, inv["src"], mode)
        ours = minnorm.extract_label_time_course(epochs[:2], op, labels, LAMBDA2, "dSPM",
                                                 mode=mode, pick_ori=pick_ori)
        assert ours.shape == ref.shape and ours.dtype == ref.dtype, mode  # max: complex |x|
        assert rel_err(ours, ref) < TOL["dSPM"], mode


def test_label_time_courses_evoked_and_raw_equal_mne(surf_ops, labels, evoked, raw):
    """pca_flip with fewer samples than rows (the other Gram matrix); raw in pieces."""
    inv, op = surf_ops
    short = evoked.copy().crop(0.05, 0.1)
    assert len(short.times) < len(labels[0].vertices)
    stc = mne.minimum_norm.apply_inverse(short, inv, LAMBDA2, "sLORETA", pick_ori="normal",
                                         verbose=False)
    ref = mne_extract(stc, labels, inv["src"], "pca_flip")
    ours = minnorm.extract_label_time_course(short, op, labels, LAMBDA2, "sLORETA",
                                             mode="pca_flip", pick_ori="normal")
    assert ours.dtype == np.complex128 and rel_err(ours, ref) < 1e-6
    stc = mne.minimum_norm.apply_inverse_raw(raw, inv, LAMBDA2, "dSPM", start=0, stop=200,
                                             pick_ori="normal", verbose=False)
    ref = mne_extract(stc, labels, inv["src"], "max")
    ours = minnorm.extract_label_time_course(raw, op, labels, LAMBDA2, "dSPM", mode="max",
                                             pick_ori="normal", start=0, stop=200,
                                             max_memory="2MB")
    assert ours.dtype == ref.dtype and rel_err(ours, ref) < 1e-6


# --------------------------------------------------------------------------- the core


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_expand_rows_on_complex_components(dtype):
    """The tiled expansion equals plain complex algebra: √Σ|x|² norms, and linear rows."""
    rng = np.random.default_rng(0)
    leads = rng.standard_normal((3 * 700, 40)).astype(dtype)  # two location tiles
    cdtype = np.result_type(dtype, np.complex64)
    Y = (rng.standard_normal((2, 40, 1100)) + 1j * rng.standard_normal((2, 40, 1100)))
    Y = Y.astype(cdtype)  # two time tiles
    full = np.matmul(leads.astype(np.float64), Y.astype(np.complex128))
    norms = np.sqrt((np.abs(full) ** 2).reshape(2, -1, 3, 1100).sum(axis=2))
    for group, expected, out_dtype in ((3, norms, dtype), (1, full, cdtype)):
        scale = rng.uniform(0.5, 2, len(leads) // group)
        out = expand.expand_rows(leads, Y, group=group, scale=scale)
        assert out.dtype == out_dtype, group
        tol = 1e-6 if dtype == np.float32 else 1e-12
        assert rel_err(out, scale[:, np.newaxis] * expected) < tol, group


# --------------------------------------------------------------------------- refusals, checks


def test_stc_files_refuse_complex_as_mne_does(surf_ops, evoked, tmp_path):
    _, op = surf_ops
    stc = minnorm.apply_inverse(evoked, op, LAMBDA2, pick_ori="normal")
    with pytest.raises(ValueError, match=r"cannot be saved in MNE's \.stc format.*ftype='h5'"):
        write_source_estimate(tmp_path / "x", stc)
    assert not list(tmp_path.iterdir())
    (path,) = write_source_estimate(tmp_path / "x", stc, ftype="h5")
    np.testing.assert_array_equal(mne.read_source_estimate(path).data, stc.data)
    norm = minnorm.apply_inverse(evoked, op, LAMBDA2)  # the norm is real: .stc is fine
    assert [p.suffix for p in write_source_estimate(tmp_path / "n", norm)] == [".stc", ".stc"]


def test_source_transformer_refuses_complex_epochs(surf_ops, epochs):
    from minnorm.decoding import SourceTransformer

    t = SourceTransformer(surf_ops[1], pick_ori="normal").fit(epochs)
    with pytest.raises(ValueError, match="Complex data not supported"):
        t.transform(epochs)


def test_data_checks_see_complex_values(surf_ops, evoked):
    """NaN in the imaginary part; wrong units judged from magnitudes; no false alarm."""
    _, op = surf_ops
    with warnings.catch_warnings():
        warnings.simplefilter("error", minnorm.MinnormWarning)
        minnorm.apply_inverse(evoked, op, LAMBDA2)  # plausible units: no warning
    bad = evoked.copy()
    bad.data[5, 7] = complex(bad.data[5, 7].real, np.nan)
    with pytest.raises(ValueError, match="NaN or Inf"):
        minnorm.apply_inverse(bad, op, LAMBDA2)
    scaled = evoked.copy()
    scaled.data[mne.pick_types(scaled.info, meg="mag")] *= 1e15  # T stored as fT
    with pytest.warns(minnorm.MinnormWarning, match="were they stored in fT"):
        minnorm.apply_inverse(scaled, op, LAMBDA2)
