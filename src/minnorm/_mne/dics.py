"""DICS at the edge: a CrossSpectralDensity in, its frequencies' matrices and MNE's filter dict out.

``make_dics``'s inputs are prepared as ``mne.beamformer.make_dics`` prepares them, through
the LCMV reader: the good channels of the data that the forward and the CSD share (info's
order), the noise whitener from the noise CSD (its mean over frequencies, its real part
with ``real_filter``; σ = 1 without one, one channel type only) with its own rank, the
whitened, depth-weighted gain (MNE's sparse depth defaults, exponent 1 for DICS), and each
frequency's CSD matrix with its rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import mne
import numpy as np
from mne.time_frequency import CrossSpectralDensity

from ..engine import checks
from .beamformer import LcmvInputs, _ranks, read_lcmv_inputs, shared_filter_keys

__all__ = ["DicsInputs", "read_dics_inputs", "dics_filter_dict", "csd_matrices", "check_csd"]


@dataclass(frozen=True, eq=False)
class DicsInputs:
    """The LCMV reader's arrays, and each frequency's CSD matrix with its rank."""

    lcmv: LcmvInputs  # its cov is unused: the frequencies' matrices are below
    csd: object  # the CrossSpectralDensity on the channels used, in their order
    matrices: np.ndarray  # (n_freqs, M, M), complex (real with real_filter)
    ranks: list  # the rank of each frequency's matrix


def check_csd(csd, name="csd") -> None:
    """A CrossSpectralDensity, else a TypeError naming where to get one."""
    if not isinstance(csd, CrossSpectralDensity):
        raise TypeError(f"{name} must be an mne.time_frequency.CrossSpectralDensity (e.g. "
                        f"from csd_morlet or csd_multitaper), got {type(csd).__name__}")


def csd_matrices(csd, ch_names) -> np.ndarray:
    """Each frequency's CSD matrix on ``ch_names`` (in that order): (n_freqs, M, M) complex."""
    missing = [c for c in ch_names if c not in csd.ch_names]
    if missing:
        raise ValueError(f"The spatial filter was computed with channel {missing[0]} which is "
                         "not in the cross-spectral density: compute the CSD on the filter's "
                         "channels")
    picks = [csd.ch_names.index(c) for c in ch_names]
    return np.stack([csd.get_data(index=i)[np.ix_(picks, picks)]
                     for i in range(len(csd.frequencies))])


def _noise_cov(csd, noise_csd, real_filter):
    """The noise CSD as one Covariance (mean over frequencies), real with real_filter."""
    if noise_csd is None:
        return None
    check_csd(noise_csd, "noise_csd")
    names = [c for c in csd.ch_names if c in noise_csd.ch_names]
    noise = noise_csd.copy().pick_channels(names, ordered=True)
    if len(noise.frequencies) > 1:
        noise = noise.mean()
    cov = noise.get_data(as_cov=True)
    if real_filter:
        cov["data"] = cov["data"].real
    return cov


def read_dics_inputs(info, forward, csd, noise_csd, *, label, pick_ori, rank, depth,
                     inversion, real_filter) -> DicsInputs:
    """The arrays of one DICS problem, as ``mne.beamformer.make_dics`` prepares them."""
    check_csd(csd)
    if not isinstance(info, mne.Info):
        raise TypeError(f"info must be an mne.Info, got {type(info).__name__}")
    if noise_csd is not None and not real_filter:
        raise ValueError(
            "real_filter=False with a noise_csd is not supported: MNE-Python then whitens with "
            "the complex noise CSD and computes its depth prior from Σ G² of the complex gain "
            "(not Σ|G|²); use real_filter=True (the default), or complex filters without "
            "noise_csd (one channel type)")
    noise = _noise_cov(csd, noise_csd, real_filter)
    if noise is None:  # σ = 1 on the CSD's channels; its rank sets the whitener's
        shared = [k for k, c in enumerate(info["ch_names"]) if c in csd.ch_names]
        rank_cov = mne.make_ad_hoc_cov(mne.pick_info(info, shared), std=1.0, verbose=False)
    else:
        rank_cov = noise
    inputs = read_lcmv_inputs(info, forward, rank_cov, noise, label=label, pick_ori=pick_ori,
                              rank=rank, depth=depth, inversion=inversion)
    ch_names = list(inputs.ch_names)
    matrices = csd_matrices(csd, ch_names)
    checks.check_finite(np.abs(matrices).max(axis=0), "cross-spectral density",
                        row_names=ch_names)
    csd = csd.copy().pick_channels(ch_names, ordered=True)
    ranks = [int(sum(_ranks(csd.get_data(index=i, as_cov=True), inputs.noise_cov, inputs.info,
                            rank, allow_mismatch=noise is None).values()))
             for i in range(len(matrices))]
    if real_filter:
        matrices = matrices.real.copy()
    return DicsInputs(inputs, csd, matrices, ranks)


def dics_filter_dict(inputs: DicsInputs, forward, weights, max_power_ori, *, weight_norm,
                     pick_ori, inversion) -> dict:
    """MNE-Python's Beamformer keys for DICS filters (weights: (n_freqs, n_rows, M))."""
    return dict(
        shared_filter_keys(inputs.lcmv, forward, weight_norm=weight_norm, pick_ori=pick_ori,
                           inversion=inversion),
        kind="DICS", weights=weights, csd=inputs.csd, max_power_ori=max_power_ori,
        n_sources=sum(len(v) for v in inputs.lcmv.vertices))  # MNE's DICS: the label's
