"""What every ``minnorm`` command shares: the parser, option types, exit statuses."""

from __future__ import annotations

import argparse

from ..engine.checks import lambda2_from_snr
from ..engine.regularisation import RULES, lambda2_or_rule

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


def add_regularisation(parser):
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--snr", type=typed(snr_type, "snr"),
                       help="signal-to-noise ratio: λ² = 1/SNR² (default 3, i.e. λ² = 1/9; "
                            "1 is usual for single epochs and raw data)")
    group.add_argument("--lambda2", type=typed(lambda2_or_rule, "lambda2"),
                       help="regularisation λ² > 0 directly (instead of --snr), or a rule "
                            f"that chooses it from the data: {', '.join(RULES)}")


def lambda2_of(args):
    if args.lambda2 is not None:
        return args.lambda2, None
    snr = 3.0 if args.snr is None else args.snr
    return 1.0 / snr**2, snr


class UsageError(Exception):
    """A combination of options that cannot work (exit status 2)."""


def usage(prog, message):
    raise UsageError(f"{prog}: error: {message} (see '{prog} --help')")
