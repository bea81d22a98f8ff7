"""The inverse operator: whitened, weighted gain decomposed once by SVD.

With the whitener W (n_channels × n_channels), the source covariance R
(diagonal, depth × orientation prior) and the gain L::

    G = W L R**½ = U S Vᵀ          # computed once, here

every minimum-norm kernel is then a cheap function of (U, S, V) and λ²
(see :mod:`minnorm.engine.kernel`).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .. import _mne
from ..engine.linalg import svd_wide
from ..engine.priors import (
    DepthOptions,
    depth_prior,
    orient_prior,
    surface_frames,
    to_fixed_orientation,
    to_surface_orientation,
    triage_loose,
)
from ..engine.whitening import Whitener, compute_whitener

__all__ = ["InverseOperator", "Preparation", "make_inverse_operator", "as_operator"]

logger = logging.getLogger("minnorm")


@dataclass(frozen=True)
class Preparation:
    """What :func:`minnorm.prepare_inverse_operator` prepared an operator for.

    ``apply_*(..., prepared=True)`` uses these values (see
    :mod:`minnorm.inverse.prepared`); ``method_params`` is None except for eLORETA.
    """

    method: str
    lambda2: float
    nave: float
    method_params: dict | None = None


@dataclass(frozen=True, eq=False)
class InverseOperator:
    """A minimum-norm inverse operator (immutable).

    Attributes
    ----------
    ch_names : tuple of str
        The M channels, in the order of the operator's columns.
    whitener : Whitener
        The noise model for ``nave`` = 1 and the SSP projector.
    noise_cov : ndarray of shape (M, M)
        The noise covariance as given (before projection), for files.
    eigen_fields : ndarray of shape (r, M)
        Uᵀ of G = U S Vᵀ.
    sing : ndarray of shape (r,)
        Singular values S.
    eigen_leads : ndarray of shape (n_rows, r)
        V; ``n_rows`` = 3·n_sources (free/loose) or n_sources (fixed).
    source_cov : ndarray of shape (n_rows,)
        Diagonal of R (depth × orientation prior × trace scale).
    depth_prior, orient_prior : ndarray of shape (n_rows,) or None
    source_ori : "free" or "fixed"
    source_nn : ndarray of shape (n_rows, 3)
        Direction of each row's dipole in the head (or MRI) frame.
    n_sources : int
    mne : minnorm._mne.MneContext
        What MNE-Python needs at the edges (source spaces, measurement info,
        projectors, transforms) — never used by the maths.
    prepared : Preparation or None
        Set by :func:`minnorm.prepare_inverse_operator`: the (method, λ², nave)
        whose kernel is cached, for ``apply_*(..., prepared=True)``.
    """

    ch_names: tuple
    whitener: Whitener
    noise_cov: np.ndarray
    eigen_fields: np.ndarray
    sing: np.ndarray
    eigen_leads: np.ndarray
    source_cov: np.ndarray
    depth_prior: np.ndarray | None
    orient_prior: np.ndarray | None
    source_ori: Literal["free", "fixed"]
    source_nn: np.ndarray
    n_sources: int
    mne: "_mne.MneContext"
    _kernels: dict = field(default_factory=dict, repr=False, compare=False)
    prepared: Preparation | None = None

    def __repr__(self) -> str:
        kind = self.mne.src.kind
        p = self.prepared
        ready = "" if p is None else \
            f", prepared for {p.method} (lambda2={p.lambda2:.4g}, nave={p.nave:g})"
        return (
            f"<InverseOperator | {len(self.ch_names)} channels, {self.n_sources} "
            f"{kind} sources, {self.source_ori} orientation, rank {self.n_nonzero}{ready}>"
        )

    @property
    def n_orient(self) -> int:
        """Dipole components per source: 1 (fixed) or 3."""
        return 1 if self.source_ori == "fixed" else 3

    @property
    def n_nonzero(self) -> int:
        """Rank of the whitened data space."""
        return self.whitener.n_nonzero

    @property
    def is_loose(self) -> bool:
        """Free-orientation operator whose tangential prior is in (0, 1]."""
        return self.orient_prior is not None and 0 < self.orient_prior[0] <= 1

    @property
    def src(self):
        """The MNE source spaces."""
        return self.mne.src

    @property
    def info(self):
        """The MNE measurement info of the operator's channels."""
        return self.mne.info

    @classmethod
    def from_mne(cls, inv) -> "InverseOperator":
        """Wrap an ``mne.minimum_norm.InverseOperator`` (e.g. from a -inv.fif file)."""
        return _mne.inverse_from_mne(inv, cls)

    def to_mne(self):
        """Return the equivalent ``mne.minimum_norm.InverseOperator``."""
        return _mne.inverse_to_mne(self)

    def replace(self, **changes) -> "InverseOperator":
        """A new operator with some fields changed (and an empty kernel cache)."""
        return dataclasses.replace(self, _kernels={}, **changes)


