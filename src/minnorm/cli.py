"""The ``minnorm`` command line."""

from __future__ import annotations

import argparse
import sys

from ._version import __version__

DESCRIPTION = """\
minnorm — minimum-norm MEG/EEG source imaging (MNE, dSPM, sLORETA, eLORETA),
equal to MNE-Python's mne.minimum_norm and faster.

The minimum-norm estimate of the cortical currents s from sensor data b is

    ŝ(t) = R Lᵀ (L R Lᵀ + λ² C)⁻¹ b(t)

with L the leadfield (forward model), C the noise covariance, R the source
covariance (depth weighting and orientation prior) and λ² = 1/SNR².
"""

EPILOG = """\
examples:
  minnorm --version
  python -c "import minnorm; help(minnorm.apply_inverse)"
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``minnorm`` command."""
    parser = argparse.ArgumentParser(
        prog="minnorm", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"minnorm {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return parser


def main(argv=None) -> int:
    """Entry point of the ``minnorm`` console script."""
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
