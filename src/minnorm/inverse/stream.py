"""Batched and streaming application: epochs and raw as arrays, in bounded memory.

A kernel is low rank (see :mod:`minnorm.kernel`)::

    ŝ_e(t) = leads @ (fields @ b_e(t))      # leads (n_rows, r), fields (r, M), r ≤ M

so every epoch e is first projected onto the r whitened components,
``Y_e = fields @ b_e`` (r × n_times: as small as the data), and only then
expanded to sources. The expansion is the whole cost (2·n_rows·r flops per
sample); it runs tile by tile — a few hundred locations × ≤ 1024 samples, on
every core — with the orientation norm (pick_ori None) and the noise
normalisation fused into the tile, so nothing bigger than the output is ever
made::

    x_k(t) = ‖ (diag(noise_norm) leads)_k  Y_e(:, t) ‖     # k: a location's 1 or 3 rows

Noise norms are positive, so they are folded into ``leads`` once; with
``pick_ori="vector"`` the rotation to x, y, z is folded in as well.

Memory: data are processed in blocks of epochs (or, when one epoch does not
fit, of time samples) sized so that what this module allocates stays below
``max_memory`` (default :data:`DEFAULT_MAX_MEMORY`): the block's data and
components, the tiles and — when streaming — the block's output. A returned
array (``return_array=True``) is allocated once, in full, on top of that.
"""

from __future__ import annotations

import logging
import mmap
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _log
from .. import _mne
from ..engine.linalg import complex_dtype, n_workers, real_dtype, real_matmul, run_parallel
from .apply import Assembled, assemble
from ..io import SourceArrayFile, h5py, read_source_array, write_array_header
from ..engine.kernel import Kernel, prepare_kernel
from .operator import InverseOperator

__all__ = [
    "DEFAULT_MAX_MEMORY",
    "Block",
    "Expander",
    "SourceArrayFile",
    "apply_array",
    "apply_inverse_epochs_array",
    "iter_inverse_epochs",
    "iter_inverse_raw",
    "make_expander",
    "parse_memory",
    "read_source_array",
    "write_inverse_epochs",
    "write_inverse_raw",
]

logger = logging.getLogger("minnorm")

DEFAULT_MAX_MEMORY = 1 << 30  # bytes (1 GiB) of working memory, beyond kernel and returned array
LOC_TILE = 512  # locations per tile
TIME_TILE = 1024  # samples per tile
ARRAY_BLOCK = 16  # epochs per block when filling a returned array (its components stay small)
DTYPES = ("float64", "float32")
_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "t": 1e12, "tb": 1e12, "tib": 2**40}


@dataclass(frozen=True, eq=False)
class Expander:
    """A kernel ready for batched application.

    Attributes
    ----------
    leads : ndarray of shape (n_rows, r)
        diag(noise_norm) R**½ V Γ, restricted to the label and orientation,
        rotated to x, y, z for vector output, in ``dtype``.
    fields : ndarray of shape (r, M)
        Data → whitened components (float64), only the r components in use.
    group : 1 or 3
        Rows combined into one output by their Euclidean norm (3: pick_ori None
        on a free/loose operator; 1: linear output).
    out_shape : tuple
        Output per time sample: (n_locations,) or (n_locations, 3) for vectors.
    dtype : numpy dtype
    vertices : list of ndarray
        Vertex numbers of the output, per source space.
    """

    leads: np.ndarray
    fields: np.ndarray
    group: int
    out_shape: tuple
    dtype: np.dtype
    vertices: list

    @property
    def n_components(self) -> int:
        """r: the whitened components the data are projected on."""
        return self.fields.shape[0]

    @property
    def n_out(self) -> int:
        """Output values per time sample."""
        return int(np.prod(self.out_shape))


@dataclass(frozen=True, eq=False)
class Block:
    """One piece of a streamed result.

    Attributes
    ----------
    epochs : slice
        Which epochs (for raw data: ``slice(0, 1)``).
    times : slice
        Which samples of the epoch (or of the raw segment).
    data : ndarray of shape (n_epochs_in_block, *out_shape, n_times_in_block)
        For raw data, without the leading epoch axis.
    """

    epochs: slice
    times: slice
    data: np.ndarray


