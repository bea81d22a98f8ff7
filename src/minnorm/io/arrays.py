"""Source time courses in one HDF5 file: the one layout for epochs and raw data.

Written by ``minnorm apply --epochs-output array`` (:class:`EpochsArrayWriter`)
and by :func:`write_inverse_epochs` / :func:`write_inverse_raw` (streamed, in
bounded memory); read lazily by :func:`read_source_array` or whole by
:func:`read_estimates_array`, both into one record, :class:`SourceArray`::

    data          (n_epochs, n_locations[, 3], n_times) for epochs,
                  (n_locations[, 3], n_times) for continuous data; float64 or
                  float32, complex128 or complex64 when the estimates are complex
                  (of Hilbert-transformed data; h5py's (r, i) compound type)
    vertices/K    vertex numbers of source space K (int64)
    events        (n_epochs, 3), epochs only
    attrs         format, version, tmin, tstep, subject ("" for none), kind,
                  vector, epochs, method, lambda2, pick_ori, nave
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import _mne
from ..engine.expand import LOC_TILE, TIME_TILE, Destination
from ..inverse.stream import StreamSetup, epoch_stream, epochs_setup, raw_setup, raw_stream
from .atomic import AtomicOutputs
from .paths import user_path

__all__ = ["SourceArray", "EstimatesArray", "SourceArrayFile", "read_source_array",
           "read_estimates_array", "EpochsArrayWriter", "write_inverse_epochs",
           "write_inverse_raw"]

ARRAY_FORMAT = "minnorm-source-array"
ARRAY_FORMAT_VERSION = 2  # 1: two formats (apply's epochs array, write_inverse_*); 2: one


class _ClosesOnExit:
    """``with obj:`` closes ``obj`` at the end."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


@dataclass(eq=False)
class SourceArray(_ClosesOnExit):
    """Source time courses with their vertices and timing, in memory or lazily on disk.

    Attributes
    ----------
    data : ndarray or h5py.Dataset
        Shape (n_epochs, n_locations[, 3], n_times) for epochs or
        (n_locations[, 3], n_times) for continuous data (x, y, z components
        for vector estimates). Read lazily from an open file: slicing reads
        only what is asked (``f.data[3]``, ``f.data[:, 100:200]``).
    vertices : list of ndarray
        Vertex numbers per source space (as in MNE source estimates).
    tmin, tstep : float
        Time of the first sample and sampling interval (s).
    subject : str or None
    kind : "surface" | "volume" | "discrete" | "mixed"
        Source-space kind of the estimates.
    vector : bool
    events : ndarray of shape (n_epochs, 3) or None
        The epochs' events (sample, previous value, event id); None for
        continuous data.
    method : str
    lambda2 : float
    pick_ori : str
    nave : float
    """

    data: object
    vertices: list
    tmin: float
    tstep: float
    subject: str | None
    kind: str
    vector: bool
    events: np.ndarray | None
    method: str
    lambda2: float
    pick_ori: str = "None"
    nave: float = 1.0
    _file: object = field(default=None, repr=False)

    @property
    def times(self) -> np.ndarray:
        """Time of each sample (s)."""
        return self.tmin + self.tstep * np.arange(self.data.shape[-1])

    @property
    def attrs(self) -> dict:
        """method, lambda2, pick_ori and nave, as stored in the file."""
        return dict(method=self.method, lambda2=self.lambda2, pick_ori=self.pick_ori,
                    nave=self.nave)

    def to_mne(self) -> list:
        """One MNE source estimate per epoch (a list of one for continuous data)."""
        data = self.data[()]
        blocks = data if self.events is not None else data[np.newaxis]
        return [_mne.stc_from_arrays(d, self.vertices, tmin=self.tmin, tstep=self.tstep,
                                     subject=self.subject, kind=self.kind, vector=self.vector)
                for d in blocks]

    def close(self) -> None:
        """Close the file (nothing to do for data in memory)."""
        if self._file is not None:
            self._file.close()


