"""Reading and writing inverse operators in MNE's -inv.fif format."""

from __future__ import annotations

from . import _mne
from .operator import InverseOperator

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
    """
    with _mne.log_level(verbose):
        return InverseOperator.from_mne(_mne.read_inverse(fname))


def write_inverse_operator(fname, inv, *, overwrite=False, verbose=None) -> None:
    """Write ``inv`` to a ``-inv.fif`` file that MNE-Python reads and applies.

    Parameters
    ----------
    fname : path-like
        Must end in ``-inv.fif`` or ``_inv.fif`` (optionally ``.gz``).
    inv : InverseOperator
    overwrite : bool
        Replace an existing file.
    """
    if not isinstance(inv, InverseOperator):
        inv = InverseOperator.from_mne(inv)
    with _mne.log_level(verbose):
        _mne.write_inverse(fname, inv.to_mne(), overwrite=overwrite)