_SIZE = re.compile(r"\s*((?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*")


def parse_memory(value) -> int:
    """Bytes from an int/float or a string such as ``"500MB"``, ``"2 GiB"``; None → default."""
    if value is None:
        return DEFAULT_MAX_MEMORY
    given = value
    if isinstance(value, str):
        match = _SIZE.fullmatch(value)
        unit = match and match.group(2).lower()
        if not match or unit not in _UNITS:
            raise ValueError(f"max_memory must be a number of bytes or a string like '500MB' "
                             f"or '2GiB', got {value!r}")
        value = float(match.group(1)) * _UNITS[unit]
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)):
        raise TypeError(f"max_memory must be a number of bytes or a string like '2GiB', "
                        f"got {type(value).__name__}")
    if not (np.isfinite(value) and value >= 1):
        raise ValueError(f"max_memory must be a finite size of at least 1 byte (e.g. '500MB'), "
                         f"got {given!r}")
    return int(value)


def check_dtype(dtype) -> np.dtype:
    """float64 (exact) or float32 (half the memory, ~1e-6 relative error)."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.name not in DTYPES:
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    return dt


# --------------------------------------------------------------------------- the maths


PLAIN_PAGES_BYTES = 64 * 2**20  # outputs this large get plain (not huge-page-advised) memory


def empty(shape, dtype) -> np.ndarray:
    """An uninitialised array; large ones on plain anonymous pages.

    NumPy advises the kernel to back large arrays with huge pages; where huge
    pages are scarce (fragmented memory, small VMs) every first touch then
    stalls in memory compaction. Measured on this 2-core VM, filling a fresh
    3.9 GiB array: 3.5–8.4 s from np.empty, 1.3–1.5 s on plain pages (about
    as fast as MAP_POPULATE, and the faults are taken by the worker threads
    in parallel). The array is freed with its last reference, as usual.
    """
    dtype = np.dtype(dtype)
    count = int(np.prod(shape))
    if count * dtype.itemsize < PLAIN_PAGES_BYTES or not hasattr(mmap, "MAP_ANONYMOUS"):
        return np.empty(shape, dtype)
    buf = mmap.mmap(-1, count * dtype.itemsize, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return np.frombuffer(buf, dtype=dtype, count=count).reshape(shape)


def make_expander(op: InverseOperator, kernel: Kernel, a: Assembled, *,
                  dtype="float64") -> Expander:
    """Fold noise norms (and, for vectors, the rotation to x, y, z) into the leads."""
    dtype = check_dtype(dtype)
    used = np.flatnonzero(kernel.reginv != 0)  # components with Γ = 0 contribute nothing
    leads, fields = a.leads[:, used], a.fields[used]  # copies: the kernel's cache is untouched
    n_loc = sum(len(v) for v in a.vertices)
    per_loc = len(leads) // n_loc
    if a.noise_norm is not None:  # in place: one leads-sized array at a time
        leads *= np.repeat(a.noise_norm, per_loc)[:, np.newaxis]
    if a.vector:
        leads = _to_xyz(leads, a.source_nn, n_loc)
        out_shape = (n_loc, 3)
    else:
        out_shape = (n_loc,)
    group = 3 if a.combine else 1
    leads = np.ascontiguousarray(leads, dtype=dtype)
    return Expander(leads=leads, fields=np.ascontiguousarray(fields), group=group,
                    out_shape=out_shape, dtype=dtype, vertices=a.vertices)


def _to_xyz(leads, source_nn, n_loc):
    """Rows (t₁, t₂, n) of each location → (x, y, z); fixed rows → normal × amplitude."""
    r = leads.shape[1]
    if len(leads) == n_loc:  # fixed orientation: x, y, z = n · amplitude
        return (source_nn[:, :, np.newaxis] * leads[:, np.newaxis, :]).reshape(-1, r)
    frames = source_nn.reshape(n_loc, 3, 3)
    return np.matmul(frames.transpose(0, 2, 1), leads.reshape(n_loc, 3, r)).reshape(-1, r)


def project(ex: Expander, data: np.ndarray) -> np.ndarray:
    """Y = fields @ b for a block of data (n, M, T) → (n, r, T), in ``ex.dtype``.

    Complex data (e.g. after ``apply_hilbert``) give complex components, in
    the complex counterpart of ``ex.dtype``.
    """
    Y = real_matmul(ex.fields, data)
    return Y.astype(complex_dtype(ex.dtype) if np.iscomplexobj(Y) else ex.dtype, copy=False)


def out_dtype(ex: Expander, complex_data: bool) -> np.dtype:
    """The estimates' dtype: ``ex.dtype``, complex for complex data unless it is a norm."""
    return complex_dtype(ex.dtype) if complex_data and ex.group == 1 else ex.dtype