EstimatesArray = SourceArray  # the names read_estimates_array and read_source_array had
SourceArrayFile = SourceArray


def read_source_array(fname) -> SourceArray:
    """Open a source-array file (``minnorm.write_inverse_epochs``/``write_inverse_raw``,
    ``minnorm apply --epochs-output array``).

    Nothing is read until the returned ``data`` is sliced; close the file
    (or use ``with``) when done.
    """
    f = h5py().File(user_path(fname), "r")
    if f.attrs.get("format") != ARRAY_FORMAT:
        f.close()
        raise ValueError(f"{fname} is not a minnorm source-array file (written by "
                         "minnorm.write_inverse_epochs, write_inverse_raw or "
                         "`minnorm apply --epochs-output array`)")
    a = f.attrs
    return SourceArray(
        data=f["data"], vertices=[f[f"vertices/{k}"][()] for k in range(len(f["vertices"]))],
        tmin=float(a["tmin"]), tstep=float(a["tstep"]), subject=str(a["subject"]) or None,
        kind=str(a["kind"]), vector=bool(a["vector"]),
        events=f["events"][()] if "events" in f else None, method=str(a["method"]),
        lambda2=float(a["lambda2"]), pick_ori=str(a["pick_ori"]), nave=float(a["nave"]),
        _file=f)


def read_estimates_array(fname) -> SourceArray:
    """Read a whole epochs file (``minnorm apply --epochs ... --epochs-output array``)."""
    with read_source_array(fname) as f:
        if f.events is None:
            raise ValueError(f"{fname} holds continuous data, not epochs: open it with "
                             "minnorm.read_source_array")
        f.data = f.data[()]
    f._file = None
    return f


def h5py():
    """The h5py module, or an ImportError that says how to get it."""
    try:
        import h5py as module
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("source-array files need h5py: pip install h5py") from None
    return module


def write_array_header(f, *, vertices, tmin, tstep, subject, kind, vector, events, method,
                       lambda2, pick_ori, nave) -> None:
    """Everything but ``data``: vertices, events (None: continuous data) and attributes."""
    for k, v in enumerate(vertices):
        f.create_dataset(f"vertices/{k}", data=np.asarray(v, np.int64))
    if events is not None:
        f.create_dataset("events", data=np.asarray(events, np.int64))
    f.attrs.update(format=ARRAY_FORMAT, version=ARRAY_FORMAT_VERSION, tmin=float(tmin),
                   tstep=float(tstep), subject=subject or "", kind=str(kind),
                   vector=bool(vector), epochs=events is not None, method=str(method),
                   lambda2=float(lambda2), pick_ori=str(pick_ori), nave=float(nave))


