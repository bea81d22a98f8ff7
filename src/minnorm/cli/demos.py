"""``minnorm demo`` and ``minnorm decode-demo``: the teaching reports on the template head."""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import (
    EXIT_OK,
    MAX_DEMO_EPOCHS,
    MAX_PERMUTATIONS,
    add_common,
    count_type,
    seed_type,
    snr_type,
    typed,
)

__all__ = ["add_demo_parser", "add_decode_demo_parser"]


DEMO_DESCRIPTION = """\
The minimum-norm story on an embedded template head (fsaverage cortex, one-layer
BEM, the Neuromag VectorView helmet), with a simulated N100m-like bilateral
auditory response at 100 ms and two distant right temporal sources at 300 ms:

  1. the forward model told with its numbers (channels, sources, leadfield,
     the terms of the equation, G's rank and condition number, why λ²);
  2. MNE, dSPM, sLORETA and eLORETA against the truth: peak localisation
     error, spatial dispersion, depth of the peaks (the surface bias),
     explained variance;
  3. the L-curve;
  4. why dSPM? every source's point-spread function for each method: peak
     localisation error and spatial deviation over the whole cortex and
     against depth;
  5. one dipole per hemisphere at 100 and 300 ms;
  6. an offline HTML report (OUT/report.html), the estimates as
     OUT/demo-METHOD-lh.stc / -rh.stc and the resolution maps as
     OUT/demo-psf_METRIC-METHOD-lh.stc / -rh.stc, which MNE-Python reads.

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


def add_demo_parser(sub):
    p = sub.add_parser("demo", help="the story on a template head, with pictures",
                       description=DEMO_DESCRIPTION, epilog=DEMO_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("minnorm-demo"), metavar="DIR",
                   help="output directory (default: minnorm-demo)")
    p.add_argument("--snr", type=typed(snr_type, "snr"), default=3.0,
                   help="SNR of the simulated evoked response at its peak (default 3)")
    p.add_argument("--seed", type=seed_type, default=0, help="random seed, 0 … 2³²−1 (default 0)")
    p.add_argument("--spacing", choices=("ico3", "ico4", "ico5"), default="ico4",
                   help="template cortex resolution (default ico4: 5124 sources)")
    p.add_argument("--open", action="store_true", help="open the report in the web browser")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    add_common(p)
    p.set_defaults(handler=_run_demo)


def add_decode_demo_parser(sub):
    p = sub.add_parser("decode-demo", help="decoding from source space, with pictures",
                       description=DECODE_DESCRIPTION,
                       epilog="examples:\n  minnorm decode-demo --out decode --epochs 240\n",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("minnorm-decode-demo"), metavar="DIR",
                   help="output directory (default: minnorm-decode-demo)")
    p.add_argument("--epochs", type=count_type(30, MAX_DEMO_EPOCHS), default=180,
                   help=f"number of trials, 30 … {MAX_DEMO_EPOCHS} (default 180)")
    p.add_argument("--seed", type=seed_type, default=0, help="random seed, 0 … 2³²−1 (default 0)")
    p.add_argument("--permutations", type=count_type(1, MAX_PERMUTATIONS), default=10,
                   help=f"label shufflings for the chance band, 1 … {MAX_PERMUTATIONS} "
                        "(default 10)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    add_common(p)
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
