"""Files: inverse operators (-inv.fif), source estimates, and atomic writing.

Every file minnorm writes goes first into a private temporary folder next to
its destination and is moved into place (``os.replace``, atomic on one file
system) only once complete. An interrupted run — Ctrl-C, a crash, a full
disk — therefore leaves each destination either as it was or complete, and
an existing file is replaced only with ``overwrite=True``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _mne
from ..engine.checks import check_output_dir, user_path
from ..inverse.operator import InverseOperator

__all__ = [
    "read_inverse_operator",
    "write_inverse_operator",
    "AtomicOutputs",
    "stc_paths",
    "write_source_estimate",
    "EpochsArrayWriter",
    "EstimatesArray",
    "read_estimates_array",
    "SourceArrayFile",
    "read_source_array",
]

ARRAY_FORMAT = "minnorm-source-array"
ARRAY_FORMAT_VERSION = 2  # 1: two formats (apply's epochs array, write_inverse_*); 2: one


def read_inverse_operator(fname, *, verbose=None) -> InverseOperator:
    """Read an inverse operator written by MNE-Python, MNE-C or minnorm.

    Parameters
    ----------
    fname : path-like
        A ``-inv.fif`` (or ``-inv.fif.gz``) file.

    Returns
    -------
    inv : InverseOperator

    Raises
    ------
    FileNotFoundError, PermissionError
        The file is missing or cannot be read.
    ValueError
        The file is not a FIF file, is damaged, or holds something else
        (a forward solution, a covariance...).
    """
    from . import fif as _fif

    with _mne.log_level(verbose):
        return InverseOperator.from_mne(_fif.read_inverse(fname, option="fname"))


def write_inverse_operator(fname, inv, *, overwrite=False, verbose=None) -> None:
    """Write ``inv`` to a ``-inv.fif`` file that MNE-Python reads and applies.

    The file is written atomically (see the module's notes).

    Parameters
    ----------
    fname : path-like
        Must end in ``-inv.fif`` or ``_inv.fif`` (optionally ``.gz``).
    inv : InverseOperator
    overwrite : bool
        Replace an existing file.

    Raises
    ------
    FileExistsError
        ``fname`` exists and ``overwrite`` is False.
    FileNotFoundError, PermissionError
        Its folder does not exist or is not writable.
    """
    if not isinstance(inv, InverseOperator):
        inv = InverseOperator.from_mne(inv)
    name = Path(fname).name
    if not name.endswith(("-inv.fif", "_inv.fif", "-inv.fif.gz", "_inv.fif.gz")):
        raise ValueError(f"an inverse operator file name must end in -inv.fif or "
                         f"_inv.fif (optionally .gz), got {name!r}")
    with _mne.log_level(verbose), AtomicOutputs([fname], overwrite=overwrite) as out:
        _mne.write_inverse(out.temporary(fname), inv.to_mne(), overwrite=True)


class AtomicOutputs:
    """Write several files so that each appears complete, or not at all.

    Parameters
    ----------
    paths : list of path-like
        The destinations, all in one folder.
    overwrite : bool
        Allow replacing existing destinations.

    Use as a context manager: write each destination to
    ``out.temporary(path)``; on a clean exit the temporary files are moved
    into place, on an exception (KeyboardInterrupt included) they are
    deleted and the destinations are untouched.

    Raises
    ------
    FileExistsError
        A destination exists and ``overwrite`` is False (checked at once).
    FileNotFoundError, NotADirectoryError, PermissionError
        The folder does not exist or is not writable (checked at once).
    """

    def __init__(self, paths, *, overwrite: bool = False):
        self.paths = [user_path(p).absolute() for p in paths]
        folders = {p.parent for p in self.paths}
        if len(folders) > 1:
            raise ValueError(f"outputs must share one folder, got {sorted(map(str, folders))}")
        if len({p.name for p in self.paths}) != len(self.paths):
            raise ValueError("two outputs have the same file name")
        self.overwrite = overwrite
        self.folder = check_output_dir(self.paths[0]) if self.paths else None
        self._check_existing()
        self._tmp = None

    def _check_existing(self):
        """Refuse folders where a file goes, and existing files unless ``overwrite``."""
        for path in self.paths:
            if path.is_dir():
                raise IsADirectoryError(f"{path} is a folder, and a file is to be written "
                                        "there: move it away or choose another --out")
        if self.overwrite:
            return
        existing = [p for p in self.paths if os.path.lexists(p)]  # broken links too
        if existing:
            more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
            link = " (a broken symbolic link)" if not existing[0].exists() else ""
            raise FileExistsError(f"{existing[0]}{link} exists{more}: pass --overwrite "
                                  "(overwrite=True) to replace it, or choose another --out")

    def __enter__(self) -> "AtomicOutputs":
        try:
            self._tmp = Path(tempfile.mkdtemp(prefix=".minnorm-tmp-", dir=self.folder))
        except PermissionError:
            raise PermissionError(f"the output folder {self.folder} is not writable: "
                                  "choose another --out or fix its permissions") from None
        return self

    def temporary(self, path) -> Path:
        """Where to write the destination ``path`` for now."""
        path = user_path(path).absolute()
        if path not in self.paths:
            raise ValueError(f"{path} is not one of the planned outputs")
        return self._tmp / path.name

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self._commit()
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)
        return False

    def _commit(self):
        """Move every output into place, or none: a failed move undoes the earlier ones."""
        missing = [p.name for p in self.paths if not (self._tmp / p.name).exists()]
        if missing:
            raise RuntimeError(f"internal error: {missing} were not written")
        self._check_existing()  # one may have appeared meanwhile
        done = []  # (destination, its previous file moved aside, or None)
        try:
            for k, path in enumerate(self.paths):
                old = None
                if os.path.lexists(path):
                    old = self._tmp / f".previous-{k}"
                    os.replace(path, old)
                done.append((path, old))
                os.replace(self._tmp / path.name, path)
        except BaseException:
            for path, old in reversed(done):
                with contextlib.suppress(OSError):
                    if old is not None:
                        os.replace(old, path)
                    elif os.path.lexists(path):
                        os.unlink(path)
            raise


def check_new_outputs(folder, names, *, overwrite: bool = False) -> list[Path]:
    """The paths of files ``names`` in ``folder``, checked before any work is done.

    The folder may not exist yet (it is made when the outputs are written,
    with :func:`write_outputs`); it must not be a file, and the nearest
    existing folder above it must be writable. Existing outputs, folders
    and broken links where a file goes are refused as :class:`AtomicOutputs` does.
    """
    folder = user_path(folder).absolute()
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file: give a folder for --out")
    paths = [folder / name for name in names]
    if folder.is_dir():
        AtomicOutputs(paths, overwrite=overwrite)  # checks only: nothing is created
    else:
        base = next(p for p in folder.parents if p.exists())
        if not os.access(base, os.W_OK | os.X_OK):
            raise PermissionError(f"cannot create {folder}: {base} is not writable; choose "
                                  "another --out or fix its permissions")
    return paths


def write_text_output(outputs: AtomicOutputs, path, text: str) -> Path:
    """Write ``text`` (UTF-8) as the planned output ``path`` of ``outputs``."""
    outputs.temporary(path).write_text(text, encoding="utf-8")
    return Path(path)


def stc_paths(prefix, kind: str, *, ftype: str = "auto") -> list[Path]:
    """The files a source estimate of ``kind`` is saved to with ``prefix``.

    Parameters
    ----------
    prefix : path-like
        Output name without suffix.
    kind : "surface" | "volume" | "vector" | "mixed"
        "surface" is a scalar SourceEstimate (two hemispheres), "volume" a
        scalar VolSourceEstimate (volume or discrete space); vector and mixed
        estimates only have MNE's HDF5 format.
    ftype : "auto" | "stc" | "h5"
        "auto": MNE's .stc format where it exists (float32 values), else HDF5.

    Returns
    -------
    paths : list of Path
        ``-lh.stc`` and ``-rh.stc``; ``-vl.stc``; or ``-stc.h5``.
    """
    if ftype not in ("auto", "stc", "h5"):
        raise ValueError(f"ftype must be 'auto', 'stc' or 'h5', got {ftype!r}")
    prefix = str(prefix)
    if ftype == "stc" and kind not in ("surface", "volume"):
        raise ValueError(f"{kind} source estimates can only be written as .h5 "
                         "(MNE's .stc format holds one value per source): use h5")
    if ftype == "h5" or kind not in ("surface", "volume"):
        return [Path(prefix + "-stc.h5")]
    if kind == "surface":
        return [Path(prefix + "-lh.stc"), Path(prefix + "-rh.stc")]
    return [Path(prefix + "-vl.stc")]


def write_source_estimate(prefix, stc, *, ftype: str = "auto", overwrite: bool = False,
                          outputs: AtomicOutputs | None = None) -> list[Path]:
    """Save an MNE source estimate atomically in MNE's formats.

    Parameters
    ----------
    prefix : path-like
        Output name without suffix (see :func:`stc_paths`).
    stc : mne.SourceEstimate | VolSourceEstimate | ... (any MNE source estimate)
    ftype : "auto" | "stc" | "h5"
    overwrite : bool
    outputs : AtomicOutputs or None
        Write into these (already entered) outputs instead of on its own.

    Returns
    -------
    paths : list of Path
        The files (to be) written.
    """
    paths = stc_paths(prefix, _mne.stc_kind(stc), ftype=ftype)
    if np.iscomplexobj(stc.data) and paths[0].suffix == ".stc":  # MNE refuses too
        raise ValueError("complex source estimates (e.g. of Hilbert-transformed data) cannot be "
                         "saved in MNE's .stc format, which holds real values: use ftype='h5' "
                         "(command line: --format h5)")
    if outputs is None:
        with AtomicOutputs(paths, overwrite=overwrite) as own:
            _save_stc(stc, prefix, paths, own)
    else:
        _save_stc(stc, prefix, paths, outputs)
    return paths


def _save_stc(stc, prefix, paths, outputs):
    """MNE adds the suffixes to the prefix: give it the temporary folder's."""
    tmp_prefix = outputs.temporary(paths[0]).parent / Path(prefix).name
    _mne.save_stc(stc, tmp_prefix, ftype="h5" if paths[0].suffix == ".h5" else "stc")


# --------------------------------------------------------------------------
# Source time courses in one HDF5 file: the one format for epochs and raw,
# written by `minnorm apply --epochs-output array` (EpochsArrayWriter) and by
# minnorm.write_inverse_epochs / write_inverse_raw, read by both readers below.
#
#   data          (n_epochs, n_locations[, 3], n_times) for epochs,
#                 (n_locations[, 3], n_times) for continuous data; float64 or
#                 float32, complex128 or complex64 when the estimates are complex
#                 (of Hilbert-transformed data; h5py's (r, i) compound type)
#   vertices/K    vertex numbers of source space K (int64)
#   events        (n_epochs, 3), epochs only
#   attrs         format, version, tmin, tstep, subject ("" for none), kind,
#                 vector, epochs, method, lambda2, pick_ori, nave


@dataclass(frozen=True, eq=False)
class EstimatesArray:
    """Source estimates of several epochs, as one array in memory.

    Attributes
    ----------
    data : ndarray of shape (n_epochs, n_locations, n_times) or (n_epochs, n_locations, 3, n_times)
        Values (x, y, z components for vector estimates).
    vertices : list of ndarray
        Vertex numbers per source space (as in MNE source estimates).
    tmin, tstep : float
        Time of the first sample and sampling interval (s).
    subject : str or None
    kind : "surface" | "volume" | "discrete" | "mixed"
        Source-space kind of the estimates.
    vector : bool
    method : str
    lambda2 : float
    events : ndarray of shape (n_epochs, 3)
        The epochs' events (sample, previous value, event id).
    """

    data: np.ndarray
    vertices: list
    tmin: float
    tstep: float
    subject: str | None
    kind: str
    vector: bool
    method: str
    lambda2: float
    events: np.ndarray

    def to_mne(self) -> list:
        """One MNE source estimate per epoch."""
        return [_mne.stc_from_arrays(d, self.vertices, tmin=self.tmin, tstep=self.tstep,
                                     subject=self.subject, kind=self.kind, vector=self.vector)
                for d in self.data]


class _ClosesOnExit:
    """``with obj:`` closes ``obj`` at the end."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


@dataclass(eq=False)
class SourceArrayFile(_ClosesOnExit):
    """Source time courses on disk (HDF5), read lazily.

    Attributes
    ----------
    data : h5py.Dataset of shape (n_epochs, n_sources[, 3], n_times) or (n_sources[, 3], n_times)
        Slicing reads only what is asked: ``f.data[3]``, ``f.data[:, 100:200]``.
    vertices : list of ndarray
    tmin, tstep : float
    subject : str or None
    kind : str
        "surface", "volume", "discrete" or "mixed".
    vector : bool
        x, y, z components on the axis after the sources.
    events : ndarray of shape (n_epochs, 3) or None
        The epochs' events; None for continuous data.
    attrs : dict
        method, lambda2, pick_ori, nave.
    """

    data: object
    vertices: list
    tmin: float
    tstep: float
    subject: str | None
    kind: str
    vector: bool
    events: np.ndarray | None
    attrs: dict
    _file: object = None

    @property
    def times(self) -> np.ndarray:
        """Time of each sample (s)."""
        return self.tmin + self.tstep * np.arange(self.data.shape[-1])

    def close(self) -> None:
        """Close the file."""
        self._file.close()


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


def read_source_array(fname) -> SourceArrayFile:
    """Open a source-array file (``minnorm.write_inverse_epochs``/``write_inverse_raw``,
    ``minnorm apply --epochs-output array``).

    Nothing is read until the returned ``data`` is sliced; close the file
    (or use ``with``) when done.
    """
    f = h5py().File(Path(fname), "r")
    if f.attrs.get("format") != ARRAY_FORMAT:
        f.close()
        raise ValueError(f"{fname} is not a minnorm source-array file (written by "
                         "minnorm.write_inverse_epochs, write_inverse_raw or "
                         "`minnorm apply --epochs-output array`)")
    n = len(f["vertices"])
    return SourceArrayFile(
        data=f["data"], vertices=[f[f"vertices/{k}"][()] for k in range(n)],
        tmin=float(f.attrs["tmin"]), tstep=float(f.attrs["tstep"]),
        subject=str(f.attrs["subject"]) or None, kind=str(f.attrs["kind"]),
        vector=bool(f.attrs["vector"]), events=f["events"][()] if "events" in f else None,
        attrs={k: f.attrs[k] for k in ("method", "lambda2", "pick_ori", "nave")}, _file=f)


def read_estimates_array(fname) -> EstimatesArray:
    """Read the whole epochs file (``minnorm apply --epochs ... --epochs-output array``)."""
    with read_source_array(fname) as f:
        if f.events is None:
            raise ValueError(f"{fname} holds continuous data, not epochs: open it with "
                             "minnorm.read_source_array")
        return EstimatesArray(data=f.data[()], vertices=f.vertices, tmin=f.tmin, tstep=f.tstep,
                              subject=f.subject, kind=f.kind, vector=f.vector,
                              method=str(f.attrs["method"]),
                              lambda2=float(f.attrs["lambda2"]), events=f.events)


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
