"""Applying a kernel to data: evoked, epochs, raw and plain arrays.

    ŝ(t) = leads @ (fields @ b(t))          # low rank: r ≤ M components in between

then, for free orientations, the norm over the three components (pick_ori
None), and the noise normalisation (dSPM, sLORETA).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .. import _log
from .. import _mne
from ..engine.linalg import real_matmul
from ..engine.kernel import Kernel, prepare_kernel
from .operator import InverseOperator
from ..engine.priors import surface_frames

__all__ = [
    "Assembled",
    "assemble",
    "apply_assembled",
    "apply_inverse",
    "apply_inverse_epochs",
    "apply_inverse_raw",
]

logger = logging.getLogger("minnorm")

PickOri = Literal[None, "normal", "vector"]


@dataclass(frozen=True, eq=False)
class Assembled:
    """A kernel restricted to a label and an orientation choice.

    Attributes
    ----------
    leads : ndarray of shape (n_out_rows, r)
    fields : ndarray of shape (r, M)
    noise_norm : ndarray of shape (n_locations,) or None
    vertices : list of ndarray
        Vertex numbers of the output, per source space.
    source_nn : ndarray
        Orientation of each row (for vector output).
    combine : bool
        Norm over each location's 3 rows (free orientation, pick_ori None).
    vector : bool
        Keep 3 rows per location (pick_ori "vector").
    """

    leads: np.ndarray
    fields: np.ndarray
    noise_norm: np.ndarray | None
    vertices: list
    source_nn: np.ndarray
    combine: bool
    vector: bool

    @property
    def kernel_matrix(self) -> np.ndarray:
        """The dense kernel K = leads @ fields, shape (n_out_rows, M)."""
        return self.leads @ self.fields


def check_pick_ori(pick_ori, op: InverseOperator):
    """None, "normal" (free/loose surface operators) or "vector"."""
    if pick_ori not in (None, "normal", "vector"):
        raise ValueError(f'pick_ori must be None, "normal" or "vector", got {pick_ori!r}')
    if pick_ori == "normal" and op.src.kind not in ("surface", "discrete"):
        raise ValueError(
            f'pick_ori="normal" needs surface normals, but the source space is '
            f"{op.src.kind}: use pick_ori=None or \"vector\""
        )


def assemble(op: InverseOperator, kernel: Kernel, *, label=None, pick_ori: PickOri = None,
             use_cps: bool = True) -> Assembled:
    """Restrict ``kernel`` to ``label`` and apply the orientation choice."""
    check_pick_ori(pick_ori, op)
    leads, noise_norm, nn = kernel.leads, kernel.noise_norm, op.source_nn
    vertno = _mne.vertices(op.src)
    if label is not None:
        vertno, sel = _mne.label_vertices(label, op.src, op.mne.mri_head_t)
        if noise_norm is not None:
            noise_norm = noise_norm[sel]
        rows = (3 * sel[:, np.newaxis] + np.arange(3)).ravel() if op.n_orient == 3 else sel
        leads, nn = leads[rows], nn[rows]
    if pick_ori == "normal":
        if op.source_ori != "free" or not op.is_loose:
            raise ValueError(
                'pick_ori="normal" needs a free or loose orientation operator; this '
                "one is fixed: its estimates are already normal (use pick_ori=None)"
            )
        if op.src.kind == "surface" and _is_cartesian(op):
            leads, nn = _rotate_to_surface(op, leads, vertno, use_cps)
        leads, nn = leads[2::3], nn[2::3]
    free = op.source_ori == "free" and pick_ori != "normal"
    return Assembled(
        leads=leads, fields=kernel.fields, noise_norm=noise_norm, vertices=vertno,
        source_nn=nn, combine=free and pick_ori != "vector", vector=pick_ori == "vector",
    )


def _is_cartesian(op) -> bool:
    frames = op.source_nn.reshape(op.n_sources, 3, 3)
    return bool(np.allclose(frames, np.eye(3), atol=1e-6))


def _rotate_to_surface(op, leads, vertno, use_cps):
    """Rotate x, y, z rows of a cartesian operator into (t₁, t₂, n) frames."""
    normals = []
    for s, v, nn in zip(op.src, vertno, _mne._normals(op.src, use_cps)):
        normals.append(nn[np.searchsorted(s["vertno"], v)])
    frames = surface_frames(np.concatenate(normals))  # (n, 3, 3)
    rotated = np.matmul(frames, leads.reshape(-1, 3, leads.shape[1]))
    return rotated.reshape(leads.shape), frames.reshape(-1, 3)


def apply_assembled(a: Assembled, data: np.ndarray) -> np.ndarray:
    """Source time courses from sensor data.

    Parameters
    ----------
    a : Assembled
    data : ndarray of shape (M, n_times)
        Sensor data in the operator's channel order, real or complex (e.g.
        after ``apply_hilbert``).

    Returns
    -------
    sol : ndarray of shape (n_out_rows or n_locations, n_times)
        Complex for complex data, except the norm over orientations
        (``a.combine``), which is real: √(Σ |x|²), as MNE-Python.
    """
    from .stream import expand_rows  # tiled on every core, the norm fused (no import cycle)

    norm = a.noise_norm
    if norm is not None and a.vector and len(a.leads) != len(norm):
        norm = np.repeat(norm, 3)
    Y = real_matmul(a.fields, data)[np.newaxis]  # (1, r, n_times): the whitened components
    return expand_rows(a.leads, Y, group=3 if a.combine else 1, scale=norm)[0]


def _as_operator(inverse_operator) -> InverseOperator:
    if isinstance(inverse_operator, InverseOperator):
        return inverse_operator
    return InverseOperator.from_mne(inverse_operator)


def _prepare(inst_info, inverse_operator, lambda2, method, nave, method_params,
             label, pick_ori, use_cps):
    op = _as_operator(inverse_operator)
    _mne.check_channels(op, inst_info)
    kernel = prepare_kernel(op, lambda2=lambda2, method=method, nave=nave,
                            method_params=method_params)
    return op, kernel, assemble(op, kernel, label=label, pick_ori=pick_ori, use_cps=use_cps)


def apply_inverse(evoked, inverse_operator, lambda2=1.0 / 9.0, method="dSPM",
                  pick_ori=None, prepared=False, label=None, method_params=None,
                  return_residual=False, use_cps=True, verbose=None):
    """Source estimate of an Evoked, as ``mne.minimum_norm.apply_inverse``.

    Parameters
    ----------
    evoked : mne.Evoked
        The noise covariance is divided by ``evoked.nave``.
    inverse_operator : InverseOperator | mne.minimum_norm.InverseOperator
    lambda2 : float
        Regularisation λ² > 0 (1/SNR²; default 1/9 for SNR = 3).
    method : "MNE" | "dSPM" | "sLORETA" | "eLORETA"
    pick_ori : None | "normal" | "vector"
        None: norm over orientations (free/loose); "normal": the component
        normal to the cortex; "vector": all three, as x, y, z.
    prepared : bool
        Accepted for compatibility; minnorm prepares and caches by itself.
    label : mne.Label | mne.BiHemiLabel | None
        Restrict the output to the label's sources.
    method_params : dict | None
        eLORETA options ``eps`` (1e-6), ``max_iter`` (20), ``force_equal`` (False).
    return_residual : bool
        Also return evoked minus the data the estimate explains.
    use_cps : bool
        Patch-statistics normals when rotating a cartesian operator (pick_ori "normal").
    verbose : bool | str | int | None

    Returns
    -------
    stc : SourceEstimate | VectorSourceEstimate | VolSourceEstimate | ...
    residual : mne.Evoked
        Only if ``return_residual``.
    """
    with _mne.log_level(verbose):
        _mne.check_instance(evoked, "evoked")
        op, kernel, a = _prepare(evoked.info, inverse_operator, lambda2, method,
                                 evoked.nave, method_params, label, pick_ori, use_cps)
        rows = _mne.pick_rows(evoked.ch_names, op)
        data = evoked.data[rows]
        _mne.check_data(data, op, evoked.info, nave=evoked.nave)
        sol = apply_assembled(a, data)
        stc = _mne.make_stc(sol, a.vertices, src=op.src, tmin=float(evoked.times[0]),
                            tstep=1.0 / evoked.info["sfreq"], vector=a.vector,
                            source_nn=a.source_nn)
        estimate = kernel.estimate_data(data)
        _log_explained(kernel, data, estimate)
        if return_residual:
            return stc, _mne.residual_evoked(evoked, rows, estimate)
        return stc


def _log_explained(kernel, data, estimate):
    if logger.isEnabledFor(logging.INFO):
        white = kernel.whitener.matrix @ kernel.whitener.proj
        data_w, res_w = white @ data, white @ (data - estimate)
        explained = 1 - np.vdot(res_w, res_w).real / np.vdot(data_w, data_w).real  # |x|²
        logger.info("Explained %5.1f%% variance", 100 * explained)


def apply_inverse_epochs(epochs, inverse_operator, lambda2, method="dSPM", label=None,
                         nave=1, pick_ori=None, return_generator=False, prepared=False,
                         method_params=None, use_cps=True, verbose=None, *,
                         return_array=False, dtype="float64", max_memory=None):
    """Source estimates of every epoch, as ``mne.minimum_norm.apply_inverse_epochs``.

    Returns a list of source estimates (or a generator with
    ``return_generator=True``). ``nave`` scales the noise covariance (default 1).
    Other parameters as :func:`apply_inverse`.

    With ``return_array=True``, one ndarray of shape (n_epochs, n_sources,
    n_times) — (n_epochs, n_sources, 3, n_times) for ``pick_ori="vector"`` —
    computed in a few large matrix products (:mod:`minnorm.batch`); with
    ``return_generator=True`` as well, a generator of :class:`minnorm.batch.Block`
    whose size ``max_memory`` bounds. ``dtype="float32"`` halves memory and
    time (relative error ~1e-6); complex epochs give complex64/complex128
    (real norms with pick_ori None on a free/loose operator). ``max_memory``
    (bytes or '2GiB', default 1 GiB) bounds the working memory beyond the
    returned array.
    """
    if return_array:
        from . import stream as batch

        run = batch.iter_inverse_epochs if return_generator else batch.apply_inverse_epochs_array
        return run(epochs, inverse_operator, lambda2, method, label=label, nave=nave,
                   pick_ori=pick_ori, method_params=method_params, use_cps=use_cps,
                   dtype=dtype, max_memory=max_memory, verbose=verbose)
    if dtype not in ("float64", np.float64) or max_memory is not None:
        raise ValueError("dtype and max_memory apply to return_array=True only: source "
                         "estimates are float64, one per epoch")
    with _mne.log_level(verbose):
        _mne.check_instance(epochs, "epochs")
        op, kernel, a = _prepare(epochs.info, inverse_operator, lambda2, method, nave,
                                 method_params, label, pick_ori, use_cps)
    rows = _mne.pick_rows(epochs.ch_names, op)
    tmin, tstep = float(epochs.times[0]), 1.0 / epochs.info["sfreq"]

    def generate():
        epochs_iter = _log.progress(_mne.iter_epochs(epochs), total=len(epochs.events),
                                    desc=f"{kernel.method} on epochs", unit="epoch")
        for k, data in enumerate(epochs_iter):
            data = data[rows]
            _mne.check_data(data, op, epochs.info, nave=nave, units=k == 0)
            yield _mne.make_stc(apply_assembled(a, data), a.vertices, src=op.src,
                                tmin=tmin, tstep=tstep, vector=a.vector,
                                source_nn=a.source_nn)

    return generate() if return_generator else list(generate())


def apply_inverse_raw(raw, inverse_operator, lambda2, method="dSPM", label=None,
                      start=None, stop=None, nave=1, time_func=None, pick_ori=None,
                      buffer_size=None, prepared=False, method_params=None,
                      use_cps=True, verbose=None):
    """Source estimate of continuous data, as ``mne.minimum_norm.apply_inverse_raw``.

    ``start``/``stop`` are sample indices; ``time_func`` is applied to the
    sensor data first; ``buffer_size`` (samples) bounds the memory used while
    combining orientations. Other parameters as :func:`apply_inverse`.
    """
    with _mne.log_level(verbose):
        _mne.check_instance(raw, "raw")
        op, kernel, a = _prepare(raw.info, inverse_operator, lambda2, method, nave,
                                 method_params, label, pick_ori, use_cps)
        rows = _mne.pick_rows(raw.ch_names, op)
        data, times = raw[rows, start:stop]
        if not data.shape[1]:
            raise ValueError(f"start={start}, stop={stop} select no sample of the "
                             f"{raw.n_times} samples of the raw data")
        if time_func is not None:
            data = time_func(data)
        _mne.check_data(data, op, raw.info, nave=nave)
        step = data.shape[1] if buffer_size is None else max(int(buffer_size), 1)
        chunks = _log.progress(range(0, data.shape[1], step), desc=f"{kernel.method} on raw",
                               unit="chunk")
        sol = np.concatenate([apply_assembled(a, data[:, k:k + step]) for k in chunks], axis=1)
        return _mne.make_stc(sol, a.vertices, src=op.src, tmin=float(times[0]),
                             tstep=1.0 / raw.info["sfreq"], vector=a.vector,
                             source_nn=a.source_nn)
