"""Label time courses folded into the kernel: no full source estimate is made.

For a label with sources S (n of them), MNE's sign flips f (from the
surface normals) and source time courses x_k(t)::

    mean      : (1/n) Σ_k x_k(t)
    mean_flip : (1/n) Σ_k f_k x_k(t)
    max       : max_k |x_k(t)|
    pca_flip  : sign(u₁·f) · ‖X‖_F / √n · v₁ᵀ     (X = x_S, (n, T); X = U Σ Vᵀ)

exactly as ``mne.extract_label_time_course`` computes them from the full
estimates. Here the estimates stay low rank, x_k = ℓ_kᵀ Y with Y = fields @ b
(r × T, see :mod:`minnorm.engine.expand`):

* linear outputs (pick_ori "normal", fixed orientation, "vector"): mean and
  mean_flip are one kernel row per label, wᵀ = (1/n) Σ f_k ℓ_kᵀ fields, so all
  labels are one (n_labels × M) @ (M × T) product per epoch, from the sensors;
* pca_flip on linear outputs: X = L_S Y = Q (R Y) with L_S = Q R (when n > r),
  so X and B = R Y share Σ and V; v₁ comes from the top eigenpair of the
  small Gram matrix B Bᵀ (or Bᵀ B), ‖X‖_F = ‖B‖_F, and u₁·f = (Q ᵀf)·u_B;
* max, and every mode on norms (pick_ori None, free/loose): only the label's
  rows are expanded, tile by tile, and reduced at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import linalg

from .. import _log, _mne
from ..engine import expand as batch
from ..engine.linalg import real_matmul, run_parallel
from .setup import Setup, prepare
from .stream import checked_block, raw_span

__all__ = ["MODES", "extract_label_time_course", "make_plan", "apply_plan", "as_list"]

logger = logging.getLogger("minnorm")

MODES = ("mean", "mean_flip", "pca_flip", "max")
VECTOR_MODES = ("mean", "max")


@dataclass(frozen=True, eq=False)
class _Label:
    """One label's rows of the expander, prepared for its mode."""

    n: int  # sources in the label (0: empty)
    leads: np.ndarray | None  # (n·rows_per_source, r), noise norms folded in
    flip: np.ndarray | None  # (n,)
    base: np.ndarray | None = None  # pca_flip, linear: R of L_S = Q R, or L_S
    flip_q: np.ndarray | None = None  # Qᵀ f


@dataclass(frozen=True, eq=False)
class LabelPlan:
    mode: str
    ex: batch.Expander
    labels: list
    weights: np.ndarray | None  # linear mean / mean_flip: (n_labels·c, M), on the sensor data

    @property
    def per_label(self) -> tuple:
        """Output shape per label and time sample: () or (3,)."""
        return self.ex.out_shape[1:]


