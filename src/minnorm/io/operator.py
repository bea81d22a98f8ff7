"""Inverse operator files (-inv.fif): MNE-Python's, MNE-C's and minnorm's, both ways."""

from __future__ import annotations

from pathlib import Path

from .. import _mne
from ..inverse.operator import InverseOperator
from ..inverse.setup import as_operator
from .atomic import AtomicOutputs

__all__ = ["read_inverse_operator", "write_inverse_operator"]


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
    inv = as_operator(inv)
    name = Path(fname).name
    if not name.endswith(("-inv.fif", "_inv.fif", "-inv.fif.gz", "_inv.fif.gz")):
        raise ValueError(f"an inverse operator file name must end in -inv.fif or "
                         f"_inv.fif (optionally .gz), got {name!r}")
    with _mne.log_level(verbose), AtomicOutputs([fname], overwrite=overwrite) as out:
        _mne.write_inverse(out.temporary(fname), inv.to_mne(), overwrite=True)
