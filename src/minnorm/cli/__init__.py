"""The ``minnorm`` command line: ``demo``, ``decode-demo``, ``apply``, ``story``,
``resolution``.

Every subcommand runs inside :func:`main`, which turns any failure into one
line on standard error — what is wrong and how to fix it — and an exit
status: 0 success, 1 bad input (a file, a value, a combination), 2 bad usage
(an unknown option, a value argparse rejects), 3 an internal error (please
report it), 130 interrupted. ``--debug`` shows the traceback instead.
Warnings (for example data in the wrong units) are one ``warning:`` line
each and do not stop the run.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import signal
import sys
import warnings

from .. import _log
from .._version import __version__
from . import apply, demos, resolution, story
from .options import (
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Parser,
    UsageError,
    add_common,
)

DESCRIPTION = """\
minnorm — minimum-norm MEG/EEG source imaging (MNE, dSPM, sLORETA, eLORETA),
equal to MNE-Python's mne.minimum_norm and faster.

The minimum-norm estimate of the cortical currents s from sensor data b is

    ŝ(t) = R Lᵀ (L R Lᵀ + λ² C)⁻¹ b(t)

with L the leadfield (forward model), C the noise covariance, R the source
covariance (depth weighting and orientation prior) and λ² = 1/SNR².

commands:
  demo         the minimum-norm story on a template head with known truth: HTML report
  decode-demo  predicting "subjective experience" from source space: HTML report
  apply        source estimates of your evoked, epochs or raw FIF files
  story        the minimum-norm story told on your own files (no output files)
  resolution   PSF/CTF resolution maps of your inverse operator, per method: files and HTML

Run 'minnorm COMMAND --help' for a command's options and examples.
"""

EPILOG = """\
examples:
  minnorm demo --out demo --open
  minnorm story --fwd sample-fwd.fif --cov sample-cov.fif --evoked sample-ave.fif
  minnorm apply --fwd sample-fwd.fif --cov sample-cov.fif \\
                --evoked sample-ave.fif --condition "Left Auditory" --out results/left-aud
  minnorm resolution --fwd sample-fwd.fif --cov sample-cov.fif --out results/resolution
  minnorm --version

exit status: 0 done, 1 bad input (the message says what and how to fix it),
2 bad usage, 3 internal error (rerun with --debug and report it), 130 interrupted.
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``minnorm`` command."""
    parser = Parser(prog="minnorm", description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"minnorm {__version__}")
    add_common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    demos.add_demo_parser(sub)
    demos.add_decode_demo_parser(sub)
    apply.add_parser(sub)
    story.add_parser(sub)
    resolution.add_parser(sub)
    return parser


# --------------------------------------------------------------------------
# Commands


# --------------------------------------------------------------------------
# Entry point


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


@contextlib.contextmanager
def _terminate_as_interrupt():
    """SIGTERM (``kill``, a job scheduler's time limit) cleans up as Ctrl-C does."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _error_text(exc: BaseException) -> str:
    text = _one_line(exc)
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        text += " (no output was written or changed: free disk space and run again)"
    return text


def _show_warning(prog):
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{prog}: warning: {_one_line(message)}", file=sys.stderr)

    return show


def main(argv=None) -> int:
    """Entry point of the ``minnorm`` console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    prog = f"minnorm {args.command}"
    try:
        from .. import _mne

        level = "INFO" if args.verbose else "WARNING"
        with warnings.catch_warnings(), _log.show_progress(not getattr(args, "quiet", False)), \
                _mne.log_level(level), _log.log_to_stderr(level), _terminate_as_interrupt():
            warnings.simplefilter("always", _log.MinnormWarning)
            warnings.showwarning = _show_warning(prog)
            return args.handler(parser, args)
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"{prog}: interrupted: no output was written or changed", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (OSError, ValueError, TypeError, LookupError, MemoryError) as exc:
        if args.debug:
            raise
        print(f"{prog}: error: {_error_text(exc)}", file=sys.stderr)
        return EXIT_INPUT
    except Exception as exc:  # a bug: say so, briefly
        if args.debug:
            raise
        print(f"{prog}: internal error: {type(exc).__name__}: {_one_line(exc)} (run again "
              "with --debug for the traceback, and please report it)", file=sys.stderr)
        return EXIT_INTERNAL
