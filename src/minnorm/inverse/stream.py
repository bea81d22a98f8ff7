"""Streams of source estimates over MNE epochs and raw data, in bounded memory.

Every entry point starts from :func:`minnorm.inverse.setup.prepare` and
expands with :mod:`minnorm.engine.expand`: each block of epochs (or, when one
epoch does not fit ``max_memory``, of samples) is projected onto the r ≤ M
whitened components and expanded to sources tile by tile, on every core.
``apply_inverse_epochs_array`` fills one array; the ``iter_*`` functions yield
:class:`~minnorm.engine.expand.Block` s; :mod:`minnorm.io.arrays` writes the
same streams to an HDF5 file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .. import _log, _mne
from ..engine.expand import (
    ARRAY_BLOCK,
    Block,
    Destination,
    Expander,
    empty,
    expand,
    make_expander,
    out_dtype,
    plan_blocks,
    project,
)
from .operator import InverseOperator
from .setup import prepare

__all__ = ["apply_inverse_epochs_array", "iter_inverse_epochs", "iter_inverse_raw",
           "StreamSetup", "epochs_setup", "raw_setup", "epoch_stream", "raw_stream",
           "checked_block", "raw_span"]

@dataclass(frozen=True, eq=False)
class StreamSetup:
    """What a stream over MNE data needs: operator, expander, data rows, block sizes."""

    op: InverseOperator
    ex: Expander
    rows: list
    per_block: int
    per_time: int
    shape: tuple  # the whole result's (n_epochs, *out_shape, n_times), or without n_epochs
    lambda2: float  # as used (chosen, when a rule was given)


def _setup(inst, kind, inverse_operator, *, n_epochs, n_times, stream, lambda2, method, nave,
           method_params, label, pick_ori, use_cps, dtype, max_memory, span=None) -> StreamSetup:
    """The shared setup, an expander and block sizes (budgeted for complex data if they may be)."""
    s = prepare(inverse_operator, inst.info, ch_names=inst.ch_names, lambda2=lambda2,
                method=method, nave=nave, method_params=method_params, label=label,
                pick_ori=pick_ori, use_cps=use_cps, data=inst, span=span)
    ex = make_expander(s.kernel, s.assembled, dtype=dtype)
    per_block, per_time = plan_blocks(ex, n_epochs, n_times, M=len(s.rows), stream=stream,
                                      max_memory=max_memory,
                                      complex_data=_mne.may_be_complex(inst))
    shape = (*ex.out_shape, n_times) if kind == "raw" else (n_epochs, *ex.out_shape, n_times)
    return StreamSetup(s.op, ex, s.rows, per_block, per_time, shape, s.kernel.lambda2)


def epochs_setup(epochs, inverse_operator, *, stream, **options) -> StreamSetup:
    _mne.check_instance(epochs, "epochs")
    return _setup(epochs, "epochs", inverse_operator, n_epochs=_mne.epoch_count(epochs),
                  n_times=len(epochs.times), stream=stream, **options)


def checked_block(block, op, info, nave, first):
    """Finite data (all of the block); plausible units (its first epoch, once)."""
    if first:
        _mne.check_data(block[0], op, info, nave=nave, units=True)
    _mne.check_data(np.moveaxis(block, 1, 0), op, info, nave=nave, units=False)
    return block


def apply_inverse_epochs_array(epochs, inverse_operator, lambda2=1.0 / 9.0, method="dSPM", *,
                               label=None, nave=1, pick_ori=None, method_params=None,
                               use_cps=True, dtype="float64", max_memory=None,
                               verbose=None) -> np.ndarray:
    """Source estimates of every epoch as one array (the batched path).

    Equal to stacking the ``.data`` of ``mne.minimum_norm.apply_inverse_epochs``,
    computed with a few large matrix products instead of a loop.

    Parameters
    ----------
    epochs : mne.Epochs
    inverse_operator, lambda2, method, label, nave, pick_ori, method_params, use_cps
        As :func:`minnorm.apply_inverse_epochs`.
    dtype : "float64" | "float32"
        float32 halves memory and time; relative error ~1e-6 (bound 1e-5).
    max_memory : int | str | None
        Working memory beyond the returned array, in bytes or as '2GiB'
        (default :data:`DEFAULT_MAX_MEMORY`).
    verbose : bool | str | int | None

    Returns
    -------
    data : ndarray of shape (n_epochs, n_sources, n_times) or (n_epochs, n_sources, 3, n_times)
        ``(…, 3, …)`` with ``pick_ori="vector"`` (x, y, z); sources in the
        order of the operator's vertices (restricted to ``label``). In
        ``dtype``; for complex epochs (e.g. after ``apply_hilbert``) complex128
        or complex64, except the norm over orientations (pick_ori None on a
        free/loose operator), which is real, √(Σ |x|²), as MNE-Python.
    """
    with _mne.log_level(verbose):
        s = epochs_setup(epochs, inverse_operator, stream=False, lambda2=lambda2,
                          method=method, nave=nave, method_params=method_params, label=label,
                          pick_ori=pick_ori, use_cps=use_cps, dtype=dtype,
                          max_memory=max_memory)
        out = Destination(lambda dt: empty(s.shape, dt))
        n = 0
        for block in epoch_stream(s, epochs, nave, per_block=min(s.per_block, ARRAY_BLOCK),
                                   out=out):
            n = block.epochs.stop
        if out.array is None:  # every epoch was dropped
            return np.empty((0, *s.shape[1:]), s.ex.dtype)
        return out.array if n == len(out.array) else out.array[:n].copy()  # some dropped


def iter_inverse_epochs(epochs, inverse_operator, lambda2=1.0 / 9.0, method="dSPM", *,
                        label=None, nave=1, pick_ori=None, method_params=None, use_cps=True,
                        dtype="float64", max_memory=None, verbose=None) -> Iterator[Block]:
    """Stream the source estimates of epochs in :class:`Block` s sized by ``max_memory``.

    Blocks hold several whole epochs, or, when one epoch's sources do not fit
    in ``max_memory``, consecutive time pieces of one epoch. Parameters as
    :func:`apply_inverse_epochs_array`; lazy (not preloaded) epochs are read
    block by block, so the data never need to fit in memory.
    """
    with _mne.log_level(verbose):
        s = epochs_setup(epochs, inverse_operator, stream=True, lambda2=lambda2,
                          method=method, nave=nave, method_params=method_params, label=label,
                          pick_ori=pick_ori, use_cps=use_cps, dtype=dtype,
                          max_memory=max_memory)
    return epoch_stream(s, epochs, nave)


def epoch_stream(s: StreamSetup, epochs, nave, *, per_block=None,
                 out: Destination | None = None):
    """Blocks of estimates; with ``out`` (n_epochs, …, n_times) each is computed in place there."""
    n = 0
    bar = _log.progress(total=_mne.epoch_count(epochs), desc="epochs", unit="epoch")
    for block in _mne.epoch_blocks(epochs, s.rows, per_block or s.per_block):
        block = checked_block(block, s.op, epochs.info, nave, n == 0)
        dtype = out_dtype(s.ex, np.iscomplexobj(block))
        for t0 in range(0, block.shape[-1], s.per_time):
            t = slice(t0, t0 + s.per_time)
            dest = None if out is None else out(dtype)[n:n + len(block), ..., t]
            data = expand(s.ex, project(s.ex, block[..., t]), dest)
            yield Block(slice(n, n + len(block)), slice(t0, t0 + data.shape[-1]), data)
        n += len(block)
        bar.update(len(block))
    bar.close()


def iter_inverse_raw(raw, inverse_operator, lambda2=1.0 / 9.0, method="dSPM", *, label=None,
                     start=None, stop=None, nave=1, pick_ori=None, method_params=None,
                     use_cps=True, dtype="float64", max_memory=None,
                     verbose=None) -> Iterator[Block]:
    """Stream the source estimate of continuous data in time :class:`Block` s.

    ``start``/``stop`` are sample indices (as :func:`minnorm.apply_inverse_raw`);
    ``Block.times`` counts from ``start``. The raw data are read block by
    block, so a recording larger than memory works when it is not preloaded.
    """
    with _mne.log_level(verbose):
        s, start, stop = raw_setup(raw, inverse_operator, start, stop, lambda2=lambda2,
                                    method=method, nave=nave, method_params=method_params,
                                    label=label, pick_ori=pick_ori, use_cps=use_cps,
                                    dtype=dtype, max_memory=max_memory)
    return raw_stream(s, raw, nave, start, stop)


def raw_span(raw, start, stop) -> tuple[int, int]:
    """``start``/``stop`` (sample indices, None: the ends) as a non-empty [start, stop)."""
    start, stop = _mne.raw_span(raw, start, stop)
    if stop <= start:
        raise ValueError(f"start={start}, stop={stop} select no sample of the "
                         f"{raw.n_times} samples of the raw data")
    return start, stop


def raw_setup(raw, inverse_operator, start, stop, **options):
    _mne.check_instance(raw, "raw")
    start, stop = raw_span(raw, start, stop)
    s = _setup(raw, "raw", inverse_operator, n_epochs=1, n_times=stop - start, stream=True,
               span=(start, stop), **options)
    return s, start, stop


def raw_stream(s: StreamSetup, raw, nave, start, stop):
    for t0 in range(start, stop, s.per_time):
        t1 = min(t0 + s.per_time, stop)
        data = _mne.raw_segment(raw, s.rows, t0, t1)
        _mne.check_data(data, s.op, raw.info, nave=nave, units=t0 == start)
        sol = expand(s.ex, project(s.ex, data[np.newaxis]))[0]
        yield Block(slice(0, 1), slice(t0 - start, t1 - start), sol)
