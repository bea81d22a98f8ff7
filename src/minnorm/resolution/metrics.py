"""Resolution metrics: from a resolution matrix, or tile by tile without it.

``resolution_metrics(resmat, src, function, metric)`` is MNE-Python's; for a
free or loose inverse applied to a fixed forward (resmat of shape
(3·n, n)) every metric is computed on the matrix rectified per source (the
norm of each source's three rows), where MNE-Python computes some pairs and
raises for the others; the PSF amplitudes (``peak_amp``, ``sum_amp``) take
the maximum and sum over all 3·n rows, as MNE-Python does.

``resolution_maps(forward, inverse_operator, …)`` gives the same numbers for
many metrics, PSFs and CTFs at once, from the kernel's low-rank factors, in
tiles under ``max_memory`` (see :mod:`minnorm.engine.resolution`): no n × n
matrix is formed.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import _mne
from ..engine.resolution import FUNCTIONS, METRICS, dense_metrics, lowrank_metrics
from .matrix import resolution_factors
from .spread import source_spaces

__all__ = ["resolution_metrics", "resolution_maps"]


def resolution_metrics(resmat, src, function="psf", metric="peak_err", threshold=0.5,
                       verbose=None):
    """A spatial resolution metric of every PSF or CTF of ``resmat``.

    Same arguments and results as ``mne.minimum_norm.resolution_metrics``.

    Parameters
    ----------
    resmat : ndarray of shape (n_orient · n_sources, n_sources)
    src : mne.SourceSpaces
        Surface source space of the forward and operator.
    function : "psf" | "ctf"
    metric : "peak_err" | "cog_err" | "sd_ext" | "maxrad_ext" | "peak_amp" | "sum_amp"
        Distances in cm; amplitudes relative to the largest over sources.
    threshold : float
        Amplitude fraction for ``maxrad_ext``.

    Returns
    -------
    resolution_metric : mne.SourceEstimate
    """
    if metric not in METRICS:
        raise ValueError(f'"{metric}" is not a recognized metric.')
    if function not in FUNCTIONS:
        raise ValueError(f"Not a recognised resolution function: {function}.")
    with _mne.log_level(verbose):
        spaces = source_spaces(src)[0]
        loc = _mne.source_locations(spaces)
        resmat = np.asarray(resmat)
        _check_shape(resmat, len(loc))
        values = dense_metrics(resmat, loc, function, (metric,),
                               threshold=_check_threshold(threshold))
        return _stc(values[metric], spaces)


def resolution_maps(forward, inverse_operator, *, method="dSPM", lambda2=1.0 / 9.0,
                    functions=FUNCTIONS, metrics=METRICS, threshold=0.5, max_memory=None,
                    verbose=None) -> dict:
    """Resolution metrics of every source's PSF and CTF, without the resolution matrix.

    Each map equals ``resolution_metrics(make_inverse_resolution_matrix(forward,
    inverse_operator, method, lambda2), forward["src"], function, metric,
    threshold)``, but R = K L is formed tile by tile from the kernel's factors,
    every metric of every function computed as its tile passes, on every core.

    Parameters
    ----------
    forward : mne.Forward
        Fixed orientation (one PSF per source), e.g.
        ``mne.convert_forward_solution(fwd, surf_ori=True, force_fixed=True)``.
    inverse_operator : minnorm.InverseOperator | mne.minimum_norm.InverseOperator
    method : "MNE" | "dSPM" | "sLORETA" | "eLORETA"
    lambda2 : float
    functions : sequence of "psf", "ctf"
    metrics : sequence of metric names (see :func:`resolution_metrics`)
    threshold : float
        Amplitude fraction for ``maxrad_ext``.
    max_memory : int | str | None
        Working memory for the tiles (default 1 GiB), beyond the factors:
        the kernel (n_rows × r) and fields × leadfield (r × n).

    Returns
    -------
    dict (function, metric) → mne.SourceEstimate
    """
    functions = _names(functions, FUNCTIONS, "functions")
    metrics = _names(metrics, METRICS, "metrics")
    threshold = _check_threshold(threshold)
    with _mne.log_level(verbose):
        if not _mne.is_fixed(forward):
            raise ValueError(
                "resolution maps need one point-spread function per source, so a fixed-"
                "orientation forward: mne.convert_forward_solution(fwd, surf_ori=True, "
                "force_fixed=True)")
        loc = _mne.source_locations(forward["src"])
        f = resolution_factors(forward, inverse_operator, method=method, lambda2=lambda2)
        values = lowrank_metrics(f.A, f.B, loc, functions=functions, metrics=metrics,
                                 threshold=threshold, max_memory=max_memory)
        return {key: _stc(v, forward["src"]) for key, v in values.items()}


def _check_shape(resmat, n):
    if resmat.ndim != 2:
        raise ValueError(f"resmat must be a 2-D resolution matrix, got shape {resmat.shape}")
    rows, cols = resmat.shape
    if rows < cols:
        raise ValueError(f"Number of target sources ({rows}) cannot be lower than number of "
                         f"input sources ({cols})")
    if rows % cols:
        raise ValueError(f"Number of target sources ({rows}) must be a multiple of the number "
                         f"of input sources ({cols})")
    if cols != n or rows // cols not in (1, 3):
        raise ValueError(f"resmat of shape {resmat.shape} does not fit the {n} sources of src: "
                         "it must be (n_sources, n_sources) or (3·n_sources, n_sources); a free "
                         "forward gives more columns: use a fixed-orientation forward")


def _check_threshold(threshold) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) \
            or not 0 <= threshold < 1:
        raise ValueError(f"threshold must be a fraction of the peak amplitude in [0, 1), got "
                         f"{threshold!r}")
    return float(threshold)


def _names(values, allowed, what) -> tuple:
    values = (values,) if isinstance(values, str) else tuple(values)
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise ValueError(f"{what} must be a non-empty selection of {', '.join(allowed)}; got "
                         f"{', '.join(map(repr, bad)) or 'none'}")
    return tuple(dict.fromkeys(values))


def _stc(values, spaces):
    return _mne.stc_from_arrays(values[:, np.newaxis], _mne.vertices(spaces), tmin=0.0,
                                tstep=1.0, subject=spaces[0].get("subject_his_id"),
                                kind="surface", vector=False)
