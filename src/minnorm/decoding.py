"""Predicting from source space: scikit-learn on minimum-norm (or LCMV beamformer) estimates.

:class:`SourceTransformer` turns sensor epochs (n_epochs, n_channels, n_times)
into source features with the batched engine (no loop over epochs, bounded
memory), so a whole analysis is one pipeline::

    make_pipeline(SourceTransformer(inv, method="dSPM", pick_ori="normal",
                                    times=slice(140, 160), average_time=True),
                  StandardScaler(), LogisticRegression())

The exact fast path. The inverse is linear: with a linear read-out (fixed
or normal orientation, vector components, any per-source noise
normalisation) the source features are f = K x. A rotation-invariant linear
model (L2-penalised ridge, logistic regression, linear SVM) sees its data
only through inner products, and fᵀf' = xᵀ KᵀK x' = gᵀg' with
g = Σ Qᵀ x, K = P Σ Qᵀ its SVD. So training on the r ≤ n_channels features g
gives the same predictions as training on the n_sources features f, and the
source-space weights are w_f = P w_g. ``fast=True`` does that. It is not
exact with orientation norms (pick_ori=None on free/loose operators: not
linear), per-feature standardisation (StandardScaler rescales each source
differently), or L1/elastic-net penalties (not rotation invariant).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from . import _mne
from .beamformer.apply import filter_expander
from .beamformer.filter import as_filter
from .engine.expand import apply_array, make_expander
from .engine.memory import check_dtype, parse_memory
from .engine.kernel import check_method
from .engine.regularisation import lambda2_or_rule
from .inverse.labels import apply_plan, as_list, make_plan
from .inverse.setup import as_operator, prepare

__all__ = ["SourceTransformer", "TimeDecoding", "decode_over_time", "haufe_pattern"]


class SourceTransformer(TransformerMixin, BaseEstimator):
    """Sensor epochs → minimum-norm source features (a scikit-learn transformer).

    Parameters
    ----------
    inverse_operator : InverseOperator | mne.minimum_norm.InverseOperator | Beamformer
        An LCMV filter (``minnorm.make_lcmv``'s or MNE-Python's) gives beamformer
        features instead: the filter fixes the orientation and normalisation, so
        ``lambda2``, ``method``, ``nave``, ``pick_ori`` and ``labels`` are not used with it
        (``pick_ori`` and ``labels`` must be None).
    lambda2 : float | str
        Regularisation (1/SNR²; single trials are noisy: 1/SNR² with SNR ≈ 1),
        or a rule ("gcv", …, see :func:`minnorm.choose_lambda2`) applied in
        ``fit`` to the average of the epochs X (nave × their number).
    method : "MNE" | "dSPM" | "sLORETA" | "eLORETA"
    pick_ori : None | "normal" | "vector"
    labels : None | mne.Label | list of mne.Label
        Label time courses instead of sources: one feature per label (three,
        x, y, z, per label with ``pick_ori="vector"``), in the order given,
        computed from the kernel's rows for the labels without any full
        source estimate (as :func:`minnorm.extract_label_time_course`; equal
        to ``mne.extract_label_time_course`` on the estimates). Needs a
        surface source space.
    label_mode : "auto" | "mean" | "mean_flip" | "pca_flip" | "max"
        How a label's sources are combined; "auto": "mean_flip" ("mean" with
        ``pick_ori="vector"``). mean and mean_flip of a linear read-out are
        linear (one kernel row per label) and allow ``fast=True``; pca_flip
        and max are not.
    times : None | slice | array-like of int
        Samples to keep (None: all).
    average_time : bool
        Average over the kept samples → 2-D output (n_epochs, n_features),
        the shape classifiers expect; False keeps time → 3-D (for
        ``mne.decoding.SlidingEstimator``).
    fast : bool
        Output the r ≤ n_channels features g = Σ Qᵀ x that give a
        rotation-invariant linear model the same predictions as the source
        features (see the module doc); needs a linear read-out.
    ch_names : list of str | None
        Channels along axis 1 of array input (e.g. ``epochs.ch_names`` when
        passing ``epochs.get_data()``); the operator's channels are picked
        from them. None: the array holds exactly the operator's channels, in
        its order.
    nave : float
        Number of averages per epoch (1 for single trials).
    dtype : "float64" | "float32"
    max_memory : int | str | None
        Working-memory budget of the batched engine.

    Attributes
    ----------
    op_ : InverseOperator | Beamformer
    ch_names_ : tuple of str
        Channels expected on axis 1 of array input, in this order.
    lambda2_ : float
        The λ² used (the one chosen when ``lambda2`` is a rule).
    n_features_out_ : int
        Source features (sources, sources × 3 for vectors, or labels [× 3]);
        with ``fast=True`` the r ≤ n_channels reduced features.
    source_map_ : ndarray of shape (n_source_features, r) or None
        With ``fast=True``, P: source weights = ``source_map_ @ weights``.
    """

    def __init__(self, inverse_operator=None, *, lambda2=1.0 / 9.0, method="dSPM",
                 pick_ori=None, labels=None, label_mode="auto", times=None, average_time=False,
                 fast=False, ch_names=None, nave=1, dtype="float64", max_memory=None):
        self.inverse_operator = inverse_operator
        self.lambda2 = lambda2
        self.method = method
        self.pick_ori = pick_ori
        self.labels = labels
        self.label_mode = label_mode
        self.times = times
        self.average_time = average_time
        self.fast = fast
        self.ch_names = ch_names
        self.nave = nave
        self.dtype = dtype
        self.max_memory = max_memory

    def fit(self, X, y=None):
        """Validate the parameters and prepare the kernel (X is only checked)."""
        if self.inverse_operator is None:
            raise ValueError("SourceTransformer needs an inverse_operator: pass "
                             "SourceTransformer(minnorm.make_inverse_operator(...))")
        self.dtype_ = check_dtype(self.dtype)
        if _is_filter(self.inverse_operator):
            return self._fit_beamformer(X)
        lambda2 = lambda2_or_rule(self.lambda2)
        check_method(self.method)
        self.op_ = as_operator(self.inverse_operator)
        self._channels(self.op_.ch_names)
        data = None  # what a rule chooses λ² from: the epochs, in the operator's channels
        if isinstance(lambda2, str):
            data = X if _mne.data_kind(X) == "epochs" else self._array(X)[:, self._rows]
        setup = prepare(self.op_, lambda2=lambda2, method=self.method, nave=self.nave,
                        pick_ori=self.pick_ori, data=data)
        self.lambda2_ = setup.kernel.lambda2
        self.label_plan_ = None
        if self.labels is None:
            self.expander_ = make_expander(setup.kernel, setup.assembled, dtype=self.dtype_)
        else:  # the plan holds its own (float64) expander: label reductions run in float64
            self.label_plan_ = make_plan(setup, as_list(self.labels), mode=self.label_mode,
                                         allow_empty=False)
            self.expander_ = self.label_plan_.ex
        self.source_map_ = None
        if self.fast:
            self._fit_fast()
        self.n_features_out_ = (self.source_map_.shape[1] if self.fast
                                else self._n_label_features() if self.labels is not None
                                else self.expander_.n_out)
        if _mne.data_kind(X) == "epochs":  # checks shape and channels, copies nothing
            self._epoch_rows(X)
        else:
            self._array(X)
        return self

    def _channels(self, op_ch_names):
        """ch_names_ and the rows of array input that hold the operator's channels."""
        self.ch_names_ = op_ch_names if self.ch_names is None else list(self.ch_names)
        missing = sorted(set(op_ch_names) - set(self.ch_names_))
        if missing:
            raise ValueError(f"ch_names lacks {len(missing)} channels of the inverse operator "
                             f"({missing[:5]}…): give the names of the data's channels")
        self._rows = [self.ch_names_.index(c) for c in op_ch_names] \
            if self.ch_names is not None else slice(None)

    def _fit_beamformer(self, X):
        """Features from an LCMV filter: its weights after its whitener, batched as sources."""
        filters = as_filter(self.inverse_operator)
        for name, arg in (("pick_ori", "pick_ori"), ("labels", "label")):
            if getattr(self, name) is not None:
                raise ValueError(f"{name} must be None with a beamformer filter: the filter "
                                 f"sets it (make_lcmv(..., {arg}=...))")
        self.op_, self.lambda2_, self.label_plan_ = filters, None, None
        self._channels(tuple(filters["ch_names"]))
        fields = _mne.filter_fields(filters, None)  # arrays carry no projectors to check
        self.expander_ = filter_expander(filters, fields, dtype=self.dtype_)
        self.source_map_ = None
        if self.fast:
            self._fit_fast()
        self.n_features_out_ = self.source_map_.shape[1] if self.fast else self.expander_.n_out
        if _mne.data_kind(X) == "epochs":
            self._epoch_rows(X)
        else:
            self._array(X)
        return self

    def _epoch_rows(self, epochs) -> list:
        """Rows of mne.Epochs holding the operator's (or filter's) channels, checked."""
        if isinstance(self.op_, dict):
            rows = _mne.filter_channels(epochs.ch_names, self.op_)
            _mne.filter_fields(self.op_, epochs.info["projs"], epochs.info)
            return rows
        _mne.check_channels(self.op_, epochs.info)
        return _mne.pick_rows(epochs.ch_names, self.op_)

    def _n_label_features(self) -> int:
        plan = self.label_plan_
        return len(plan.labels) * int(np.prod(plan.per_label, dtype=int))

    def _fit_fast(self):
        """K = leads @ fields = P Σ Qᵀ, from a QR of the leads and a small SVD.

        Sources: K is the expander's (leads, fields); labels with a linear
        mode: K is the (n_labels × M) label kernel itself. (Not from the
        eigenvalues of KᵀK: with MEG and EEG together the singular values of
        K span many decades, which squaring would lose.)
        """
        plan = self.label_plan_
        if plan is not None:
            if plan.weights is None:
                raise ValueError(
                    f"fast=True is exact only for linear features, and label_mode="
                    f"{plan.mode!r} with pick_ori={self.pick_ori!r} is not linear: use "
                    "label_mode 'mean' or 'mean_flip' with pick_ori 'normal' or 'vector', "
                    "or fast=False")
            leads, fields = plan.weights, np.eye(plan.weights.shape[1])
        elif self.expander_.group != 1:
            raise ValueError(
                "fast=True is exact only for linear source features: use "
                'pick_ori="normal" or "vector", or a fixed-orientation operator')
        else:
            leads, fields = self.expander_.leads.astype(float), self.expander_.fields
        Q_leads, R = np.linalg.qr(leads)  # (n_rows, r), (r, r)
        U, sigma, Qt = np.linalg.svd(R @ fields, full_matrices=False)
        keep = sigma > sigma[0] * 1e-15 * len(sigma)
        self._reduce = sigma[keep, np.newaxis] * Qt[keep]  # Σ Qᵀ, (r, M)
        self.source_map_ = Q_leads @ U[:, keep]  # P, orthonormal columns

    def _data(self, X):
        """(n_epochs, M, n_kept_times) float array in the operator's channel order.

        The kept samples are selected before the channels, so the one copy
        made is of the kept samples only.
        """
        if _mne.data_kind(X) == "epochs":
            rows = self._epoch_rows(X)
            keep = slice(None) if self.times is None else self.times
            return _refuse_complex(np.concatenate([block[:, :, keep]
                                                   for block in _mne.epoch_blocks(X, rows, 256)]))
        X = self._array(X)
        if self.times is not None:
            X = X[:, :, self.times]
        return X if isinstance(self._rows, slice) else X[:, self._rows]

    def _array(self, X):
        """X as a checked (n_epochs, n_channels, n_times) float array (no copy if it is one)."""
        if sparse.issparse(X):
            raise TypeError("SourceTransformer does not support sparse input: pass a dense "
                            "array (n_epochs, n_channels[, n_times]) or mne.Epochs")
        X = _refuse_complex(np.asarray(X)).astype(float, copy=False)
        if X.ndim == 2:
            X = X[:, :, np.newaxis]
        if X.ndim != 3 or X.shape[1] != len(self.ch_names_):
            raise ValueError(
                f"X must be mne.Epochs or an array (n_epochs, {len(self.ch_names_)} channels"
                f"[, n_times]) with the channels of ch_names (default: the inverse operator's), "
                f"got shape {X.shape}")
        if not np.isfinite(X).all():
            raise ValueError("X contains NaN or infinity: remove or interpolate the bad "
                             "samples before source imaging")
        return X

    def transform(self, X):
        """Source features: (n_epochs, n_features[, n_times]).

        With ``average_time``, linear features (see ``fast``) are computed
        from the time-averaged sensor data (the same numbers, n_times fewer
        products); others are computed and averaged in blocks of epochs whose
        full time courses fit ``max_memory``, so the (n_epochs, n_features,
        n_times) array never exists.
        """
        check_is_fitted(self, "expander_")
        squeeze = _mne.data_kind(X) is None and np.ndim(X) == 2
        data = self._data(X)
        if self.average_time and self._linear():
            return self._features(data.mean(axis=-1, keepdims=True))[..., 0]
        if self.average_time:
            per_epoch = self.n_features_out_ * data.shape[-1] * self.dtype_.itemsize
            step = max(1, parse_memory(self.max_memory) // max(per_epoch, 1))
            blocks = [self._features(data[e:e + step]).mean(axis=-1)
                      for e in range(0, len(data), step)]
            return np.concatenate(blocks) if blocks else \
                np.zeros((0, self.n_features_out_), self.dtype_)
        out = self._features(data)
        return out[..., 0] if squeeze else out

    def _linear(self) -> bool:
        """Whether the features are linear in the data (averaging commutes with them)."""
        if self.fast:
            return True
        if self.label_plan_ is not None:
            return self.label_plan_.weights is not None
        return self.expander_.group == 1

    def _features(self, data):
        """(n, M, T) sensor data → (n, n_features, T)."""
        if self.fast:
            return np.matmul(self._reduce, data)
        if self.label_plan_ is not None:
            out = apply_plan(self.label_plan_, data, max_memory=self.max_memory)
            out = out.reshape(len(out), -1, out.shape[-1])  # vectors: (x, y, z) per label
            return out.astype(self.dtype_, copy=False)
        out = apply_array(self.expander_, data, max_memory=self.max_memory)
        return out.reshape(len(out), -1, out.shape[-1])  # vectors: (x, y, z) per source

    def source_weights(self, weights):
        """Source-space weights of a linear model fitted on ``fast`` features: P w."""
        check_is_fitted(self, "source_map_")
        if self.source_map_ is None:
            raise ValueError("source_weights needs fast=True")
        return self.source_map_ @ np.asarray(weights)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.requires_fit = True
        return tags


def _is_filter(obj) -> bool:
    """An LCMV filter (a Beamformer dict) rather than an inverse operator."""
    return isinstance(obj, dict) and "weights" in obj and "kind" in obj


def _refuse_complex(X):
    """X, unless complex: scikit-learn estimators take real features (sklearn's own message)."""
    if np.iscomplexobj(X):
        raise ValueError("Complex data not supported: pass real sensor data (not e.g. "
                         "Hilbert-transformed epochs)")
    return X


@dataclass(frozen=True)
class TimeDecoding:
    """Cross-validated decoding score at every time sample.

    Attributes
    ----------
    times : ndarray of shape (n_times,)
    scores : ndarray of shape (n_times,)
        Mean over folds.
    chance : float
    null : ndarray of shape (n_permutations, n_times)
        Scores with shuffled labels.
    """

    times: np.ndarray
    scores: np.ndarray
    chance: float
    null: np.ndarray

    def band(self, level: float = 0.95) -> tuple:
        """Lower and upper ``level`` quantiles of the permutation scores, per time."""
        lo, hi = np.quantile(self.null, [(1 - level) / 2, (1 + level) / 2], axis=0)
        return lo, hi


def decode_over_time(X, y, estimator, *, times, cv=5, n_permutations=20, seed=0,
                     scoring="accuracy", n_jobs=None) -> TimeDecoding:
    """Time-resolved decoding with a permutation band (mne.decoding.SlidingEstimator).

    Parameters
    ----------
    X : ndarray of shape (n_epochs, n_features, n_times)
    y : ndarray of shape (n_epochs,)
    estimator : scikit-learn estimator (fitted at each time sample)
    times : ndarray of shape (n_times,)
    cv : int or cross-validation generator
    n_permutations : int
        Label shufflings for the chance band.
    """
    from mne.decoding import SlidingEstimator, cross_val_multiscore

    slider = SlidingEstimator(estimator, scoring=scoring, n_jobs=n_jobs, verbose=False)
    scores = cross_val_multiscore(slider, X, y, cv=cv, verbose=False).mean(axis=0)
    rng = np.random.default_rng(seed)
    null = np.array([cross_val_multiscore(slider, X, rng.permutation(y), cv=cv,
                                          verbose=False).mean(axis=0)
                     for _ in range(n_permutations)])
    counts = np.unique(y, return_counts=True)[1]
    return TimeDecoding(np.asarray(times), scores, float(counts.max() / counts.sum()), null)


def haufe_pattern(X, weights) -> np.ndarray:
    """Activation pattern A = Cov(X) w / Var(X w) of a linear model (Haufe et al. 2014).

    Parameters
    ----------
    X : ndarray of shape (n_epochs, n_features)
    weights : ndarray of shape (n_features,) or (n_features, n_outputs)
    """
    Xc = X - X.mean(axis=0)
    w = np.asarray(weights, float).reshape(X.shape[1], -1)
    latent = Xc @ w
    cov_latent = np.atleast_2d(np.cov(latent, rowvar=False))
    A = (Xc.T @ latent / (len(X) - 1)) @ np.linalg.pinv(cov_latent)
    return A.ravel() if np.ndim(weights) == 1 else A
