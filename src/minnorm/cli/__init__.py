"""The ``minnorm`` command line: ``demo``, ``decode-demo``, ``apply``, ``story``.

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
from pathlib import Path

from .. import _log
from .._version import __version__
from ..engine.checks import check_depth, check_loose, check_snr
from ..engine.kernel import METHODS, check_lambda2

EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

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

Run 'minnorm COMMAND --help' for a command's options and examples.
"""

EPILOG = """\
examples:
  minnorm demo --out demo --open
  minnorm story --fwd sample-fwd.fif --cov sample-cov.fif --evoked sample-ave.fif
  minnorm apply --fwd sample-fwd.fif --cov sample-cov.fif \\
                --evoked sample-ave.fif --condition "Left Auditory" --out results/left-aud
  minnorm --version

exit status: 0 done, 1 bad input (the message says what and how to fix it),
2 bad usage, 3 internal error (rerun with --debug and report it), 130 interrupted.
"""

APPLY_DESCRIPTION = """\
Source estimates of MEG/EEG data from MNE's FIF files, as mne.minimum_norm
computes them: make the inverse operator from a forward solution (--fwd) and a
noise covariance (--cov), or read one (--inv), and apply it to an evoked
response (--evoked), epochs (--epochs) or continuous data (--raw).

Outputs (PREFIX is --out):
  surface estimates         PREFIX-lh.stc and PREFIX-rh.stc (MNE's .stc, float32)
  volume/discrete estimates PREFIX-vl.stc
  vector, mixed (or --format h5)  PREFIX-stc.h5 (MNE's HDF5, float64)
  epochs                    one of the above per epoch (PREFIX-epoch07-lh.stc...),
                            or with --epochs-output array one PREFIX-epochs.h5
                            (minnorm.io.read_estimates_array, or lazily
                            minnorm.read_source_array)
  --save-inverse            PREFIX-inv.fif (read it with mne or minnorm)
Read them with mne.read_source_estimate: PREFIX for surfaces, the file name
(PREFIX-vl.stc, PREFIX-stc.h5) otherwise.

Nothing is written unless everything works: every file and option is checked
before the computation, outputs are written atomically (a temporary file,
then a rename), and existing files are kept unless --overwrite is given.
"""

APPLY_EPILOG = """\
examples:
  # dSPM on one condition of an evoked file (SNR 3: λ² = 1/9)
  minnorm apply --fwd sample-fwd.fif --cov sample-cov.fif \\
      --evoked sample-ave.fif --condition "Left Auditory" --out out/left-aud

  # sLORETA on every epoch, free orientation, one array file, keep the operator
  minnorm apply --fwd sample-fwd.fif --cov sample-cov.fif --epochs sample-epo.fif \\
      --method sLORETA --loose 1 --snr 1 --epochs-output array --save-inverse --out out/ep

  # MNE on 10 s of raw data with an existing inverse operator, in a label
  minnorm apply --inv sample-inv.fif --raw sample_raw.fif --tmin 20 --tmax 30 \\
      --method MNE --lambda2 1 --label Aud-lh.label --out out/raw-aud
"""

STORY_DESCRIPTION = """\
The minimum-norm story told on your own files: the channels by type, the
source spaces and their used/total vertices per hemisphere, the leadfield L's
shape, units and one row, the check n_used_lh + n_used_rh = n_columns / 3,
the noise covariance's rank and projectors, the terms of

    ŝ = Lᵀ (G + εI)⁻¹ b,    G = L Lᵀ

with their dimensions, G's rank and condition number, and the default
λ² = 1/SNR² explained. With --cov, L is whitened first (as the inverse does);
with --evoked, the data vector b and its signal-to-noise ratio are shown too.
Nothing is written.
"""

STORY_EPILOG = """\
examples:
  minnorm demo --out demo --open
  minnorm story --fwd sample-fwd.fif
  minnorm story --fwd sample-fwd.fif --cov sample-cov.fif --evoked sample-ave.fif --condition 0
"""


MAX_DEMO_EPOCHS = 5000  # simulated trials: ~0.7 GiB of sensor data (61 samples), minutes of decoding
MAX_PERMUTATIONS = 1000
_UNSET = object()  # --depth's default (its value None means "no depth weighting")


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _typed(check, name):
    """An argparse type from one of minnorm's checks (its message, on one line)."""

    def convert(text):
        try:
            return check(text)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = name
    return convert


