"""eLORETA: source weights that make the inverse exactly standardised.

Pascual-Marqui (2007, 2011): find a block-diagonal source weight matrix R such
that, with N = (G R Gᵀ + λ² I)⁺ (on the rank-r whitened data space),

    R_k = (G_kᵀ N G_k)^(−½)        for every source k (3 × 3 or 1 × 1 blocks)

by fixed-point iteration; trace(G R Gᵀ) is renormalised to r at every step so
that λ² keeps its meaning. Loose orientation priors are re-applied after each
update (as MNE-Python does). ``force_equal`` uses one weight per location
(the reciprocal of the mean of the square roots of the block's eigenvalues).

All updates are batched over sources (no Python loop over sources).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
from scipy import linalg

from .checks import positive_number

logger = logging.getLogger("minnorm")

DEFAULTS = dict(eps=1e-6, max_iter=20, force_equal=False)


def check_params(method_params) -> dict:
    """eLORETA options merged with the defaults; unknown keys are an error."""
    params = dict(DEFAULTS)
    if method_params is None:
        return params
    if not isinstance(method_params, dict):
        raise TypeError(f"method_params must be a dict or None, got {type(method_params).__name__}")
    unknown = set(method_params) - set(DEFAULTS)
    if unknown:
        raise ValueError(
            f"unknown eLORETA option(s) {sorted(unknown)}; allowed: {sorted(DEFAULTS)}"
        )
    params.update(method_params)
    params["force_equal"] = _flag(params["force_equal"])
    params["eps"] = positive_number(params["eps"], "eLORETA eps", hint=" (default 1e-6)")
    params["max_iter"] = _count(params["max_iter"])
    return params


def _flag(value) -> bool:
    """force_equal: True, False or None (None means False, as in MNE)."""
    if value is None or isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"eLORETA force_equal must be True or False, got {value!r}")


def _count(value) -> int:
    """max_iter: a whole number >= 1 (integral floats such as 20.0 are accepted)."""
    whole = isinstance(value, (int, np.integer)) or (
        isinstance(value, (float, np.floating)) and np.isfinite(value) and value == int(value))
    if isinstance(value, (bool, np.bool_)) or not whole:
        raise TypeError(f"eLORETA max_iter must be a whole number >= 1 (default 20), "
                        f"got {value!r}")
    if value < 1:
        raise ValueError(f"eLORETA max_iter must be >= 1 (default 20), got {value!r}")
    return int(value)


def _block_times(R: np.ndarray, G: np.ndarray) -> np.ndarray:
    """R_k G_kᵀ for every source k: (n_src, 3, 3) × (n_chan, 3·n_src) → (3·n_src, n_chan).

    One einsum over the sources (a stacked matmul on the strided blocks of G
    would miss BLAS and run a slow generic loop).
    """
    out = np.einsum("kij,mkj->kim", R, G.reshape(G.shape[0], -1, 3), optimize=False)
    return out.reshape(-1, G.shape[0])


def _block_gram(Gt: np.ndarray, N: np.ndarray) -> np.ndarray:
    """G_kᵀ N G_k for every source k → (n_src, 3, 3), from Gt = Gᵀ (3·n_src, n_chan).

    Gt @ N is one GEMM; the 3 × 3 blocks are then small products on
    contiguous rows.
    """
    n_chan = Gt.shape[1]
    NGt = (Gt @ N).reshape(-1, 3, n_chan)  # G_kᵀ N
    return np.matmul(NGt, Gt.reshape(-1, 3, n_chan).transpose(0, 2, 1))


def _sym_pow(A: np.ndarray, power: float, rcond: float = 1e-7):
    """A**power for stacks of symmetric PSD matrices; also √eigenvalues.

    Eigenvalues below ``rcond`` × the largest are treated as zero (their
    inverse as zero too).
    """
    s, u = np.linalg.eigh(A)
    limit = s[..., -1:] * rcond
    if not (s >= -limit).all():
        raise ValueError("eLORETA: a source block is not positive semi-definite")
    s = np.where(s <= limit, np.inf if power < 0 else 0.0, s)
    root = np.sqrt(s)
    use = 1.0 / root if power < 0 else root
    if abs(power) != 0.5:
        raise ValueError("only powers ±0.5 are supported")
    return np.matmul(u * use[..., np.newaxis, :], u.swapaxes(-2, -1)), root


def _normalize(Gt, R, n_nonzero, diagonal):
    """Scale R in place so that trace(G R Gᵀ) = n_nonzero; return G R Gᵀ.

    ``Gt`` is Gᵀ as a C-contiguous (n_rows, n_chan) array: each source's rows
    are contiguous, so R_k G_kᵀ is a stack of small products and G (R Gᵀ) one GEMM.
    """
    if diagonal:
        R_Gt = R[:, np.newaxis] * Gt
    else:
        R_Gt = np.matmul(R, Gt.reshape(len(R), 3, -1)).reshape(Gt.shape)
    GRGt = Gt.T @ R_Gt
    norm = np.trace(GRGt) / n_nonzero
    GRGt /= norm
    R /= norm
    return GRGt


def _inverse_data_cov(GRGt, lambda2, n_nonzero):
    """N = (G R Gᵀ + λ² I)⁺ restricted to the n_nonzero largest directions.

    When G is given in the basis of its n_nonzero components (the usual case,
    see :func:`minnorm.engine.kernel.prepare_kernel`), that is the plain
    inverse, from a Cholesky factorisation (no eigen-decomposition).
    """
    if len(GRGt) == n_nonzero:
        factor = linalg.cho_factor(GRGt + lambda2 * np.eye(n_nonzero), lower=True)
        return linalg.cho_solve(factor, np.eye(n_nonzero))
    s, u = linalg.eigh(GRGt)
    s = np.abs(s)
    order = np.argsort(s)[::-1][:n_nonzero]
    s, u = s[order], u[:, order]
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(s > 0, 1.0 / (s + lambda2), 0.0)
    return (u * s) @ u.T


def eloreta_weights(
    G: np.ndarray,
    /,
    *,
    orient_std: np.ndarray,
    n_orient: int,
    lambda2: float,
    n_nonzero: int,
    eps: float,
    max_iter: int,
    force_equal: bool,
    R_init: np.ndarray | None = None,
) -> np.ndarray:
    """Fit the eLORETA weights and return R**½.

    Parameters
    ----------
    G : ndarray of shape (n_channels, n_orient·n_sources)
        Whitened gain, without depth or orientation prior.
    orient_std : ndarray of shape (n_orient·n_sources,)
        √ of the orientation prior (ones for free or fixed).
    n_orient : 1 or 3
    lambda2 : float
    n_nonzero : int
        Rank of the whitened data space.
    eps, max_iter, force_equal
        Convergence tolerance on the relative change of R, iteration cap,
        and one weight per location instead of a 3 × 3 block.
    R_init : ndarray of shape (n_rows,) or (n_sources, 3, 3), optional
        Starting weights (a warm start, e.g. R for a nearby λ²), in the
        layout of R; default the orientation prior.

    Returns
    -------
    R_sqrt : ndarray of shape (n_rows,) or (n_sources, 3, 3)
        Square root of the weights, normalised so that trace(G R Gᵀ) = r.
    """
    diagonal = n_orient == 1 or force_equal
    n_src = G.shape[1] // n_orient
    Go = G * orient_std
    if diagonal:
        R_prior = orient_std**2
        R = R_prior.copy()
    else:
        std = orient_std.reshape(n_src, 3)
        R_prior = std[:, np.newaxis, :] * std[:, :, np.newaxis]
        R = np.eye(3)[np.newaxis] * R_prior
    if R_init is not None:
        if R_init.shape != R.shape:
            raise ValueError(f"R_init must have shape {R.shape}, got {R_init.shape}")
        R = np.array(R_init, dtype=np.float64)
    Got = np.ascontiguousarray(Go.T)  # (n_rows, n_chan): source-major
    GRGt = _normalize(Got, R, n_nonzero, diagonal)
    for it in range(max_iter):
        N = _inverse_data_cov(GRGt, lambda2, n_nonzero)
        R_last = R.copy()
        if n_orient == 1:
            R[:] = 1.0 / np.sqrt(np.einsum("km,km->k", Got @ N, Got))
        else:
            M = _block_gram(Got, N)  # G_kᵀ N G_k, (n_src, 3, 3)
            inv_sqrt, root = _sym_pow(M, -0.5)
            R[:] = np.repeat(1.0 / root.mean(axis=-1), 3) if force_equal else inv_sqrt
        R *= R_prior  # re-apply the orientation prior, which eLORETA undoes
        GRGt = _normalize(Got, R, n_nonzero, diagonal)
        delta = np.linalg.norm(R - R_last) / np.linalg.norm(R_last)
        logger.debug("eLORETA iteration %d: relative change %.1e", it + 1, delta)
        if delta < eps:
            logger.info("eLORETA converged after %d iterations (%.2g < %.2g)", it + 1, delta, eps)
            break
    else:
        warnings.warn(f"eLORETA weight fitting did not converge (>= {eps})", RuntimeWarning,
                      stacklevel=3)
    del Got
    _normalize(np.ascontiguousarray(G.T), R, n_nonzero, diagonal)  # orientation prior undone
    return np.sqrt(R) if diagonal else _sym_pow(R, 0.5)[0]


def weight_gain(G: np.ndarray, R_sqrt: np.ndarray) -> np.ndarray:
    """G R**½ for diagonal (n_rows,) or block (n_src, 3, 3) weights."""
    if R_sqrt.ndim == 1:
        return G * R_sqrt
    return _block_times(R_sqrt, G).T