def make_inverse_operator(
    info,
    forward,
    noise_cov,
    loose="auto",
    depth=0.8,
    fixed="auto",
    rank=None,
    use_cps=True,
    verbose=None,
    *,
    on_mismatch: Literal["raise", "warn", "ignore"] = "warn",
) -> InverseOperator:
    """Assemble an inverse operator, as ``mne.minimum_norm.make_inverse_operator``.

    Parameters
    ----------
    info : mne.Info
        Channels to use; ``info["bads"]`` are left out.
    forward : mne.Forward
        The forward solution (gain L, source spaces).
    noise_cov : mne.Covariance
        Sensor noise covariance C.
    loose : float | "auto" | dict
        Tangential source variance relative to the normal one: 0 fixed,
        1 free; "auto" is 0.2 for surface source spaces and 1 otherwise.
    depth : float | None | dict
        Depth-weighting exponent (default 0.8), None for none, or a dict
        with keys ``exp``, ``limit``, ``limit_depth_chs``, ``combine_xyz``,
        ``allow_fixed_depth`` (see :class:`minnorm.engine.priors.DepthOptions`).
    fixed : bool | "auto"
        Fixed orientation normal to the cortex (needs ``loose`` 0 or "auto").
    rank : None | "info" | "full" | dict
        Rank of the noise covariance per channel type (None: estimated).
    use_cps : bool
        Use cortical patch statistics for the surface normals.
    verbose : bool | str | int | None
        Logging level for this call (as in MNE-Python).
    on_mismatch : "raise" | "warn" | "ignore"
        What to do when ``info``, ``forward`` and ``noise_cov`` disagree on
        the channels (good data channels missing from the forward or the
        covariance) or on the bad ones. MNE-Python silently leaves such
        channels out, as "ignore" does; minnorm does the same but warns by
        default (a drop-in must accept what MNE-Python accepts), and the
        command line raises.

    Raises
    ------
    ValueError
        NaN/Inf in the forward or covariance, a covariance that is not
        positive semi-definite or estimated from fewer samples than channels,
        mismatched channels or bads, options out of range (``loose`` outside
        [0, 1], ``depth`` < 0, fixed orientation on a volume source space).
    TypeError
        Arguments that are not MNE objects.

    Returns
    -------
    inv : InverseOperator
    """
    with _mne.log_level(verbose):
        depth = DepthOptions.from_arg(depth)
        problem = _mne.read_problem(info, forward, noise_cov, rank=rank,
                                    on_mismatch=on_mismatch)
        loose = triage_loose(problem.kinds, loose, fixed)
        whitener = compute_whitener(
            problem.noise_cov, groups=problem.groups, ranks=problem.ranks,
            proj=problem.cov_proj,
        )
        oriented = _orient(problem, loose, depth, use_cps, whitener)
        return _decompose(problem, oriented, whitener)


@dataclass(frozen=True)
class _Oriented:
    """The gain in the orientation the inverse will use, with its priors."""

    gain: np.ndarray  # (M, n_rows)
    source_nn: np.ndarray  # (n_rows, 3)
    source_ori: Literal["free", "fixed"]
    depth_prior: np.ndarray | None
    orient_prior: np.ndarray | None


