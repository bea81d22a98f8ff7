"""``minnorm resolution``'s work (:func:`run_resolution`): the maps of the user's inverse
operator computed without the n² matrix, written with their page.

As in ``minnorm apply``: every file and option is checked, and every output
planned and checked (no file replaced without ``--overwrite``), before any
computation; the maps and the page are then written in one
:class:`AtomicOutputs` commit, so a failure or Ctrl-C leaves nothing new
behind.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import _log, _mne
from ..inverse.operator import InverseOperator, make_inverse_operator
from ..io import AtomicOutputs, check_new_outputs, write_source_estimate, write_text_output
from ..io import fif as _fif
from ..resolution import resolution_maps
from ..teaching.resolution_page import resolution_page
from .estimates import describe_used_operator

__all__ = ["ResolutionResult", "run_resolution"]


@dataclass(frozen=True)
class ResolutionResult:
    """What ``minnorm resolution`` computed and wrote."""

    request: object  # cli.resolution.ResolutionRequest
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


def run_resolution(request) -> ResolutionResult:
    """Read, check, compute and write as ``request`` (a
    :class:`~minnorm.cli.resolution.ResolutionRequest`) says; see the module notes."""
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
