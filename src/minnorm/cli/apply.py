"""``minnorm apply``: the user's files in, source estimates out, nothing lost.

This module holds the command's options and their checks, which every call of
``minnorm`` loads to build its parser, so it imports no MNE-Python: the work,
:func:`~minnorm.cli.estimates.run_apply`, is imported when the command runs.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..engine.names import METHODS
from .options import (
    EXIT_OK,
    add_common,
    add_operator_options,
    add_overwrite_quiet,
    add_regularisation,
    float_type,
    lambda2_of,
    operator_settings,
    refuse_with_inv,
    usage,
)

__all__ = ["ApplyRequest", "add_parser"]


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


def add_parser(sub):
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
    sel.add_argument("--tmin", type=float_type, metavar="S", help="first time to keep (s)")
    sel.add_argument("--tmax", type=float_type, metavar="S", help="last time to keep (s)")
    sel.add_argument("--label", type=Path, metavar="LABEL",
                     help="keep only the sources in this FreeSurfer .label (surfaces only)")
    inv = p.add_argument_group("inverse")
    inv.add_argument("--method", choices=METHODS, default="dSPM",
                     help="MNE (currents, A·m), dSPM or sLORETA (noise-normalised), "
                          "eLORETA (default dSPM)")
    add_regularisation(inv)
    inv.add_argument("--pick-ori", choices=("normal", "vector"),
                     help="normal: the component normal to the cortex; vector: x, y, z "
                          "(default: the norm over orientations)")
    add_operator_options(inv)
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
    add_overwrite_quiet(out)
    add_common(p)
    p.set_defaults(handler=_run_apply)


def _apply_request(parser, args):
    """Check the combination of options; returns an ApplyRequest."""
    sub = f"{parser.prog} apply"
    if args.inv is not None:
        given = [f"--{n}" for n in ("fwd", "cov") if getattr(args, n) is not None]
        refuse_with_inv(sub, args, given + ["--save-inverse"] * args.save_inverse,
                        "--fwd and --cov")
    elif args.fwd is None or args.cov is None:
        usage(sub, "give --fwd and --cov (to make the inverse operator) or --inv (to use "
                    "one)")
    if args.condition is not None and args.evoked is None:
        usage(sub, "--condition selects an evoked response: use it with --evoked")
    if args.epochs_output != "files" and args.epochs is None:
        usage(sub, "--epochs-output is for --epochs")
    settings = operator_settings(sub, args)
    kind = next(k for k in ("evoked", "epochs", "raw") if getattr(args, k) is not None)
    lambda2, snr = lambda2_of(args)
    return ApplyRequest(
        data_kind=kind, data=getattr(args, kind), out=args.out, fwd=args.fwd, cov=args.cov,
        inv=args.inv, condition=args.condition, tmin=args.tmin, tmax=args.tmax,
        method=args.method, lambda2=lambda2, snr=snr, **settings,
        pick_ori=args.pick_ori, label=args.label,
        save_inverse=args.save_inverse, epochs_output=args.epochs_output, ftype=args.ftype,
        overwrite=args.overwrite, union_bads=args.union_bads,
    )


def _run_apply(parser, args) -> int:
    from .estimates import run_apply

    result = run_apply(_apply_request(parser, args))
    if not args.quiet:
        print(result.summary())
    return EXIT_OK


DataKind = Literal["evoked", "epochs", "raw"]


@dataclass(frozen=True)
class ApplyRequest:
    """What the user asked ``minnorm apply`` for (paths and options, validated).

    ``fwd`` and ``cov`` make a new operator; ``inv`` reads one instead.
    ``snr`` is only for the summary (``lambda2`` is what is used).
    """

    data_kind: DataKind
    data: Path
    out: Path
    fwd: Path | None = None
    cov: Path | None = None
    inv: Path | None = None
    condition: str | None = None
    tmin: float | None = None
    tmax: float | None = None
    method: str = "dSPM"
    lambda2: float = 1.0 / 9.0
    snr: float | None = 3.0
    rule: str | None = None  # the rule that chose lambda2 (--lambda2 gcv, …)
    loose: float | str = "auto"
    depth: float | None = 0.8
    fixed: bool = False
    pick_ori: str | None = None
    label: Path | None = None
    save_inverse: bool = False
    epochs_output: Literal["files", "array"] = "files"
    ftype: Literal["auto", "stc", "h5"] = "auto"
    overwrite: bool = False
    union_bads: bool = False
