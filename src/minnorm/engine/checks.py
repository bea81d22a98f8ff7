"""Checks of the user's inputs on plain arrays: clear errors before any maths.

Each check names what is wrong, the value and the fix. They guard the Python
API (``make_inverse_operator``, ``apply_*``) and the command line alike;
:mod:`minnorm._mne` feeds them the arrays of MNE objects.
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np

__all__ = [
    "check_finite",
    "check_noise_cov",
    "lambda2_from_snr",
    "check_loose",
    "check_depth",
    "check_time_window",
    "check_memory",
    "unit_problems",
    "name_list",
]

# Robust amplitude (median over channels of the standard deviation over time)
# that real recordings of each channel type have, in SI units. Evoked
# responses sit near the low end, raw data near the high end. Beyond these
# bounds by far, the data were almost surely stored in other units.
PLAUSIBLE_AMPLITUDE = {
    "mag": (1e-16, 1e-9, "T", "fT (1e-15 T)"),
    "grad": (1e-15, 1e-7, "T/m", "fT/cm (1e-13 T/m)"),
    "eeg": (1e-9, 1e-2, "V", "µV (1e-6 V)"),
}
UNIT_FACTOR_WARN = 1e3  # warn when data and noise differ by more than this in amplitude


def name_list(names, limit: int = 6) -> str:
    """``'a', 'b', 'c' and 4 more`` — for messages that name channels."""
    names = list(names)
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def check_finite(array, what: str, *, row_names=None) -> None:
    """Raise ValueError when ``array`` holds NaN or Inf, naming the rows that do."""
    array = np.asarray(array)
    if np.all(np.isfinite(array)):
        return
    bad = ~np.isfinite(array)
    count = int(bad.sum())
    where = ""
    if row_names is not None and array.ndim >= 2:
        rows = np.flatnonzero(bad.reshape(len(array), -1).any(axis=1))
        where = f" in {len(rows)} rows ({name_list([row_names[r] for r in rows], 4)})"
    raise ValueError(
        f"the {what} contains {count} NaN or Inf values{where}: fix or recompute it "
        "(or mark those channels bad)"
    )


def check_noise_cov(cov: np.ndarray, ch_names, *, nfree: int, diagonal: bool,
                    regularized: bool) -> None:
    """The noise covariance must be finite, positive semi-definite and well sampled.

    Parameters
    ----------
    cov : ndarray of shape (M, M)
        The covariance of the channels in use (SI units, any mix of types).
    ch_names : list of str
        The M channel names, for messages.
    nfree : int
        Degrees of freedom (number of samples less the means removed) it was
        estimated from; 0 or less when unknown (ad hoc covariances).
    diagonal : bool
        A diagonal covariance (no sampling requirement).
    regularized : bool
        Estimated with shrinkage or a factor model: full rank by construction.

    Notes
    -----
    Definiteness is checked on the correlation matrix D**-½ C D**-½, which
    has the same signs of eigenvalues as C but no mix of T² and V² scales.
    """
    check_finite(cov, "noise covariance", row_names=ch_names)
    var = np.diag(cov)
    bad = np.flatnonzero(var <= 0)
    if len(bad):
        raise ValueError(
            f"the noise covariance gives {len(bad)} channels zero or negative variance "
            f"({name_list([ch_names[k] for k in bad], 4)}): mark them bad, or recompute "
            "the covariance from data where they record"
        )
    n = len(var)
    if not diagonal:
        scale = 1.0 / np.sqrt(var)
        corr = cov * scale[:, np.newaxis] * scale[np.newaxis, :]
        lowest = float(np.linalg.eigvalsh((corr + corr.T) / 2)[0])
        if lowest < -1e-6 * n:
            raise ValueError(
                "the noise covariance is not positive semi-definite (its correlation "
                f"matrix has eigenvalue {lowest:.3g}): it was edited or damaged; "
                "recompute it with mne.compute_covariance"
            )
        if 0 < nfree < n and not regularized:
            raise ValueError(
                f"the noise covariance was estimated from {nfree} samples for {n} "
                f"channels: at least {n} are needed; estimate it from more baseline "
                "data, or regularise it (mne.compute_covariance(..., method='shrunk'))"
            )


def lambda2_from_snr(snr) -> float:
    """SNR must be a positive finite number whose λ² = 1/SNR² is too; returns λ²."""
    value = _number(snr, "snr")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"snr must be > 0 (typically 3 for evoked, 1 for raw/epochs), got {snr!r}")
    try:
        lambda2 = 1.0 / value**2
    except (OverflowError, ZeroDivisionError):
        lambda2 = 0.0
    if not (math.isfinite(lambda2) and lambda2 >= sys.float_info.min):
        raise ValueError(f"snr = {snr} is out of range: λ² = 1/SNR² is not a representable "
                         "positive number; use an snr between 1e-150 and 1e150 (typically 3)")
    return lambda2


def check_loose(loose):
    """``"auto"`` or a number in [0, 1] (tangential variance relative to the normal one)."""
    if isinstance(loose, str):
        if loose == "auto":
            return loose
        loose = _number(loose, "loose")
    value = float(loose)
    if not 0 <= value <= 1:
        raise ValueError(f"loose must be between 0 (fixed) and 1 (free) or 'auto', got {loose!r}")
    return value


def check_depth(depth):
    """``None``/``"none"`` or an exponent >= 0 (0 switches depth weighting off)."""
    if depth is None or (isinstance(depth, str) and depth.lower() == "none"):
        return None
    value = _number(depth, "depth")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"depth must be >= 0 (0 or none: no depth weighting; "
                         f"default 0.8), got {depth!r}")
    return value


def positive_number(value, what: str, *, hint: str = "") -> float:
    """A finite real number > 0 (not a bool or a string); ``hint`` follows "> 0" in messages."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{what} must be a number > 0{hint}, got {value!r}")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{what} must be a finite number > 0{hint}, got {value!r}")
    return float(value)