def _orient(problem, loose, depth, use_cps, whitener) -> _Oriented:
    """Rotate/fix the gain as the orientation prior needs, then the priors."""
    fixed_inverse = all(v == 0 for v in loose.values())
    constrained = any(v < 1 for v in loose.values())
    gain, nn, is_fixed = problem.gain, problem.source_nn, problem.is_fixed
    if fixed_inverse:
        if not is_fixed and depth.allow_fixed_depth:
            gain, nn = _fixed_gain(problem, use_cps=True)
            is_fixed = True
        elif is_fixed and depth.exp is not None and not depth.allow_fixed_depth:
            raise ValueError(
                "depth weighting with a fixed orientation needs a free-orientation "
                "forward: load it with mne.read_forward_solution (not "
                "force_fixed) or pass depth=None"
            )
    else:
        if is_fixed:
            raise ValueError(
                "the forward solution has fixed orientation, so only a fixed "
                "inverse (loose=0) is possible: pass loose=0 or a free-orientation forward"
            )
        if constrained and not problem.surf_ori:
            gain, nn = _surface_gain(problem, use_cps)

    prior = None
    if depth.exp is not None:
        prior = _depth(problem, gain, depth, n_orient=1 if is_fixed else 3,
                       whitener=whitener)
    if fixed_inverse:
        if not is_fixed:
            prior = None if prior is None else prior[2::3]
            gain, nn = _fixed_gain(problem, use_cps=use_cps)
        return _Oriented(gain, nn, "fixed", prior, None)
    orient = orient_prior(problem.kinds, problem.n_used, loose)
    return _Oriented(gain, nn, "free", prior, orient)


def _surface_gain(problem, use_cps):
    """Gain rotated into local (t₁, t₂, n) frames for surface/discrete sources."""
    frames = np.tile(np.eye(3), (sum(problem.n_used), 1, 1))
    start = 0
    for kind, n, normals in zip(problem.kinds, problem.n_used, problem.normals(use_cps)):
        if kind in ("surface", "discrete"):
            frames[start:start + n] = surface_frames(normals)
        start += n
    return to_surface_orientation(problem.gain_xyz, frames), frames.reshape(-1, 3)


def _fixed_gain(problem, use_cps):
    """Gain projected on the surface normals (float32, as MNE stores it)."""
    if any(kind == "volume" for kind in problem.kinds):
        raise ValueError(
            "fixed orientation needs surface normals, which volume source spaces "
            "lack: use loose=1 (free) or a surface/discrete source space"
        )
    normals = np.concatenate(problem.normals(use_cps))
    if use_cps and problem.has_patch_info:
        normals = surface_frames(normals)[:, 2]  # MNE goes through the frames here
    return to_fixed_orientation(problem.gain_xyz, normals), normals


def _depth(problem, gain, depth, n_orient, whitener):
    """Depth prior from the channels that MNE's rule selects."""
    if depth.limit_depth_chs == "whiten":
        gain_d = whitener.matrix @ gain
    elif depth.limit_depth_chs:
        gain_d = gain[problem.depth_rows]
    else:
        gain_d = gain
    return depth_prior(
        gain_d, n_orient=n_orient, exp=depth.exp, limit=depth.limit,
        combine_xyz=depth.combine_xyz,
        limit_like_c=depth.limit_depth_chs is not False,
    )


def _decompose(problem, oriented: _Oriented, whitener: Whitener) -> InverseOperator:
    """G = W L R**½ scaled to trace(G Gᵀ) = rank, then its SVD.

    trace(G Gᵀ) = Σ s², so the scaling is applied to the singular values
    afterwards (U and V do not depend on it): one gain-sized array is made.
    """
    source_std = np.ones(oriented.gain.shape[1])
    for prior in (oriented.depth_prior, oriented.orient_prior):
        if prior is not None:
            source_std *= prior
    source_std = np.sqrt(source_std)
    gain_w = whitener.matrix @ oriented.gain  # (M, n_rows)
    gain_w *= source_std  # W (L R½) = (W L) R½
    logger.info("Computing the SVD of the whitened, weighted gain %s", gain_w.shape)
    U, sing, Vt = svd_wide(gain_w)  # via G Gᵀ (see minnorm._linalg)
    del gain_w
    scale = np.sqrt(whitener.n_nonzero / np.sum(sing**2))
    sing = sing * scale
    source_std *= scale
    n_sources = sum(problem.n_used)
    return InverseOperator(
        ch_names=tuple(problem.ch_names),
        whitener=Whitener(whitener.eig, whitener.eigvec, problem.proj),
        noise_cov=problem.noise_cov,
        eigen_fields=U.T,
        sing=sing,
        eigen_leads=Vt.T,
        source_cov=source_std**2,
        depth_prior=oriented.depth_prior,
        orient_prior=oriented.orient_prior,
        source_ori=oriented.source_ori,
        source_nn=oriented.source_nn,
        n_sources=n_sources,
        mne=problem.context,
    )


def as_operator(inverse_operator) -> InverseOperator:
    """minnorm's operator as it is; MNE-Python's converted (once per call)."""
    if isinstance(inverse_operator, InverseOperator):
        return inverse_operator
    return InverseOperator.from_mne(inverse_operator)