class EpochsArrayWriter(_ClosesOnExit):
    """Writes the source estimates of epochs, one by one, into one source-array file.

    Memory stays bounded by one epoch's estimate: each is written as it
    comes. Read it back with :func:`read_estimates_array` (all at once) or
    :func:`read_source_array` (lazily).

    Parameters
    ----------
    path : path-like
        The (temporary) file to create.
    n_epochs : int
    events : ndarray of shape (n_epochs, 3)
    method : str
    lambda2 : float
    pick_ori : None | "normal" | "vector"
    nave : float
    """

    def __init__(self, path, *, n_epochs: int, events, method: str, lambda2: float,
                 pick_ori=None, nave: float = 1):
        self._file = h5py().File(path, "w")
        self._header = dict(events=events, method=method, lambda2=lambda2, pick_ori=pick_ori,
                            nave=nave)
        self._n_epochs = n_epochs
        self._data = None

    def write(self, k: int, stc) -> None:
        """Store the estimate of epoch ``k``."""
        if self._data is None:
            self._start(stc)
        self._data[k] = stc.data

    def _start(self, stc):
        self._data = self._file.create_dataset(
            "data", shape=(self._n_epochs, *stc.data.shape), dtype=stc.data.dtype,
            chunks=(1, *stc.data.shape))
        write_array_header(self._file, vertices=stc.vertices, tmin=stc.tmin, tstep=stc.tstep,
                           subject=stc.subject, kind=_mne.stc_space_kind(stc),
                           vector=_mne.stc_kind(stc) == "vector", **self._header)

    def close(self) -> None:
        """Finish the file."""
        self._file.close()

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
        s = epochs_setup(epochs, inverse_operator, stream=True, lambda2=lambda2,
                          method=method, nave=nave, method_params=method_params, label=label,
                          pick_ori=pick_ori, use_cps=use_cps, dtype=dtype,
                          max_memory=max_memory)
        with AtomicOutputs([fname], overwrite=overwrite) as outputs, \
                h5py().File(outputs.temporary(fname), "w") as f:
            dset = Destination(lambda dt: _create_data(f, s.shape, dt, epochs=True))
            written = 0
            for block in epoch_stream(s, epochs, nave):
                dset(block.data.dtype)[block.epochs, ..., block.times] = block.data
                written = block.epochs.stop
            dset(s.ex.dtype).resize(written, axis=0)  # made here when every epoch was dropped
            _write_meta(f, s, tmin=epochs.times[0], tstep=1.0 / epochs.info["sfreq"],
                        events=epochs.events[:written], method=method, lambda2=s.lambda2,
                        pick_ori=pick_ori, nave=nave)
    return user_path(fname)


def write_inverse_raw(fname, raw, inverse_operator, lambda2=1.0 / 9.0, method="dSPM", *,
                      label=None, start=None, stop=None, nave=1, pick_ori=None,
                      method_params=None, use_cps=True, dtype="float64", max_memory=None,
                      overwrite=False, verbose=None) -> Path:
    """Write the source estimate of continuous data to an HDF5 file, block by block.

    Dataset ``data`` has shape (n_sources[, 3], n_times); see
    :func:`write_inverse_epochs` and :func:`iter_inverse_raw`.
    """
    with _mne.log_level(verbose):
        s, start, stop = raw_setup(raw, inverse_operator, start, stop, lambda2=lambda2,
                                    method=method, nave=nave, method_params=method_params,
                                    label=label, pick_ori=pick_ori, use_cps=use_cps,
                                    dtype=dtype, max_memory=max_memory)
        with AtomicOutputs([fname], overwrite=overwrite) as outputs, \
                h5py().File(outputs.temporary(fname), "w") as f:
            dset = Destination(lambda dt: _create_data(f, s.shape, dt, epochs=False))
            for block in raw_stream(s, raw, nave, start, stop):
                dset(block.data.dtype)[..., block.times] = block.data
            _write_meta(f, s, tmin=start / raw.info["sfreq"],  # as MNE: from the first sample
                        tstep=1.0 / raw.info["sfreq"], events=None, method=method,
                        lambda2=s.lambda2, pick_ori=pick_ori, nave=nave)
    return user_path(fname)


def _create_data(f, shape, dtype, *, epochs: bool):
    """Dataset ``data``, chunked by epoch × tile of sources × ≤ TIME_TILE samples."""
    body = shape[1:] if epochs else shape
    chunks = (min(LOC_TILE, body[0]), *body[1:-1], min(TIME_TILE, body[-1]))
    if epochs:
        return f.create_dataset("data", shape=shape, maxshape=(None, *body), dtype=dtype,
                                chunks=(1, *chunks))
    return f.create_dataset("data", shape=shape, dtype=dtype, chunks=chunks)


def _write_meta(f, s: StreamSetup, *, tmin, tstep, events, method, lambda2, pick_ori, nave):
    write_array_header(f, vertices=s.ex.vertices, tmin=tmin, tstep=tstep,
                       subject=s.op.src[0].get("subject_his_id"), kind=s.op.src.kind,
                       vector=len(s.ex.out_shape) == 2, events=events, method=method,
                       lambda2=lambda2, pick_ori=pick_ori, nave=nave)
