"""The batched, streaming path (minnorm.inverse.stream) equals the per-epoch path and MNE-Python.

On the real sample recording (12 noisy epochs of the "Left Auditory" evoked,
366 MEG+EEG channels) with the template-cortex forward: one array for all
epochs, chunks of any size (1 epoch, a size that does not divide 12, pieces
of one epoch), float32, HDF5 round trips, the memory budget, and eLORETA's
cached and warm-started weights.
"""

import tracemalloc

import mne
import numpy as np
import pytest

import minnorm
from minnorm.engine import expand, linalg, memory
from minnorm.inverse import stream as batch
from minnorm.engine.linalg import svd_wide
from minnorm.engine.kernel import prepare_kernel

LAMBDA2 = 1.0 / 9.0
TOL = {"MNE": 1e-6, "dSPM": 1e-6, "sLORETA": 1e-6, "eLORETA": 1e-3}
FLOAT32_TOL = 1e-5


def rel_err(ours, ref):
    return np.linalg.norm(ours - ref) / np.linalg.norm(ref)


@pytest.fixture(scope="module")
def ops(operators):
    """(MNE operator, minnorm operator), loose 0.2 and depth 0.8 (the defaults) on the
    template cortex, MEG+EEG: the session's "surf-meeg-loose" pair (conftest.operators)."""
    return operators("surf-meeg-loose")


def mne_array(epochs, inv, method, pick_ori):
    stcs = mne.minimum_norm.apply_inverse_epochs(epochs, inv, LAMBDA2, method,
                                                 pick_ori=pick_ori, verbose=False)
    return np.array([s.data for s in stcs])


def budget_for(ex, n_times, *, M, epochs=None, samples=None):
    """The max_memory that plan_blocks turns into exactly ``epochs`` epochs (or ``samples``)."""
    size = ex.dtype.itemsize
    per_sample = 9 * M + (8 + size) * ex.n_components + size * ex.n_out
    tile = linalg.n_workers() * expand.LOC_TILE * 3 * min(n_times, expand.TIME_TILE) * size \
        if ex.group == 3 else 0
    return tile + per_sample * (n_times * epochs if samples is None else samples)


@pytest.mark.parametrize("method,pick_ori", [
    ("MNE", None), ("dSPM", None), ("dSPM", "normal"), ("dSPM", "vector"),
    ("sLORETA", "normal"), ("eLORETA", None),
])
def test_array_equals_mne_and_per_epoch(ops, epochs_meeg, method, pick_ori):
    inv, op = ops
    arr = minnorm.apply_inverse_epochs(epochs_meeg, op, LAMBDA2, method, pick_ori=pick_ori,
                                       return_array=True)
    per_epoch = np.array([s.data for s in minnorm.apply_inverse_epochs(
        epochs_meeg, op, LAMBDA2, method, pick_ori=pick_ori)])
    n_src = sum(len(s["vertno"]) for s in op.src)
    expected = (len(epochs_meeg), n_src, *((3,) if pick_ori == "vector" else ()),
                len(epochs_meeg.times))
    assert arr.shape == expected and arr.dtype == np.float64
    assert rel_err(arr, per_epoch) < 1e-12
    if method != "eLORETA":  # eLORETA vs MNE: test_eloreta_weights_cached_and_warm_started
        assert rel_err(arr, mne_array(epochs_meeg, inv, method, pick_ori)) < TOL[method]


def test_array_with_label_and_fixed(evoked_meeg, fwd_surf_meeg, noise_cov, epochs_meeg,
                                    template_labels):
    inv = mne.minimum_norm.make_inverse_operator(evoked_meeg.info, fwd_surf_meeg, noise_cov,
                                                 fixed=True, verbose=False)
    op = minnorm.make_inverse_operator(evoked_meeg.info, fwd_surf_meeg, noise_cov, fixed=True)
    for label in template_labels[2:]:  # the BiHemiLabel: both hemispheres
        ref = np.array([s.data for s in mne.minimum_norm.apply_inverse_epochs(
            epochs_meeg, inv, LAMBDA2, "sLORETA", label=label, verbose=False)])
        arr = minnorm.apply_inverse_epochs(epochs_meeg, op, LAMBDA2, "sLORETA", label=label,
                                           return_array=True)
        assert rel_err(arr, ref) < 1e-6


