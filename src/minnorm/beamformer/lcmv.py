"""``make_lcmv``: the LCMV filter of every source at once (MNE-Python's ``mne.beamformer.make_lcmv``).

MNE objects become arrays at the edge (:mod:`minnorm._mne.beamformer`): the
channels, the noise whitener W_n (ranks from the data covariance), the
whitened, depth-weighted gain L and the data covariance C_m. The filter is
then computed by :mod:`minnorm.engine.beamformer`::

    C⁻¹ = (W_n C_m W_nᵀ + μ I)⁺_rank                 # one M × M eigendecomposition
    W_k = (L_kᵀ C⁻¹ L_k)⁻¹ L_kᵀ C⁻¹ , normalised     # all sources in stacked arrays
"""

from __future__ import annotations

import logging

import numpy as np

from .. import _mne
from ..engine import beamformer as bf
from ..engine.linalg import one_blas_thread
from .filter import Beamformer

__all__ = ["make_lcmv"]

logger = logging.getLogger("minnorm")


def make_lcmv(info, forward, data_cov, reg=0.05, noise_cov=None, label=None, pick_ori=None,
              rank="info", weight_norm="unit-noise-gain-invariant", reduce_rank=False,
              depth=None, inversion="matrix", verbose=None) -> Beamformer:
    """Compute the LCMV spatial filter, as ``mne.beamformer.make_lcmv``.

    Parameters
    ----------
    info : mne.Info
        Channels to use; ``info["bads"]`` are left out.
    forward : mne.Forward
        Free or fixed orientation; surface, volume, mixed or discrete.
    data_cov : mne.Covariance
        The data covariance C_m.
    reg : float
        Diagonal loading, as a fraction of the whitened covariance's mean eigenvalue.
    noise_cov : mne.Covariance | None
        Whitens data and gain; required for several channel types (None: σ = 1 in SI units).
    label : mne.Label | None
        Restrict the filter to the sources of a label.
    pick_ori : None | "normal" | "max-power" | "vector"
    rank : "info" | None | "full" | dict
        Rank of the data (and noise) covariance per channel type.
    weight_norm : None | "unit-noise-gain" | "nai" | "unit-noise-gain-invariant"
    reduce_rank : bool
        Drop each free source's weakest gain direction (rank-deficient MEG sphere models).
    depth : None | float | dict
        Depth weighting of the gain (MNE's beamformer defaults: whitened gain, "fro").
    inversion : "matrix" | "single"
        Invert each source's 3 × 3 denominator whole, or its diagonal only.
    verbose : bool | str | int | None

    Returns
    -------
    filters : minnorm.beamformer.Beamformer
        A ``mne.beamformer.Beamformer`` (dict) with MNE-Python's keys.

    Raises
    ------
    ValueError
        Options MNE-Python refuses (e.g. ``reduce_rank`` with ``inversion="single"``,
        ``pick_ori="normal"`` on a volume or a forward not in surface orientation,
        several channel types without ``noise_cov``, data and noise ranks that differ),
        a singular gain without ``reduce_rank``.
    """
    with _mne.log_level(verbose):
        inputs = _mne.read_lcmv_inputs(info, forward, data_cov, noise_cov, label=label,
                                       pick_ori=pick_ori, rank=rank, depth=depth,
                                       inversion=inversion)
        _check_reg(reg)
        _check_psd(inputs.cov, inputs.whitener)
        logger.info("Computing beamformer filters for %d sources",
                    inputs.gain.shape[1] // inputs.n_ori)
        result = bf.make_filter(inputs.gain, inputs.cov, inputs.whitener, reg=reg,
                                rank=inputs.rank, n_ori=inputs.n_ori, weight_norm=weight_norm,
                                pick_ori=pick_ori, reduce_rank=reduce_rank, inversion=inversion,
                                nn=inputs.nn)
        return Beamformer(_mne.filter_dict(inputs, forward, result, weight_norm=weight_norm,
                                           pick_ori=pick_ori, inversion=inversion))


def _check_psd(cov, whitener, what="data covariance") -> None:
    """The whitened data covariance (or CSD) must be PSD (MNE-Python warns, then computes
    nonsense)."""
    with one_blas_thread():  # M × M: threads gain nothing, and spin when the CPU is busy
        eig = np.linalg.eigvalsh(bf.whiten_covariance(cov, whitener))
    if not (eig >= -eig[-1] * 1e-7).all():
        raise ValueError(
            f"the whitened {what} is not positive semi-definite (eigenvalues from "
            f"{eig[0]:.3g} to {eig[-1]:.3g}): check it, and use rank='info' or None "
            "(rank='full' keeps the directions that the projectors removed)")


def _check_reg(reg) -> None:
    if isinstance(reg, (bool, np.bool_)) or not isinstance(reg, (int, float, np.number)) \
            or not np.isfinite(reg) or reg < 0:
        raise ValueError(f"reg must be a finite number >= 0 (typically 0.05), got {reg!r}")
