"""The resolution matrix R = K L of an inverse operator and a forward, and its factors.

K is the kernel MNE-Python's ``apply_inverse`` applies to data of one average
(dSPM and sLORETA noise-normalised), its rows in x, y, z for a free or loose
operator (``pick_ori="vector"``), one row per source for a fixed one. As K is
low rank (``leads @ fields``), R = leads @ (fields @ L): the factors are all
``resolution_maps`` needs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .. import _mne
from ..engine.expand import make_expander
from ..inverse.setup import as_operator, prepare

__all__ = ["make_inverse_resolution_matrix", "resolution_factors", "Factors"]

logger = logging.getLogger("minnorm")


@dataclass(frozen=True, eq=False)
class Factors:
    """R = A @ B.

    Attributes
    ----------
    A : ndarray of shape (n_rows, r)
        The kernel's rows, noise normalisation folded in: one per source
        (fixed operator) or x, y, z per source.
    B : ndarray of shape (r, n_cols)
        The kernel's fields times the leadfield.
    """

    A: np.ndarray
    B: np.ndarray


def resolution_factors(forward, inverse_operator, *, method="dSPM", lambda2=1.0 / 9.0) -> Factors:
    """The low-rank factors of the resolution matrix (see :class:`Factors`)."""
    op = as_operator(inverse_operator)
    setup = prepare(op, lambda2=lambda2, method=method, nave=1,
                    pick_ori=None if op.source_ori == "fixed" else "vector")
    leadfield = _mne.resolution_leadfield(forward, setup.op)
    ex = make_expander(setup.kernel, setup.assembled)
    return Factors(A=ex.leads.reshape(-1, ex.leads.shape[-1]), B=ex.fields @ leadfield)


def make_inverse_resolution_matrix(forward, inverse_operator, method="dSPM", lambda2=1.0 / 9.0,
                                   verbose=None) -> np.ndarray:
    """Resolution matrix of an inverse operator: its kernel times the forward's leadfield.

    Same arguments and result as ``mne.minimum_norm.make_inverse_resolution_matrix``.

    Parameters
    ----------
    forward : mne.Forward
        Usually fixed orientation (one PSF per source, normal to the cortex); a
        free forward is brought to the operator's orientation frame first.
    inverse_operator : minnorm.InverseOperator | mne.minimum_norm.InverseOperator
    method : "MNE" | "dSPM" | "sLORETA" | "eLORETA"
    lambda2 : float

    Returns
    -------
    resmat : ndarray of shape (n_orient_inv · n_sources, n_orient_fwd · n_sources)
        Columns are point-spread functions, rows cross-talk functions; a free or
        loose operator's rows are x, y, z per source.
    """
    with _mne.log_level(verbose):
        f = resolution_factors(forward, inverse_operator, method=method, lambda2=lambda2)
        resmat = f.A @ f.B
        logger.info("Dimensions of resolution matrix: %d by %d.", *resmat.shape)
        return resmat
