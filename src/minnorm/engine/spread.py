"""Point-spread and cross-talk functions of a group of sources, summarised.

A group's functions are columns of the resolution matrix (PSFs) or of its
transpose (CTFs). As in MNE-Python's ``get_point_spread``/``get_cross_talk``
they may be scaled (``norm``) and summarised over the group (``mode``):

    "maxval"  the n_comp functions with the largest absolute value
    "max"     the n_comp functions with the largest norm
    "sum", "mean"
    "svd"     the n_comp leading left singular vectors (and, if asked, the
              percentage of variance each explains)

Chosen functions come in ascending order of the criterion, as in MNE-Python.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MODES", "check_mode", "normalise_functions", "summarise_functions"]

MODES = (None, "mean", "max", "svd", "sum", "maxval")
_OLD_NAMES = {"pca": "svd", "maxnorm": "max"}


def check_mode(mode, n_comp, return_pca_vars) -> str | None:
    """The mode's current name; n_comp and return_pca_vars consistent with it."""
    if mode is not None and not isinstance(mode, str):
        raise TypeError(f"mode must be None or a string, got {type(mode).__name__}")
    mode = _OLD_NAMES.get(mode, mode)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
    if isinstance(n_comp, bool) or not isinstance(n_comp, (int, np.integer)) or n_comp < 1:
        raise ValueError(f"n_comp must be an integer ≥ 1, got {n_comp!r}")
    if mode in (None, "mean", "sum") and n_comp > 1:
        raise ValueError(f"n_comp must be 1 for mode={mode}.")
    if mode != "svd" and return_pca_vars:
        raise ValueError("SVD variances can only be returned if mode='svd'.")
    return mode


def normalise_functions(funcs: np.ndarray, norm) -> np.ndarray:
    """Scale by the largest absolute value ("max", True) or column norm ("norm")."""
    if norm is True or norm == "max":
        return funcs / max(-funcs.min(), funcs.max())
    if norm == "norm":
        return funcs / np.linalg.norm(funcs, axis=0).max()
    if norm in (None, False):
        return funcs
    raise ValueError(f'norm must be None, False, True, "max" or "norm", got {norm!r}')


def summarise_functions(funcs: np.ndarray, mode, n_comp: int,
                        return_pca_vars: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(functions, explained variance in % or None) of a group (columns of ``funcs``)."""
    if mode in ("maxval", "max"):
        score = np.maximum(-funcs.min(axis=0), funcs.max(axis=0)) if mode == "maxval" \
            else np.linalg.norm(funcs, axis=0)
        keep = np.argsort(score)[-n_comp:] if n_comp > 1 else [int(np.argmax(score))]
        return funcs[:, keep], None
    if mode == "sum":
        return funcs.sum(axis=1, keepdims=True), None
    if mode == "mean":
        return funcs.mean(axis=1, keepdims=True), None
    if mode == "svd":
        u, s, _ = np.linalg.svd(funcs, full_matrices=False)
        s2 = s * s
        return u[:, :n_comp], (100 * s2[:n_comp] / s2.sum() if return_pca_vars else None)
    return funcs, None
