"""Source priors: orientation (fixed / loose / free) and depth weighting.

The source covariance R is diagonal::

    R = diag(depth_prior · orient_prior) · scale

* the orientation prior multiplies the two tangential components of each
  cortical dipole by ``loose`` (0: fixed to the normal, 1: free);
* the depth prior counteracts the surface bias of the minimum norm:
  wₖ = (‖Lₖ‖²)^(−exp), bounded so that no source is boosted more than
  ``limit²`` times the best-seen source (Lin et al. 2006);
* ``scale`` makes trace(W L R Lᵀ Wᵀ) equal to the number of whitened channels,
  so that λ² = 1/SNR² has the same meaning for every data set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .linalg import chunks, run_parallel

__all__ = [
    "DepthOptions",
    "surface_frames",
    "to_surface_orientation",
    "to_fixed_orientation",
    "depth_prior",
    "orient_prior",
    "triage_loose",
]

SOURCE_KINDS = ("surface", "volume", "discrete")
SOURCE_BLOCK = 1024  # sources per block of the per-source 3 × 3 work (rotation, depth)


@dataclass(frozen=True)
class DepthOptions:
    """Depth weighting options (MNE-Python's ``depth`` argument, dict form).

    Attributes
    ----------
    exp : float or None
        Exponent; None or 0 switches depth weighting off.
    limit : float or None
        Largest allowed ratio of weights (as an amplitude, squared inside).
    limit_depth_chs : bool or "whiten"
        True: use only the best channel type (gradiometers, else
        magnetometers, else EEG); "whiten": whiten the gain first; False: all.
    combine_xyz : "spectral" or "fro"
        Norm of each source's 3-column block of the gain.
    allow_fixed_depth : bool
        Allow depth weighting with a fixed-orientation forward.
    """

    exp: float | None = 0.8
    limit: float | None = 10.0
    limit_depth_chs: bool | Literal["whiten"] = True
    combine_xyz: Literal["spectral", "fro"] = "spectral"
    allow_fixed_depth: bool = False

    @classmethod
    def from_arg(cls, depth) -> "DepthOptions":
        """Build from a float, None or a dict of the fields above."""
        if isinstance(depth, cls):
            return depth
        if depth is None or isinstance(depth, (int, float, np.number)):
            depth = dict(exp=depth)
        if not isinstance(depth, dict):
            raise TypeError(f"depth must be a float, None or a dict, got {type(depth)}")
        unknown = set(depth) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(
                f"unknown depth option(s) {sorted(unknown)}; "
                f"allowed: {sorted(cls.__dataclass_fields__)}"
            )
        opts = cls(**depth)
        exp = opts.exp
        if exp is not None:
            exp = float(exp)
            if not np.isfinite(exp) or exp < 0:
                raise ValueError(f"depth exponent must be >= 0, got {exp}")
            exp = exp or None  # 0 means off
        if opts.limit_depth_chs not in (True, False, "whiten"):
            raise ValueError(
                "depth limit_depth_chs must be True, False or 'whiten', "
                f"got {opts.limit_depth_chs!r}"
            )
        if opts.combine_xyz not in ("spectral", "fro"):
            raise ValueError(
                f"depth combine_xyz must be 'spectral' or 'fro', got {opts.combine_xyz!r}"
            )
        return cls(exp, opts.limit, opts.limit_depth_chs, opts.combine_xyz,
                   bool(opts.allow_fixed_depth))


def triage_loose(kinds, loose, fixed="auto") -> dict[str, float]:
    """Resolve ``loose`` and ``fixed`` into one loose value per source-space kind.

    Parameters
    ----------
    kinds : sequence of str
        Kind of each source space ("surface", "volume", "discrete").
    loose : float, "auto" or dict
        "auto" is 0.2 when every source space is a surface, else 1.
    fixed : bool or "auto"

    Returns
    -------
    loose : dict of str → float
    """
    kinds = list(kinds)
    if isinstance(fixed, str):
        if fixed != "auto":
            raise ValueError(f"fixed must be True, False or 'auto', got {fixed!r}")
    elif not isinstance(fixed, (bool, np.bool_)):
        raise TypeError(f"fixed must be True, False or 'auto', got {fixed!r}")
    orig = loose
    if isinstance(loose, str):
        if loose != "auto":
            raise ValueError(f"loose must be a number in [0, 1], 'auto' or a dict, got {loose!r}")
        if fixed is True:
            loose = 0.0
        else:
            loose = 0.2 if all(k == "surface" for k in kinds) else 1.0
    if not isinstance(loose, dict):
        loose = {k: float(loose) for k in kinds}
    if set(loose) != set(kinds):
        raise ValueError(
            f"loose, if dict, must have keys {sorted(set(kinds))} to match the "
            f"source space, got {sorted(loose)}"
        )
    loose = {k: float(v) for k, v in loose.items()}
    if fixed is True and any(v != 0 for v in loose.values()):
        raise ValueError(f'with fixed=True, loose must be 0 or "auto", got {orig!r}')
    if fixed is False and any(v == 0 for v in loose.values()):
        raise ValueError('loose=0 means fixed orientation: use fixed=True or "auto"')
    for kind, value in loose.items():
        if kind not in ("surface", "discrete") and value == 0:
            raise ValueError(
                f"fixed orientation (fixed=True or loose=0; command line --fixed) needs "
                f"surface normals, which {kind} source spaces lack: use a free orientation "
                "(loose=1 or 'auto')"
            )
        if not 0 <= value <= 1:
            raise ValueError(f"loose ({kind}) must be between 0 and 1, got {value}")
        if kind not in ("surface", "discrete") and value != 1:
            raise ValueError(
                f"loose must be 1 or 'auto' for {kind} source spaces (no surface "
                f"normals), got loose[{kind!r}] = {value}"
            )
    return loose


def surface_frames(normals: np.ndarray) -> np.ndarray:
    """Local orthonormal frames whose third axis is the surface normal.

    Parameters
    ----------
    normals : ndarray of shape (n_sources, 3)

    Returns
    -------
    frames : ndarray of shape (n_sources, 3, 3)
        ``frames[k]`` has rows (t₁, t₂, n): two tangential axes, then the normal.
        The tangential pair is the eigenbasis of I − n nᵀ, as in MNE-Python.
    """
    outer = np.einsum("...i,...j->...ij", normals, normals)
    _, vecs = np.linalg.eigh(np.eye(3) - outer)
    vecs = vecs[..., ::-1]
    signs = np.sign(np.matmul(normals[..., np.newaxis, :], vecs[..., -1:]))
    signs[signs == 0] = 1
    return (vecs * signs).swapaxes(-1, -2)


def to_surface_orientation(gain_xyz: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Rotate each source's (x, y, z) gain columns into its local frame.

    ``gain_xyz`` is (n_channels, 3·n_sources); returns the same shape with
    columns (t₁, t₂, n) per source: Lₖ ← Lₖ Fₖᵀ (stacked 3 × 3 products, in
    blocks of sources on every core).
    """
    n_chan = gain_xyz.shape[0]
    out = np.empty(gain_xyz.shape, np.result_type(gain_xyz, frames))
    src, dst = gain_xyz.reshape(n_chan, -1, 3), out.reshape(n_chan, -1, 3)

    def work(chunk):
        k = slice(*chunk)
        rotated = np.matmul(src[:, k].transpose(1, 0, 2), frames[k].transpose(0, 2, 1))
        dst[:, k] = rotated.transpose(1, 0, 2)

    run_parallel(work, chunks(len(frames), SOURCE_BLOCK))
    return out


def to_fixed_orientation(gain_xyz: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Project each source's gain on its normal: (n_channels, n_sources).

    The result is rounded to float32, as MNE-Python stores fixed-orientation
    forward solutions, so that both give identical operators.
    """
    n_chan = gain_xyz.shape[0]
    fixed = np.einsum("cki,ki->ck", gain_xyz.reshape(n_chan, -1, 3), normals)
    return fixed.astype(np.float32)


def depth_prior(
    gain: np.ndarray,
    /,
    *,
    n_orient: int,
    exp: float,
    limit: float | None,
    combine_xyz: str = "spectral",
    limit_like_c: bool = True,
) -> np.ndarray:
    """Depth weights, one per gain column.

    Parameters
    ----------
    gain : ndarray of shape (n_channels, n_orient·n_sources)
        The gain restricted to the channels that define depth.
    n_orient : 1 or 3
    exp : float
        Exponent of the weights.
    limit : float or None
        Bound on the ratio of the largest to the smallest amplitude weight.
    combine_xyz : "spectral" or "fro"
        Sensitivity of a free source: the largest eigenvalue of Lₖᵀ Lₖ
        ("spectral") or its trace ("fro").
    limit_like_c : bool
        True applies the limit as MNE-C does; False as old MNE-Python did
        (used when all channel types enter the depth prior).

    Returns
    -------
    prior : ndarray of shape (n_orient·n_sources,)
    """
    if n_orient == 1 or combine_xyz == "fro":
        sens = np.sum(gain**2, axis=0)
        if n_orient == 3:
            sens = sens.reshape(-1, 3).sum(axis=1)
        sens[sens == 0.0] = np.min(sens[sens != 0.0])  # spherical model's centre
    else:
        blocks = gain.reshape(gain.shape[0], -1, 3)
        # Lₖᵀ Lₖ (n_sources, 3, 3) in one einsum, in the gain's precision: with a float32
        # forward, MNE-Python's depth prior depends on this very summation order
        gram = np.einsum("cki,ckj->kij", blocks, blocks)
        sens = np.linalg.eigvalsh(gram)[:, -1]
        if np.any(sens == 0.0):  # MNE-Python fails here on an inf; treat it as "fro" does
            sens[sens == 0.0] = np.min(sens[sens != 0.0], initial=np.inf)
    weight = 1.0 / sens
    if limit is not None:
        weight = np.minimum(weight / _weight_limit(weight, limit, limit_like_c), 1)
    with np.errstate(over="ignore", under="ignore"):
        prior = weight**exp
    _check_prior(prior, exp)
    return np.repeat(prior, 3) if n_orient == 3 else prior


def _check_prior(prior: np.ndarray, exp: float) -> None:
    """Every source keeps a finite, non-zero prior variance (else the estimate is NaN)."""
    lost = int(np.sum(~np.isfinite(prior) | (prior <= 0)))
    if lost:
        raise ValueError(
            f"depth exponent {exp:g} drives the depth weights of {lost} of {len(prior)} "
            "sources out of floating-point range (they would get NaN estimates): use a "
            "smaller depth exponent (typically 0.8; 2–5 is already extreme)")


def _weight_limit(weight: np.ndarray, limit: float, like_c: bool) -> float:
    """The weight above which weights are clipped."""
    ws = np.sort(weight)
    if not like_c:
        return ws[0] * limit**2
    above = np.flatnonzero(ws > limit**2 * ws[0])
    return ws[above[0]] if len(above) else ws[-1]


def orient_prior(kinds, n_sources, loose: dict[str, float]) -> np.ndarray:
    """Variance of each of the 3 components per source (tangential × loose).

    Parameters
    ----------
    kinds : sequence of str
        Kind of each source space.
    n_sources : sequence of int
        Number of sources in each source space.
    loose : dict of str → float
        From :func:`triage_loose`.

    Returns
    -------
    prior : ndarray of shape (3·Σ n_sources,)
    """
    parts = []
    for kind, n in zip(kinds, n_sources):
        block = np.ones((n, 3))
        block[:, :2] *= loose[kind]
        parts.append(block.ravel())
    return np.concatenate(parts) if parts else np.ones(0)