@pytest.mark.parametrize("pick_ori", [None, "vector"])
def test_chunks_of_any_size_equal_one_array(ops, epochs_meeg, pick_ori):
    _, op = ops
    whole = batch.apply_inverse_epochs_array(epochs_meeg, op, LAMBDA2, "dSPM", pick_ori=pick_ori)
    s = batch.epochs_setup(epochs_meeg, op, stream=True, lambda2=LAMBDA2, method="dSPM",
                            nave=1, method_params=None, label=None, pick_ori=pick_ori,
                            use_cps=True, dtype="float64", max_memory=None)
    T, M = len(epochs_meeg.times), len(s.rows)
    budgets = {"1 epoch": budget_for(s.ex, T, M=M, epochs=1),
               "5 epochs (12 = 5 + 5 + 2)": budget_for(s.ex, T, M=M, epochs=5),
               "100 samples of an epoch": budget_for(s.ex, T, M=M, samples=100)}
    for what, budget in budgets.items():
        blocks = list(minnorm.iter_inverse_epochs(epochs_meeg, op, LAMBDA2, "dSPM",
                                                  pick_ori=pick_ori, max_memory=budget))
        sizes = {(b.epochs.stop - b.epochs.start, b.times.stop - b.times.start) for b in blocks}
        if what.startswith("1 epoch"):
            assert sizes == {(1, T)}
        elif what.startswith("5"):
            assert sizes == {(5, T), (2, T)}
        else:
            assert sizes == {(1, 100), (1, T % 100)}
        out = np.full_like(whole, np.nan)
        for b in blocks:
            out[b.epochs, ..., b.times] = b.data
        assert not np.isnan(out).any(), what  # every value written once
        assert rel_err(out, whole) < 1e-13, what  # BLAS may round blocks differently
        # the array path with the same budget: same numbers
        arr = batch.apply_inverse_epochs_array(epochs_meeg, op, LAMBDA2, "dSPM",
                                               pick_ori=pick_ori, max_memory=budget)
        assert rel_err(arr, whole) < 1e-13, what


def test_float32_within_tolerance(ops, epochs_meeg):
    inv, op = ops
    ref = mne_array(epochs_meeg, inv, "dSPM", "normal")
    for pick_ori in (None, "normal"):
        arr32 = minnorm.apply_inverse_epochs(epochs_meeg, op, LAMBDA2, "dSPM",
                                             pick_ori=pick_ori, return_array=True,
                                             dtype="float32")
        arr64 = minnorm.apply_inverse_epochs(epochs_meeg, op, LAMBDA2, "dSPM",
                                             pick_ori=pick_ori, return_array=True)
        assert arr32.dtype == np.float32
        assert rel_err(arr32.astype(np.float64), arr64) < FLOAT32_TOL
    assert rel_err(arr32.astype(np.float64), ref) < FLOAT32_TOL


