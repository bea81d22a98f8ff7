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

from .checks import positive_number
from .linalg import stacked_matmul, sym_power

logger = logging.getLogger("minnorm")

DEFAULTS = dict(eps=1e-6, max_iter=20, force_equal=False)
_NOT_PSD = "eLORETA: a source block is not positive semi-definite"


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


def _eigh_psd(A: np.ndarray, rcond: float = 1e-7):
    """Eigen-decomposition of a stack of PSD 3 × 3 blocks.

    Eigenvalues at or below ``rcond`` × the block's largest come back as 0; a
    clearly negative one is an error. (Halves of the stack on two threads took
    as long as one call: 29 against 30 ms for 20,451 blocks.)
    """
    s, u = np.linalg.eigh(A)
    limit = s[..., -1:] * rcond
    if not (s >= -limit).all():
        raise ValueError(_NOT_PSD)
    s[s <= limit] = 0.0
    return s, u


class _Gain:
    """The prior-weighted gain Go (as its transpose, one source's rows together) in the
    working precision, with the buffers of one iteration.

    An iteration is two n × n × n_rows products: C = Go R Goᵀ as a symmetric
    rank-k update of (Go B)ᵀ, R = B Bᵀ, and X = L⁻¹ Go, L the Cholesky factor
    of C + λ² I, whose 3-row blocks give G_kᵀ N G_k = X_kᵀ X_k.

    Every product runs on numpy's BLAS, X as Go L⁻ᵀ (a GEMM: twice a triangular
    solve's flops). numpy and SciPy ship separate OpenBLAS builds, each with its own
    threads, which spin for a while after a call: alternating the two (numpy's
    products, SciPy's syrk or solve) made each ~1.5× slower on this 2-core machine.
    Measured at 303 × 61,353 on two threads, alone (float64 / float32): numpy's
    Yᵀ Y (one syrk) 126 / 81 ms, SciPy's syrk 168 / 95; the GEMM with L⁻¹ 182 / 87,
    SciPy's solve (trsm) 168 / 60 — but 180–190 / 65–100 ms inside the loop, and
    105–180 ms in float32 after numpy's syrk. The fit went from 3.6–4.2 s to 3.1–3.4 s.
    """

    def __init__(self, Got64: np.ndarray, dtype):
        self.Got = Got64.astype(dtype, copy=False)
        self.dtype = np.dtype(dtype)
        self.work = np.empty_like(self.Got)

    def cov(self, B: np.ndarray, diagonal: bool) -> np.ndarray:
        """Go R Goᵀ (n, n) in float64, both triangles, for R = B Bᵀ."""
        B = B.astype(self.dtype)
        Yt = weight_rows(B if diagonal else B.transpose(0, 2, 1), self.Got, out=self.work)
        return (Yt.T @ Yt).astype(np.float64)  # numpy: one syrk, both triangles

    def whiten(self, C: np.ndarray, lambda2: float) -> np.ndarray:
        """X = L⁻¹ Go as Xᵀ (n_rows, n), L L ᵀ = C + λ² I (factorised in float64)."""
        L = np.linalg.cholesky(C + lambda2 * np.eye(len(C)))
        return np.matmul(self.Got, np.linalg.inv(L).T.astype(self.dtype), out=self.work)

    def blocks(self, Xt: np.ndarray, n_orient: int) -> np.ndarray:
        """X_kᵀ X_k per source: (n_src, 3, 3), or ‖x_k‖² (n_rows,) for one orientation."""
        if n_orient == 1:
            return np.einsum("km,km->k", Xt, Xt, dtype=np.float64)
        n = Xt.shape[1]
        X3 = Xt.reshape(-1, 3, n)
        return stacked_matmul(X3, X3.transpose(0, 2, 1)).astype(np.float64)


class _Anderson:
    """Anderson acceleration (type II) of the fixed point R ← g(R), mixing the last
    ``depth`` iterates.
    """

    def __init__(self, depth: int = 3):
        self.depth = depth
        self.reset()

    def reset(self) -> None:
        self.g, self.f = [], []

    def mix(self, R, g):
        """The next iterate from R and its image g (g itself until there are two)."""
        self.g.append(g.ravel())
        self.f.append((g - R).ravel())
        del self.g[:-self.depth - 1], self.f[:-self.depth - 1]
        if len(self.f) < 2:
            return g
        dF = np.diff(np.array(self.f), axis=0)
        gamma = np.linalg.lstsq(dF.T, self.f[-1], rcond=None)[0]
        return (self.g[-1] - gamma @ np.diff(np.array(self.g), axis=0)).reshape(g.shape)


