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
from .template import TemplateHead, source_depth

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

NAM = 1e-9  # A·m per nA·m


@dataclass(frozen=True)
class Source:
    """One dipolar source on the template cortex, along the outward normal.

    Give its place either as ``position`` (x, y, z) in mm in fsaverage =
    MNI305 space (the nearest source of the template is used) or as
    ``vertex`` = (hemi, vertex number in the fsaverage5 mesh), a vertex the
    template's source space uses (at ico4: 0 … 2561).

    Attributes
    ----------
    name : str
    position : tuple of 3 float or None
        mm, MRI = MNI305 frame.
    vertex : tuple (hemi, int) or None
        hemi is "lh" or "rh".
    amplitude : float
        Peak dipole moment in nA·m; the sign gives the direction along the
        outward normal.
    latency : float
        Time of the peak, s.
    width : float
        Standard deviation σ of the Gaussian window, s (FWHM = 2.355 σ).
    frequency : float
        Oscillation frequency under the window, Hz; 0 for a single peak.
    """

    name: str
    position: tuple | None = None
    vertex: tuple | None = None
    amplitude: float = 20.0
    latency: float = 0.1
    width: float = 0.02
    frequency: float = 0.0

    def __post_init__(self):
        if (self.position is None) == (self.vertex is None):
            raise ValueError(f"source {self.name!r}: give exactly one of position=(x, y, z) mm "
                             f"or vertex=(hemi, number), got position={self.position!r}, "
                             f"vertex={self.vertex!r}")
        if self.position is not None:
            position = tuple(float(x) for x in self.position)
            if len(position) != 3:
                raise ValueError(f"source {self.name!r}: position must be (x, y, z) in mm, "
                                 f"got {self.position!r}")
            object.__setattr__(self, "position", position)
        else:
            hemi, number = self.vertex
            if hemi not in ("lh", "rh") or int(number) != number or number < 0:
                raise ValueError(f"source {self.name!r}: vertex must be ('lh' or 'rh', "
                                 f"a vertex number ≥ 0), got {self.vertex!r}")
            object.__setattr__(self, "vertex", (hemi, int(number)))
        if not self.width > 0:
            raise ValueError(f"source {self.name!r}: width must be > 0 s, got {self.width!r}")
        if not self.frequency >= 0:
            raise ValueError(f"source {self.name!r}: frequency must be ≥ 0 Hz, "
                             f"got {self.frequency!r}")


def default_sources() -> tuple[Source, ...]:
    """Bilateral auditory N100m at 100 ms, then a non-dipolar right temporal field at 300 ms.

    The auditory sources sit near Heschl's gyrus (±50, −20, 8) mm; at 300 ms
    two right temporal sources 8 cm apart (anterior temporal near the pole;
    posterior fusiform gyrus, deeper and facing down) are active together, so
    no single dipole per hemisphere explains the late field.
    """
    return (
        Source("auditory-lh", position=(-50.0, -20.0, 8.0), amplitude=30.0, latency=0.100, width=0.015),
        Source("auditory-rh", position=(50.0, -20.0, 8.0), amplitude=30.0, latency=0.100, width=0.015),
        Source("temporal-rh", position=(52.0, 8.0, -30.0), amplitude=20.0, latency=0.300, width=0.040),
        Source("fusiform-rh", position=(36.0, -66.0, -14.0), amplitude=20.0, latency=0.300, width=0.040),
    )


@dataclass(frozen=True, eq=False)
class TrueSources:
    """Where the simulated sources really are.

    Attributes
    ----------
    sources : tuple of Source
        As requested.
    hemis : tuple of str
        "lh" or "rh" per source.
    vertices : ndarray of shape (n_sources,)
        Vertex numbers in each hemisphere's fsaverage5 mesh.
    indices : ndarray of shape (n_sources,)
        Rows of ``stc_true.data`` (and sources of the forward model).
    positions_mm : ndarray of shape (n_sources, 3)
        Positions of those vertices, MRI = MNI305 mm.
    normals : ndarray of shape (n_sources, 3)
        Outward cortical normals, MRI frame.
    depths_mm : ndarray of shape (n_sources,)
        Distance to the inner skull (see :func:`minnorm.template.source_depth`).
    waveforms : ndarray of shape (n_sources, n_times)
        q_k(t) in A·m (before any per-epoch scaling).
    """

    sources: tuple
    hemis: tuple
    vertices: np.ndarray
    indices: np.ndarray
    positions_mm: np.ndarray
    normals: np.ndarray
    depths_mm: np.ndarray
    waveforms: np.ndarray

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sources)

    @property
    def latencies(self) -> np.ndarray:
        """Peak latencies, s, shape (n_sources,)."""
        return np.array([s.latency for s in self.sources])


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
        From :func:`minnorm.template.load_template`.
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
    truth = _truth(head, default_sources() if sources is None else sources, times)
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
    truth = _truth(head, default_sources() if sources is None else sources, times)
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


def source_waveforms(sources: tuple[Source, ...], times: np.ndarray, /) -> np.ndarray:
    """q_k(t) = A_k · exp(−(t − τ_k)²/(2σ_k²)) · cos(2π f_k (t − τ_k)) in A·m, shape (n_sources, n_times)."""
    def column(attr):
        return np.array([getattr(s, attr) for s in sources], float)[:, None]

    lag = np.asarray(times, float)[None, :] - column("latency")
    window = np.exp(-(lag**2) / (2 * column("width") ** 2))
    return NAM * column("amplitude") * window * np.cos(2 * np.pi * column("frequency") * lag)


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


def _locate(head: TemplateHead, source: Source) -> int:
    """Index of a source among the template's sources (lh then rh)."""
    if source.position is not None:
        distance = np.linalg.norm(head.source_positions_mm - source.position, axis=1)
        return int(distance.argmin())
    hemi, number = source.vertex
    h = ("lh", "rh").index(hemi)
    vertno = head.src[h]["vertno"]
    k = int(np.searchsorted(vertno, number))
    if k == len(vertno) or vertno[k] != number:
        raise ValueError(f"source {source.name!r}: vertex {number} of {hemi} is not a source of "
                         f"the {head.spacing} template (it uses {len(vertno)} vertices, "
                         f"{vertno[0]}…{vertno[-1]}); give a used vertex or position=(x, y, z)")
    return k + (head.hemi_sizes[0] if h else 0)


def _truth(head: TemplateHead, sources, times: np.ndarray) -> TrueSources:
    sources = tuple(sources)
    if not sources or not all(isinstance(s, Source) for s in sources):
        raise TypeError(f"sources must be a non-empty sequence of Source, got {sources!r}")
    indices = np.array([_locate(head, s) for s in sources])
    n_lh = head.hemi_sizes[0]
    hemis = tuple("lh" if i < n_lh else "rh" for i in indices)
    vertices = np.concatenate(head.vertices)[indices]
    positions = head.source_positions_mm[indices]
    return TrueSources(sources=sources, hemis=hemis, vertices=vertices, indices=indices,
                       positions_mm=positions, normals=head.source_normals[indices],
                       depths_mm=source_depth(head, positions),
                       waveforms=source_waveforms(sources, times))


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


