"""The one place for minnorm's log messages, warnings and progress bars.

The maths stays silent; the modules that talk to the user (``apply``, the
command line) go through here:

* ``logger``: the ``"minnorm"`` logger (MNE's ``verbose`` convention is
  honoured by :func:`minnorm._mne.log_level`);
* :func:`warn`: a :class:`MinnormWarning` (shown once per place by Python's
  warnings machinery, turned into one ``warning:`` line by the command line);
* :func:`progress`: a tqdm bar on standard error that appears only when the
  work takes longer than a second, standard error is a terminal, and progress
  was switched on (:func:`show_progress`, used by the command line) — never
  in library calls.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
import warnings

__all__ = ["MinnormWarning", "logger", "warn", "progress", "show_progress", "log_to_stderr"]

logger = logging.getLogger("minnorm")

_PROGRESS = contextvars.ContextVar("minnorm_progress", default=False)
PROGRESS_DELAY_S = 1.0  # a bar only for work longer than this


class MinnormWarning(UserWarning):
    """Something in the input looks wrong but the computation can go on."""


def warn(message: str, *, stacklevel: int = 3) -> None:
    """Warn the user (as a :class:`MinnormWarning`) and log it."""
    logger.debug("warning: %s", message)
    warnings.warn(message, MinnormWarning, stacklevel=stacklevel)


@contextlib.contextmanager
def log_to_stderr(level: str = "INFO"):
    """Within this context, minnorm's log messages of ``level`` and above go to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("minnorm: %(message)s"))
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


@contextlib.contextmanager
def show_progress(enabled: bool = True):
    """Within this context, :func:`progress` draws its bars."""
    token = _PROGRESS.set(enabled)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def progress(iterable=None, *, total=None, desc: str = "", unit: str = "it"):
    """``iterable`` wrapped in a progress bar (or as it is, when progress is off).

    The bar is drawn on standard error after :data:`PROGRESS_DELAY_S` seconds
    and removed when done, so short work prints nothing.
    """
    if not _PROGRESS.get():
        return _Silent(iterable)
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, delay=PROGRESS_DELAY_S,
                leave=False, file=sys.stderr, dynamic_ncols=True,
                disable=None)  # None: no bar when standard error is not a terminal


class _Silent:
    """Stands in for a tqdm bar when progress is off: iterates, ignores updates."""

    def __init__(self, iterable):
        self._iterable = iterable

    def __iter__(self):
        return iter(self._iterable)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        """Ignored."""

    def set_description_str(self, desc=None, refresh=True):
        """Ignored."""

    def close(self):
        """Ignored."""