# Relative change of R below which the iterations leave float32 for float64:
# float32 resolves R to ~1e-5, and a fixed point forgets where it started.
FLOAT32_UNTIL = 1e-4


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
    G : ndarray of shape (n_components, n_orient·n_sources)
        Whitened gain, without depth or orientation prior, in the basis of its
        components: n_nonzero of them, or fewer when the sources have fewer
        (e.g. 3 dipoles, 9 columns, against 303 data dimensions): the rest of
        the whitened space lies outside G's range and adds nothing to
        Gᵀ (G R Gᵀ + λ²I)⁻¹ G, while the trace stays normalised to n_nonzero,
        as MNE-Python's.
    orient_std : ndarray of shape (n_orient·n_sources,)
        √ of the orientation prior (ones for free or fixed).
    n_orient : 1 or 3
    lambda2 : float
    n_nonzero : int
        Rank of the whitened data space.
    eps, max_iter, force_equal
        Convergence tolerance on the relative change of R between iterations
        (MNE-Python's), iteration cap, and one weight per location instead of
        a 3 × 3 block.
    R_init : ndarray of shape (n_rows,) or (n_sources, 3, 3), optional
        Starting weights (a warm start, e.g. R for a nearby λ²), in the
        layout of R; default the orientation prior.

    Returns
    -------
    R_sqrt : ndarray of shape (n_rows,) or (n_sources, 3, 3)
        Square root of the weights, normalised so that trace(G R Gᵀ) = r.

    Notes
    -----
    The iterations run in float32 while R still changes by more than
    ``FLOAT32_UNTIL`` and in float64 after that (and always for the last
    allowed one), so the stopping rule and the fixed point are MNE-Python's;
    Anderson acceleration mixes the last iterates, float32's among them after
    the switch (their rounding is far below the changes they describe then);
    C is formed at each mixed iterate.
    """
    if len(G) > n_nonzero:
        raise ValueError(f"eLORETA needs the gain in at most its {n_nonzero} components, got "
                         f"{len(G)} rows")
    diagonal = n_orient == 1 or force_equal
    n_src = G.shape[1] // n_orient
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
    Got = np.multiply(G.T, orient_std[:, np.newaxis], out=np.empty(G.shape[::-1]))  # source-major
    grams = _grams(Got, n_orient)
    # trace(Go R Goᵀ) = ⟨R, traced⟩ (R and the grams are both block diagonal): the
    # normalisation needs no product
    traced = grams if not diagonal or n_orient == 1 else _diag(grams)
    R /= np.vdot(R, traced) / n_nonzero
    gain = _Gain(Got, np.float32 if max_iter > 1 and _float32_safe(grams) else np.float64)
    B = _factor(R, diagonal)
    mixer = _Anderson()

    def image(gain, B):
        """g(R) for R = B Bᵀ, normalised, and its factor."""
        g, B_g = _update(gain.blocks(gain.whiten(gain.cov(B, diagonal), lambda2), n_orient),
                         R_prior, n_orient, force_equal)
        scale = np.vdot(g, traced) / n_nonzero
        return g / scale, B_g / np.sqrt(scale)

    for it in range(max_iter):
        try:
            g, B_g = image(gain, B)
        except ValueError:  # a block float32 cannot resolve: this iteration again in float64
            if gain.dtype == np.float64:
                raise
            logger.debug("eLORETA: float32 cannot resolve every block; float64 from here")
            gain = _Gain(Got, np.float64)
            mixer.reset()
            g, B_g = image(gain, B)
        delta = np.linalg.norm(g - R) / np.linalg.norm(R)
        logger.debug("eLORETA iteration %d (%s): relative change %.1e", it + 1,
                     gain.dtype.name, delta)
        if delta < eps and gain.dtype == np.float64:
            logger.info("eLORETA converged after %d iterations (%.2g < %.2g)", it + 1, delta, eps)
            break
        if gain.dtype != np.float64 and (delta < max(FLOAT32_UNTIL, eps) or it + 2 >= max_iter):
            gain = _Gain(Got, np.float64)  # float64 from here; the iterates so far stay mixed
        R = mixer.mix(R, g)
        B = B_g if R is g else _mixed_factor(R, diagonal)
        if B is None:  # the mixed weights are not positive semi-definite: take g as it is
            R, B = g, B_g
    else:
        warnings.warn(f"eLORETA weight fitting did not converge (>= {eps})", RuntimeWarning,
                      stacklevel=3)
    del gain
    R = g
    # trace(G R Gᵀ) = trace(Go (R / prior) Goᵀ) = Σ_k ⟨R_k / prior_k, Go_kᵀ Go_k⟩
    R /= np.vdot(R / R_prior, traced) / n_nonzero
    return _factor(R, diagonal)


def _factor(R: np.ndarray, diagonal: bool) -> np.ndarray:
    """B with B Bᵀ = R (√R for diagonal weights, R's blocks' symmetric roots otherwise)."""
    return np.sqrt(R) if diagonal else sym_power(R, 0.5, what=_NOT_PSD)


def _mixed_factor(R: np.ndarray, diagonal: bool) -> np.ndarray | None:
    """B with B Bᵀ = R for mixed weights, or None where a block is not positive semi-definite.

    C = Go R Goᵀ needs any factor, not the symmetric root: the blocks' Cholesky factors
    (a tenth of the eigen-decompositions' time), the root where a block is singular.
    """
    if diagonal:
        return np.sqrt(R) if (R >= 0).all() else None
    try:
        return np.linalg.cholesky(R)
    except np.linalg.LinAlgError:
        pass
    try:
        return _factor(R, diagonal)
    except ValueError:
        return None


def _update(M, R_prior, n_orient, force_equal):
    """The eLORETA update R = prior ∘ M**-½ per source, and a factor B (B Bᵀ = R)."""
    if n_orient == 1:
        R = R_prior / np.sqrt(M)
        return R, np.sqrt(R)
    s, u = _eigh_psd(M)
    with np.errstate(divide="ignore"):
        inv_root = np.where(s > 0, 1.0 / np.sqrt(s), 0.0)
    if force_equal:
        R = np.repeat(1.0 / np.sqrt(s).mean(axis=-1), 3) * R_prior
        return R, np.sqrt(R)
    R = np.matmul(u * inv_root[:, np.newaxis, :], u.transpose(0, 2, 1)) * R_prior
    std = np.sqrt(np.einsum("kii->ki", R_prior))  # R = D M**-½ D, D = diag(std)
    return R, std[:, :, np.newaxis] * (u * np.sqrt(inv_root)[:, np.newaxis, :])


def _grams(Got: np.ndarray, n_orient: int) -> np.ndarray:
    """Go_kᵀ Go_k per source (n_src, 3, 3), or the rows' squared norms for one orientation."""
    if n_orient == 1:
        return np.einsum("km,km->k", Got, Got)
    G3 = Got.reshape(-1, 3, Got.shape[1])
    return stacked_matmul(G3, G3.transpose(0, 2, 1))


def _diag(blocks: np.ndarray) -> np.ndarray:
    """The diagonals of 3 × 3 blocks, as one row per component (n_rows,)."""
    return np.einsum("kii->ki", blocks).ravel()


# float32 resolves a source's 3 × 3 block down to ~1e-7 of its largest eigenvalue: a block
# with a direction the sensors barely see (a radial dipole in a sphere) stays in float64
# (on the template cortex with loose 0.2 the smallest ratio is ~5e-5)
FLOAT32_MIN_RATIO = 1e-6


def _float32_safe(grams: np.ndarray) -> bool:
    """Whether every source's gain block is well enough conditioned for float32 iterations."""
    if grams.ndim == 1:
        return True
    eig = np.linalg.eigvalsh(grams)
    ok = bool(np.all(eig[:, 0] > FLOAT32_MIN_RATIO * eig[:, -1]))
    logger.debug("eLORETA: smallest eigenvalue ratio of the sources' gain blocks %.1e: %s",
                 np.min(eig[:, 0] / np.maximum(eig[:, -1], np.finfo(float).tiny)),
                 "float32 first" if ok else "float64 throughout")
    return ok


def weight_rows(W: np.ndarray, Gt: np.ndarray, /, *, out: np.ndarray | None = None
                ) -> np.ndarray:
    """W_k Gₖᵀ for every source: Gᵀ (n_rows, n) with each row scaled (W of shape (n_rows,))
    or each source's three rows mixed by its block (W of shape (n_src, 3, 3)), on every core.

    With W = R**½ (symmetric blocks) this is (G R**½)ᵀ. ``out`` (n_rows, n), C-ordered,
    receives the result.
    """
    if out is None:
        out = np.empty(Gt.shape, dtype=np.result_type(W, Gt))
    if W.ndim == 1:
        return np.multiply(Gt, W[:, np.newaxis], out=out)
    n = Gt.shape[1]
    G3, out3 = np.ascontiguousarray(Gt).reshape(len(W), 3, n), out.reshape(len(W), 3, n)
    stacked_matmul(W, G3, out=out3)
    return out