def extract_label_time_course(inst, inverse_operator, labels, lambda2=1.0 / 9.0,
                              method="dSPM", *, mode="auto", pick_ori=None, nave=None,
                              method_params=None, use_cps=True, allow_empty=False,
                              start=None, stop=None, max_memory=None, verbose=None):
    """Label time courses straight from sensor data (no full source estimate).

    Equal to ``mne.extract_label_time_course(stcs, labels, inv["src"], mode)``
    on the estimates of ``apply_inverse`` / ``apply_inverse_epochs`` /
    ``apply_inverse_raw`` with the same arguments, computed from the kernel's
    rows for the labels.

    Parameters
    ----------
    inst : mne.Evoked | mne.Epochs | mne.io.Raw
        The sensor data (minnorm works from the data, not from source estimates).
    inverse_operator : InverseOperator | mne.minimum_norm.InverseOperator
        On a surface source space.
    labels : mne.Label | mne.BiHemiLabel | list of them
    lambda2, method, pick_ori, method_params, use_cps
        As :func:`minnorm.apply_inverse`.
    mode : "mean" | "mean_flip" | "pca_flip" | "max" | "auto"
        "auto": "mean_flip", or "mean" for ``pick_ori="vector"`` (which
        allows "mean" and "max" only), as MNE.
    nave : float | None
        Noise-covariance scaling; None: ``evoked.nave`` for Evoked, 1 otherwise.
    allow_empty : bool | "ignore"
        A label without sources gives zeros (with a warning unless "ignore")
        instead of an error.
    start, stop : int | None
        Raw data only: the sample range, as :func:`minnorm.apply_inverse_raw`.
    max_memory : int | str | None
        Working memory (see :mod:`minnorm.engine.expand`).
    verbose : bool | str | int | None

    Returns
    -------
    label_tc : ndarray
        Evoked and Raw: (n_labels, n_times); Epochs: (n_epochs, n_labels,
        n_times); with ``pick_ori="vector"`` a 3 (x, y, z) before n_times.
    """
    kind = _mne.data_kind(inst)
    if kind is None:
        raise TypeError(
            f"inst must be an mne Evoked, Epochs or Raw (minnorm extracts label time courses "
            f"from sensor data), got {type(inst).__name__}; for source estimates use "
            "mne.extract_label_time_course")
    with _mne.log_level(verbose):
        nave = (inst.nave if kind == "evoked" else 1) if nave is None else nave
        s = prepare(inverse_operator, inst.info, ch_names=inst.ch_names, lambda2=lambda2,
                    method=method, nave=nave, method_params=method_params, pick_ori=pick_ori,
                    use_cps=use_cps, data=inst, span=(start, stop))
        plan = make_plan(s, as_list(labels), mode=mode, allow_empty=allow_empty)
        op, rows = s.op, s.rows
        if kind == "evoked":
            data = inst.data[rows]
            _mne.check_data(data, op, inst.info, nave=nave)
            return _apply_plan(plan, data[np.newaxis])[0]
        if kind == "epochs":
            return _epochs(plan, op, inst, rows, nave, max_memory)
        return _raw(plan, op, inst, rows, nave, start, stop, max_memory)


def as_list(labels) -> list:
    labels = [labels] if _mne.is_label(labels) else list(labels)
    if not labels:
        raise ValueError("labels is empty: give at least one mne.Label")
    return labels


def _check_mode(mode, vector: bool) -> str:
    allowed = VECTOR_MODES if vector else MODES
    if mode == "auto":
        return "mean" if vector else "mean_flip"
    if mode not in allowed:
        what = " with pick_ori='vector'" if vector else ""
        raise ValueError(f"mode must be one of {list(allowed) + ['auto']}{what}, got {mode!r}")
    return mode


def make_plan(s: Setup, labels, *, mode, allow_empty) -> LabelPlan:
    """Each label's rows of the setup's expander, prepared for ``mode``."""
    op = s.op
    if op.src.kind != "surface":
        raise ValueError(f"label time courses need a surface source space, got a "
                         f"{op.src.kind} one")
    ex = batch.make_expander(s.kernel, s.assembled)
    mode = _check_mode(mode, s.assembled.vector)
    rows_per_source = len(ex.leads) // ex.out_shape[0]
    prepared, empty = [], []
    for label in labels:
        if not _mne.is_label(label):
            raise TypeError(f"labels must be mne.Label or mne.BiHemiLabel, got "
                            f"{type(label).__name__}")
        prepared.append(_prepare_label(op, ex, label, mode, rows_per_source))
        if prepared[-1].n == 0:
            empty.append(_mne.label_name(label))
    _check_empty(empty, allow_empty)
    linear = ex.group == 1 and mode in ("mean", "mean_flip")
    weights = _label_weights(ex, prepared) @ ex.fields if linear else None
    logger.info("Label time courses: %d labels, mode %s%s", len(labels), mode,
                " (one kernel row per label)" if linear else "")
    return LabelPlan(mode=mode, ex=ex, labels=prepared, weights=weights)