def _snr(text) -> float:
    check_snr(text)
    return float(text)


def _seed(text) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be between 0 and {2**32 - 1}, got {text}")
    return value


def _count(low: int, high: int):
    """An argparse type for a whole number in [low, high]."""

    def convert(text) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {text}")
        return value

    convert.__name__ = "count"
    return convert


def _float(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _add_common(parser, *, top=False):
    default = False if top else argparse.SUPPRESS
    parser.add_argument("--debug", action="store_true", default=default,
                        help="show the traceback of an error instead of one line")
    parser.add_argument("--verbose", action="store_true", default=default,
                        help="log each step (MNE-Python's and minnorm's INFO messages)")


def _add_regularisation(parser):
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--snr", type=_typed(_snr, "snr"),
                       help="signal-to-noise ratio: λ² = 1/SNR² (default 3, i.e. λ² = 1/9; "
                            "1 is usual for single epochs and raw data)")
    group.add_argument("--lambda2", type=_typed(check_lambda2, "lambda2"),
                       help="regularisation λ² > 0 directly (instead of --snr)")


def _add_apply(sub):
    p = sub.add_parser("apply", help="source estimates of your files",
                       description=APPLY_DESCRIPTION, epilog=APPLY_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    model = p.add_argument_group("model (--fwd and --cov, or --inv)")
    model.add_argument("--fwd", type=Path, metavar="FWD", help="forward solution (-fwd.fif)")
    model.add_argument("--cov", type=Path, metavar="COV", help="noise covariance (-cov.fif)")
    model.add_argument("--inv", type=Path, metavar="INV",
                       help="an inverse operator (-inv.fif) to use instead of --fwd/--cov")
    data = p.add_argument_group("data (one of)").add_mutually_exclusive_group(required=True)
    data.add_argument("--evoked", type=Path, metavar="AVE", help="evoked responses (-ave.fif)")
    data.add_argument("--epochs", type=Path, metavar="EPO", help="epochs (-epo.fif)")
    data.add_argument("--raw", type=Path, metavar="RAW", help="continuous data (_raw.fif)")
    sel = p.add_argument_group("selection")
    sel.add_argument("--condition", metavar="NAME|INDEX",
                     help="which evoked response of the file (needed when it has several)")
    sel.add_argument("--tmin", type=_float, metavar="S", help="first time to keep (s)")
    sel.add_argument("--tmax", type=_float, metavar="S", help="last time to keep (s)")
    sel.add_argument("--label", type=Path, metavar="LABEL",
                     help="keep only the sources in this FreeSurfer .label (surfaces only)")
    inv = p.add_argument_group("inverse")
    inv.add_argument("--method", choices=METHODS, default="dSPM",
                     help="MNE (currents, A·m), dSPM or sLORETA (noise-normalised), "
                          "eLORETA (default dSPM)")
    _add_regularisation(inv)
    inv.add_argument("--loose", type=_typed(check_loose, "loose"), metavar="{auto,0..1}",
                     help="tangential source variance relative to the normal one: 0 fixed, "
                          "1 free; auto = 0.2 on surfaces, 1 elsewhere (default auto)")
    inv.add_argument("--depth", type=_typed(check_depth, "depth"), metavar="{none,≥0}",
                     default=_UNSET,
                     help="depth-weighting exponent (default 0.8; 0 or none: off)")
    inv.add_argument("--fixed", action="store_true",
                     help="orientation fixed normal to the cortex (surfaces only)")
    inv.add_argument("--pick-ori", choices=("normal", "vector"),
                     help="normal: the component normal to the cortex; vector: x, y, z "
                          "(default: the norm over orientations)")
    inv.add_argument("--union-bads", action="store_true",
                     help="leave channels that are bad in the data or the covariance out of "
                          "both, as MNE-Python does silently (default: an error)")
    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, required=True, metavar="PREFIX",
                     help="output path without suffix; its folder must exist")
    out.add_argument("--format", dest="ftype", choices=("auto", "stc", "h5"), default="auto",
                     help="auto: .stc where MNE has it, else -stc.h5 (default auto)")
    out.add_argument("--epochs-output", choices=("files", "array"), default="files",
                     help="with --epochs: one file set per epoch, or one array file "
                          "(default files)")
    out.add_argument("--save-inverse", action="store_true",
                     help="also write the inverse operator to PREFIX-inv.fif")
    out.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    out.add_argument("--quiet", action="store_true",
                     help="no progress bar and no summary (errors and warnings still show)")
    _add_common(p)
    p.set_defaults(handler=_run_apply)


