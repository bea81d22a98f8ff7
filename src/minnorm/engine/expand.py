"""Expanding a low-rank kernel to sources: tiles, memory plan, and batches of data.

A kernel is low rank (see :mod:`minnorm.engine.kernel`)::

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
from dataclasses import dataclass

import numpy as np

from .kernel import Kernel
from .memory import DEFAULT_MAX_MEMORY, check_dtype, empty, parse_memory
from .linalg import complex_dtype, n_workers, real_dtype, real_matmul, run_parallel

__all__ = [
    "Assembled",
    "Expander",
    "Block",
    "Destination",
    "DEFAULT_MAX_MEMORY",
    "parse_memory",
    "check_dtype",
    "empty",
    "make_expander",
    "to_xyz",
    "source_rows",
    "project",
    "expand",
    "expand_rows",
    "apply_assembled",
    "apply_array",
    "plan_blocks",
    "out_dtype",
]

logger = logging.getLogger("minnorm")


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
    norm = a.noise_norm
    if norm is not None and a.vector and len(a.leads) != len(norm):
        norm = np.repeat(norm, 3)
    Y = real_matmul(a.fields, data)[np.newaxis]  # (1, r, n_times): the whitened components
    return expand_rows(a.leads, Y, group=3 if a.combine else 1, scale=norm)[0]


LOC_TILE = 512  # locations per tile
TIME_TILE = 1024  # samples per tile
ARRAY_BLOCK = 16  # epochs per block when filling a returned array (its components stay small)


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


def make_expander(kernel: Kernel, a: Assembled, *,
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
        leads = to_xyz(leads, a.source_nn, n_loc).reshape(-1, leads.shape[1])
        out_shape = (n_loc, 3)
    else:
        out_shape = (n_loc,)
    group = 3 if a.combine else 1
    leads = np.ascontiguousarray(leads, dtype=dtype)
    return Expander(leads=leads, fields=np.ascontiguousarray(fields), group=group,
                    out_shape=out_shape, dtype=dtype, vertices=a.vertices)


def source_rows(sources: np.ndarray, per_source: int) -> np.ndarray:
    """Kernel rows of ``sources`` when each has ``per_source`` consecutive rows (1 or 3)."""
    sources = np.asarray(sources)
    if per_source == 1:
        return sources
    return (per_source * sources[:, np.newaxis] + np.arange(per_source)).ravel()


def to_xyz(rows: np.ndarray, source_nn: np.ndarray, n_loc: int) -> np.ndarray:
    """Rows (t₁, t₂, n) of each location → (x, y, z); fixed rows → normal × amplitude.

    Parameters
    ----------
    rows : ndarray of shape (3·n_loc, X) or (n_loc, X)
        Per-location components in the operator's frames (or one fixed amplitude).
    source_nn : ndarray of shape (3·n_loc, 3) or (n_loc, 3)
        The frames' axes (or the fixed orientations), in x, y, z.
    n_loc : int

    Returns
    -------
    xyz : ndarray of shape (n_loc, 3, X)
    """
    if len(rows) == n_loc:  # fixed orientation: x, y, z = n · amplitude
        return source_nn[:, :, np.newaxis] * rows[:, np.newaxis, :]
    frames = source_nn.reshape(n_loc, 3, 3)
    return np.matmul(frames.transpose(0, 2, 1), rows.reshape(n_loc, 3, -1))


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


class Destination:
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
