"""RAP-/TRAP-MUSIC at the edge: Evoked, Forward and Covariance in; Dipoles and a residual out.

The inputs are prepared as ``mne.beamformer.rap_music`` prepares them (good channels
shared by the data, forward and noise covariance; the noise whitener with the rank
estimated from the covariance; the gain in x, y, z), through the LCMV reader with the
noise covariance in both roles and no depth weighting. The dipoles come back as
``mne.Dipole`` objects with MNE-Python's amplitudes, orientations and goodness of fit.
"""

from __future__ import annotations

import logging

import mne
import numpy as np

from ..engine.music import MusicFit, split_gof
from .beamformer import LcmvInputs, read_lcmv_inputs

__all__ = ["read_music_inputs", "music_dipoles", "explained_data", "music_residual",
           "log_explained"]

logger = logging.getLogger("minnorm")


def read_music_inputs(evoked, forward, noise_cov) -> tuple[LcmvInputs, object, np.ndarray]:
    """(inputs, forward in x, y, z, whitened data) of one RAP-/TRAP-MUSIC problem."""
    if not isinstance(evoked, mne.Evoked):
        raise TypeError(f"evoked must be an mne.Evoked, got {type(evoked).__name__}")
    if not isinstance(forward, mne.Forward):
        raise TypeError(f"forward must be an mne.Forward, got {type(forward).__name__}")
    if forward["surf_ori"] and not mne.forward.is_fixed_orient(forward):
        forward = mne.convert_forward_solution(forward, surf_ori=False, verbose=False)
    # the noise covariance serves as the "data" covariance that sets the ranks; without
    # one, σ = 1 for one channel type (MNE's ad hoc choice), refused for several
    rank_cov = mne.make_ad_hoc_cov(evoked.info, std=1.0, verbose=False) \
        if noise_cov is None else noise_cov
    inputs = read_lcmv_inputs(evoked.info, forward, rank_cov, noise_cov, label=None,
                              pick_ori=None, rank=None, depth=None, inversion="matrix")
    rows = [evoked.ch_names.index(c) for c in inputs.ch_names]
    return inputs, forward, inputs.whitener @ evoked.data[rows]


def _columns(fit: MusicFit, n_ori: int) -> np.ndarray:
    """Gain columns of the found sources, n_ori per dipole."""
    return (n_ori * fit.index[:, np.newaxis] + np.arange(n_ori)).ravel()


def music_dipoles(fit: MusicFit, inputs: LcmvInputs, forward, data_w: np.ndarray,
                  times: np.ndarray) -> list:
    """One ``mne.Dipole`` per dipole found: position, signed amplitude, orientation, GOF.

    GOF is the fit of all dipoles together shared among them (``split_gof``); a
    free dipole keeps the orientation it was found with, its amplitude signed.
    """
    n_ori = inputs.n_ori
    if n_ori == 3:
        X = (fit.amplitude[:, np.newaxis, :] * fit.orient[:, :, np.newaxis]).reshape(
            -1, fit.amplitude.shape[1])
    else:
        X = fit.amplitude
    gof = split_gof(data_w, X, inputs.gain[:, _columns(fit, n_ori)])
    gof = gof.reshape(len(fit.index), n_ori, -1).sum(axis=1)
    tstep = np.median(np.diff(times)) if len(times) > 1 else 1.0
    dip_times = times[0] + tstep * np.arange(len(times))
    dipoles = []
    for k, source in enumerate(fit.index):
        pos = np.repeat(forward["source_rr"][source][np.newaxis], len(times), axis=0)
        if n_ori == 3:
            ori = np.where((fit.amplitude[k] != 0)[:, np.newaxis], fit.orient[k], 0.0)
        else:
            ori = np.repeat(forward["source_nn"][source][np.newaxis], len(times), axis=0)
        dipoles.append(mne.Dipole(dip_times, pos, fit.amplitude[k].copy(), ori, gof[k]))
    return dipoles


def explained_data(fit: MusicFit, inputs: LcmvInputs, forward) -> np.ndarray:
    """The found dipoles' fields times their amplitudes, in the sensors' units (M, n_times)."""
    rows = [forward["sol"]["row_names"].index(c) for c in inputs.ch_names]
    gain = forward["sol"]["data"][np.ix_(rows, _columns(fit, inputs.n_ori))]
    fields = (gain.reshape(len(rows), len(fit.index), inputs.n_ori) * fit.orient).sum(-1) \
        if inputs.n_ori == 3 else gain
    return fields @ fit.amplitude


def music_residual(evoked, inputs: LcmvInputs, explained: np.ndarray):
    """The evoked response minus what the dipoles explain, on the channels used (projected)."""
    residual = evoked.copy().pick(list(inputs.ch_names), verbose=False)
    residual.data -= explained
    active = [p for p in residual.info["projs"] if p["active"]]
    for p in active:
        p["active"] = False
    residual.add_proj(active, remove_existing=True, verbose=False)
    residual.apply_proj(verbose=False)
    return residual


def log_explained(data_w: np.ndarray, explained_w: np.ndarray) -> float:
    """Percentage of the whitened data's energy the dipoles explain (logged)."""
    res = data_w - explained_w
    var = 100.0 * (1.0 - np.sum(res * res) / np.sum(data_w * data_w))
    logger.info("    Explained %5.1f%% variance", var)
    return var