def _add_story(sub):
    p = sub.add_parser("story", help="the minimum-norm story on your files",
                       description=STORY_DESCRIPTION, epilog=STORY_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fwd", type=Path, required=True, metavar="FWD",
                   help="forward solution (-fwd.fif)")
    p.add_argument("--cov", type=Path, metavar="COV",
                   help="noise covariance (-cov.fif): whitens L, shows its rank and projectors")
    p.add_argument("--evoked", type=Path, metavar="AVE",
                   help="evoked responses (-ave.fif): the data vector b and its SNR")
    p.add_argument("--condition", metavar="NAME|INDEX",
                   help="which evoked response of the file (needed when it has several)")
    _add_regularisation(p)
    _add_common(p)
    p.set_defaults(handler=_run_story)


DEMO_DESCRIPTION = """\
The minimum-norm story on an embedded template head (fsaverage cortex, one-layer
BEM, the Neuromag VectorView helmet), with a simulated N100m-like bilateral
auditory response at 100 ms and two distant right temporal sources at 300 ms:

  1. the forward model told with its numbers (channels, sources, leadfield,
     the terms of the equation, G's rank and condition number, why λ²);
  2. MNE, dSPM, sLORETA and eLORETA against the truth: peak localisation
     error, spatial dispersion, depth of the peaks (the surface bias),
     explained variance;
  3. the L-curve; 4. one dipole per hemisphere at 100 and 300 ms;
  5. an offline HTML report (OUT/report.html) and the estimates as
     OUT/demo-METHOD-lh.stc / -rh.stc, which MNE-Python reads.

The head is built on first use (about 10 s) and cached in $MINNORM_CACHE_DIR,
else $XDG_CACHE_HOME/minnorm, else ~/.cache/minnorm.
"""

DEMO_EPILOG = """\
examples:
  minnorm demo                         # writes minnorm-demo/report.html
  minnorm demo --out demo --snr 10 --seed 3 --open
  minnorm demo --spacing ico5          # the full-resolution cortex (20,484 sources)
"""

DECODE_DESCRIPTION = """\
Predicting the level of "subjective experience" (three levels) from simulated
single trials on the template head: the early visual response is shared, a
later right occipito-temporal source grows with the level. Accuracy over time
in sensor space and in dSPM source space (with chance and a permutation
band), and the classifier's pattern on the cortex, in OUT/decode.html.
"""


def _add_demo(sub):
    p = sub.add_parser("demo", help="the story on a template head, with pictures",
                       description=DEMO_DESCRIPTION, epilog=DEMO_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("minnorm-demo"), metavar="DIR",
                   help="output directory (default: minnorm-demo)")
    p.add_argument("--snr", type=_typed(_snr, "snr"), default=3.0,
                   help="SNR of the simulated evoked response at its peak (default 3)")
    p.add_argument("--seed", type=_seed, default=0, help="random seed, 0 … 2³²−1 (default 0)")
    p.add_argument("--spacing", choices=("ico3", "ico4", "ico5"), default="ico4",
                   help="template cortex resolution (default ico4: 5124 sources)")
    p.add_argument("--open", action="store_true", help="open the report in the web browser")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    _add_common(p)
    p.set_defaults(handler=_run_demo)