def test_epochs_file_reads_back_equal(ops, epochs_meeg, tmp_path):
    pytest.importorskip("h5py")
    _, op = ops
    whole = minnorm.apply_inverse_epochs(epochs_meeg, op, LAMBDA2, "dSPM", pick_ori="normal",
                                         return_array=True)
    fname = tmp_path / "epochs-src.h5"
    budget = 8 * 2**20
    minnorm.write_inverse_epochs(fname, epochs_meeg, op, LAMBDA2, "dSPM", pick_ori="normal",
                                 max_memory=budget)
    with minnorm.read_source_array(fname) as f:
        assert f.data.shape == whole.shape
        stored = f.data[()]
        # the file's numbers were computed again, in other blocks: BLAS rounding only
        np.testing.assert_allclose(stored, whole, rtol=1e-10, atol=1e-12 * np.abs(whole).max())
        np.testing.assert_array_equal(f.data[3], stored[3])  # lazy: one epoch
        for v_file, s in zip(f.vertices, op.src):
            np.testing.assert_array_equal(v_file, s["vertno"])
        np.testing.assert_allclose(f.times, epochs_meeg.times, atol=1e-12)
        assert f.attrs["method"] == "dSPM" and f.kind == "surface" and not f.vector
        np.testing.assert_array_equal(f.events, epochs_meeg.events)
    # one format: the command line's reader reads it too, into MNE estimates
    from minnorm.io import read_estimates_array

    array = read_estimates_array(fname)
    np.testing.assert_array_equal(array.data, stored)
    np.testing.assert_array_equal(array.events, epochs_meeg.events)
    stc = array.to_mne()[3]
    np.testing.assert_array_equal(stc.data, stored[3])
    np.testing.assert_allclose(stc.times, epochs_meeg.times, atol=1e-12)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        minnorm.write_inverse_epochs(fname, epochs_meeg, op, LAMBDA2, "dSPM")


def test_raw_stream_and_file_equal_mne(ops, raw_meeg, tmp_path):
    pytest.importorskip("h5py")
    inv, op = ops
    ref = mne.minimum_norm.apply_inverse_raw(raw_meeg, inv, LAMBDA2, "dSPM", start=10,
                                             stop=250, verbose=False)
    s, _, _ = batch.raw_setup(raw_meeg, op, 10, 250, lambda2=LAMBDA2, method="dSPM", nave=1,
                              method_params=None, label=None, pick_ori=None, use_cps=True,
                              dtype="float64", max_memory=None)
    budget = budget_for(s.ex, 240, M=len(s.rows), samples=100)  # whatever the BLAS threads
    blocks = list(minnorm.iter_inverse_raw(raw_meeg, op, LAMBDA2, "dSPM", start=10, stop=250,
                                           max_memory=budget))
    assert [b.times.stop - b.times.start for b in blocks] == [100, 100, 40]
    data = np.concatenate([b.data for b in blocks], axis=-1)
    assert rel_err(data, ref.data) < 1e-6
    fname = minnorm.write_inverse_raw(tmp_path / "raw-src.h5", raw_meeg, op, LAMBDA2, "dSPM",
                                      start=10, stop=250, max_memory="8MB")
    with minnorm.read_source_array(fname) as f:  # computed again for the file: BLAS rounding
        np.testing.assert_allclose(f.data[()], data, rtol=1e-10, atol=1e-12 * np.abs(data).max())
        assert f.tmin == pytest.approx(ref.tmin)
        assert f.events is None and not f.vector
    from minnorm.io import read_estimates_array

    with pytest.raises(ValueError, match="holds continuous data, not epochs"):
        read_estimates_array(fname)


