"""Applying LCMV filters: evoked, epochs (batched), raw, a covariance, and the resolution matrix.

A filter acts on sensor data as ŝ = W (F b), F the whitener (or projector):
the same low-rank form as a minimum-norm kernel, so it runs on the same
expansion (:mod:`minnorm.engine.expand`) — every block of epochs is taken to
the M whitened channels in one stacked product, then expanded to sources tile
by tile on every core, the norm over orientations (``pick_ori=None`` on a
free filter) fused into each tile. There is no per-epoch apply: MNE-Python's
loop of ``W @ (whitener @ epoch)`` becomes a few large products, and
``max_memory`` bounds the working memory.
"""

from __future__ import annotations

import numpy as np

from .. import _mne
from ..engine.checks import check_finite
from ..engine.expand import Block, Expander, apply_array, plan_blocks, to_xyz
from ..engine.memory import check_dtype
from ..engine.power import source_power
from .filter import as_filter

__all__ = ["apply_lcmv", "apply_lcmv_epochs", "apply_lcmv_raw", "apply_lcmv_cov",
           "make_lcmv_resolution_matrix", "filter_expander", "vector_frames"]


def filter_expander(filters, fields: np.ndarray, *, dtype="float64") -> Expander:
    """A filter as an :class:`Expander`: leads = the weights (rotated to x, y, z for vectors)."""
    dtype = check_dtype(dtype)
    weights = np.asarray(filters["weights"], np.float64)
    n_loc = sum(len(v) for v in filters["vertices"])
    vector = bool(filters["is_free_ori"]) and filters["pick_ori"] == "vector"
    if vector:
        weights = to_xyz(weights, vector_frames(filters, len(weights)), n_loc).reshape(
            -1, weights.shape[1])
    return Expander(leads=np.ascontiguousarray(weights, dtype=dtype),
                    fields=np.ascontiguousarray(fields), group=3 if
                    filters["is_free_ori"] and not vector else 1,
                    out_shape=(n_loc, 3) if vector else (n_loc,), dtype=dtype,
                    vertices=[np.asarray(v) for v in filters["vertices"]])


def vector_frames(filters, n_rows: int) -> np.ndarray:
    """The source frames (x, y, z axes of each row) that turn a vector filter's rows to x, y, z."""
    nn = np.asarray(filters["source_nn"], np.float64)
    if len(nn) != n_rows:
        raise ValueError("vector estimates of a filter made with a label are not supported "
                         "(MNE-Python fails on them too): make the filter without a label "
                         "and restrict the estimate with stc.in_label(label)")
    return nn


def _stc(data, filters, tmin, tstep):
    kind = filters.get("src_type") or {1: "volume", 2: "surface"}.get(len(filters["vertices"]),
                                                                     "mixed")
    return _mne.stc_from_arrays(data, filters["vertices"], tmin=tmin, tstep=tstep,
                                subject=filters["subject"], kind=kind,
                                vector=data.ndim == 3)


def _setup(inst, filters, dtype):
    filters = as_filter(filters)
    rows = _mne.filter_channels(inst.ch_names, filters)
    fields = _mne.filter_fields(filters, inst.info["projs"], inst.info)
    return filters, rows, filter_expander(filters, fields, dtype=dtype)


def apply_lcmv(evoked, filters, *, verbose=None):
    """Apply an LCMV filter to an Evoked, as ``mne.beamformer.apply_lcmv``.

    Returns a ``SourceEstimate`` (``VolSourceEstimate``, ``MixedSourceEstimate``;
    ``Vector…`` for ``pick_ori="vector"``).
    """
    with _mne.log_level(verbose):
        _mne.check_instance(evoked, "evoked")
        filters, rows, ex = _setup(evoked, filters, "float64")
        sol = apply_array(ex, _finite(evoked.data[rows], filters)[np.newaxis])[0]
        return _stc(sol, filters, evoked.times[0], 1.0 / evoked.info["sfreq"])