def _number(value, name) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None


def check_time_window(tmin, tmax, times: np.ndarray, *, what: str = "data") -> None:
    """``tmin``/``tmax`` (s, None = the edge) must lie inside ``times`` and be ordered."""
    first, last = float(times[0]), float(times[-1])
    span = f"{first:.3f} … {last:.3f} s"
    half = 0.5 / (len(times) - 1) * (last - first) if len(times) > 1 else 0.0
    for name, value in (("tmin", tmin), ("tmax", tmax)):
        if value is not None and not first - half <= value <= last + half:
            raise ValueError(f"{name} = {value:g} s is outside the {what} ({span}): "
                             "choose a time inside it")
    if tmin is not None and tmax is not None and tmin > tmax:
        raise ValueError(f"tmin = {tmin:g} s is after tmax = {tmax:g} s: swap them")


def available_memory() -> int | None:
    """Bytes of physical memory available now (None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(n_bytes: int, what: str, fix: str, *, fraction: float = 0.8) -> None:
    """Raise MemoryError when ``n_bytes`` exceed ``fraction`` of the available memory."""
    free = available_memory()
    if free is not None and n_bytes > fraction * free:
        raise MemoryError(f"{what} would take {_size(n_bytes)} of memory, more than the "
                          f"{_size(free)} available: {fix}")


def _size(n_bytes: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n_bytes < 1024 or unit == "GiB":
            return f"{n_bytes:.1f} {unit}" if unit != "bytes" else f"{int(n_bytes)} bytes"
        n_bytes /= 1024


def unit_problems(data: np.ndarray, ch_types, noise_std=None) -> list[str]:
    """Messages for channel types whose amplitude shows wrong units.

    Parameters
    ----------
    data : ndarray of shape (M, n_times)
        Real or complex (e.g. Hilbert-transformed): amplitudes are magnitudes
        (``np.std`` of complex values is that of ``|x − mean|``).
    ch_types : sequence of str
        MNE channel type of each row ("mag", "grad", "eeg", ...).
    noise_std : ndarray of shape (M,) or None
        √diag of the noise covariance: data far above or below it (factor
        :data:`UNIT_FACTOR_WARN`) is in other units than the covariance.

    Returns
    -------
    problems : list of str
        One message per channel type that looks wrong (empty when all is well).
    """
    ch_types = np.asarray(ch_types)
    amp_all = np.std(data, axis=-1) if data.shape[-1] > 1 else np.abs(data[:, 0])
    problems = []
    for kind, (low, high, unit, usual) in PLAUSIBLE_AMPLITUDE.items():
        rows = np.flatnonzero(ch_types == kind)
        if not len(rows):
            continue
        amp = float(np.median(amp_all[rows]))
        if amp == 0:
            continue
        if not low <= amp <= high:
            problems.append(
                f"{kind} data have a typical amplitude of {amp:.3g} {unit}, outside the "
                f"plausible {low:.0e} … {high:.0e} {unit}: were they stored in {usual} "
                f"instead of {unit}? Convert them to SI units"
            )
        elif noise_std is not None:
            ratio = amp / float(np.median(np.asarray(noise_std)[rows]))
            if not 1 / UNIT_FACTOR_WARN <= ratio <= UNIT_FACTOR_WARN:
                problems.append(
                    f"{kind} data are {ratio:.3g} times the noise covariance's standard "
                    "deviation: data and covariance seem to be in different units; "
                    "recompute the covariance from data in the same units"
                )
    return problems
