"""``minnorm resolution``: resolution maps of the user's inverse operator, without the n² matrix.

As in ``minnorm apply``: every file and option is checked, and every output
planned and checked (no file replaced without ``--overwrite``), before any
computation; the maps and the page are then written in one
:class:`AtomicOutputs` commit, so a failure or Ctrl-C leaves nothing new
behind.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import _log, _mne
from ..engine.kernel import METHODS
from ..engine.resolution import FUNCTIONS, METRICS
from ..inverse.operator import InverseOperator, make_inverse_operator
from ..io import AtomicOutputs, check_new_outputs, write_source_estimate, write_text_output
from ..io import fif as _fif
from ..resolution import resolution_maps
from ..teaching.resolution_page import resolution_page
from .estimates import describe_used_operator
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

__all__ = ["ResolutionRequest", "ResolutionResult", "run_resolution", "add_parser"]


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


@dataclass(frozen=True)
class ResolutionResult:
    """What ``minnorm resolution`` computed and wrote."""

    request: ResolutionRequest
    operator_text: str
    n_sources: int
    median_peak_err: dict  # method → median PSF peak localisation error (cm), if computed
    files: list = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        """The short paragraph printed at the end."""
        r = self.request
        reg = f"λ² = {r.lambda2:.4g}" + (f", SNR {r.snr:g}" if r.snr is not None else "")
        errors = ""
        if self.median_peak_err:
            errors = " Median PSF peak localisation error: " + ", ".join(
                f"{m} {e:.2f} cm" for m, e in self.median_peak_err.items()) + "."
        return (
            f"Computed {len(r.metrics)} resolution metric{'s' * (len(r.metrics) > 1)} "
            f"({', '.join(r.metrics)}) of the {' and '.join(f.upper() for f in r.functions)} of "
            f"{self.n_sources} sources for {', '.join(r.methods)} ({reg}) with "
            f"{self.operator_text}.{errors} Wrote {len(self.files)} files in "
            f"{self.files[0].parent}: {self.files[0].name} … {self.files[-1].name} "
            f"({self.seconds:.1f} s).")


def run_resolution(request: ResolutionRequest) -> ResolutionResult:
    """Read, check, compute and write as ``request`` says; see the module notes."""
    start = time.perf_counter()
    steps = 2 + len(request.methods) + 1
    with _log.progress(total=steps, desc="reading files", unit="step") as bar:
        forward, fixed, inv, cov = _read_model(request)
        paths = check_new_outputs(request.out, _output_names(request),
                                  overwrite=request.overwrite)
        bar.update()
        bar.set_description_str("inverse operator")
        if inv is None:
            inv = make_inverse_operator(
                _mne.info_from_forward(forward, cov), forward, cov, loose=request.loose,
                depth=request.depth, fixed=True if request.fixed else "auto",
                on_mismatch="ignore" if request.union_bads else "raise")
        bar.update()
        maps = {}
        for method in request.methods:
            bar.set_description_str(f"{method} resolution maps")
            maps[method] = _finite(resolution_maps(
                fixed, inv, method=method, lambda2=request.lambda2, functions=request.functions,
                metrics=request.metrics, threshold=request.threshold,
                max_memory=request.max_memory), method)
            bar.update()
        bar.set_description_str("report")
        operator_text = describe_used_operator(inv, request)
        page = resolution_page(maps, fixed["src"], title="minnorm resolution: "
                               f"{', '.join(request.methods)} on {request.fwd.name}",
                               intro=_intro(request, operator_text))
        _write(paths, request, maps, page)
        bar.update()
    return ResolutionResult(
        request=request, operator_text=operator_text,
        n_sources=sum(len(s["vertno"]) for s in fixed["src"]),
        median_peak_err={m: float(np.median(v[("psf", "peak_err")].data))
                         for m, v in maps.items() if ("psf", "peak_err") in v},
        files=paths, seconds=time.perf_counter() - start)


def _read_model(request):
    """(forward, its fixed-orientation version, minnorm InverseOperator or None, covariance
    or None), all checked."""
    _fif.expect_kinds([(request.fwd, "--fwd", "forward solution"),
                       (request.cov, "--cov", "noise covariance"),
                       (request.inv, "--inv", "inverse operator")])
    forward = _fif.read_forward(request.fwd)
    kind = forward["src"].kind
    if kind != "surface":
        raise ValueError(f"--fwd: {request.fwd.name} is on a{'n' * (kind[0] in 'aeiou')} {kind} "
                         "source space, and resolution metrics need a surface source space "
                         "(the cortex): compute the forward on one (mne.setup_source_space)")
    fixed = _mne.fixed_orientation_forward(forward)
    if request.inv is None:
        return forward, fixed, None, _fif.read_cov(request.cov)
    inv = InverseOperator.from_mne(_fif.read_inverse(request.inv))
    _mne.resolution_leadfield(fixed, inv)  # same sources and channels, else one line
    return forward, fixed, inv, None


def _output_names(request) -> list[str]:
    """METHOD-FUNCTION-METRIC-lh.stc / -rh.stc for every map, then resolution.html."""
    return [f"{stem}-{hemi}.stc" for stem in _stems(request) for hemi in ("lh", "rh")] \
        + ["resolution.html"]


def _stems(request) -> list[str]:
    return [f"{method}-{function}-{metric}" for method in request.methods
            for function in request.functions for metric in request.metrics]


def _finite(maps: dict, method: str) -> dict:
    """The maps, refused before anything is written if a value is NaN or Inf."""
    for (function, metric), stc in maps.items():
        bad = int(np.count_nonzero(~np.isfinite(stc.data)))
        if bad:
            raise ValueError(
                f"the {method} {function} {metric} map has {bad} NaN or Inf values, so nothing "
                "was written: the settings drive the computation out of floating-point range; "
                "use a moderate --snr or --lambda2 (typically 3, i.e. 1/9) and --depth "
                "(typically 0.8)")
    return maps


def _intro(request, operator_text) -> str:
    source = f"--inv {request.inv.name}" if request.inv is not None \
        else f"--cov {request.cov.name}"
    reg = f"λ² = {request.lambda2:.4g}" + (f" (SNR {request.snr:g})" if request.snr else "")
    return (f"Forward {request.fwd.name} (made fixed, normal to the cortex, if free) and "
            f"{source}: {operator_text}.\nMethods {', '.join(request.methods)}; {reg}; "
            f"functions {', '.join(request.functions)}; metrics {', '.join(request.metrics)}; "
            f"maxrad_ext threshold {request.threshold:g}.")


def _write(paths, request, maps, page) -> None:
    """Every map and the page, all written or none (an output folder made here goes too)."""
    folder = paths[0].parent
    made = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with AtomicOutputs(paths, overwrite=request.overwrite) as outputs:
            for method, by_key in maps.items():
                for (function, metric), stc in by_key.items():
                    write_source_estimate(folder / f"{method}-{function}-{metric}", stc,
                                          ftype="stc", outputs=outputs)
            write_text_output(outputs, paths[-1], page)
    except BaseException:
        if made:
            _remove_empty(folder)
        raise


def _remove_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty: keep it
        folder.rmdir()
