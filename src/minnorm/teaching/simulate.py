"""Simulated MEG/EEG with a known ground truth, on the template head.

A few dipolar sources sit on the template cortex, oriented along its normal,
each with a Gaussian-windowed time course (optionally oscillating)::

    q_k(t) = A_k · exp(−(t − τ_k)² / (2 σ_k²)) · cos(2π f_k (t − τ_k))      [A·m]
    b(t)   = Σ_k (G_k n_k) q_k(t) + n(t)                                     [T, T/m, V]

with G_k the (M, 3) free-orientation gain of the source's vertex and n_k its
outward normal. The sensor noise n(t) ~ N(0, C) has spatial structure:

    C = σ_b² Σ_v (G_v n_v)(G_v n_v)ᵀ + diag(white²)      # (M, M), one trial

brain noise from independent dipoles at every cortical vertex (σ_b set by the
brain noise's rms on the magnetometers) plus white sensor noise of per-type
amplitude; an evoked response of ``nave`` trials has noise C / nave.

SNR: the whitened global field power (as in MNE's ``evoked.plot_white``) of
the noise-free evoked response at its peak, the amplitude SNR behind MNE's
λ² = 1/SNR²:

    snr = max_t √( ‖W P b_signal(t)‖² / r ),   W = (P C_evoked P)^(−½) on its range, r = rank

(P: average-reference projector for EEG, identity for MEG). Whitened noise
has unit variance per dimension, so snr is the RMS signal in noise units at
the peak. Given ``snr``, C is scaled to reach it; the source amplitudes stay
physical.
"""

from __future__ import annotations

from dataclasses import dataclass

import mne
import numpy as np

from .noise import (
    NoiseModel,
    covariance_of,
    draw_noise,
    noise_for_snr,
    normal_gain,
    template_noise_matrix,
)
from .sources import Source, TrueSources, default_sources, source_waveforms, true_sources
from .template import TemplateHead

__all__ = [
    "NoiseModel",
    "SimulatedEpochs",
    "SimulatedEvoked",
    "Source",
    "TrueSources",
    "default_sources",
    "noise_covariance",
    "simulate_epochs",
    "simulate_evoked",
    "source_waveforms",
]


@dataclass(frozen=True, eq=False)
class SimulatedEvoked:
    """An averaged response with its ground truth.

    Attributes
    ----------
    evoked : mne.Evoked
        Signal + noise of ``nave`` trials (EEG average reference applied).
    noise_cov : mne.Covariance
        The true single-trial noise covariance C (MNE divides by ``nave``).
    forward : mne.Forward
        The forward model that made the data (the template's).
    stc_true : mne.SourceEstimate
        True dipole moments (A·m, signed along the normal) on every template source.
    truth : TrueSources
    snr : float
        Whitened amplitude SNR of the noise-free evoked at its peak (see module doc).
    nave, seed : int
    """

    evoked: mne.Evoked
    noise_cov: mne.Covariance
    forward: mne.Forward
    stc_true: mne.SourceEstimate
    truth: TrueSources
    snr: float
    nave: int
    seed: int


@dataclass(frozen=True, eq=False)
class SimulatedEpochs:
    """Single trials with their ground truth.

    Attributes
    ----------
    epochs : mne.EpochsArray
        Per-trial signal + noise (noise covariance C, not divided).
    noise_cov, forward, truth, seed : as in :class:`SimulatedEvoked`.
    stc_true : mne.SourceEstimate
        True dipole moments with unit scaling (the per-epoch ones are
        ``amplitudes[e, k] · truth.waveforms[k]``).
    amplitudes : ndarray of shape (n_epochs, n_sources)
        Per-epoch scaling of each source's amplitude.
    snr : float
        SNR of the average of all epochs with unit scaling (see module doc).
    """

    epochs: mne.EpochsArray
    noise_cov: mne.Covariance
    forward: mne.Forward
    stc_true: mne.SourceEstimate
    truth: TrueSources
    amplitudes: np.ndarray
    snr: float
    seed: int


# --------------------------------------------------------------------------- public functions


