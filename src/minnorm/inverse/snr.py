"""The rank of an operator and the SNR of evoked data, as ``mne.minimum_norm``.

The maths is in :mod:`minnorm.engine.snr`; here the data are checked against
the operator and whitened for their ``nave`` (C / nave).
"""

from __future__ import annotations

import numpy as np

from .. import _mne
from .._log import warn
from ..engine import snr as _snr
from .prepared import as_applied_operator

__all__ = ["compute_rank_inverse", "estimate_snr"]


def compute_rank_inverse(inv) -> np.int64:
    """The rank of the whitened data space, as ``mne.minimum_norm.compute_rank_inverse``.

    Parameters
    ----------
    inv : InverseOperator | mne.minimum_norm.InverseOperator
        Also one MNE-Python prepared (for any method).

    Returns
    -------
    rank : numpy.int64
        The number of nonzero eigenvalues of the noise covariance the
        operator whitens with (MNE-Python's value and type).
    """
    return np.int64(as_applied_operator(inv).n_nonzero)


def estimate_snr(evoked, inv, verbose=None):
    """SNR of an Evoked as a function of time, as ``mne.minimum_norm.estimate_snr``.

    Parameters
    ----------
    evoked : mne.Evoked
        Real data; the noise covariance is divided by ``evoked.nave``.
    inv : InverseOperator | mne.minimum_norm.InverseOperator
        Also one MNE-Python prepared (for eLORETA: the SVD of the weighted
        gain it left there, as MNE-Python uses it).
    verbose : bool | str | int | None

    Returns
    -------
    snr : ndarray of shape (n_times,)
        √(‖whitened data‖² / rank): the GFP of the whitened data.
    snr_est : ndarray of shape (n_times,)
        1/√λ² for the largest λ² (on MNE-C's grid 10 · 0.99ⁿ) whose misfit passes a
        χ² test at p = 0.001 (see :mod:`minnorm.engine.snr`); 0 where snr ≤ 1. A
        :class:`~minnorm.MinnormWarning` says when some sample passed at no λ².
    """
    with _mne.log_level(verbose):
        _mne.check_instance(evoked, "evoked")
        op = as_applied_operator(inv)
        _mne.check_channels(op, evoked.info)
        data = evoked.data[_mne.pick_rows(evoked.ch_names, op)]
        if np.iscomplexobj(data):
            raise ValueError("estimate_snr needs real data, got complex (e.g. after "
                             "apply_hilbert): pass the evoked response itself")
        _mne.check_data(data, op, evoked.info, nave=evoked.nave)
        whitener = op.whitener.scaled(evoked.nave)
        white = whitener.matrix @ (whitener.proj @ data)
        snr, snr_est, missed = _snr.estimate_snr(white, op.eigen_fields @ white, op.sing,
                                                 rank=op.n_nonzero)
        if missed:
            warn(f"SNR estimation did not converge: at {missed} of {len(snr)} times even "
                 f"lambda2 = {_snr.LAMBDA2_GRID[-1]:.3g} leaves a misfit above the chi² "
                 f"threshold, and snr_est is {1 / np.sqrt(_snr.LAMBDA2_GRID[-1]):.3g} there")
        return snr, snr_est