def _check_empty(empty, allow_empty):
    if not empty:
        return
    msg = f"source space does not contain any vertices for {len(empty)} label(s): {empty}"
    if not allow_empty:
        raise ValueError(msg + " (pass allow_empty=True for zeros)")
    if allow_empty != "ignore":
        _log.warn(msg + "; assigning all-zero time series")


def _prepare_label(op, ex, label, mode, rows_per_source) -> _Label:
    try:
        _, sel = _mne.label_vertices(label, op.src)
    except ValueError:
        if not len(_label_sel(label, op.src)):
            return _Label(n=0, leads=None, flip=None)
        raise
    leads = np.ascontiguousarray(ex.leads[batch.source_rows(sel, rows_per_source)])
    flip = _mne.label_flip(label, op.src) if mode in ("mean_flip", "pca_flip") else None
    base, flip_q = None, None
    if mode == "pca_flip" and ex.group == 1:
        base, flip_q = leads, flip
        if len(sel) > leads.shape[1]:  # more sources than components: work in R of L = QR
            Q, base = np.linalg.qr(leads)
            flip_q = Q.T @ flip
    return _Label(n=len(sel), leads=leads, flip=flip, base=base, flip_q=flip_q)


def _label_sel(label, src):
    parts = [label.lh, label.rh] if label.hemi == "both" else [label]
    return np.concatenate([np.intersect1d(src[0 if p.hemi == "lh" else 1]["vertno"],
                                          p.vertices) for p in parts])


def _label_weights(ex, labels) -> np.ndarray:
    """One row per label (and component): (1/n) Σ f_k ℓ_k, shape (n_labels·c, r)."""
    c = int(np.prod(ex.out_shape[1:]))
    W = np.zeros((len(labels) * c, ex.leads.shape[1]))
    for i, lab in enumerate(labels):
        if lab.n:
            per = lab.leads.reshape(lab.n, c, -1)
            w = np.full(lab.n, 1.0 / lab.n) if lab.flip is None else lab.flip / lab.n
            W[i * c:(i + 1) * c] = np.einsum("k,kcr->cr", w, per)
    return W


# --------------------------------------------------------------------------- applying


def _apply_plan(plan: LabelPlan, data: np.ndarray) -> np.ndarray:
    """Label time courses of sensor data (n, M, T) → (n, n_labels, *per_label, T).

    In the estimates' dtype, as MNE: complex for complex data unless the
    estimates are norms (then max's |x| too is stored as complex).
    """
    n, _, T = data.shape
    if plan.weights is not None:  # one row per label: straight from the sensors
        return real_matmul(plan.weights, data).reshape(n, len(plan.labels), *plan.per_label, T)
    Y = batch.project(plan.ex, data)  # (n, r, T)
    out = np.zeros((n, len(plan.labels), *plan.per_label, T),
                   batch.out_dtype(plan.ex, np.iscomplexobj(Y)))

    def work(i):
        lab = plan.labels[i]
        if lab.n:
            for e in range(n):
                out[e, i] = _reduce(plan, lab, Y[e])

    run_parallel(work, range(len(plan.labels)))
    return out


def _reduce(plan: LabelPlan, lab: _Label, Y: np.ndarray) -> np.ndarray:
    """One label, one epoch: (r, T) components → (*per_label, T)."""
    if plan.mode == "pca_flip" and lab.base is not None:
        return _pca_flip(real_matmul(lab.base, Y), lab.flip_q, lab.n)
    X = batch.expand_rows(lab.leads, Y[np.newaxis], group=plan.ex.group)[0] \
        if plan.ex.group == 3 else real_matmul(lab.leads, Y)
    if plan.per_label:  # vector: (n, 3, T)
        X = X.reshape(lab.n, 3, -1)
    if plan.mode == "mean":
        return X.mean(axis=0)
    if plan.mode == "mean_flip":
        return (lab.flip[:, np.newaxis] * X).mean(axis=0)
    if plan.mode == "max":
        return np.abs(X).max(axis=0)
    return _pca_flip(X, lab.flip, lab.n)