def simulate_evoked(
    head: TemplateHead,
    *,
    sources: tuple[Source, ...] | None = None,
    snr: float | None = 3.0,
    nave: int = 60,
    seed: int = 0,
    tmin: float = -0.1,
    tmax: float = 0.5,
    sfreq: float = 500.0,
    noise: NoiseModel = NoiseModel(),
) -> SimulatedEvoked:
    """An averaged response of ``nave`` trials to ``sources`` on the template head.

    Parameters
    ----------
    head : TemplateHead
        From :func:`minnorm.teaching.template.load_template`.
    sources : tuple of Source, optional
        Default :func:`default_sources`.
    snr : float or None
        Whitened amplitude SNR of the evoked response at its peak (module
        doc); None keeps the physical noise levels of ``noise``.
    nave : int
        Number of averaged trials: the evoked noise covariance is C / nave.
    seed : int
        Seeds the noise; the same seed gives the same data.
    tmin, tmax, sfreq : float
        Time window (s) and sampling frequency (Hz); t = 0 is a sample.
    noise : NoiseModel
        Spatial and temporal structure of the noise.
    """
    nave = _check_count("nave", nave)
    times = _times(tmin, tmax, sfreq)
    truth = true_sources(head, default_sources() if sources is None else sources, times)
    gain = normal_gain(head, truth.indices)
    signal = gain @ truth.waveforms  # (M, n_times)
    cov, snr = noise_for_snr(head, signal, nave=nave, snr=snr, noise=noise)
    rng = np.random.default_rng(seed)
    data = signal + draw_noise(rng, cov / nave, 1, len(times), sfreq=sfreq,
                                lowpass=noise.lowpass)[0]
    info = _info_at(head.info, sfreq, noise.lowpass)
    evoked = mne.EvokedArray(data, info, tmin=times[0], nave=nave,
                             comment="minnorm simulation", verbose=False)
    if info["projs"]:
        evoked.apply_proj(verbose=False)
    return SimulatedEvoked(evoked=evoked, noise_cov=covariance_of(cov, info), forward=head.forward,
                           stc_true=_stc(head, truth, times, sfreq), truth=truth, snr=snr,
                           nave=nave, seed=seed)


def simulate_epochs(
    head: TemplateHead,
    *,
    n_epochs: int = 100,
    sources: tuple[Source, ...] | None = None,
    snr: float | None = 3.0,
    amplitude_scale: np.ndarray | None = None,
    amplitude_jitter: float = 0.0,
    conditions: np.ndarray | None = None,
    seed: int = 0,
    tmin: float = -0.1,
    tmax: float = 0.5,
    sfreq: float = 500.0,
    noise: NoiseModel = NoiseModel(),
) -> SimulatedEpochs:
    """Single trials: per-trial noise with covariance C, per-trial source amplitudes.

    Parameters
    ----------
    n_epochs : int
    sources, seed, tmin, tmax, sfreq, noise : as in :func:`simulate_evoked`.
    snr : float or None
        SNR of the average of all ``n_epochs`` trials with unit scaling (so a
        trial has SNR snr / √n_epochs).
    amplitude_scale : array-like of shape (n_epochs, n_sources), optional
        Multiplies each source's amplitude in each epoch, e.g. a late source
        that is stronger in one condition than in another (for decoding).
    amplitude_jitter : float
        Relative trial-to-trial variation: each scale is also multiplied by
        1 + amplitude_jitter · N(0, 1).
    conditions : array-like of int, shape (n_epochs,), optional
        Event code of each epoch (``epochs.events[:, 2]``); default all 1.
    """
    n_epochs = _check_count("n_epochs", n_epochs)
    times = _times(tmin, tmax, sfreq)
    truth = true_sources(head, default_sources() if sources is None else sources, times)
    gain = normal_gain(head, truth.indices)
    cov, snr = noise_for_snr(head, gain @ truth.waveforms, nave=n_epochs, snr=snr, noise=noise)
    rng = np.random.default_rng(seed)
    scales = _epoch_scales(amplitude_scale, amplitude_jitter, rng, n_epochs, len(truth.indices))
    trials = np.einsum("mk,ek,kt->emt", gain, scales, truth.waveforms)
    trials += draw_noise(rng, cov, n_epochs, len(times), sfreq=sfreq, lowpass=noise.lowpass)
    info = _info_at(head.info, sfreq, noise.lowpass)
    events, event_id = _events(conditions, n_epochs, len(times))
    epochs = mne.EpochsArray(trials, info, events=events, tmin=times[0], event_id=event_id,
                             proj=bool(info["projs"]), verbose=False)
    return SimulatedEpochs(epochs=epochs, noise_cov=covariance_of(cov, info), forward=head.forward,
                           stc_true=_stc(head, truth, times, sfreq), truth=truth, amplitudes=scales,
                           snr=snr, seed=seed)


