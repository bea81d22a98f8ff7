"""Reading the user's FIF files: what kind each one is, and clear errors.

Every reader first opens the file's tag directory and looks at which FIF
blocks it holds, so that a covariance given as the forward (and so on) is
named as such, then reads it with MNE-Python. Errors are of the type a
Python user expects (FileNotFoundError, PermissionError, IsADirectoryError,
ValueError) and say which option the file was given to (``--fwd``...) and
what to do. Like :mod:`minnorm._mne`, this module is an edge with MNE.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import mne
import numpy as np
from mne.io.constants import FIFF

from .paths import user_path

__all__ = ["file_kind", "read_forward", "read_cov", "read_evoked",
           "read_epochs", "read_raw", "read_inverse", "read_label"]

# File kinds, most specific first: an inverse file also holds a covariance
# and source spaces, a forward file source spaces, epochs files events.
_KIND_BLOCKS = (
    ("inverse operator", ("FIFFB_MNE_INVERSE_SOLUTION",), "--inv", "-inv.fif"),
    ("forward solution", ("FIFFB_MNE_FORWARD_SOLUTION",), "--fwd", "-fwd.fif"),
    ("epochs", ("FIFFB_MNE_EPOCHS", "FIFFB_EPOCHS"), "--epochs", "-epo.fif"),
    ("evoked", ("FIFFB_EVOKED",), "--evoked", "-ave.fif"),
    ("raw", ("FIFFB_RAW_DATA", "FIFFB_CONTINUOUS_DATA", "FIFFB_IAS_RAW_DATA"), "--raw",
     "_raw.fif"),
    ("noise covariance", ("FIFFB_MNE_COV",), "--cov", "-cov.fif"),
    ("source space", ("FIFFB_MNE_SOURCE_SPACE",), None, "-src.fif"),
    ("BEM", ("FIFFB_BEM",), None, "-bem.fif"),
    ("events", ("FIFFB_MNE_EVENTS",), None, "-eve.fif"),
)
_OPTION = {kind: option for kind, _, option, _ in _KIND_BLOCKS}


def _blocks(tree, out: set) -> set:
    out.add(tree["block"])
    for child in tree["children"]:
        _blocks(child, out)
    return out


def _check_path(fname, option: str) -> Path:
    path = user_path(fname)
    if not path.exists():
        raise FileNotFoundError(f"{option}: no such file: {path} (check the path)")
    if path.is_dir():
        raise IsADirectoryError(f"{option}: {path} is a folder, not a file: give the file")
    try:
        with open(path, "rb") as fid:
            fid.read(1)
    except PermissionError:
        raise PermissionError(f"{option}: cannot read {path}: permission denied "
                              "(fix its permissions)") from None
    return path


def file_kind(fname, option: str = "file") -> str:
    """What a FIF file holds ("forward solution", "evoked", ..., or "unknown")."""
    from mne._fiff.open import fiff_open

    path = _check_path(fname, option)
    # MNE reports a damaged file by a warning (logged and warned): catch both
    with warnings.catch_warnings(record=True) as caught, \
            mne.utils.catch_logging(verbose="warning") as log:
        warnings.simplefilter("always")
        try:
            fid, tree, _ = fiff_open(path, verbose="warning")
        except Exception as exc:  # any failure here means: not a readable FIF file
            raise ValueError(f"{option}: {path} is not a FIF file or is damaged "
                             f"({_short(exc)}): give an MNE -fif file") from None
    with fid:
        present = _blocks(tree, set())
    messages = [str(w.message) for w in caught] + log.getvalue().splitlines()
    damage = [m for m in messages
              if re.search("invalid tag|corrupt|truncat", m, re.IGNORECASE)]
    if damage:
        raise ValueError(f"{option}: {path} is damaged or truncated ({_short(damage[0])}): "
                         "copy it again or recompute it")
    for kind, names, _, _ in _KIND_BLOCKS:
        if any(getattr(FIFF, name, None) in present for name in names):
            return kind
    return "unknown"


def _expect(fname, option: str, expected: str) -> Path:
    """The path of ``fname`` after checking it holds ``expected``."""
    kind = file_kind(fname, option)
    if kind != expected:
        path = user_path(fname)
        fix = f"give a {_suffix(expected)} file to {option}"
        if _OPTION.get(kind) is not None:
            fix = f"pass it to {_OPTION[kind]} instead, and a {_suffix(expected)} file to {option}"
        raise ValueError(f"{option}: {path.name} is a{'n' if kind[0] in 'aeiou' else ''} "
                         f"{kind} file, not a{'n' if expected[0] in 'aeiou' else ''} "
                         f"{expected}: {fix}")
    return user_path(fname)


DATA_KINDS = {"evoked": "evoked", "epochs": "epochs", "raw": "raw"}


def expect_kinds(files) -> None:
    """Check (path, option, kind) triples at once (None paths are skipped).

    Cheap (only the tag directories are read): run it before reading any
    file's contents, so that a file given to the wrong option is named first.
    """
    for path, option, kind in files:
        if path is not None:
            _expect(path, option, kind)


def _suffix(kind: str) -> str:
    return next(suffix for k, _, _, suffix in _KIND_BLOCKS if k == kind)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _read(reader, path: Path, option: str, kind: str, **kwargs):
    """Call an MNE reader; its failures become one clear ValueError."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not conform to MNE naming")
        try:
            return reader(path, verbose="error", **kwargs)
        except (ValueError, KeyError, IndexError, RuntimeError, OSError, TypeError) as exc:
            raise ValueError(f"{option}: could not read {path.name} as {kind} "
                             f"({_short(exc)}): is the file complete?") from None


