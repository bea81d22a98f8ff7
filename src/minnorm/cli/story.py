"""``minnorm story``: the minimum-norm story told on the user's own files (nothing written).

This module holds the command's options, which every call of ``minnorm`` loads to
build its parser, so it imports no MNE-Python: the work,
:func:`~minnorm.cli.story_files.tell_story_from_files`, is imported when the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import EXIT_OK, add_common, add_regularisation, numeric_lambda2_of

__all__ = ["add_parser"]


STORY_DESCRIPTION = """\
The minimum-norm story told on your own files: the channels by type, the
source spaces and their used/total vertices per hemisphere, the leadfield L's
shape, units and one row, the check n_used_lh + n_used_rh = n_columns / 3,
the noise covariance's rank and projectors, the terms of

    ŝ = Lᵀ (G + εI)⁻¹ b,    G = L Lᵀ

with their dimensions, G's rank and condition number, and the default
λ² = 1/SNR² explained. With --cov, L is whitened first (as the inverse does);
with --evoked, the data vector b and its signal-to-noise ratio are shown too,
and the λ² each rule (gcv, lcurve, discrepancy, evidence, cv) chooses from
them, next to the λ² used, with what each rule optimises. Nothing is written.
"""


STORY_EPILOG = """\
examples:
  minnorm demo --out demo --open
  minnorm story --fwd sample-fwd.fif
  minnorm story --fwd sample-fwd.fif --cov sample-cov.fif --evoked sample-ave.fif --condition 0
"""


def add_parser(sub):
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
    add_regularisation(p, rules=False)
    add_common(p)
    p.set_defaults(handler=_run_story)


def _run_story(parser, args) -> int:
    from .story_files import tell_story_from_files

    lambda2, _ = numeric_lambda2_of(f"{parser.prog} story", args)
    print(tell_story_from_files(args.fwd, cov=args.cov, evoked=args.evoked,
                                condition=args.condition, lambda2=lambda2))
    return EXIT_OK