def noise_covariance(head: TemplateHead, *, noise: NoiseModel = NoiseModel()) -> mne.Covariance:
    """The single-trial noise covariance of ``noise`` on the template's channels (no SNR scaling)."""
    return covariance_of(template_noise_matrix(head, noise), head.info)


# --------------------------------------------------------------------------- ground truth


def _times(tmin: float, tmax: float, sfreq: float) -> np.ndarray:
    if not sfreq > 0:
        raise ValueError(f"sfreq must be > 0 Hz, got {sfreq!r}")
    if not tmin < tmax:
        raise ValueError(f"tmin must be < tmax, got tmin={tmin!r}, tmax={tmax!r}")
    return np.arange(round(tmin * sfreq), round(tmax * sfreq) + 1) / sfreq


def _check_count(name: str, value) -> int:
    if int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _stc(head: TemplateHead, truth: TrueSources, times: np.ndarray,
         sfreq: float) -> mne.SourceEstimate:
    """True moments on every template source, A·m, shape (n_sources, n_times)."""
    data = np.zeros((head.n_sources, len(times)))
    np.add.at(data, truth.indices, truth.waveforms)
    return mne.SourceEstimate(data, head.vertices, tmin=times[0], tstep=1.0 / sfreq,
                              subject=head.subject)


def _epoch_scales(scale, jitter: float, rng, n_epochs: int, n_sources: int) -> np.ndarray:
    """Per-epoch amplitude factors, shape (n_epochs, n_sources)."""
    if scale is None:
        scale = np.ones((n_epochs, n_sources))
    scale = np.asarray(scale, float)
    if scale.shape != (n_epochs, n_sources):
        raise ValueError(f"amplitude_scale must have shape (n_epochs, n_sources) = "
                         f"({n_epochs}, {n_sources}), got {scale.shape}")
    if not jitter >= 0:
        raise ValueError(f"amplitude_jitter must be ≥ 0, got {jitter!r}")
    return scale * (1.0 + jitter * rng.standard_normal(scale.shape))


def _events(conditions, n_epochs: int, n_times: int) -> tuple[np.ndarray, dict]:
    codes = np.ones(n_epochs, int) if conditions is None else np.asarray(conditions)
    if codes.shape != (n_epochs,) or not np.all(codes == codes.astype(int)) or np.any(codes < 1):
        raise ValueError(f"conditions must be {n_epochs} positive integer event codes, "
                         f"got shape {np.shape(conditions)}")
    codes = codes.astype(int)
    onsets = (np.arange(n_epochs) + 1) * (n_times + 1)
    events = np.column_stack([onsets, np.zeros(n_epochs, int), codes])
    return events, {str(c): int(c) for c in np.unique(codes)}


# --------------------------------------------------------------------------- MNE objects → arrays


def _info_at(info: mne.Info, sfreq: float, lowpass: float | None) -> mne.Info:
    """A copy of ``info`` at another sampling frequency."""
    info = info.copy()
    with info._unlock():  # MNE has no public setter for sfreq
        info["sfreq"] = float(sfreq)
        info["lowpass"] = float(min(lowpass or sfreq / 2, sfreq / 2))
        info["highpass"] = 0.0
    return info


