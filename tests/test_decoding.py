"""Source-space decoding: the transformer, scikit-learn conventions, the fast path."""

import os
import pickle
import stat

import mne
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_checks

from minnorm.decoding import SourceTransformer, haufe_pattern


@pytest.fixture(scope="module")
def op(operators):
    """minnorm's operator of the session's "surf-meeg-loose" pair (conftest.operators)."""
    return operators("surf-meeg-loose")[1]


@pytest.fixture(scope="module")
def labelled_epochs(epochs_meeg):
    """The 12 epochs with two classes (the second class weaker)."""
    epochs = epochs_meeg.copy()
    epochs._data[6:] *= 0.5
    return epochs, np.repeat([0, 1], 6)


@pytest.mark.parametrize("pick_ori", [None, "normal", "vector"])
def test_transform_equals_apply_inverse_epochs(op, labelled_epochs, pick_ori):
    epochs, _ = labelled_epochs
    ref_op = op.to_mne()
    ref = mne.minimum_norm.apply_inverse_epochs(epochs, ref_op, 1 / 9, "dSPM", pick_ori=pick_ori,
                                                verbose=False)
    ref = np.stack([stc.data for stc in ref])
    ref = ref.reshape(len(ref), -1, ref.shape[-1])
    out = SourceTransformer(op, lambda2=1 / 9, method="dSPM", pick_ori=pick_ori).fit_transform(epochs)
    assert out.shape == ref.shape
    assert np.linalg.norm(out - ref) / np.linalg.norm(ref) < 1e-6
    # an array in the operator's channel order gives the same
    rows = [epochs.ch_names.index(c) for c in op.ch_names]
    from_array = SourceTransformer(op, pick_ori=pick_ori).fit_transform(epochs.get_data()[:, rows])
    np.testing.assert_allclose(from_array, out, rtol=1e-12, atol=1e-12 * np.abs(out).max())


def test_time_selection_and_average(op, labelled_epochs):
    epochs, _ = labelled_epochs
    full = SourceTransformer(op, pick_ori="normal").fit_transform(epochs)
    part = SourceTransformer(op, pick_ori="normal", times=slice(100, 120),
                             average_time=True).fit_transform(epochs)
    expected = full[..., 100:120].mean(axis=-1)
    np.testing.assert_allclose(part, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())


def test_clone_and_pickle(op, labelled_epochs):
    epochs, _ = labelled_epochs
    t = SourceTransformer(op, lambda2=0.5, method="sLORETA", pick_ori="normal")
    c = clone(t)
    assert c.get_params()["lambda2"] == 0.5
    assert c.get_params()["inverse_operator"].ch_names == op.ch_names
    assert not hasattr(c, "expander_")
    t.fit(epochs)
    again = pickle.loads(pickle.dumps(t))
    out = t.transform(epochs)  # both transforms run the kernel through BLAS: its rounding only
    np.testing.assert_allclose(again.transform(epochs), out, rtol=1e-12,
                               atol=1e-12 * np.abs(out).max())


DATA_FREE_CHECKS = {"check_valid_tag_types", "check_estimator_repr",
                    "check_no_attributes_set_in_init", "check_estimators_unfitted",
                    "check_do_not_raise_errors_in_init_or_set_params", "check_mixin_order",
                    "check_transformers_unfitted", "check_parameters_default_constructible",
                    "check_get_params_invariance", "check_set_params", "check_fit1d"}


def _names_the_channels(exc) -> bool:
    """Whether an exception (or what caused it) is the 'X must have the operator's channels' one."""
    while exc is not None:
        if "channels of ch_names" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def test_every_applicable_sklearn_check_passes(op):
    """scikit-learn's generic checks: those that feed no data pass; the others feed 2-D
    arrays of a few arbitrary features, which a transformer bound to an inverse operator's
    channels must refuse, and they fail only on that refusal."""
    results = estimator_checks.check_estimator(SourceTransformer(op), on_fail=None,
                                               on_skip=None)
    status = {r["check_name"]: r["status"] for r in results}
    assert DATA_FREE_CHECKS <= {name for name, st in status.items() if st == "passed"}
    failed = [r for r in results if r["status"] == "failed"]
    not_about_channels = [r["check_name"] for r in failed
                          if not _names_the_channels(r["exception"])]
    assert not_about_channels == [], not_about_channels