def apply_lcmv_epochs(epochs, filters, *, return_generator=False, verbose=None,
                      return_array=False, dtype="float64", max_memory=None):
    """Apply an LCMV filter to every epoch, as ``mne.beamformer.apply_lcmv_epochs``, batched.

    Returns a list of source estimates (a generator with ``return_generator``).
    minnorm's own options: ``return_array=True`` gives one ndarray (n_epochs,
    n_sources[, 3], n_times) (with ``return_generator`` too, a generator of
    :class:`minnorm.engine.expand.Block`), ``dtype="float32"`` for arrays halves
    memory and time (relative error ~1e-6); ``max_memory`` (bytes or '2GiB',
    default 1 GiB) sizes the blocks of epochs.
    """
    if not return_array and dtype not in ("float64", np.float64):
        raise ValueError("dtype applies to return_array=True only: source estimates are "
                         "float64, as MNE-Python's")
    with _mne.log_level(verbose):
        _mne.check_instance(epochs, "epochs")
        filters, rows, ex = _setup(epochs, filters, dtype)
        n_epochs, n_times = _mne.epoch_count(epochs), len(epochs.times)
        per_block, _ = plan_blocks(ex, n_epochs, n_times, M=len(rows), stream=True,
                                   max_memory=max_memory,
                                   complex_data=_mne.may_be_complex(epochs))
    if return_array and not return_generator:
        parts = list(_mne.epoch_blocks(epochs, rows, n_epochs if epochs.preload else per_block))
        data = parts[0] if len(parts) == 1 else np.concatenate(parts)  # one copy at most
        return apply_array(ex, _finite(data, filters), max_memory=max_memory)
    blocks = _blocks(epochs, rows, ex, per_block, max_memory, filters)
    if return_array:
        return blocks
    tmin, tstep = epochs.times[0], 1.0 / epochs.info["sfreq"]
    stcs = (_stc(sol, filters, tmin, tstep) for b in blocks for sol in b.data)
    return stcs if return_generator else list(stcs)


def _finite(data, filters):
    """Data (…, M, n_times) without NaN or Inf (which the filter would spread to every source)."""
    check_finite(np.moveaxis(data, -2, 0), "data", row_names=filters["ch_names"])
    return data


def _blocks(epochs, rows, ex, per_block, max_memory, filters):
    n = 0
    for data in _mne.epoch_blocks(epochs, rows, per_block):
        yield Block(slice(n, n + len(data)), slice(0, data.shape[-1]),
                    apply_array(ex, _finite(data, filters), max_memory=max_memory))
        n += len(data)


def apply_lcmv_raw(raw, filters, start=None, stop=None, *, verbose=None):
    """Apply an LCMV filter to raw data (samples ``start`` … ``stop``), as
    ``mne.beamformer.apply_lcmv_raw``."""
    with _mne.log_level(verbose):
        _mne.check_instance(raw, "raw")
        filters, rows, ex = _setup(raw, filters, "float64")
        data, times = raw[rows, start:stop]
        if not len(times):
            raise ValueError(f"start={start}, stop={stop} select no sample of the "
                             f"{raw.n_times} samples of the raw data")
        sol = apply_array(ex, _finite(data, filters)[np.newaxis])[0]
        return _stc(sol, filters, times[0], 1.0 / raw.info["sfreq"])


def apply_lcmv_cov(data_cov, filters, verbose=None):
    """Source power trace(W_k C W_kᵀ) of a covariance, as ``mne.beamformer.apply_lcmv_cov``.

    A one-sample source estimate (tmin 0, tstep 1); the covariance is projected
    and whitened as the data would be. A diagonal covariance is accepted.
    """
    with _mne.log_level(verbose):
        filters = as_filter(filters)
        rows = _mne.filter_channels(data_cov.ch_names, filters)
        fields = _mne.filter_fields(filters, data_cov["projs"])
        cov = data_cov.data if data_cov.data.ndim == 2 else np.diag(data_cov.data)
        check_finite(cov[np.ix_(rows, rows)], "covariance", row_names=filters["ch_names"])
        power = source_power(np.asarray(filters["weights"], np.float64), fields,
                             cov[np.ix_(rows, rows)], group=_mne.filter_n_ori(filters))
        return _stc(power[:, np.newaxis], filters, 0.0, 1.0)


def make_lcmv_resolution_matrix(filters, forward, info):
    """The resolution matrix (filter × leadfield), as ``mne.beamformer.make_lcmv_resolution_matrix``.

    Rows are the filter's outputs as ``apply_lcmv`` gives them (for a free
    filter with ``pick_ori=None``: the norm over orientations of each channel's
    weights, as MNE-Python computes it); columns the forward's dipoles.

    Returns
    -------
    resmat : ndarray of shape (n_outputs, n_dipoles) ((n_outputs, 3, n_dipoles) for vectors)
    """
    filters = as_filter(filters)
    names = filters["ch_names"]
    missing = [c for c in names if c not in forward["sol"]["row_names"]]
    if missing:
        raise ValueError(f"{len(missing)} channels of the filter are not in the forward "
                         f"({missing[0]} …): use the forward the filter was made from")
    _mne.filter_channels(info["ch_names"], filters)
    fields = _mne.filter_fields(filters, info["projs"], info)
    ex = filter_expander(filters, fields)
    filt = apply_array(ex, np.eye(len(names))[np.newaxis])[0]  # the filter's response to each channel
    leadfield = forward["sol"]["data"][[forward["sol"]["row_names"].index(c) for c in names]]
    return filt @ leadfield


