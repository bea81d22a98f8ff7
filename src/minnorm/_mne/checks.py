"""Checks where data meet an operator: channel names, bads, compensation grade, reference, values."""

from __future__ import annotations

import contextlib
import logging

import mne
import numpy as np
from mne.io.constants import FIFF

from .._log import warn
from ..engine import checks

logger = logging.getLogger("minnorm")


@contextlib.contextmanager
def log_level(verbose):
    """Use ``verbose`` (MNE's convention) for minnorm's and MNE's loggers."""
    if verbose is None or verbose is False:
        level = "WARNING" if verbose is False else None
    elif verbose is True:
        level = "INFO"
    else:
        level = verbose.upper() if isinstance(verbose, str) else int(verbose)
    old = logger.level
    if level is not None:
        logger.setLevel(level)
    try:
        with mne.utils.use_log_level(level or "WARNING"):
            yield
    finally:
        logger.setLevel(old)


class CompensationGradeError(ValueError, RuntimeError):
    """CTF data at another compensation grade than their forward or inverse operator.

    A ValueError like minnorm's other input errors, and a RuntimeError like
    MNE-Python's for the same refusal, so that ``except`` clauses for either work.
    """


class NotComplexError(ValueError, RuntimeError):
    """Real time-frequency data where complex ones are needed.

    A ValueError like minnorm's other input errors, and a RuntimeError like
    MNE-Python's for the same refusal.
    """


def check_epochs_tfr(epochs_tfr) -> None:
    """An ``mne.time_frequency.EpochsTFR`` of complex values (phase and amplitude)."""
    if not isinstance(epochs_tfr, mne.time_frequency.EpochsTFR):
        raise TypeError("epochs_tfr must be an mne.time_frequency.EpochsTFR, got "
                        f"{type(epochs_tfr).__name__}")
    if not np.iscomplexobj(epochs_tfr.data):
        raise NotComplexError(
            "time-frequency data must be complex for source estimation, got real values "
            '(power): compute them with output="complex", e.g. '
            'epochs.compute_tfr("morlet", freqs, output="complex", return_itc=False)')
    if epochs_tfr.data.ndim != 4:
        raise ValueError(
            f"the EpochsTFR has dimensions {getattr(epochs_tfr, '_dims', epochs_tfr.data.shape)}"
            " (multitaper coefficients, one set per taper; MNE-Python fails on them too): "
            "invert Morlet coefficients, or one taper's as an EpochsTFRArray")


def compensation_grade(info) -> int:
    """CTF gradient-compensation grade of ``info``'s MEG channels (0: none, as MNE)."""
    return info.compensation_grade or 0


def check_compensation_grade(model_info, data_info, model: str) -> None:
    """Data must be at the grade ``model`` ("forward" or "inverse") was computed for.

    As MNE-Python: the grades of all MEG channels of both infos (no MEG channel
    counts as grade 0), compared where data meet a forward or an operator.
    """
    made, data = compensation_grade(model_info), compensation_grade(data_info)
    if made != data:
        redo = "compute the forward solution" if model == "forward" else \
            "make the inverse operator"
        raise CompensationGradeError(
            f"Compensation grade of {model} ({made}) and data ({data}) do not match: use "
            f"raw.apply_gradient_compensation({made}) before epoching or averaging, or "
            f"{redo} from data at grade {data}")


def check_reference(info, ch_names):
    """EEG needs an average-reference projector (and no custom reference)."""
    wanted = set(ch_names)
    all_types = info.get_channel_types()  # once: it is slow (a pick per call)
    types = [t for c, t in zip(info["ch_names"], all_types) if c in wanted]
    if "eeg" not in types:
        return
    if info.get("custom_ref_applied", False):
        raise ValueError(
            "custom EEG reference is not allowed for inverse modelling: use "
            "set_eeg_reference('average', projection=True) on the original data"
        )
    has_avg = any(
        p["kind"] == FIFF.FIFFV_PROJ_ITEM_EEG_AVREF
        or p["desc"].startswith("Average EEG reference")
        for p in info["projs"]
    )
    if not has_avg:
        raise ValueError(
            "EEG average reference (using a projector) is mandatory for "
            "modeling: use inst.set_eeg_reference(projection=True)"
        )


def check_channels(op, info):
    """The operator's channels must all be in the data, at the operator's CTF grade."""
    missing = sorted(set(op.ch_names) - set(info["ch_names"]))
    if missing:
        raise ValueError(
            f"{len(missing)} channels of the inverse operator are not in the data "
            f"({checks.name_list(missing)}): make the inverse operator from this data's info"
        )
    check_compensation_grade(op.info, info, "inverse")
    bads = set(info["bads"])
    bad = [c for c in op.ch_names if c in bads]
    if bad:
        raise ValueError(
            f"{len(bad)} channels that the inverse operator uses are marked bad in the "
            f"data ({checks.name_list(bad)}): make the inverse operator from this data's "
            "info, so that they are left out"
        )
    check_reference(info, op.ch_names)


def check_data(data: np.ndarray, op, info, *, nave: float = 1.0, units: bool = True) -> None:
    """Data in the operator's channel order: finite, and (a warning) in SI units."""
    checks.check_finite(data, "data", row_names=op.ch_names)
    if units:
        types = dict(zip(info["ch_names"], info.get_channel_types()))
        noise_std = np.sqrt(np.clip(np.diag(op.noise_cov), 0, None) / nave)
        for problem in checks.unit_problems(data, [types[c] for c in op.ch_names], noise_std):
            warn(problem)


def pick_rows(data_ch_names, op) -> list:
    """Indices of the operator's channels in the data, in the operator's order."""
    index = {c: k for k, c in enumerate(data_ch_names)}
    return [index[c] for c in op.ch_names]


_INSTANCE = {"evoked": "Evoked", "epochs": "Epochs", "raw": "Raw"}


def check_instance(inst, kind):
    """Type check of the data argument, naming what was given."""
    classes = {"evoked": mne.Evoked, "epochs": mne.BaseEpochs, "raw": mne.io.BaseRaw}
    if not isinstance(inst, classes[kind]):
        raise TypeError(f"{kind} must be an mne {_INSTANCE[kind]}, got {type(inst).__name__}")
    if kind == "epochs" and len(inst.drop_log) and not len(inst.events):
        raise ValueError("the Epochs are empty (every epoch was dropped): nothing to invert")


def may_be_complex(inst) -> bool:
    """Whether an Evoked's, Epochs' or Raw's data may be complex (e.g. after ``apply_hilbert``).

    Exact for data in memory and for lazy raw data (the dtype MNE reads them
    in); True for lazy epochs read from a file, whose dtype shows only once read.
    """
    if isinstance(inst, mne.Evoked):
        return np.iscomplexobj(inst.data)
    if getattr(inst, "preload", False):
        return np.iscomplexobj(inst._data)
    if isinstance(inst, mne.io.BaseRaw):
        return np.dtype(inst._dtype).kind == "c"
    raw = getattr(inst, "_raw", None)  # lazy epochs: the raw they are cut from
    return may_be_complex(raw) if isinstance(raw, mne.io.BaseRaw) else True


def data_kind(inst) -> str | None:
    """"evoked", "epochs" or "raw" (None for anything else)."""
    if isinstance(inst, mne.Evoked):
        return "evoked"
    if isinstance(inst, mne.BaseEpochs):
        return "epochs"
    if isinstance(inst, mne.io.BaseRaw):
        return "raw"
    return None