def test_input_checks(op):
    t = SourceTransformer(op).fit(np.zeros((2, len(op.ch_names), 4)))
    bad = np.zeros((2, len(op.ch_names), 4))
    bad[1, 3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        t.transform(bad)
    with pytest.raises(ValueError, match="Complex data not supported"):
        t.transform(bad.astype(complex))
    from scipy import sparse

    with pytest.raises(TypeError, match="sparse input"):
        t.transform(sparse.csr_matrix(np.zeros((2, len(op.ch_names)))))


def test_bad_input_is_rejected(op):
    with pytest.raises(ValueError, match="inverse_operator"):
        SourceTransformer().fit(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="channels"):
        SourceTransformer(op).fit(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="lambda2"):
        SourceTransformer(op, lambda2=-1).fit(np.zeros((2, len(op.ch_names), 4)))
    with pytest.raises(ValueError, match="fast=True is exact only"):
        SourceTransformer(op, fast=True).fit(np.zeros((2, len(op.ch_names), 4)))


def test_pipeline_under_cross_validation(op, labelled_epochs):
    epochs, y = labelled_epochs
    pipe = make_pipeline(SourceTransformer(op, pick_ori="normal", times=slice(150, 200),
                                           average_time=True),
                         StandardScaler(), LogisticRegression())
    pipe[0].set_params(ch_names=epochs.ch_names)  # arrays: say which channels they hold
    scores = cross_val_score(pipe, epochs.get_data(), y, cv=3)
    assert scores.shape == (3,) and np.all((0 <= scores) & (scores <= 1))


def test_sliding_estimator_on_source_time_courses(op, labelled_epochs):
    from mne.decoding import SlidingEstimator, cross_val_multiscore

    epochs, y = labelled_epochs
    X = SourceTransformer(op, pick_ori="normal", times=slice(150, 156)).fit_transform(epochs)
    assert X.ndim == 3
    scores = cross_val_multiscore(SlidingEstimator(LogisticRegression()), X, y, cv=3)
    assert scores.shape == (3, 6)


@pytest.mark.parametrize("model", [LogisticRegression(C=0.3, tol=1e-10, max_iter=10_000),
                                   Ridge(alpha=3.0)])
def test_fast_path_gives_the_same_predictions(op, labelled_epochs, model):
    epochs, y = labelled_epochs
    kw = dict(pick_ori="normal", times=slice(150, 200), average_time=True)
    full = SourceTransformer(op, **kw).fit(epochs)
    fast = SourceTransformer(op, fast=True, **kw).fit(epochs)
    F, G = full.transform(epochs), fast.transform(epochs)
    assert G.shape[1] <= len(op.ch_names) < F.shape[1]
    np.testing.assert_allclose(G @ G.T, F @ F.T, rtol=1e-8, atol=1e-8 * np.abs(F @ F.T).max())
    target = y if isinstance(model, LogisticRegression) else y.astype(float)
    m_full, m_fast = clone(model).fit(F, target), clone(model).fit(G, target)
    pred_full = m_full.decision_function(F) if hasattr(m_full, "decision_function") else m_full.predict(F)
    pred_fast = m_fast.decision_function(G) if hasattr(m_fast, "decision_function") else m_fast.predict(G)
    np.testing.assert_allclose(pred_fast, pred_full, rtol=1e-5, atol=1e-6 * np.abs(pred_full).max())
    np.testing.assert_allclose(fast.source_weights(m_fast.coef_.ravel()), m_full.coef_.ravel(),
                               rtol=1e-4, atol=1e-5 * np.abs(m_full.coef_).max())


def _small_budget(epochs) -> int:
    """Working memory for the orientation-norm tiles and a few epochs' components only."""
    from minnorm.engine import expand, linalg

    tiles = linalg.n_workers() * expand.LOC_TILE * 3 * len(epochs.times) * 8
    return tiles + 4_000_000


@pytest.fixture(scope="module")
def labels(op):
    from minnorm.teaching.parcellate import parcellate

    return parcellate(op.src, 8, seed=0)


@pytest.mark.parametrize("pick_ori, mode", [("normal", "mean"), ("normal", "mean_flip"),
                                            ("normal", "pca_flip"), ("normal", "max"),
                                            (None, "mean_flip"), ("vector", "mean")])
def test_label_features_equal_mne_label_time_courses(op, labelled_epochs, labels, pick_ori,
                                                     mode):
    epochs, _ = labelled_epochs
    stcs = mne.minimum_norm.apply_inverse_epochs(epochs, op.to_mne(), 1 / 9, "dSPM",
                                                 pick_ori=pick_ori, verbose=False)
    ref = np.array(mne.extract_label_time_course(stcs, labels, op.src, mode=mode,
                                                 verbose=False))
    ref = ref.reshape(len(ref), -1, ref.shape[-1])  # vectors: (x, y, z) per label
    t = SourceTransformer(op, pick_ori=pick_ori, labels=labels, label_mode=mode).fit(epochs)
    out = t.transform(epochs)
    assert out.shape == ref.shape and t.n_features_out_ == ref.shape[1]
    assert np.linalg.norm(out - ref) / np.linalg.norm(ref) < 1e-6
    # bounded memory: a budget of a few epochs' components gives the same
    small = clone(t).set_params(max_memory=_small_budget(epochs)).fit(epochs).transform(epochs)
    np.testing.assert_allclose(small, out, rtol=1e-10, atol=1e-12 * np.abs(out).max())


def test_label_features_fast_path_and_its_limits(op, labelled_epochs, labels):
    epochs, y = labelled_epochs
    kw = dict(pick_ori="normal", labels=labels, times=slice(150, 200), average_time=True)
    F = SourceTransformer(op, **kw).fit_transform(epochs)
    fast = SourceTransformer(op, fast=True, **kw).fit(epochs)
    G = fast.transform(epochs)
    assert G.shape[1] <= len(labels)
    np.testing.assert_allclose(G @ G.T, F @ F.T, rtol=1e-8, atol=1e-8 * np.abs(F @ F.T).max())
    np.testing.assert_allclose(fast.source_weights(G.T @ y / len(y)), F.T @ y / len(y),
                               rtol=1e-8, atol=1e-10 * np.abs(F).max())
    for bad in (dict(label_mode="pca_flip"), dict(label_mode="max"), dict(pick_ori=None)):
        with pytest.raises(ValueError, match="fast=True is exact only for linear"):
            SourceTransformer(op, fast=True, **{**kw, **bad}).fit(epochs)
    with pytest.raises(ValueError, match="mode must be one of"):
        SourceTransformer(op, labels=labels, label_mode="median").fit(epochs)
    # clone and pickle keep the labels
    again = pickle.loads(pickle.dumps(clone(SourceTransformer(op, **kw)).fit(epochs)))
    np.testing.assert_allclose(again.transform(epochs), F, rtol=1e-12,  # computed again
                               atol=1e-12 * np.abs(F).max())


def test_haufe_pattern_recovers_the_generating_direction():
    rng = np.random.default_rng(0)
    a = np.array([1.0, 0.0, 0.0])  # the signal lives in feature 0 …
    s = rng.standard_normal(500)
    noise = rng.standard_normal((500, 1))
    X = np.outer(s, a) + np.hstack([noise, noise, rng.standard_normal((500, 1))]) * 0.5
    w = np.linalg.lstsq(X, s, rcond=None)[0]  # … but the filter uses feature 1 to cancel noise
    assert abs(w[1]) > 0.3
    A = haufe_pattern(X, w)
    assert np.argmax(np.abs(A)) == 0 and abs(A[1]) < 0.2 * abs(A[0]) + 0.3


def test_decode_demo_reads_out_the_late_source_only(tmp_path, cache_dir, monkeypatch):
    from minnorm.teaching.decode_demo import WINDOW, run_decode_demo

    monkeypatch.setenv("MINNORM_CACHE_DIR", str(cache_dir))
    r = run_decode_demo(out=tmp_path, n_epochs=100, n_permutations=1, cv=3, progress=False,
                        echo=lambda *a: None)  # each permutation: 2 × 3 × 61 more Ridge fits
    t = r.times
    before, inside = t < 0.05, (t >= WINDOW[0]) & (t <= WINDOW[1])
    for dec in (r.sensor, r.source):
        assert dec.chance == pytest.approx(1 / 3, abs=0.01)
        assert dec.scores[before].mean() < dec.chance + 0.08  # chance before the window
        assert dec.scores[inside].mean() > dec.chance + 0.12  # well above inside it
        assert dec.null.shape == (1, len(t))
    assert r.pattern_peak_mm < 25  # the pattern peaks at the graded source
    page = r.report.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 2
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(r.report.stat().st_mode) == 0o666 & ~umask  # not a temporary's 0600


@pytest.mark.parametrize("pick_ori, labels_on", [("normal", False), (None, False),
                                                 (None, True), ("normal", True)])
def test_time_average_in_bounded_blocks(op, labelled_epochs, labels, pick_ori, labels_on):
    """Linear features average the data first; norms average block by block: same numbers."""
    epochs, _ = labelled_epochs
    kw = dict(pick_ori=pick_ori, labels=labels if labels_on else None, times=slice(150, 250))
    full = SourceTransformer(op, **kw).fit_transform(epochs).mean(axis=-1)
    t = SourceTransformer(op, average_time=True, max_memory=_small_budget(epochs), **kw)
    t.fit(epochs)
    np.testing.assert_allclose(t.transform(epochs), full, rtol=1e-9,
                               atol=1e-12 * np.abs(full).max())
