"""Source estimates of time-frequency epochs: ``apply_inverse_tfr_epochs``.

The inverse is linear, so the complex (phase and amplitude) coefficients of
every epoch at one frequency are inverted like epochs of complex data::

    ŝ_e,f(t) = leads @ (fields @ b_e,f(t))        # b: (M,) complex, one frequency

For each frequency a block of epochs is projected onto the kernel's r ≤ M
components in one matrix product and expanded to sources tile by tile
(:mod:`minnorm.engine.expand`), with the norm over orientations (pick_ori
None: real, √Σ|x|²) and the noise normalisation fused. MNE-Python makes an
``EpochsArray`` per frequency, prepares the operator again for each and
applies the kernel epoch by epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _mne
from ..engine.expand import Expander, apply_array, empty, make_expander, out_dtype, plan_blocks
from .operator import InverseOperator
from .prepared import use_prepared
from .setup import prepare
from .stream import checked_block

__all__ = ["apply_inverse_tfr_epochs"]


@dataclass(frozen=True, eq=False)
class _Setup:
    """One operator's expander, ready for the epochs' channels."""

    op: InverseOperator
    ex: Expander
    rows: list
    nave: float  # as used (the prepared one, with prepared=True)


def apply_inverse_tfr_epochs(epochs_tfr, inverse_operator, lambda2, method="dSPM", label=None,
                             nave=1, pick_ori=None, return_generator=False, prepared=False,
                             method_params=None, use_cps=True, verbose=None, *,
                             return_array=False, dtype="float64", max_memory=None):
    """Source estimates of complex time-frequency epochs, as MNE's ``apply_inverse_tfr_epochs``.

    Parameters
    ----------
    epochs_tfr : mne.time_frequency.EpochsTFR
        Complex coefficients (``output="complex"``), shape (n_epochs, n_channels,
        n_freqs, n_times); real (power) values are refused, as in MNE-Python.
    inverse_operator : InverseOperator | mne.minimum_norm.InverseOperator | list | tuple
        One operator for every frequency, or one per frequency.
    lambda2, method, label, nave, pick_ori, prepared, method_params, use_cps, verbose
        As :func:`minnorm.apply_inverse_epochs` (λ² a number).
    return_generator : bool
        A generator (per frequency) of generators (per epoch) instead of lists.
    return_array : bool
        minnorm's own: one ndarray of shape (n_freqs, n_epochs, n_sources, n_times)
        — (…, n_sources, 3, n_times) for pick_ori "vector" — complex, except the
        norm over orientations (pick_ori None on a free/loose operator), which is
        real. With ``return_generator`` as well, a generator of one such array
        (n_epochs, …) per frequency. Every frequency's operator must then give
        the same sources.
    dtype : "float64" | "float32"
        Of ``return_array``'s values (complex128/complex64).
    max_memory : int | str | None
        Working memory beyond the returned estimates (default 1 GiB), which
        sizes the blocks of epochs; with ``return_generator`` it bounds each
        block's estimates too.

    Returns
    -------
    stcs : list of list of SourceEstimate (or VectorSourceEstimate, VolSourceEstimate, …)
        ``stcs[f][e]``: frequency f, epoch e; or a generator of generators,
        or an ndarray (``return_array``).
    """
    with _mne.log_level(verbose):
        _mne.check_epochs_tfr(epochs_tfr)
        if not return_array and dtype not in ("float64", np.float64):
            raise ValueError(f"dtype={dtype!r} applies to return_array=True only: source "
                             "estimates are complex128 (float64 norms)")
        operators = _per_frequency(inverse_operator, len(epochs_tfr.freqs))
        setups = _setups(epochs_tfr, operators, lambda2=lambda2, method=method, nave=nave,
                         prepared=prepared, method_params=method_params, label=label,
                         pick_ori=pick_ori, use_cps=use_cps, dtype=dtype)
    run = _Run(epochs_tfr, setups, max_memory)
    if return_array:
        return run.arrays() if return_generator else run.array()
    if return_generator:
        return (run.stcs(f, stream=True) for f in range(len(setups)))
    return [list(run.stcs(f, stream=False)) for f in range(len(setups))]


def _per_frequency(inverse_operator, n_freqs) -> list:
    """The operator of each frequency (MNE-Python's rule: a list or tuple holds one each)."""
    if not isinstance(inverse_operator, (list, tuple)):
        return [inverse_operator] * n_freqs
    if len(inverse_operator) != n_freqs:
        raise ValueError(f"Expected {n_freqs} inverse operators (one per frequency of the "
                         f"EpochsTFR), got {len(inverse_operator)}")
    return list(inverse_operator)


def _setups(tfr, operators, *, dtype, prepared, lambda2, method, nave, method_params,
            **assembly) -> list:
    """A :class:`_Setup` per frequency; one per distinct operator, shared."""
    made = {}
    for op in operators:
        if id(op) not in made:
            use = use_prepared(op, prepared, lambda2=lambda2, method=method, nave=nave,
                               method_params=method_params)
            s = prepare(info=tfr.info, ch_names=tfr.ch_names, **assembly, **use)
            made[id(op)] = _Setup(s.op, make_expander(s.kernel, s.assembled, dtype=dtype),
                                  s.rows, use["nave"])
    return [made[id(op)] for op in operators]


class _Run:
    """The estimates of each frequency, block of epochs by block."""

    def __init__(self, tfr, setups, max_memory):
        self.tfr, self.setups, self.max_memory = tfr, setups, max_memory
        self.n_epochs, self.n_times = tfr.data.shape[0], tfr.data.shape[-1]
        self.tstep = 1.0 / tfr.info["sfreq"]

    def _blocks(self, f, *, stream):
        """(epochs, data (n, M, n_times)) of frequency f, as many epochs as memory allows."""
        s = self.setups[f]
        per_block, _ = plan_blocks(s.ex, self.n_epochs, self.n_times, M=len(s.rows),
                                   stream=stream, max_memory=self.max_memory, complex_data=True)
        for e0 in range(0, self.n_epochs, per_block):
            epochs = slice(e0, min(e0 + per_block, self.n_epochs))
            block = self.tfr.data[epochs, :, f, :][:, s.rows]
            yield epochs, checked_block(block, s.op, self.tfr.info, s.nave, e0 == 0)

    def _shape(self, f):
        ex = self.setups[f].ex
        return (*ex.out_shape, self.n_times), out_dtype(ex, True)

    def frequency(self, f, out=None):
        """Estimates of every epoch at frequency f, (n_epochs, *out_shape, n_times)."""
        shape, dtype = self._shape(f)
        out = empty((self.n_epochs, *shape), dtype) if out is None else out
        for epochs, block in self._blocks(f, stream=False):
            apply_array(self.setups[f].ex, block, max_memory=self.max_memory, out=out[epochs])
        return out

    def array(self):
        shapes = {self._shape(f) for f in range(len(self.setups))}
        if len(shapes) > 1:
            raise ValueError(
                "return_array needs the same sources and output for every frequency, but the "
                f"operators give {sorted(str(s) for s in shapes)}: use a list of estimates")
        shape, dtype = shapes.pop()
        out = empty((len(self.setups), self.n_epochs, *shape), dtype)
        for f in range(len(self.setups)):
            self.frequency(f, out=out[f])
        return out

    def arrays(self):
        for f in range(len(self.setups)):
            yield self.frequency(f)

    def stcs(self, f, *, stream):
        """The source estimates of frequency f, epoch by epoch."""
        if not stream:
            yield from self._to_stcs(f, self.frequency(f))
            return
        for _, block in self._blocks(f, stream=True):
            yield from self._to_stcs(f, apply_array(self.setups[f].ex, block,
                                                    max_memory=self.max_memory))

    def _to_stcs(self, f, estimates):
        s = self.setups[f]
        for data in estimates:
            yield _mne.stc_from_arrays(data, s.ex.vertices, tmin=float(self.tfr.times[0]),
                                       tstep=self.tstep, subject=_mne.subject_of(s.op.src),
                                       kind=s.op.src.kind, vector=len(s.ex.out_shape) == 2)