def _add_decode_demo(sub):
    p = sub.add_parser("decode-demo", help="decoding from source space, with pictures",
                       description=DECODE_DESCRIPTION,
                       epilog="examples:\n  minnorm decode-demo --out decode --epochs 240\n",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("minnorm-decode-demo"), metavar="DIR",
                   help="output directory (default: minnorm-decode-demo)")
    p.add_argument("--epochs", type=_count(30, MAX_DEMO_EPOCHS), default=180,
                   help=f"number of trials, 30 … {MAX_DEMO_EPOCHS} (default 180)")
    p.add_argument("--seed", type=_seed, default=0, help="random seed, 0 … 2³²−1 (default 0)")
    p.add_argument("--permutations", type=_count(1, MAX_PERMUTATIONS), default=10,
                   help=f"label shufflings for the chance band, 1 … {MAX_PERMUTATIONS} "
                        "(default 10)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    _add_common(p)
    p.set_defaults(handler=_run_decode_demo)


def _run_demo(parser, args) -> int:
    from ..teaching.demo import run_demo

    run_demo(out=args.out, snr=args.snr, seed=args.seed, spacing=args.spacing,
             open_browser=args.open, overwrite=args.overwrite, progress=not args.quiet,
             echo=(lambda *a: None) if args.quiet else print)
    return EXIT_OK


def _run_decode_demo(parser, args) -> int:
    from ..teaching.decode_demo import run_decode_demo

    run_decode_demo(out=args.out, n_epochs=args.epochs, seed=args.seed,
                    n_permutations=args.permutations, overwrite=args.overwrite,
                    progress=not args.quiet, echo=(lambda *a: None) if args.quiet else print)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``minnorm`` command."""
    parser = _Parser(prog="minnorm", description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"minnorm {__version__}")
    _add_common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_demo(sub)
    _add_decode_demo(sub)
    _add_apply(sub)
    _add_story(sub)
    return parser


# --------------------------------------------------------------------------
# Commands


def _lambda2(args):
    if args.lambda2 is not None:
        return args.lambda2, None
    snr = 3.0 if args.snr is None else args.snr
    return 1.0 / snr**2, snr


def _apply_request(parser, args):
    """Check the combination of options; returns a workflow.ApplyRequest."""
    from .workflow import ApplyRequest

    sub = f"{parser.prog} apply"
    if args.inv is not None:
        given = [f"--{n}" for n in ("fwd", "cov", "loose") if getattr(args, n) is not None]
        given += ["--depth"] * (args.depth is not _UNSET)
        given += ["--fixed"] * args.fixed + ["--save-inverse"] * args.save_inverse
        if given:
            _usage(sub, f"--inv is a ready inverse operator: {', '.join(given)} cannot change "
                        "it; drop them, or give --fwd and --cov instead of --inv")
    elif args.fwd is None or args.cov is None:
        _usage(sub, "give --fwd and --cov (to make the inverse operator) or --inv (to use "
                    "one)")
    if args.condition is not None and args.evoked is None:
        _usage(sub, "--condition selects an evoked response: use it with --evoked")
    if args.epochs_output != "files" and args.epochs is None:
        _usage(sub, "--epochs-output is for --epochs")
    if args.fixed and args.loose not in (None, 0.0):
        _usage(sub, f"--fixed means --loose 0, got --loose {args.loose}: give one of them")
    kind = next(k for k in ("evoked", "epochs", "raw") if getattr(args, k) is not None)
    lambda2, snr = _lambda2(args)
    loose = 0.0 if args.fixed else ("auto" if args.loose is None else args.loose)
    return ApplyRequest(
        data_kind=kind, data=getattr(args, kind), out=args.out, fwd=args.fwd, cov=args.cov,
        inv=args.inv, condition=args.condition, tmin=args.tmin, tmax=args.tmax,
        method=args.method, lambda2=lambda2, snr=snr, loose=loose,
        depth=0.8 if args.depth is _UNSET else args.depth,
        fixed=args.fixed, pick_ori=args.pick_ori, label=args.label,
        save_inverse=args.save_inverse, epochs_output=args.epochs_output, ftype=args.ftype,
        overwrite=args.overwrite, union_bads=args.union_bads,
    )


class _UsageError(Exception):
    """A combination of options that cannot work (exit status 2)."""


def _usage(prog, message):
    raise _UsageError(f"{prog}: error: {message} (see '{prog} --help')")


def _run_apply(parser, args) -> int:
    from .workflow import run_apply

    request = _apply_request(parser, args)
    result = run_apply(request)
    if not args.quiet:
        print(result.summary())
    return EXIT_OK


def _run_story(parser, args) -> int:
    from .workflow import tell_story_from_files

    lambda2, _ = _lambda2(args)
    print(tell_story_from_files(args.fwd, cov=args.cov, evoked=args.evoked,
                                condition=args.condition, lambda2=lambda2))
    return EXIT_OK


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
    except _UsageError as exc:
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
