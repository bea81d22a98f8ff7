"""``minnorm resolution``: resolution maps of the user's inverse operator, without the n² matrix.

This module holds the command's options and their checks, which every call of
``minnorm`` loads to build its parser, so it imports no MNE-Python: the work,
:func:`~minnorm.cli.maps.run_resolution`, is imported when the command runs.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from ..engine.names import FUNCTIONS, METHODS, METRICS
from .options import (
    EXIT_OK,
    add_common,
    add_operator_options,
    add_overwrite_quiet,
    add_regularisation,
    fraction_type,
    memory_type,
    numeric_lambda2_of,
    operator_settings,
    refuse_with_inv,
    usage,
)

__all__ = ["ResolutionRequest", "add_parser"]


RESOLUTION_DESCRIPTION = """\
Resolution analysis of an inverse operator on your own files: for every
source, metrics of its point-spread function (PSF: the estimate of a unit
dipole there) and of its cross-talk function (CTF: how much every other
source leaks into the estimate there) — localisation errors (peak_err,
cog_err), spatial extent (sd_ext, maxrad_ext) and amplitudes (peak_amp,
sum_amp) — for MNE, dSPM, sLORETA and eLORETA, computed from the kernel's
low-rank factors without the (n_sources)² resolution matrix. Each map equals
minnorm.resolution_maps (and MNE-Python's resolution_metrics).

The PSFs are those of dipoles normal to the cortex: a free-orientation
forward is converted with mne.convert_forward_solution(fwd, surf_ori=True,
force_fixed=True). The inverse operator is made from --fwd and --cov (with
--loose, --depth, --fixed as in minnorm apply), or read with --inv (made from
the same forward). Surface source spaces only.

Outputs in DIR (created if needed):
  METHOD-FUNCTION-METRIC-lh.stc / -rh.stc   each map, one time point, as MNE's
                  .stc (read with mne.read_source_estimate("DIR/dSPM-psf-peak_err"));
                  distances in cm, amplitudes relative to their largest value
  resolution.html the maps of every method side by side on the forward's own
                  cortex (lateral and medial views) and a summary table
                  (median, 90th percentile, max); self-contained, opens offline

Nothing is written unless everything works, and existing files are kept
unless --overwrite is given.
"""


RESOLUTION_EPILOG = """\
examples:
  # every metric of PSFs and CTFs, for the four methods (λ² = 1/9)
  minnorm resolution --fwd sample-fwd.fif --cov sample-cov.fif --out resolution

  # with a saved operator: PSF localisation error and spread of dSPM and sLORETA at SNR 1
  minnorm resolution --fwd sample-fwd.fif --inv sample-inv.fif --method dSPM sLORETA \\
      --functions psf --metrics peak_err sd_ext --snr 1 --out res-snr1
"""


def add_parser(sub):
    p = sub.add_parser("resolution", help="PSF/CTF resolution maps of your inverse operator",
                       description=RESOLUTION_DESCRIPTION, epilog=RESOLUTION_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    model = p.add_argument_group("model (--fwd, and --cov or --inv)")
    model.add_argument("--fwd", type=Path, required=True, metavar="FWD",
                       help="forward solution on a surface source space (-fwd.fif); a free "
                            "one is made fixed, normal to the cortex")
    model.add_argument("--cov", type=Path, metavar="COV",
                       help="noise covariance (-cov.fif): make the inverse operator")
    model.add_argument("--inv", type=Path, metavar="INV",
                       help="an inverse operator (-inv.fif, minnorm's or MNE's) made from "
                            "this forward, instead of --cov")
    what = p.add_argument_group("resolution")
    what.add_argument("--method", nargs="+", choices=METHODS, default=list(METHODS),
                      metavar="METHOD",
                      help=f"one or more of {', '.join(METHODS)} (default all four)")
    what.add_argument("--functions", nargs="+", choices=FUNCTIONS, default=list(FUNCTIONS),
                      metavar="FUNCTION",
                      help="psf (point-spread) and/or ctf (cross-talk) (default both)")
    what.add_argument("--metrics", nargs="+", choices=METRICS, default=list(METRICS),
                      metavar="METRIC", help=f"one or more of {', '.join(METRICS)} "
                                             "(default all six)")
    what.add_argument("--threshold", type=fraction_type, default=0.5, metavar="0..1",
                      help="fraction of the peak amplitude above which maxrad_ext counts a "
                           "source (default 0.5)")
    what.add_argument("--max-memory", type=memory_type, metavar="SIZE",
                      help="working memory for the tiles of the resolution matrix, e.g. "
                           "500MB (default 1GiB)")
    inv = p.add_argument_group("inverse")
    add_regularisation(inv, rules=False)
    add_operator_options(inv)
    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, required=True, metavar="DIR",
                     help="output folder (created if it does not exist)")
    add_overwrite_quiet(out)
    add_common(p)
    p.set_defaults(handler=_run_resolution)


def _resolution_request(parser, args):
    """Check the combination of options; returns a ResolutionRequest."""
    sub = f"{parser.prog} resolution"
    if args.inv is not None:
        refuse_with_inv(sub, args, ["--cov"] * (args.cov is not None), "--cov")
    elif args.cov is None:
        usage(sub, "give --cov (to make the inverse operator from --fwd) or --inv (to use one)")
    settings = operator_settings(sub, args)
    lambda2, snr = numeric_lambda2_of(sub, args)
    return ResolutionRequest(
        fwd=args.fwd, cov=args.cov, inv=args.inv, out=args.out,
        methods=tuple(dict.fromkeys(args.method)), functions=tuple(dict.fromkeys(args.functions)),
        metrics=tuple(dict.fromkeys(args.metrics)), lambda2=lambda2, snr=snr, **settings,
        union_bads=args.union_bads, threshold=args.threshold, max_memory=args.max_memory,
        overwrite=args.overwrite)


def _run_resolution(parser, args) -> int:
    from .maps import run_resolution

    result = run_resolution(_resolution_request(parser, args))
    if not args.quiet:
        print(result.summary())
    return EXIT_OK


@dataclass(frozen=True)
class ResolutionRequest:
    """What the user asked ``minnorm resolution`` for (paths and options, validated).

    ``cov`` makes a new operator from ``fwd``; ``inv`` reads one instead.
    ``snr`` is only for the summary (``lambda2`` is what is used).
    """

    fwd: Path
    out: Path
    cov: Path | None = None
    inv: Path | None = None
    methods: tuple = METHODS
    functions: tuple = FUNCTIONS
    metrics: tuple = METRICS
    lambda2: float = 1.0 / 9.0
    snr: float | None = 3.0
    loose: float | str = "auto"
    depth: float | None = 0.8
    fixed: bool = False
    union_bads: bool = False
    threshold: float = 0.5
    max_memory: int | None = None
    overwrite: bool = False
