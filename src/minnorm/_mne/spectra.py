"""MNE-Python's windows, wavelets, windowed epochs and baselines, for source power.

The arithmetic of spectra lives in :mod:`minnorm.engine.spectra`; what it is
fed — DPSS tapers and their concentrations, Hann windows, Morlet wavelets,
the fixed-length epochs of a raw recording, a baseline rescaling — is built
here with MNE-Python's own public functions, so that both compute with the
same windows.
"""

from __future__ import annotations

import mne
import numpy as np
from scipy.signal import get_window

from .._log import warn

__all__ = ["multitaper_windows", "morlet_wavelets", "fixed_length_epochs", "psd_evoked",
           "rescale", "check_baseline_mode", "check_decim"]


def multitaper_windows(n_times: int, sfreq: float, bandwidth, low_bias: bool,
                       adaptive: bool):
    """(tapers (n_tapers, n_times), eigvals (n_tapers,), adaptive) as MNE-Python triages them.

    ``bandwidth`` a window name (e.g. "hann"): that one window, weight 1, no
    adaptive weights. A number (Hz; None: half-bandwidth 4): DPSS tapers of
    half-bandwidth ``bandwidth · n_times / (2 sfreq)`` (at least 0.5), those
    below 90 % concentration dropped with ``low_bias``.
    """
    if isinstance(bandwidth, str):
        return get_window(bandwidth, n_times)[np.newaxis], np.ones(1), False
    half_nbw = 4.0 if bandwidth is None else float(bandwidth) * n_times / (2.0 * sfreq)
    if not half_nbw >= 0.5:
        raise ValueError(f"bandwidth value {bandwidth} yields a normalized half-bandwidth of "
                         f"{half_nbw} < 0.5, use a value of at least {sfreq / n_times}")
    tapers, eigvals = mne.time_frequency.dpss_windows(n_times, half_nbw, int(2 * half_nbw),
                                                      sym=False, low_bias=low_bias)
    if adaptive and len(eigvals) < 3:
        warn(f"Not adaptively combining the spectral estimators due to a low number of "
             f"tapers ({len(eigvals)} < 3).")
        adaptive = False
    return np.atleast_2d(tapers), np.atleast_1d(eigvals), bool(adaptive)


def morlet_wavelets(sfreq: float, freqs, n_cycles, zero_mean: bool) -> list:
    """MNE-Python's Morlet wavelets, one per frequency."""
    return mne.time_frequency.morlet(sfreq, freqs, n_cycles=n_cycles, zero_mean=zero_mean)


def check_decim(decim) -> slice:
    """An int step or a slice, as MNE-Python's time-frequency functions take ``decim``."""
    if isinstance(decim, slice):
        return decim
    if isinstance(decim, (bool, np.bool_)) or not isinstance(decim, (int, np.integer)) \
            or decim < 1:
        raise ValueError(f"decim must be a whole number ≥ 1 or a slice, got {decim!r}")
    return slice(None, None, int(decim))


def fixed_length_epochs(raw, tmin, tmax, n_fft: int, overlap: float):
    """The windows compute_source_psd averages: MNE's fixed-length events and Epochs."""
    tmin = 0.0 if tmin is None else float(tmin)
    overlap = float(overlap)
    if not 0 <= overlap < 1:
        raise ValueError(f"Overlap must be at least 0 and less than 1, got {overlap}")
    sfreq = raw.info["sfreq"]
    duration = ((1.0 - overlap) * n_fft) / sfreq
    events = mne.make_fixed_length_events(raw, 1, tmin, tmax, duration)
    return mne.Epochs(raw, events, 1, 0, (n_fft - 1) / sfreq, baseline=None, verbose=False)


def psd_evoked(info, rows, psd, freqs, fstep: float, comment: str, nave):
    """Sensor spectra as MNE's EvokedArray: frequencies as times, sfreq = 1 / step."""
    info = mne.pick_info(info, rows, verbose=False)
    with info._unlock():
        info["sfreq"] = 1.0 / fstep
    return mne.EvokedArray(psd, info, tmin=freqs[0], comment=comment, nave=nave,
                           verbose=False)


BASELINE_MODES = ("mean", "ratio", "logratio", "percent", "zscore", "zlogratio")


def check_baseline_mode(baseline, mode) -> None:
    """Fail early, before any work, on a baseline mode MNE-Python does not know."""
    if baseline is not None and mode not in BASELINE_MODES:
        raise ValueError(f"baseline_mode must be one of {list(BASELINE_MODES)}, got {mode!r}")


def rescale(data, times, baseline, mode):
    """MNE-Python's baseline correction (in place on ``data``)."""
    return mne.baseline.rescale(data, times, baseline, mode, copy=False, verbose=False)