def test_memory_budget_is_respected(ops, epochs_meeg, monkeypatch):
    _, op = ops
    budget = 12 * 2**20  # less than the 12 epochs' output (~21 MB) but several epochs
    # every array on numpy's allocator, which tracemalloc sees (large outputs are mmap'ed)
    monkeypatch.setattr(memory, "PLAIN_PAGES_BYTES", float("inf"))
    stream = minnorm.iter_inverse_epochs(epochs_meeg, op, LAMBDA2, "dSPM", max_memory=budget)
    tracemalloc.start()  # numpy reports its allocations to tracemalloc
    try:
        n = sum(len(range(*b.epochs.indices(10**9))) for b in stream if b.times.start == 0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == len(epochs_meeg)
    assert peak <= budget, f"peak {peak / 2**20:.1f} MiB > budget {budget / 2**20:.1f} MiB"


def test_budget_too_small_is_a_clear_error(ops, epochs_meeg):
    _, op = ops
    with pytest.raises(ValueError, match=r"max_memory=1000 bytes is too small"):
        minnorm.apply_inverse_epochs(epochs_meeg, op, LAMBDA2, return_array=True,
                                     max_memory=1000)


@pytest.mark.parametrize("value,expected", [(2**20, 2**20), ("2GiB", 2 * 2**30),
                                            ("500MB", 500 * 10**6), (None,
                                                                     expand.DEFAULT_MAX_MEMORY)])
def test_parse_memory(value, expected):
    assert expand.parse_memory(value) == expected


@pytest.mark.parametrize("kwargs,match", [
    (dict(return_array=True, dtype="float16"), "dtype must be 'float64' or 'float32'"),
    (dict(return_array=True, max_memory="lots"), "max_memory must be a number of bytes"),
    (dict(return_array=True, max_memory=-5), "max_memory must be a finite size of at least 1 byte"),
    (dict(dtype="float32"), "apply to return_array=True only"),
])
def test_option_errors(ops, epochs_meeg, kwargs, match):
    _, op = ops
    with pytest.raises(ValueError, match=match):
        minnorm.apply_inverse_epochs(epochs_meeg, op, LAMBDA2, **kwargs)


def test_eloreta_weights_cached_and_warm_started(ops, evoked_meeg):
    inv, op = ops
    fresh = op.replace()  # same operator, empty kernel cache
    first = prepare_kernel(fresh, lambda2=LAMBDA2, method="eLORETA")
    assert prepare_kernel(fresh, lambda2=LAMBDA2, method="eLORETA") is first
    # warm start: λ² = 1/8 starts from the cached 1/9 weights, ends where a cold start does
    warm = prepare_kernel(fresh, lambda2=1.0 / 8.0, method="eLORETA")
    cold8 = prepare_kernel(op.replace(), lambda2=1.0 / 8.0, method="eLORETA")
    W, W_cold = warm.eloreta_weights, cold8.eloreta_weights
    assert rel_err(W, W_cold) < 1e-4
    assert rel_err(warm.leads @ warm.fields, cold8.leads @ cold8.fields) < 1e-4
    # MNE-Python's weights fitted to a 1e-4 change, as conftest.prepared_eloreta explains
    prepared = mne.minimum_norm.prepare_inverse_operator(
        inv, evoked_meeg.nave, 1.0 / 8.0, "eLORETA", method_params=dict(eps=1e-4), verbose=False)
    ref = mne.minimum_norm.apply_inverse(evoked_meeg, prepared, 1.0 / 8.0, "eLORETA",
                                         prepared=True, verbose=False)
    ours = minnorm.apply_inverse(evoked_meeg, fresh, 1.0 / 8.0, "eLORETA")
    assert rel_err(ours.data, ref.data) < TOL["eLORETA"]


@pytest.mark.parametrize("shape,zero_rows", [((30, 400), []), ((30, 400), [3, 17]),
                                             ((30, 50), [])])
def test_svd_wide_equals_lapack(shape, zero_rows):
    rng = np.random.default_rng(0)
    G = rng.standard_normal(shape) * np.logspace(0, -4, shape[0])[:, np.newaxis]
    G[zero_rows] = 0
    U, s, Vt = svd_wide(G)
    s_ref = np.linalg.svd(G, compute_uv=False)
    r = shape[0] - len(zero_rows)
    np.testing.assert_allclose(s[:r], s_ref[:r], rtol=1e-9)
    np.testing.assert_allclose(s[r:], 0, atol=1e-12 * s_ref[0])
    np.testing.assert_allclose((U * s) @ Vt, G, atol=1e-12 * np.abs(G).max())
    np.testing.assert_allclose(U.T @ U, np.eye(len(s)), atol=1e-12)
    np.testing.assert_allclose(Vt[:r] @ Vt[:r].T, np.eye(r), atol=1e-8)
