"""``minnorm apply``'s work (:func:`run_apply`): its outputs planned before any work,
written as the estimates come, each checked for NaN first, and the summary printed at the end.

The order matters for a user who waits: every file is read and checked, and
every output path is planned and checked (folder exists and is writable, no
file would be overwritten without ``overwrite``), *before* the inverse
operator is computed. Outputs are written atomically (:class:`AtomicOutputs`):
a failure or Ctrl-C at any point leaves no new file behind.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .. import _log, _mne
from ..engine.checks import check_memory, check_time_window
from ..inverse.apply import apply_inverse, apply_inverse_epochs, apply_inverse_raw
from ..inverse.lambda2 import resolve_lambda2
from ..inverse.operator import InverseOperator, make_inverse_operator
from ..io import AtomicOutputs, EpochsArrayWriter, stc_paths, write_source_estimate
from ..io import fif as _fif
from ..io.paths import user_path
from .summary import describe_operator, describe_source

__all__ = ["ApplyResult", "Peak", "OutputPlan", "run_apply", "plan_outputs", "write_estimates"]


VALUE_UNITS = {"MNE": "A·m", "eLORETA": "A·m", "dSPM": "no unit, noise-normalised",
               "sLORETA": "no unit, noise-normalised"}


@dataclass(frozen=True)
class Peak:
    """The largest value of the estimates (norm over x, y, z for vectors)."""

    value: float
    time: float
    where: str
    epoch: int | None = None


@dataclass(frozen=True)
class ApplyResult:
    """What ``minnorm apply`` computed and wrote."""

    request: object  # cli.apply.ApplyRequest
    data_text: str
    operator_text: str
    peak: Peak
    files: list = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        """The one-paragraph summary printed at the end."""
        r = self.request
        reg = f"λ² = {r.lambda2:.4g}" + (f", SNR {r.snr:g}" if r.snr is not None else "") \
            + (f", chosen by {r.rule}" if getattr(r, "rule", None) else "")
        label = f", restricted to the label {r.label.name}" if r.label is not None else ""
        ori = {None: "", "normal": ", normal component", "vector": ", x/y/z vectors"}[r.pick_ori]
        in_epoch = f" in epoch {self.peak.epoch}" if self.peak.epoch is not None else ""
        names = [p.name for p in self.files]
        names = ", ".join(names) if len(names) <= 6 else f"{names[0]} … {names[-1]}"
        return (
            f"Computed {r.method} source estimates ({reg}{ori}{label}) of {self.data_text} "
            f"with {self.operator_text}. Peak value {self.peak.value:.4g} "
            f"({VALUE_UNITS[r.method]}){in_epoch} at t = {self.peak.time:.3f} s, "
            f"{self.peak.where}. Wrote {len(self.files)} file{'s' * (len(self.files) != 1)} "
            f"in {self.files[0].parent}: {names} ({self.seconds:.1f} s)."
        )


def run_apply(request) -> ApplyResult:
    """Read, check, compute and write as ``request`` (a :class:`~minnorm.cli.apply.ApplyRequest`)
    says; see the module notes."""
    start = time.perf_counter()
    with _log.progress(total=4, desc="reading files", unit="step") as bar:
        _fif.expect_kinds([(request.data, f"--{request.data_kind}",
                            _fif.DATA_KINDS[request.data_kind]),
                           (request.fwd, "--fwd", "forward solution"),
                           (request.cov, "--cov", "noise covariance"),
                           (request.inv, "--inv", "inverse operator")])
        data, data_text = _read_data(request)
        fwd = cov = inv = None
        if request.inv is not None:
            inv = InverseOperator.from_mne(_fif.read_inverse(request.inv))
            src, mri_head_t = inv.src, inv.mne.mri_head_t
        else:
            fwd, cov = _fif.read_forward(request.fwd), _fif.read_cov(request.cov)
            src, mri_head_t = fwd["src"], fwd["mri_head_t"]
            _mne.check_reference(data.info, fwd["sol"]["row_names"])
        label = None
        if request.label is not None:
            label = _fif.read_label(request.label)
            _mne.label_vertices(label, src, mri_head_t)  # subject, hemisphere, overlap
        complex_data = is_complex(data)
        kind = estimate_kind(src.kind, request.pick_ori)
        plan = plan_outputs(request, kind, data, complex_data)
        check_memory_for(request, data, src, complex_data)
        bar.update()
        with AtomicOutputs(plan.all_paths, overwrite=request.overwrite) as outputs:
            bar.set_description_str("inverse operator")
            if inv is None:
                inv = make_inverse_operator(
                    data.info, fwd, cov, loose=request.loose, depth=request.depth,
                    fixed=True if request.fixed else "auto",
                    on_mismatch="ignore" if request.union_bads else "raise",
                )
            if plan.inverse is not None:
                _mne.write_inverse(outputs.temporary(plan.inverse), inv.to_mne(),
                                   overwrite=True)
            bar.update()
            if isinstance(request.lambda2, str):  # a rule: chosen once, from the data
                request = replace(request, lambda2=chosen_lambda2(request, data, inv),
                                  snr=None, rule=request.lambda2)
            bar.set_description_str(f"{request.method} estimates")
            peak, times = write_estimates(request, data, inv, label, plan, outputs)
            data_text += (f", {len(times)} samples from {times[0]:.3f} to "
                          f"{times[-1]:.3f} s")
            bar.update()
            bar.set_description_str("writing files")
        bar.update()
    return ApplyResult(request=request, data_text=data_text,
                       operator_text=describe_used_operator(inv, request),
                       peak=peak, files=plan.all_paths,
                       seconds=time.perf_counter() - start)


def _read_data(request):
    """The evoked / epochs / raw to invert, and a phrase describing it."""
    kind, path = request.data_kind, request.data
    if kind == "evoked":
        data = _fif.read_evoked(path, request.condition)
        check_time_window(request.tmin, request.tmax, data.times, what=f"evoked {path.name}")
        if request.tmin is not None or request.tmax is not None:
            data = data.copy().crop(request.tmin, request.tmax)
        text = f"evoked {data.comment!r} (nave {data.nave}) of {path.name}"
    elif kind == "epochs":
        data = _fif.read_epochs(path)
        check_time_window(request.tmin, request.tmax, data.times, what=f"epochs {path.name}")
        text = f"{len(data.events)} epochs of {path.name}"
    else:
        data = _fif.read_raw(path)
        check_time_window(request.tmin, request.tmax, data.times, what=f"raw {path.name}")
        text = f"raw data of {path.name}"
    return data, text


def estimate_kind(src_kind: str, pick_ori) -> str:
    """The kind of output files: "surface", "volume", "vector" or "mixed"."""
    if pick_ori == "vector":
        return "vector"
    return {"surface": "surface", "volume": "volume", "discrete": "volume",
            "mixed": "mixed"}[src_kind]


@dataclass(frozen=True)
class OutputPlan:
    """Output prefixes and files, known before any computation."""

    prefixes: list  # one per estimate (one per epoch with --epochs-output files)
    estimate_paths: list  # all files of the estimates
    inverse: Path | None
    array: Path | None  # epochs array file
    ftype: str = "auto"  # of the estimates: "h5" for complex data

    @property
    def all_paths(self) -> list:
        extra = [p for p in (self.array, self.inverse) if p is not None]
        return list(self.estimate_paths) + extra


def is_complex(data) -> bool:
    """Complex data (e.g. Hilbert-transformed): epochs show it in their first epoch."""
    if _mne.data_kind(data) == "epochs":
        return bool(len(data.events)) and np.iscomplexobj(data.get_data(item=0))
    return _mne.may_be_complex(data)


def check_memory_for(request, data, src, complex_data) -> None:
    """One estimate (an epoch's, the evoked's, the raw window's) must fit in memory."""
    n_rows = sum(int(s["nuse"]) for s in src) * (3 if request.pick_ori == "vector" else 1)
    if request.data_kind == "raw":
        times = data.times
        lo = 0 if request.tmin is None else int(np.searchsorted(times, request.tmin))
        hi = len(times) if request.tmax is None else int(np.searchsorted(times, request.tmax))
        n_times = max(hi - lo, 1)
    else:
        n_times = len(data.times)
    per_value = 16 if complex_data else 8
    n_bytes = 2 * per_value * n_rows * n_times  # the estimate, and as much again while made
    fix = ("choose a shorter window with --tmin/--tmax" if request.data_kind == "raw"
           else "use a coarser source space or a --label")
    check_memory(n_bytes, f"the {request.data_kind} estimate ({n_rows} source rows × "
                          f"{n_times} samples)", fix)


def plan_outputs(request, kind, data, complex_data) -> OutputPlan:
    out = user_path(request.out)
    if out.is_dir():
        raise IsADirectoryError(f"--out {out} is a folder: give a file prefix inside it, "
                                f"for example {out / 'result'}")
    inverse = out.with_name(out.name + "-inv.fif") if request.save_inverse else None
    if request.data_kind == "epochs" and request.epochs_output == "array":
        return OutputPlan([], [], inverse, out.with_name(out.name + "-epochs.h5"))
    if request.data_kind == "epochs":
        n = len(data.events)
        width = len(str(n - 1))
        prefixes = [out.with_name(f"{out.name}-epoch{k:0{width}d}") for k in range(n)]
    else:
        prefixes = [out]
    ftype = request.ftype
    if complex_data:  # MNE's .stc holds real values only; its HDF5 format holds complex ones
        if ftype == "stc":
            raise ValueError("the data are complex (e.g. Hilbert-transformed) and MNE's .stc "
                             "format holds real values only: use --format h5 (or auto)")
        ftype = "h5"
    paths = [p for prefix in prefixes for p in stc_paths(prefix, kind, ftype=ftype)]
    return OutputPlan(prefixes, paths, inverse, None, ftype)


def chosen_lambda2(request, data, inv) -> float:
    """λ² by the rule ``request.lambda2`` from the data the estimates are of (once)."""
    span = _raw_window(data, request) if request.data_kind == "raw" else None
    nave = data.nave if request.data_kind == "evoked" else 1
    return resolve_lambda2(request.lambda2, inv, data, nave=nave, span=span)


def write_estimates(request, data, inv, label, plan, outputs) -> Peak:
    """Apply the operator, write each estimate as it comes; return the peak and times."""
    kw = dict(lambda2=request.lambda2, method=request.method, pick_ori=request.pick_ori,
              label=label)
    if request.data_kind == "evoked":
        stc = _finite(apply_inverse(data, inv, **kw), request)
        write_source_estimate(plan.prefixes[0], stc, ftype=plan.ftype, outputs=outputs)
        return peak_of(stc, inv), stc.times
    if request.data_kind == "raw":
        start, stop = _raw_window(data, request)
        stc = _finite(apply_inverse_raw(data, inv, start=start, stop=stop, buffer_size=10_000,
                                        **kw), request)
        write_source_estimate(plan.prefixes[0], stc, ftype=plan.ftype, outputs=outputs)
        return peak_of(stc, inv), stc.times
    stcs = apply_inverse_epochs(data, inv, return_generator=True, **kw)
    best = None
    writer = None
    if plan.array is not None:
        writer = EpochsArrayWriter(outputs.temporary(plan.array), n_epochs=len(data.events),
                                   events=data.events, method=request.method,
                                   lambda2=request.lambda2, pick_ori=request.pick_ori)
    try:
        for k, stc in enumerate(stcs):
            if request.tmin is not None or request.tmax is not None:
                stc = stc.crop(request.tmin, request.tmax)
            stc = _finite(stc, request, epoch=k)
            if writer is not None:
                writer.write(k, stc)
            else:
                write_source_estimate(plan.prefixes[k], stc, ftype=plan.ftype,
                                      outputs=outputs)
            peak = peak_of(stc, inv, epoch=k)
            best = peak if best is None or peak.value > best.value else best
    finally:
        if writer is not None:
            writer.close()
    return best, stc.times


def _finite(stc, request, epoch=None):
    """The estimate, refused before it is written if any value is NaN or Inf."""
    bad = int(np.count_nonzero(~np.isfinite(stc.data)))
    if bad:
        where = "" if epoch is None else f" of epoch {epoch}"
        raise ValueError(
            f"the {request.method} estimate{where} has {bad} NaN or Inf values, so nothing was "
            "written: the settings drive the computation out of floating-point range; use a "
            "moderate --snr or --lambda2 (typically 3, i.e. 1/9) and --depth (typically 0.8)")
    return stc


def _raw_window(raw, request):
    index = [None if t is None else int(raw.time_as_index(t, use_rounding=True)[0])
             for t in (request.tmin, request.tmax)]
    return index[0], None if index[1] is None else index[1] + 1


def peak_of(stc, inv, epoch=None) -> Peak:
    """Largest |value| (or vector norm) of an estimate, its time and place."""
    values = stc.data
    magnitude = np.linalg.norm(values, axis=1) if values.ndim == 3 else np.abs(values)
    row, col = np.unravel_index(int(np.argmax(magnitude)), magnitude.shape)
    return Peak(value=float(magnitude[row, col]), time=float(stc.times[col]),
                where=describe_source(inv.src, stc.vertices, int(row)), epoch=epoch)


def describe_used_operator(inv, request) -> str:
    made = f"the inverse operator {request.inv.name}" if request.inv is not None \
        else "a new inverse operator"
    return f"{made} ({describe_operator(inv)})"
