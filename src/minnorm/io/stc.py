"""Source estimates in MNE-Python's file formats (.stc, -vl.stc, -stc.h5), written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import _mne
from .atomic import AtomicOutputs

__all__ = ["stc_paths", "write_source_estimate"]


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