def _pca_flip(B: np.ndarray, flip: np.ndarray, n: int) -> np.ndarray:
    """sign(u₁·f) ‖B‖_F/√n v₁ᴴ from the top eigenpair of B's smaller Gram matrix; B (m, T).

    For complex B (B = U Σ Vᴴ) as MNE on numpy ≥ 2: sign(z) = z/|z|, and
    the result does not depend on the phase of the singular vectors.
    """
    m, T = B.shape
    if m <= T:
        lam, u = linalg.eigh(B @ B.conj().T, subset_by_index=[m - 1, m - 1], driver="evr")
        s1, u = np.sqrt(max(lam[0], 0.0)), u[:, 0]
        if s1 == 0:
            return np.zeros(T, B.dtype)
        vh = (u.conj() @ B) / s1
    else:
        lam, v = linalg.eigh(B.conj().T @ B, subset_by_index=[T - 1, T - 1], driver="evr")
        s1, v = np.sqrt(max(lam[0], 0.0)), v[:, 0]
        if s1 == 0:
            return np.zeros(T, B.dtype)
        u, vh = (B @ v) / s1, v.conj()
    scale = np.linalg.norm(B) / np.sqrt(n)
    return np.sign(u @ flip) * scale * vh


def apply_plan(plan: LabelPlan, data: np.ndarray, *, max_memory=None) -> np.ndarray:
    """Label time courses of a sensor array (n, M, T), in blocks of epochs within max_memory."""
    n, M, T = data.shape
    if plan.weights is not None or n == 0:  # one (n_labels × M) product: nothing to bound
        return _apply_plan(plan, data)
    per_block, _ = batch.plan_blocks(plan.ex, n, T, M=M, stream=True, max_memory=max_memory,
                                     complex_data=np.iscomplexobj(data))
    per_block = max(per_block, 1)  # labels: one epoch's components always fit
    return np.concatenate([_apply_plan(plan, data[e:e + per_block])
                           for e in range(0, n, per_block)])


def _epochs(plan, op, epochs, rows, nave, max_memory):
    per_block, _ = batch.plan_blocks(plan.ex, _mne.epoch_count(epochs), len(epochs.times),
                                     M=len(rows), stream=True, max_memory=max_memory,
                                     complex_data=_mne.may_be_complex(epochs))
    per_block = max(per_block, 1)  # labels: one epoch's components always fit
    out, n = [], 0
    for block in _mne.epoch_blocks(epochs, rows, per_block):
        out.append(_apply_plan(plan, checked_block(block, op, epochs.info, nave, n == 0)))
        n += len(block)
    return np.concatenate(out) if out else np.zeros((0, len(plan.labels), *plan.per_label,
                                                     len(epochs.times)))


def _raw(plan, op, raw, rows, nave, start, stop, max_memory):
    start, stop = raw_span(raw, start, stop)
    if plan.mode == "pca_flip":  # needs the whole span at once (its components only)
        step = stop - start
    else:
        _, step = batch.plan_blocks(plan.ex, 1, stop - start, M=len(rows), stream=True,
                                    max_memory=max_memory,
                                    complex_data=_mne.may_be_complex(raw))
    out = None
    for t0 in range(start, stop, step):
        data = _mne.raw_segment(raw, rows, t0, min(t0 + step, stop))
        _mne.check_data(data, op, raw.info, nave=nave, units=t0 == start)
        tc = _apply_plan(plan, data[np.newaxis])[0]
        if out is None:  # real or complex: as the estimates
            out = np.zeros((len(plan.labels), *plan.per_label, stop - start), tc.dtype)
        out[..., t0 - start:t0 - start + data.shape[1]] = tc
    return out
