"""Point-spread and cross-talk functions of chosen sources (MNE-Python's names).

``get_point_spread(resmat, src, idx)`` returns the columns of the resolution
matrix for the sources ``idx`` (indices, lists of them, or labels), and
``get_cross_talk`` its rows, as source estimates; see
:mod:`minnorm.engine.spread` for ``mode``, ``n_comp`` and ``norm``.
"""

from __future__ import annotations

import mne
import numpy as np

from .. import _mne
from ..engine.expand import source_rows
from ..engine.resolution import rectify
from ..engine.spread import check_mode, normalise_functions, summarise_functions
from ..inverse.operator import InverseOperator

__all__ = ["get_point_spread", "get_cross_talk"]


def get_point_spread(resmat, src, idx, mode=None, *, n_comp=1, norm=False,
                     return_pca_vars=False, vector=False, verbose=None):
    """Point-spread functions (columns of ``resmat``) of sources or labels.

    Same arguments and results as ``mne.minimum_norm.get_point_spread``.

    Parameters
    ----------
    resmat : ndarray
        From :func:`make_inverse_resolution_matrix`.
    src : mne.SourceSpaces | mne.Forward | InverseOperator (minnorm's or MNE's)
        A Forward or InverseOperator when ``vector=True`` on a surface.
    idx : list of int | list of list of int | list of Label
        One group of functions per list or label.
    mode : None | "mean" | "max" | "svd" | "sum" | "maxval"
    n_comp : int
    norm : None | False | True | "max" | "norm"
    return_pca_vars : bool
    vector : bool

    Returns
    -------
    stcs : SourceEstimate (one group) or list of them
    pca_vars : ndarray or list of ndarray (``return_pca_vars=True`` only)
    """
    return _functions(resmat, src, idx, "psf", mode, n_comp, norm, return_pca_vars, vector,
                      verbose)


def get_cross_talk(resmat, src, idx, mode=None, *, n_comp=1, norm=False,
                   return_pca_vars=False, vector=False, verbose=None):
    """Cross-talk functions (rows of ``resmat``) of sources or labels.

    Same arguments and results as ``mne.minimum_norm.get_cross_talk``; see
    :func:`get_point_spread`.
    """
    return _functions(resmat, src, idx, "ctf", mode, n_comp, norm, return_pca_vars, vector,
                      verbose)


def _functions(resmat, src, idx, function, mode, n_comp, norm, return_pca_vars, vector, verbose):
    with _mne.log_level(verbose):
        mode = check_mode(mode, n_comp, return_pca_vars)
        spaces, nn = _source_spaces(src, vector)
        resmat = np.asarray(resmat)
        n_verts = sum(len(s["vertno"]) for s in spaces)
        if resmat.ndim != 2 or any(d not in (n_verts, 3 * n_verts) for d in resmat.shape):
            raise ValueError(f"resmat of shape {resmat.shape} does not fit the {n_verts} sources "
                             "of src: each side must be n_sources or 3·n_sources")
        if function == "ctf":
            resmat = resmat.T
        n_rows, n_cols = resmat.shape
        if vector and len(nn) != n_rows:
            raise ValueError(
                f"vector=True: these functions have {n_rows // n_verts} value(s) per source but "
                f"src has {len(nn) // n_verts} orientation(s) per source: pass as src the forward "
                f"or operator whose sources the {'rows' if function == 'psf' else 'columns'} "
                "of resmat are")
        stcs, pca_vars = [], []
        for group in _mne.function_indices(list(idx) if isinstance(idx, tuple) else idx, spaces):
            funcs = normalise_functions(resmat[:, source_rows(group, n_cols // n_verts)], norm)
            funcs, pca_var = summarise_functions(funcs, mode, n_comp, return_pca_vars)
            if not vector and n_rows != n_verts:
                funcs = rectify(funcs, 3, axis=0)
            stcs.append(_mne.make_stc(funcs, _mne.vertices(spaces), src=spaces, tmin=0.0,
                                      tstep=1.0, vector=vector, source_nn=nn))
            pca_vars.append(pca_var)
        stcs = stcs[0] if len(stcs) == 1 else stcs
        if return_pca_vars:
            return stcs, (pca_vars[0] if len(pca_vars) == 1 else pca_vars)
        return stcs


def source_spaces(src):
    """(SourceSpaces, source orientations or None) of src: source spaces, a Forward, or an
    inverse operator (minnorm's or MNE-Python's)."""
    if isinstance(src, InverseOperator):
        return src.src, src.source_nn
    if isinstance(src, (mne.minimum_norm.InverseOperator, mne.Forward)):
        return src["src"], src["source_nn"]
    if isinstance(src, mne.SourceSpaces):
        return src, None
    raise TypeError(f"src must be an mne.SourceSpaces, mne.Forward or inverse operator, got "
                    f"{type(src).__name__}")


def _source_spaces(src, vector):
    """(SourceSpaces, source orientations for vector estimates)."""
    spaces, nn = source_spaces(src)
    if not vector:
        return spaces, None
    if spaces.kind != "surface":
        return spaces, np.tile(np.eye(3), (sum(len(s["vertno"]) for s in spaces), 1))
    if nn is None:
        raise TypeError("vector=True on a surface needs the source orientations: pass the "
                        "forward or the inverse operator as src, not its source spaces")
    return spaces, nn