def expand(ex: Expander, Y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Source time courses from components Y (n, r, T) → (n, *out_shape, T)."""
    n, _, T = Y.shape
    if out is None:
        out = empty((n, *ex.out_shape, T), out_dtype(ex, np.iscomplexobj(Y)))
    expand_rows(ex.leads, Y, group=ex.group, out=out.reshape(n, -1, T))
    return out


def expand_rows(leads: np.ndarray, Y: np.ndarray, /, *, group: int, scale=None,
                out: np.ndarray | None = None) -> np.ndarray:
    """out[e] = scale · ‖leads @ Y[e]‖ over groups of ``group`` rows (group 1: no norm).

    Parameters
    ----------
    leads : ndarray of shape (n_rows, r)
        Real.
    Y : ndarray of shape (n, r, T)
        Real or complex; for complex Y the norm is √Σ|x|² (real), the
        linear output (group 1) complex.
    group : 1 or 3
    scale : ndarray of shape (n_rows // group,) or None
        Multiplies each output row (noise normalisation).
    out : ndarray of shape (n, n_rows // group, T), optional
        May be a strided view (unit stride along time).

    Tiles of :data:`LOC_TILE` outputs × :data:`TIME_TILE` samples run in
    parallel on every core (one BLAS thread each), the norm fused into each.
    """
    n, _, T = Y.shape
    n_out = len(leads) // group
    if out is None:
        dtype = np.result_type(leads, Y)
        out = empty((n, n_out, T), real_dtype(dtype) if group == 3 else dtype)
    tiles = [(k, min(k + LOC_TILE, n_out)) for k in range(0, n_out, LOC_TILE)]

    def work(tile):
        lead = leads[group * tile[0]:group * tile[1]]
        sc = None if scale is None else scale[tile[0]:tile[1], np.newaxis]
        for e in range(n):
            for t0 in range(0, T, TIME_TILE):
                _tile(lead, Y[e, :, t0:t0 + TIME_TILE],
                      out[e, tile[0]:tile[1], t0:t0 + TIME_TILE], group, sc)

    run_parallel(work, tiles)
    return out


def _tile(lead: np.ndarray, Y: np.ndarray, out: np.ndarray, group: int, scale) -> None:
    """out = lead @ Y, or for groups of 3 rows the norm of each group; then × scale."""
    if group == 1:
        real_matmul(lead, Y, out=out)  # BLAS with leading dimensions: no copy
    else:
        _norm3(real_matmul(lead, Y), out)  # (3·n_tile, t)
    if scale is not None:
        out *= scale


def _norm3(tmp: np.ndarray, out: np.ndarray) -> None:
    """out = √(Σ |x|²) over each location's 3 rows of tmp; tmp is overwritten.

    Complex tmp is squared as its real view (re, im interleaved along time),
    so |x|² = re² + im² costs no more than two real norms.
    """
    if np.iscomplexobj(tmp):
        tmp = tmp.view(real_dtype(tmp.dtype))  # (3·n_tile, 2t)
    np.multiply(tmp, tmp, out=tmp)
    xyz = tmp.reshape(-1, 3, tmp.shape[-1])
    if tmp.shape[-1] == out.shape[-1]:  # real
        np.add(xyz[:, 0], xyz[:, 1], out=out)
        np.add(out, xyz[:, 2], out=out)
    else:  # complex: sum the rows in place, then the (re², im²) pairs into out
        acc = xyz[:, 0]
        np.add(acc, xyz[:, 1], out=acc)
        np.add(acc, xyz[:, 2], out=acc)
        pairs = acc.reshape(len(acc), -1, 2)
        np.add(pairs[..., 0], pairs[..., 1], out=out)
    np.sqrt(out, out=out)


def apply_array(ex: Expander, data: np.ndarray, /, *, max_memory=None,
                out: np.ndarray | None = None) -> np.ndarray:
    """Source time courses of data already in memory.

    Parameters
    ----------
    ex : Expander
    data : ndarray of shape (n_epochs, M, n_times)
        Sensor data in the operator's channel order, real or complex.
    max_memory : int | str | None
        Working memory beyond ``out`` (default :data:`DEFAULT_MAX_MEMORY`).
    out : ndarray of shape (n_epochs, *ex.out_shape, n_times), optional

    Returns
    -------
    out : ndarray of shape (n_epochs, *ex.out_shape, n_times)
        In :func:`out_dtype` (complex for complex data, except norms).
    """
    n, M, T = data.shape
    if M != ex.fields.shape[1]:
        raise ValueError(f"data must have the operator's {ex.fields.shape[1]} channels on "
                         f"axis 1, got shape {data.shape}")
    complex_data = np.iscomplexobj(data)
    if out is None:
        out = empty((n, *ex.out_shape, T), out_dtype(ex, complex_data))
    per_block, per_time = plan_blocks(ex, n, T, M=M, stream=False, max_memory=max_memory,
                                      complex_data=complex_data)
    for e0 in range(0, n, per_block):
        for t0 in range(0, T, per_time):
            e, t = slice(e0, e0 + per_block), slice(t0, t0 + per_time)
            expand(ex, project(ex, data[e, :, t]), out[e, ..., t])
    return out


def plan_blocks(ex: Expander, n_epochs: int, n_times: int, *, M: int, stream: bool,
                max_memory, complex_data: bool = False) -> tuple[int, int]:
    """(epochs per block, samples per block) that keep the working memory under budget.

    Per sample: the data (M float64, and M bytes for the finiteness check),
    its components (r float64 and r in ``dtype``), and when streaming the
    block's output; fixed: the tiles. Complex data double all but the check
    and a norm's output.
    """
    budget = parse_memory(max_memory)
    per_sample, tile = working_bytes(ex, n_times, M=M, stream=stream, complex_data=complex_data)
    samples = (budget - tile) // per_sample
    if samples < 1:
        raise ValueError(
            f"max_memory={budget} bytes is too small: one time sample needs {per_sample} bytes "
            f"plus {tile} bytes of tiles; give at least {tile + per_sample} bytes (e.g. '64MB')")
    if samples >= n_times:
        return int(min(samples // n_times, max(n_epochs, 1))), n_times
    logger.info("max_memory allows %d of %d samples of an epoch: chunking in time",
                samples, n_times)
    return 1, int(samples)


def working_bytes(ex: Expander, n_times: int, *, M: int, stream: bool,
                  complex_data: bool = False) -> tuple[int, int]:
    """(bytes per time sample, fixed bytes of tiles) of the working memory (see plan_blocks)."""
    size = ex.dtype.itemsize
    c = 2 if complex_data else 1
    per_sample = (8 * c + 1) * M + (8 + size) * c * ex.n_components \
        + (out_dtype(ex, complex_data).itemsize * ex.n_out if stream else 0)
    tile = n_workers() * LOC_TILE * 3 * min(n_times, TIME_TILE) * size * c \
        if ex.group == 3 else 0
    return per_sample, tile


# --------------------------------------------------------------------------- MNE data


@dataclass(frozen=True, eq=False)
class _Setup:
    """What a batched run over MNE data needs: operator, expander, data rows, block sizes."""

    op: InverseOperator
    ex: Expander
    rows: list
    per_block: int
    per_time: int
    shape: tuple  # the whole result's (n_epochs, *out_shape, n_times), or without n_epochs


def _setup(inst, kind, inverse_operator, *, n_epochs, n_times, stream, lambda2, method, nave,
           method_params, label, pick_ori, use_cps, dtype, max_memory) -> _Setup:
    """Operator, expander, rows and block sizes (budgeted for complex data when they may be)."""
    _mne.check_instance(inst, kind)
    op = inverse_operator if isinstance(inverse_operator, InverseOperator) else \
        InverseOperator.from_mne(inverse_operator)
    _mne.check_channels(op, inst.info)
    kernel = prepare_kernel(op, lambda2=lambda2, method=method, nave=nave,
                            method_params=method_params)
    a = assemble(op, kernel, label=label, pick_ori=pick_ori, use_cps=use_cps)
    ex = make_expander(op, kernel, a, dtype=dtype)
    rows = _mne.pick_rows(inst.ch_names, op)
    per_block, per_time = plan_blocks(ex, n_epochs, n_times, M=len(rows), stream=stream,
                                      max_memory=max_memory,
                                      complex_data=_mne.may_be_complex(inst))
    shape = (*ex.out_shape, n_times) if kind == "raw" else (n_epochs, *ex.out_shape, n_times)
    return _Setup(op, ex, rows, per_block, per_time, shape)


def _epochs_setup(epochs, inverse_operator, *, stream, **options) -> _Setup:
    _mne.check_instance(epochs, "epochs")
    return _setup(epochs, "epochs", inverse_operator, n_epochs=_mne.epoch_count(epochs),
                  n_times=len(epochs.times), stream=stream, **options)


def _checked(block, op, info, nave, first):
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
        s = _epochs_setup(epochs, inverse_operator, stream=False, lambda2=lambda2,
                          method=method, nave=nave, method_params=method_params, label=label,
                          pick_ori=pick_ori, use_cps=use_cps, dtype=dtype,
                          max_memory=max_memory)
        out = _Destination(lambda dt: empty(s.shape, dt))
        n = 0
        for block in _epoch_stream(s, epochs, nave, per_block=min(s.per_block, ARRAY_BLOCK),
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
        s = _epochs_setup(epochs, inverse_operator, stream=True, lambda2=lambda2,
                          method=method, nave=nave, method_params=method_params, label=label,
                          pick_ori=pick_ori, use_cps=use_cps, dtype=dtype,
                          max_memory=max_memory)
    return _epoch_stream(s, epochs, nave)


class _Destination:
    """The whole result, made at the first block: only the data tell real from complex.

    ``create(dtype)`` makes it (an array, or a dataset in a file); calling the
    destination with a dtype returns it, made on the first call.
    """

    def __init__(self, create):
        self._create = create
        self.array = None

    def __call__(self, dtype):
        if self.array is None:
            self.array = self._create(dtype)
        return self.array


def _epoch_stream(s: _Setup, epochs, nave, *, per_block=None, out: _Destination | None = None):
    """Blocks of estimates; with ``out`` (n_epochs, …, n_times) each is computed in place there."""
    n = 0
    bar = _log.progress(total=_mne.epoch_count(epochs), desc="epochs", unit="epoch")
    for block in _mne.epoch_blocks(epochs, s.rows, per_block or s.per_block):
        block = _checked(block, s.op, epochs.info, nave, n == 0)
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
        s, start, stop = _raw_setup(raw, inverse_operator, start, stop, lambda2=lambda2,
                                    method=method, nave=nave, method_params=method_params,
                                    label=label, pick_ori=pick_ori, use_cps=use_cps,
                                    dtype=dtype, max_memory=max_memory)
    return _raw_stream(s, raw, nave, start, stop)


def _raw_setup(raw, inverse_operator, start, stop, **options):
    _mne.check_instance(raw, "raw")
    start, stop = _mne.raw_span(raw, start, stop)
    if stop <= start:
        raise ValueError(f"start={start}, stop={stop} select no sample of the "
                         f"{raw.n_times} samples of the raw data")
    s = _setup(raw, "raw", inverse_operator, n_epochs=1, n_times=stop - start, stream=True,
               **options)
    return s, start, stop


def _raw_stream(s: _Setup, raw, nave, start, stop):
    for t0 in range(start, stop, s.per_time):
        t1 = min(t0 + s.per_time, stop)
        data = _mne.raw_segment(raw, s.rows, t0, t1)
        _mne.check_data(data, s.op, raw.info, nave=nave, units=t0 == start)
        sol = expand(s.ex, project(s.ex, data[np.newaxis]))[0]
        yield Block(slice(0, 1), slice(t0 - start, t1 - start), sol)


# --------------------------------------------------------------------------- files


def _open_output(fname, overwrite):
    fname = Path(fname)
    if fname.exists() and not overwrite:
        raise FileExistsError(f"{fname} exists: pass overwrite=True or choose another name")
    return h5py().File(fname, "w")


def write_inverse_epochs(fname, epochs, inverse_operator, lambda2=1.0 / 9.0, method="dSPM", *,
                         label=None, nave=1, pick_ori=None, method_params=None, use_cps=True,
                         dtype="float64", max_memory=None, overwrite=False,
                         verbose=None) -> Path:
    """Write the source estimates of epochs to an HDF5 file, block by block.

    The file holds dataset ``data`` of shape (n_epochs, n_sources[, 3],
    n_times) — complex when the estimates are —, chunked by epoch and tile
    of sources, with the vertices and timing; read it back lazily with
    :func:`read_source_array`. Memory stays under ``max_memory`` whatever
    the number of epochs. Other parameters as
    :func:`apply_inverse_epochs_array`.
    """
    with _mne.log_level(verbose):
        s = _epochs_setup(epochs, inverse_operator, stream=True, lambda2=lambda2,
                          method=method, nave=nave, method_params=method_params, label=label,
                          pick_ori=pick_ori, use_cps=use_cps, dtype=dtype,
                          max_memory=max_memory)
        with _open_output(fname, overwrite) as f:
            dset = _Destination(lambda dt: _create_data(f, s.shape, dt, epochs=True))
            written = 0
            for block in _epoch_stream(s, epochs, nave):
                dset(block.data.dtype)[block.epochs, ..., block.times] = block.data
                written = block.epochs.stop
            dset(s.ex.dtype).resize(written, axis=0)  # made here when every epoch was dropped
            _write_meta(f, s, tmin=epochs.times[0], tstep=1.0 / epochs.info["sfreq"],
                        events=epochs.events[:written], method=method, lambda2=lambda2,
                        pick_ori=pick_ori, nave=nave)
    return Path(fname)


def write_inverse_raw(fname, raw, inverse_operator, lambda2=1.0 / 9.0, method="dSPM", *,
                      label=None, start=None, stop=None, nave=1, pick_ori=None,
                      method_params=None, use_cps=True, dtype="float64", max_memory=None,
                      overwrite=False, verbose=None) -> Path:
    """Write the source estimate of continuous data to an HDF5 file, block by block.

    Dataset ``data`` has shape (n_sources[, 3], n_times); see
    :func:`write_inverse_epochs` and :func:`iter_inverse_raw`.
    """
    with _mne.log_level(verbose):
        s, start, stop = _raw_setup(raw, inverse_operator, start, stop, lambda2=lambda2,
                                    method=method, nave=nave, method_params=method_params,
                                    label=label, pick_ori=pick_ori, use_cps=use_cps,
                                    dtype=dtype, max_memory=max_memory)
        with _open_output(fname, overwrite) as f:
            dset = _Destination(lambda dt: _create_data(f, s.shape, dt, epochs=False))
            for block in _raw_stream(s, raw, nave, start, stop):
                dset(block.data.dtype)[..., block.times] = block.data
            _write_meta(f, s, tmin=start / raw.info["sfreq"],  # as MNE: from the first sample
                        tstep=1.0 / raw.info["sfreq"], events=None, method=method,
                        lambda2=lambda2, pick_ori=pick_ori, nave=nave)
    return Path(fname)


def _create_data(f, shape, dtype, *, epochs: bool):
    """Dataset ``data``, chunked by epoch × tile of sources × ≤ TIME_TILE samples."""
    body = shape[1:] if epochs else shape
    chunks = (min(LOC_TILE, body[0]), *body[1:-1], min(TIME_TILE, body[-1]))
    if epochs:
        return f.create_dataset("data", shape=shape, maxshape=(None, *body), dtype=dtype,
                                chunks=(1, *chunks))
    return f.create_dataset("data", shape=shape, dtype=dtype, chunks=chunks)


def _write_meta(f, s: _Setup, *, tmin, tstep, events, method, lambda2, pick_ori, nave):
    write_array_header(f, vertices=s.ex.vertices, tmin=tmin, tstep=tstep,
                       subject=s.op.src[0].get("subject_his_id"), kind=s.op.src.kind,
                       vector=len(s.ex.out_shape) == 2, events=events, method=method,
                       lambda2=lambda2, pick_ori=pick_ori, nave=nave)
