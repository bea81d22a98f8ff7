"""Label time courses from the kernel equal mne.extract_label_time_course on full estimates.

Every mode (mean, mean_flip, pca_flip, max), pick_ori None / "normal" /
"vector", fixed orientation, Evoked, Epochs and Raw, on the real sample
recording with the template-cortex forward and a k-means parcellation of it.
"""

import mne
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import minnorm
from minnorm.inverse.labels import MODES
from minnorm.teaching.parcellate import parcellate

LAMBDA2 = 1.0 / 9.0
TOL = 1e-6


def rel_err(ours, ref):
    return np.linalg.norm(ours - ref) / np.linalg.norm(ref)


def mne_extract(stcs, labels, src, mode):
    """mne.extract_label_time_course, one BLAS thread (its many small SVDs crawl on a busy
    machine with two)."""
    with threadpool_limits(1, user_api="blas"):
        return np.array(mne.extract_label_time_course(stcs, labels, src, mode=mode,
                                                      verbose=False))


@pytest.fixture(scope="module")
def ops(operators):
    """(MNE operator, minnorm operator), loose 0.2 and depth 0.8 (the defaults), MEG+EEG:
    the session's "surf-meeg-loose" pair (conftest.operators)."""
    return operators("surf-meeg-loose")


@pytest.fixture(scope="module")
def labels(ops, template_labels):
    """12 k-means parcels (6 per hemisphere) and the auditory BiHemiLabel."""
    return parcellate(ops[1].src, 12, seed=0) + template_labels[2:]


@pytest.fixture(scope="module")
def mne_epoch_stcs(ops, epochs_meeg):
    """MNE's estimates of the first 4 epochs per pick_ori (computed once)."""
    cache = {}

    def get(pick_ori):
        if pick_ori not in cache:
            cache[pick_ori] = mne.minimum_norm.apply_inverse_epochs(
                epochs_meeg[:4], ops[0], LAMBDA2, "dSPM", pick_ori=pick_ori, verbose=False)
        return cache[pick_ori]

    return get


@pytest.mark.parametrize("pick_ori", [None, "normal"])
@pytest.mark.parametrize("mode", MODES)
def test_epochs_every_mode_equals_mne(ops, labels, epochs_meeg, mne_epoch_stcs, mode, pick_ori):
    inv, op = ops
    ref = mne_extract(mne_epoch_stcs(pick_ori), labels, inv["src"], mode)
    ours = minnorm.extract_label_time_course(epochs_meeg[:4], op, labels, LAMBDA2, "dSPM",
                                             mode=mode, pick_ori=pick_ori)
    assert ours.shape == ref.shape == (4, len(labels), len(epochs_meeg.times))
    assert rel_err(ours, ref) < TOL


@pytest.mark.parametrize("mode", ["mean", "max", "auto"])
def test_vector_equals_mne(ops, labels, epochs_meeg, mne_epoch_stcs, mode):
    inv, op = ops
    ref = mne_extract(mne_epoch_stcs("vector"), labels, inv["src"], mode)
    ours = minnorm.extract_label_time_course(epochs_meeg[:4], op, labels, LAMBDA2, "dSPM",
                                             mode=mode, pick_ori="vector")
    assert ours.shape == (4, len(labels), 3, len(epochs_meeg.times))
    assert rel_err(ours, ref) < TOL


@pytest.fixture(scope="module")
def fixed_ops(evoked_meeg, fwd_surf_meeg, noise_cov):
    """(MNE operator, minnorm operator), fixed orientation."""
    ref = mne.minimum_norm.make_inverse_operator(evoked_meeg.info, fwd_surf_meeg, noise_cov,
                                                 fixed=True, verbose=False)
    return ref, minnorm.make_inverse_operator(evoked_meeg.info, fwd_surf_meeg, noise_cov,
                                              fixed=True)


@pytest.mark.parametrize("method,mode", [("sLORETA", "pca_flip"), ("MNE", "mean_flip")])
def test_evoked_and_fixed_equal_mne(evoked_meeg, fixed_ops, labels, method, mode):
    inv, op = fixed_ops
    stc = mne.minimum_norm.apply_inverse(evoked_meeg, inv, LAMBDA2, method, verbose=False)
    ref = mne_extract(stc, labels, inv["src"], mode)
    ours = minnorm.extract_label_time_course(evoked_meeg, op, labels, LAMBDA2, method, mode=mode)
    assert ours.shape == ref.shape
    assert rel_err(ours, ref) < TOL


@pytest.mark.parametrize("mode", ["mean_flip", "pca_flip", "max"])
def test_raw_equals_mne(ops, labels, raw_meeg, mode):
    inv, op = ops
    stc = mne.minimum_norm.apply_inverse_raw(raw_meeg, inv, LAMBDA2, "dSPM", start=0, stop=200,
                                             pick_ori="normal", verbose=False)
    ref = mne_extract(stc, labels, inv["src"], mode)
    ours = minnorm.extract_label_time_course(raw_meeg, op, labels, LAMBDA2, "dSPM", mode=mode,
                                             pick_ori="normal", start=0, stop=200,
                                             max_memory="2MB")
    assert rel_err(ours, ref) < TOL


def test_empty_label(ops, labels, evoked_meeg):
    _, op = ops
    far = mne.Label(vertices=np.array([op.src[0]["np"] - 1]), hemi="lh", name="unused",
                    subject=op.src[0]["subject_his_id"])
    if far.vertices[0] in op.src[0]["vertno"]:
        pytest.skip("the last vertex is used by this source space")
    with pytest.raises(ValueError, match="does not contain any vertices for 1 label"):
        minnorm.extract_label_time_course(evoked_meeg, op, [far], LAMBDA2)
    out = minnorm.extract_label_time_course(evoked_meeg, op, [far, labels[0]], LAMBDA2,
                                            allow_empty="ignore")
    assert np.all(out[0] == 0) and np.any(out[1] != 0)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(mode="median"), ValueError, r"mode must be one of \['mean', 'mean_flip'"),
    (dict(mode="pca_flip", pick_ori="vector"), ValueError, "with pick_ori='vector'"),
])
def test_option_errors(ops, labels, evoked_meeg, kwargs, error, match):
    with pytest.raises(error, match=match):
        minnorm.extract_label_time_course(evoked_meeg, ops[1], labels, LAMBDA2, **kwargs)


def test_source_estimates_are_refused_with_a_pointer(ops, labels, evoked_meeg):
    stc = minnorm.apply_inverse(evoked_meeg, ops[1], LAMBDA2)
    with pytest.raises(TypeError, match="mne.extract_label_time_course"):
        minnorm.extract_label_time_course(stc, ops[1], labels)


def test_parcellation_covers_cortex_once(ops):
    src = ops[1].src
    labels = parcellate(src, 68, seed=0)
    assert len(labels) == 68 and {lab.hemi for lab in labels} == {"lh", "rh"}
    for hemi, s in zip(("lh", "rh"), src):
        verts = np.concatenate([lab.vertices for lab in labels if lab.hemi == hemi])
        np.testing.assert_array_equal(np.sort(verts), s["vertno"])  # disjoint and complete
    again = parcellate(src, 68, seed=0)
    assert all(np.array_equal(a.vertices, b.vertices) for a, b in zip(labels, again))