def read_forward(fname, option: str = "--fwd"):
    """An mne.Forward from a -fwd.fif file."""
    path = _expect(fname, option, "forward solution")
    return _read(mne.read_forward_solution, path, option, "a forward solution")


def read_cov(fname, option: str = "--cov"):
    """An mne.Covariance from a -cov.fif file."""
    path = _expect(fname, option, "noise covariance")
    return _read(mne.read_cov, path, option, "a covariance")


def read_inverse(fname, option: str = "--inv"):
    """MNE's InverseOperator from a -inv.fif file."""
    path = _expect(fname, option, "inverse operator")
    return _read(mne.minimum_norm.read_inverse_operator, path, option, "an inverse operator")


def read_evoked(fname, condition=None, option: str = "--evoked"):
    """One mne.Evoked of a -ave.fif file, by comment or index.

    ``condition`` None is allowed only when the file holds one condition:
    with several, the error lists them.
    """
    path = _expect(fname, option, "evoked")
    for key in _condition_keys(condition):  # MNE reads only the condition's data (the
        evoked = _read_condition(path, key)  # sample .fif.gz: 0.4 s instead of 2.9 s for all)
        if evoked is not None:
            return evoked
    evokeds = _read(mne.read_evokeds, path, option, "evoked responses")  # all: to list them
    names = [e.comment for e in evokeds]
    listing = ", ".join(f"{k}: {n!r}" for k, n in enumerate(names))
    if condition is None:
        if len(evokeds) == 1:
            return evokeds[0]
        raise ValueError(f"{path.name} holds {len(evokeds)} conditions ({listing}): "
                         "choose one with --condition NAME or INDEX")
    if isinstance(condition, str) and condition in names:
        return evokeds[names.index(condition)]
    if isinstance(condition, int) or re.fullmatch(r"-?\d+", str(condition)):
        index = int(condition)
        if -len(evokeds) <= index < len(evokeds):
            return evokeds[index]
    raise ValueError(f"condition {condition!r} is not in {path.name}: its conditions "
                     f"are {listing} (give a name or an index)")


def _condition_keys(condition) -> list:
    """What MNE-Python's reader may find ``condition`` by: the comment, then the index."""
    if condition is None or isinstance(condition, (bool, np.bool_)):
        return []
    if isinstance(condition, (int, np.integer)):
        return [int(condition)] if condition >= 0 else []
    keys = [str(condition)]
    return keys + [int(condition)] if re.fullmatch(r"\d+", str(condition)) else keys


def _read_condition(path: Path, key):
    """The one condition ``key`` (comment or index), or None where MNE cannot read it so."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not conform to MNE naming")
        try:
            return mne.read_evokeds(path, condition=key, verbose="error")
        except (ValueError, KeyError, IndexError, RuntimeError, OSError, TypeError):
            return None


def read_epochs(fname, option: str = "--epochs"):
    """mne.Epochs (preloaded lazily) from a -epo.fif file; refuses empty ones."""
    path = _expect(fname, option, "epochs")
    epochs = _read(mne.read_epochs, path, option, "epochs", preload=False)
    if len(epochs.events) == 0:
        raise ValueError(f"{option}: {path.name} holds no epoch (all were dropped): "
                         "nothing to invert; check the rejection thresholds")
    return epochs


def read_raw(fname, option: str = "--raw"):
    """mne.io.Raw (not preloaded) from a _raw.fif file."""
    path = _expect(fname, option, "raw")
    return _read(mne.io.read_raw_fif, path, option, "raw data", preload=False)


def read_label(fname, option: str = "--label"):
    """An mne.Label; its subject is taken from a FreeSurfer "from subject X" comment."""
    path = _check_path(fname, option)
    try:
        label = mne.read_label(path, verbose="error")
    except Exception as exc:  # malformed text, hemisphere not in the name
        raise ValueError(f"{option}: could not read {path.name} as a label "
                         f"({_short(exc)})") from None
    match = re.search(r"from subject (\S+)", label.comment or "")
    if match:
        label.subject = match.group(1)
    return label
