"""What every ``minnorm`` command shares: the parser, option types, exit statuses.

Every call of ``minnorm`` builds the whole parser, ``--help`` and ``--version``
included, so this module and the commands' option modules load no SciPy or
MNE-Python (a λ² given on the command line is checked with SciPy's module then).
"""

from __future__ import annotations

import argparse

from ..engine.checks import check_depth, check_loose, lambda2_from_snr
from ..engine.memory import parse_memory
from ..engine.names import RULES

EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


MAX_DEMO_EPOCHS = 5000  # simulated trials: ~0.7 GiB of sensor data (61 samples), minutes of decoding


MAX_PERMUTATIONS = 1000


UNSET = object()  # --depth's default (its value None means "no depth weighting")


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def typed(check, name):
    """An argparse type from one of minnorm's checks (its message, on one line)."""

    def convert(text):
        try:
            return check(text)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = name
    return convert


def lambda2_type(text):
    """--lambda2: a number > 0 or the name of a rule (returned as is)."""
    from ..engine.regularisation import lambda2_or_rule

    return lambda2_or_rule(text)


def snr_type(text) -> float:
    lambda2_from_snr(text)
    return float(text)


def seed_type(text) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be between 0 and {2**32 - 1}, got {text}")
    return value


def count_type(low: int, high: int):
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


def float_type(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def add_common(parser, *, top=False):
    default = False if top else argparse.SUPPRESS
    parser.add_argument("--debug", action="store_true", default=default,
                        help="show the traceback of an error instead of one line")
    parser.add_argument("--verbose", action="store_true", default=default,
                        help="log each step (MNE-Python's and minnorm's INFO messages)")


def add_regularisation(parser, *, rules: bool = True):
    """--snr or --lambda2; ``rules``: the command has data, so --lambda2 may name a rule."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--snr", type=typed(snr_type, "snr"),
                       help="signal-to-noise ratio: λ² = 1/SNR² (default 3, i.e. λ² = 1/9; "
                            "1 is usual for single epochs and raw data)")
    how = (f", or a rule that chooses it from the data: {', '.join(RULES)}" if rules
           else "; a number only, as the rules that choose λ² need data")
    group.add_argument("--lambda2", type=typed(lambda2_type, "lambda2"),
                       help=f"regularisation λ² > 0 directly (instead of --snr){how}")


def lambda2_of(args):
    if args.lambda2 is not None:
        return args.lambda2, None
    snr = 3.0 if args.snr is None else args.snr
    return 1.0 / snr**2, snr


def numeric_lambda2_of(prog, args):
    """(λ², SNR) for a command that estimates no data: a rule name is a usage error."""
    lambda2, snr = lambda2_of(args)
    if isinstance(lambda2, str):
        usage(prog, f"--lambda2 {lambda2}: the rules choose λ² from the data being estimated "
                    f"(minnorm apply --lambda2 {lambda2}), and {prog} estimates none: give a "
                    "number instead (e.g. --lambda2 0.111 or --snr 3)")
    return lambda2, snr


def add_operator_options(group):
    """--loose, --depth, --fixed and --union-bads: how a new operator is made from --fwd/--cov."""
    group.add_argument("--loose", type=typed(check_loose, "loose"), metavar="{auto,0..1}",
                       help="tangential source variance relative to the normal one: 0 fixed, "
                            "1 free; auto = 0.2 on surfaces, 1 elsewhere (default auto)")
    group.add_argument("--depth", type=typed(check_depth, "depth"), metavar="{none,≥0}",
                       default=UNSET,
                       help="depth-weighting exponent (default 0.8; 0 or none: off)")
    group.add_argument("--fixed", action="store_true",
                       help="orientation fixed normal to the cortex (surfaces only)")
    group.add_argument("--union-bads", action="store_true",
                       help="leave channels that are bad in the data (without data: the "
                            "forward) or the covariance out of both, as MNE-Python does "
                            "silently (default: an error)")


def refuse_with_inv(prog, args, given: list, instead: str) -> None:
    """--inv is a ready operator: ``given`` options, or --loose, --depth, --fixed, cannot change it."""
    given = given + ["--loose"] * (args.loose is not None) \
        + ["--depth"] * (args.depth is not UNSET) + ["--fixed"] * args.fixed
    if given:
        usage(prog, f"--inv is a ready inverse operator: {', '.join(given)} cannot change it; "
                    f"drop them, or give {instead} instead of --inv")


def operator_settings(prog, args) -> dict:
    """``loose``, ``depth`` and ``fixed`` for make_inverse_operator, from the options."""
    if args.fixed and args.loose not in (None, 0.0):
        usage(prog, f"--fixed means --loose 0, got --loose {args.loose}: give one of them")
    return dict(loose=0.0 if args.fixed else ("auto" if args.loose is None else args.loose),
                depth=0.8 if args.depth is UNSET else args.depth, fixed=args.fixed)


def add_overwrite_quiet(group):
    group.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    group.add_argument("--quiet", action="store_true",
                       help="no progress bar and no summary (errors and warnings still show)")


def fraction_type(text) -> float:
    value = float_type(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1), got {text}")
    return value


memory_type = typed(parse_memory, "max_memory")


class UsageError(Exception):
    """A combination of options that cannot work (exit status 2)."""


def usage(prog, message):
    raise UsageError(f"{prog}: error: {message} (see '{prog} --help')")
