"""Sensor noise for the simulations: brain noise from random cortical dipoles plus white
sensor noise, its covariance, its whitened SNR, and draws of it in time."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import mne
import numpy as np

from ..engine.linalg import one_blas_thread
from .template import TemplateHead

__all__ = ["NoiseModel", "noise_matrix", "average_reference", "type_scale", "whitened_snr",
           "draw_noise", "free_gain", "normal_gain", "channel_kinds", "covariance_of",
           "template_noise_matrix", "noise_for_snr"]


@dataclass(frozen=True)
class NoiseModel:
    """Single-trial sensor noise: random cortical "brain noise" plus white sensor noise.

    Attributes
    ----------
    brain_rms : float
        RMS of the brain noise over the magnetometers, T (default 100 fT).
    grad_rms, mag_rms, eeg_rms : float
        White sensor noise per channel type: T/m (20 fT/cm), T (20 fT), V (1 µV).
    lowpass : float or None
        The noise's time course is low-passed at this frequency (Hz; 4th-order
        Butterworth magnitude, zero phase) and rescaled so that its covariance
        stays C; None leaves it white in time.
    """

    brain_rms: float = 100e-15
    grad_rms: float = 2e-12
    mag_rms: float = 20e-15
    eeg_rms: float = 1e-6
    lowpass: float | None = 40.0


def noise_matrix(fixed_gain: np.ndarray, kinds: np.ndarray, noise: NoiseModel) -> np.ndarray:
    """C = σ_b² F Fᵀ + diag(white²), shape (M, M).

    ``fixed_gain`` F (M, n_sources): gain of unit normal dipoles at every
    cortical source; σ_b makes the brain noise's RMS over magnetometers
    ``noise.brain_rms``. ``kinds``: "grad", "mag" or "eeg" per channel.
    """
    brain = fixed_gain @ fixed_gain.T
    mags = kinds == "mag"
    brain *= noise.brain_rms**2 / np.mean(np.diag(brain)[mags])
    white = {"grad": noise.grad_rms, "mag": noise.mag_rms, "eeg": noise.eeg_rms}
    unknown = set(kinds) - set(white)
    if unknown:
        raise ValueError(f"no white noise level for channel types {sorted(unknown)}")
    return brain + np.diag([white[k] ** 2 for k in kinds])


def average_reference(kinds: np.ndarray) -> np.ndarray:
    """P = I − 𝟙𝟙ᵀ/n on the EEG channels, identity elsewhere, shape (M, M)."""
    eeg = kinds == "eeg"
    P = np.eye(len(kinds))
    if eeg.any():
        P[np.ix_(eeg, eeg)] -= 1.0 / eeg.sum()
    return P


def type_scale(C: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    """Per channel, the RMS noise of its channel type, shape (M,): makes C well scaled."""
    variance = np.diag(C)
    return np.sqrt(np.array([variance[kinds == k].mean() for k in kinds]))


def whitened_snr(signal: np.ndarray, C: np.ndarray, *, proj: np.ndarray,
                 scale: np.ndarray) -> tuple[float, int]:
    """max_t √(‖W P b(t)‖² / r) and the peak's sample; W = (P C P)^(−½) on its rank-r range.

    ``scale`` (M,) is constant within channel types, so it commutes with P and
    leaves the result unchanged; it only keeps the eigenvalues comparable.
    """
    D = 1.0 / scale
    C_s = (proj @ C @ proj.T) * np.outer(D, D)
    with one_blas_thread():
        lam, U = np.linalg.eigh(C_s)
    keep = lam > lam.max() * 1e-10
    white = (U[:, keep] / np.sqrt(lam[keep])).T * D  # (r, M) = Λ^-½ Uᵀ D
    power = np.sum((white @ proj @ signal) ** 2, axis=0) / keep.sum()
    peak = int(power.argmax())
    return float(np.sqrt(power[peak])), peak


def draw_noise(rng, C: np.ndarray, n_series: int, n_times: int, *, sfreq: float,
                lowpass: float | None) -> np.ndarray:
    """Samples of N(0, C), low-passed in time, shape (n_series, M, n_times).

    n = C^½ z with z unit-variance noise; low-pass filtering is a circular
    multiplication by H(f) with mean |H|² = 1, so the covariance stays C.
    """
    scale = np.sqrt(np.diag(C))
    with one_blas_thread():
        L = np.linalg.cholesky(C / np.outer(scale, scale)) * scale[:, None]  # L Lᵀ = C
    z = rng.standard_normal((n_series, len(C), n_times))
    if lowpass is not None:
        f = np.fft.fftfreq(n_times, 1.0 / sfreq)
        H = 1.0 / np.sqrt(1.0 + (f / lowpass) ** 8)  # 4th-order Butterworth magnitude
        z = np.fft.ifft(np.fft.fft(z, axis=-1) * (H / np.sqrt(np.mean(H**2))), axis=-1).real
    return L @ z


# --------------------------------------------------------------------------- on the template head


def free_gain(head: TemplateHead) -> np.ndarray:
    """Free-orientation gain in head.info's channel order, shape (M, n_sources, 3)."""
    fwd = head.forward
    rows = [fwd["sol"]["row_names"].index(name) for name in head.info["ch_names"]]
    G = np.asarray(fwd["sol"]["data"], float)[rows]
    return G.reshape(len(rows), -1, 3)


def normals_in_head(head: TemplateHead) -> np.ndarray:
    """Outward normals in head coordinates, shape (n_sources, 3)."""
    rotation = np.linalg.inv(head.trans["trans"])[:3, :3]  # MRI → head
    return head.source_normals @ rotation.T


def normal_gain(head: TemplateHead, indices: np.ndarray) -> np.ndarray:
    """Gain of unit dipoles along the normal at ``indices``, shape (M, len(indices))."""
    return np.einsum("mkj,kj->mk", free_gain(head)[:, indices], normals_in_head(head)[indices])


def channel_kinds(info: mne.Info) -> np.ndarray:
    return np.array([mne.channel_type(info, k) for k in range(len(info["ch_names"]))])


def covariance_of(C: np.ndarray, info: mne.Info) -> mne.Covariance:
    """An mne.Covariance of the true C (nfree is nominal: C is exact)."""
    return mne.Covariance(C, list(info["ch_names"]), bads=[], projs=copy.deepcopy(info["projs"]),
                          nfree=10**6, verbose=False)


def template_noise_matrix(head: TemplateHead, noise: NoiseModel) -> np.ndarray:
    """Single-trial C of ``noise`` on the template (M, M)."""
    fixed = np.einsum("mkj,kj->mk", free_gain(head), normals_in_head(head))  # (M, n_sources)
    return noise_matrix(fixed, channel_kinds(head.info), noise)


def noise_for_snr(head: TemplateHead, signal: np.ndarray, *, nave: int, snr, noise: NoiseModel):
    """Single-trial C scaled so that the average of ``nave`` trials has ``snr``; (C, snr)."""
    C = template_noise_matrix(head, noise)
    kinds = channel_kinds(head.info)
    proj = average_reference(kinds)
    achieved, _ = whitened_snr(signal, C / nave, proj=proj, scale=type_scale(C, kinds))
    if snr is None:
        return C, achieved
    if not snr > 0:
        raise ValueError(f"snr must be > 0 or None, got {snr!r}")
    return C * (achieved / snr) ** 2, float(snr)
