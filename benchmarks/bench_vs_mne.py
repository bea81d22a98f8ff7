"""minnorm next to MNE-Python on the same work, in one process: times, peak memory, agreement.

    python benchmarks/bench_vs_mne.py                      # both workloads, 3 repeats
    python benchmarks/bench_vs_mne.py --workload template --repeats 2 --json out.json
    python benchmarks/bench_vs_mne.py --quick              # a smoke run (ico3, 20 epochs)

Workloads
---------
template  the template cortex at full fsaverage5 resolution (20 484 sources, loose 0.2,
          depth 0.8, 306 MEG channels, one-layer BEM; minnorm.teaching.template), simulated data
sample    MNE's real "sample" recording (Left Auditory evoked, 366 MEG+EEG channels, its
          noise covariance) with the template cortex placed in the sample head (ico4,
          5124 sources, three-layer BEM; built as tests/conftest.py does, cached by pytest)

Each does make_inverse_operator; apply_inverse on the 421-sample evoked for MNE, dSPM,
sLORETA and eLORETA; apply_inverse_epochs on 200 epochs × 421 samples (dSPM, pick_ori None
and "normal"; MNE's list of estimates vs minnorm's ``return_array=True``, in float64 and
float32); and label time courses of 68 labels (a k-means stand-in for the aparc atlas,
``minnorm.teaching.parcellate.parcellate``) over those epochs, MNE's apply_inverse_epochs generator +
mne.extract_label_time_course vs minnorm.extract_label_time_course.

MNE and minnorm alternate, each call ``--repeats`` times; the table gives medians, their
ratio, the peak resident memory each call added (the kernel's high-water mark, reset before
every call: Linux only) and the relative error ‖minnorm − MNE‖_F/‖MNE‖_F, checked against the
bars of tests/test_equivalence.py (1e-6; eLORETA 1e-3; float32 1e-5). eLORETA: MNE fits its
weights on every call; minnorm's "first call" runs on an operator with an empty kernel cache,
"cached" reuses the weights. The epochs rows also give the fraction of the machine's
matrix-multiply peak reached (a plain GEMM of the same shapes, timed here).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import mne
import numpy as np
from threadpoolctl import threadpool_info

import minnorm
from minnorm.teaching.parcellate import parcellate

ROOT = Path(__file__).resolve().parent.parent
LAMBDA2 = 1.0 / 9.0
TOL = {"MNE": 1e-6, "dSPM": 1e-6, "sLORETA": 1e-6, "eLORETA": 1e-3, "float32": 1e-5}
GiB = 2**30


# --------------------------------------------------------------------------- measuring


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return 0


def _trim_heap() -> None:
    """Give freed heap memory back to the OS (glibc), so that the next call's peak is its own."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def measure(fn):
    """(result, seconds, peak bytes added over the resident set before the call)."""
    gc.collect()
    _trim_heap()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the high-water mark VmHWM
    except OSError:
        pass
    before = _status("VmRSS")
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    return out, seconds, max(_status("VmHWM") - before, 0)


@dataclass
class Row:
    workload: str
    task: str
    mne_s: list = field(default_factory=list)
    ours_s: list = field(default_factory=list)
    mne_peak: int = 0
    ours_peak: int = 0
    rel_err: float = float("nan")
    tol: float = 1e-6
    note: str = ""
    loads: list = field(default_factory=list)  # 1-min load average after each run

    @property
    def ratio(self) -> float:
        return statistics.median(self.mne_s) / statistics.median(self.ours_s)

    @property
    def ok(self) -> bool:
        return bool(self.rel_err < self.tol)


def compare(name, row: Row, mne_fn, ours_fn, repeats, *, check=None, keep=False):
    """Alternate MNE and minnorm ``repeats`` times; ``check(ref, ours)`` → relative error."""
    ref = ours = None
    for k in range(repeats):
        ref, t, peak = measure(mne_fn)
        row.mne_s.append(t)
        row.mne_peak = max(row.mne_peak, peak)
        if k < repeats - 1 or check is None:
            ref = None
        gc.collect()
        ours, t, peak = measure(ours_fn)
        row.ours_s.append(t)
        row.ours_peak = max(row.ours_peak, peak)
        if k < repeats - 1:
            ours = None
        gc.collect()
        row.loads.append(os.getloadavg()[0])
        print(f"  {name}: MNE {row.mne_s[-1]:7.2f} s  minnorm {row.ours_s[-1]:7.2f} s  "
              f"(resident {_status('VmRSS') / GiB:.1f} GiB, load {os.getloadavg()[0]:.1f})",
              flush=True)
    if check is not None:
        row.rel_err = check(ref, ours)
    return (ref, ours) if keep else None


def rel_err(ours, ref) -> float:
    ours = ours.data if hasattr(ours, "data") and not isinstance(ours, np.ndarray) else ours
    ref = ref.data if hasattr(ref, "data") and not isinstance(ref, np.ndarray) else ref
    return float(np.linalg.norm(np.asarray(ours, np.float64) - ref) / np.linalg.norm(ref))


def stacked_err(stcs, arr) -> float:
    """‖arr − stack(stc.data)‖/‖stack‖ epoch by epoch (never both copies in memory)."""
    num = den = 0.0
    for k, stc in enumerate(stcs):
        num += np.linalg.norm(arr[k].astype(np.float64) - stc.data) ** 2
        den += np.linalg.norm(stc.data) ** 2
    return float(np.sqrt(num / den))


def gemm_peak(n_rows, r, n_times, dtype, seconds=3.0) -> float:
    """GFLOP/s of a plain GEMM (n_rows × r) @ (r × n_times), best of a few seconds."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n_rows, r)).astype(dtype)
    B = rng.standard_normal((r, n_times)).astype(dtype)
    C = np.empty((n_rows, n_times), dtype)
    best, t_end = np.inf, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        np.matmul(A, B, out=C)
        best = min(best, time.perf_counter() - t0)
    return 2 * n_rows * r * n_times / best / 1e9


# --------------------------------------------------------------------------- inputs


@dataclass
class Inputs:
    name: str
    info: object
    forward: object
    noise_cov: object
    evoked: object
    epochs: object
    describe: str


def template_inputs(spacing: str, n_epochs: int) -> Inputs:
    from minnorm.teaching import simulate
    from minnorm.teaching.template import load_template

    head = load_template(spacing=spacing, progress=False)
    sim = simulate.simulate_epochs(head, n_epochs=n_epochs, tmin=-0.2, tmax=0.5, sfreq=600.0,
                                   seed=0)
    ev = simulate.simulate_evoked(head, tmin=-0.2, tmax=0.5, sfreq=600.0, seed=1)
    n_src = head.n_sources
    return Inputs(f"template-{spacing}", sim.epochs.info, head.forward, sim.noise_cov,
                  ev.evoked, sim.epochs,
                  f"template cortex {spacing}: {n_src} sources, loose 0.2, 306 MEG, "
                  f"{n_epochs} epochs x {len(sim.epochs.times)} samples")


def sample_inputs(spacing: str, n_epochs: int, eeg: bool = True) -> Inputs:
    sys.path.insert(0, str(ROOT / "tests"))
    import _forwards as fw

    default = ROOT.parent / "shared" / "data" / "sample"
    files = fw.SampleFiles(Path(os.environ.get("MINNORM_SAMPLE_DATA", default)))
    evoked = mne.read_evokeds(files.evoked, condition="Left Auditory", baseline=(None, 0),
                              verbose="error")
    cov = mne.read_cov(files.cov, verbose="error")
    if not eeg:
        evoked.pick("meg")
        cov = mne.pick_channels_cov(cov, include=evoked.ch_names, ordered=True)
    fwd = fw.template_forward(files, evoked.info, spacing,
                              ROOT / ".pytest_cache" / "d" / "minnorm-forwards", eeg=eeg)
    epochs = fw.make_noisy_epochs(evoked, cov, n_epochs=n_epochs, seed=0)
    kind = "366 MEG+EEG" if eeg else f"{len(fwd['sol']['row_names'])} MEG"
    return Inputs(f"sample-{'' if eeg else 'meg-'}{spacing}", evoked.info, fwd, cov, evoked, epochs,
                  f"sample recording ({kind}) on the template cortex {spacing}: "
                  f"{fwd['nsource']} sources, loose 0.2, {n_epochs} epochs x "
                  f"{len(epochs.times)} samples")


# --------------------------------------------------------------------------- workloads


GROUPS = ("make", "apply", "eloreta", "epochs", "labels")


def run_workload(x: Inputs, repeats: int, label_modes, n_label_epochs,
                 pca_epochs, groups=GROUPS) -> list:
    mn = mne.minimum_norm
    rows = []
    print(f"\n== {x.describe}", flush=True)

    row = Row(x.name, "make_inverse_operator")
    inv, op = compare("make_inverse_operator", row,
                      lambda: mn.make_inverse_operator(x.info, x.forward, x.noise_cov, loose=0.2,
                                                       depth=0.8, verbose=False),
                      lambda: minnorm.make_inverse_operator(x.info, x.forward, x.noise_cov,
                                                            loose=0.2, depth=0.8),
                      repeats if "make" in groups else 1, keep=True,
                      check=lambda a, b: 0.0)
    ev_ref = mn.apply_inverse(x.evoked, inv, LAMBDA2, "dSPM", verbose=False)
    row.rel_err = rel_err(minnorm.apply_inverse(x.evoked, op, LAMBDA2, "dSPM"), ev_ref)
    row.note = "checked through dSPM estimates"
    if "make" in groups:
        rows.append(row)

    for method in ("MNE", "dSPM", "sLORETA") if "apply" in groups else ():
        row = Row(x.name, f"apply_inverse {method}", tol=TOL[method])
        compare(row.task, row, lambda: mn.apply_inverse(x.evoked, inv, LAMBDA2, method,
                                                        verbose=False),
                lambda: minnorm.apply_inverse(x.evoked, op, LAMBDA2, method), repeats,
                check=rel_err)
        rows.append(row)

    if "eloreta" in groups:
        rows += _eloreta_rows(x, inv, op, repeats)
    if "epochs" in groups:
        rows += _epochs_rows(x, inv, op, repeats)
    for mode in label_modes if "labels" in groups else ():
        n = pca_epochs if mode == "pca_flip" else n_label_epochs
        rows.append(_labels_row(x, inv, op, repeats, mode, n))
    return rows


def _eloreta_rows(x, inv, op, repeats):
    mn = mne.minimum_norm
    first = Row(x.name, "apply_inverse eLORETA (first call)", tol=TOL["eLORETA"])
    compare(first.task, first, lambda: mn.apply_inverse(x.evoked, inv, LAMBDA2, "eLORETA",
                                                        verbose=False),
            lambda: minnorm.apply_inverse(x.evoked, op.replace(), LAMBDA2, "eLORETA"), repeats,
            check=rel_err)
    first.note = "minnorm fits the weights on a fresh operator"
    minnorm.apply_inverse(x.evoked, op, LAMBDA2, "eLORETA")  # fill the cache
    cached = Row(x.name, "apply_inverse eLORETA (cached)", tol=TOL["eLORETA"],
                 mne_s=list(first.mne_s), mne_peak=first.mne_peak)
    ref = mn.apply_inverse(x.evoked, inv, LAMBDA2, "eLORETA", verbose=False)
    for _ in range(repeats):
        ours, t, peak = measure(lambda: minnorm.apply_inverse(x.evoked, op, LAMBDA2, "eLORETA"))
        cached.ours_s.append(t)
        cached.loads.append(os.getloadavg()[0])
        cached.ours_peak = max(cached.ours_peak, peak)
    cached.rel_err = rel_err(ours, ref)
    cached.note = "MNE times of the row above (MNE has no cache)"
    return [first, cached]


def _epochs_rows(x, inv, op, repeats):
    """float64 rows: MNE and minnorm alternate; float32 rows reuse MNE's float64 times."""
    mn = mne.minimum_norm
    rows = []
    for pick_ori in (None, "normal"):
        ref_row = None
        for dtype in ("float64", "float32"):
            label = f"epochs dSPM pick_ori={pick_ori} {dtype}"
            row = Row(x.name, label, tol=TOL["dSPM"] if dtype == "float64" else TOL["float32"])

            def ours(pick_ori=pick_ori, dtype=dtype):
                return minnorm.apply_inverse_epochs(x.epochs, op, LAMBDA2, "dSPM",
                                                    pick_ori=pick_ori, return_array=True,
                                                    dtype=dtype)

            if ref_row is None:
                compare(label, row, lambda: mn.apply_inverse_epochs(
                    x.epochs, inv, LAMBDA2, "dSPM", pick_ori=pick_ori, verbose=False), ours,
                    repeats)
                ref_row = row
            else:
                row.mne_s, row.mne_peak = list(ref_row.mne_s), ref_row.mne_peak
                for _ in range(repeats):
                    t, peak = measure(ours)[1:]  # the array is dropped at once
                    row.ours_s.append(t)
                    row.loads.append(os.getloadavg()[0])
                    row.ours_peak = max(row.ours_peak, peak)
                    gc.collect()
                print(f"  {label}: minnorm {row.ours_s[-1]:7.2f} s", flush=True)
            arr = ours()
            n_check = len(x.epochs) if dtype == "float64" else min(20, len(x.epochs))
            row.rel_err = stacked_err(mn.apply_inverse_epochs(
                x.epochs[:n_check], inv, LAMBDA2, "dSPM", pick_ori=pick_ori,
                return_generator=True, verbose=False), arr[:n_check])
            row.note = _epochs_note(x, op, pick_ori, dtype, row, arr, n_check)
            del arr
            gc.collect()
            rows.append(row)
    return rows


def _epochs_note(x, op, pick_ori, dtype, row, arr, n_check):
    """Output and kernel sizes; GFLOP/s reached vs a plain GEMM of the same shapes."""
    kernel = minnorm.prepare_kernel(op, lambda2=LAMBDA2, method="dSPM")
    n_rows = len(kernel.leads) if pick_ori is None else len(kernel.leads) // 3
    r = int(np.sum(kernel.reginv != 0))
    T = len(x.epochs.times)
    reached = 2 * n_rows * r * T * len(x.epochs) / statistics.median(row.ours_s) / 1e9
    peak = gemm_peak(n_rows, r, T, np.dtype(dtype))
    size = np.dtype(dtype).itemsize
    kernel_bytes = (n_rows * r + r * kernel.fields.shape[1]) * size
    extra = "" if n_check == len(x.epochs) else f"; checked on {n_check} epochs"
    return (f"output {arr.nbytes / GiB:.2f} GiB + kernel {kernel_bytes / GiB:.2f} GiB; "
            f"{reached:.0f} GFLOP/s = {100 * reached / peak:.0f}% of GEMM peak {peak:.0f}{extra}")


def _labels_row(x, inv, op, repeats, mode, n_epochs):
    mn = mne.minimum_norm
    labels = parcellate(op.src, 68, seed=0)
    epochs = x.epochs[:n_epochs]
    row = Row(x.name, f"68 labels {mode}, {len(epochs)} epochs, dSPM normal")

    def reference():
        stcs = mn.apply_inverse_epochs(epochs, inv, LAMBDA2, "dSPM", pick_ori="normal",
                                       return_generator=True, verbose=False)
        return np.array(mne.extract_label_time_course(stcs, labels, inv["src"], mode=mode,
                                                      return_generator=False, verbose=False))

    compare(row.task, row, reference,
            lambda: minnorm.extract_label_time_course(epochs, op, labels, LAMBDA2, "dSPM",
                                                      mode=mode, pick_ori="normal"),
            repeats, check=lambda ref, ours: rel_err(ours, ref))
    return row


# --------------------------------------------------------------------------- report


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    blas = ", ".join(f"{i['internal_api']} {i.get('version', '')} ({i['num_threads']} threads)"
                     for i in threadpool_info() if i["user_api"] == "blas")
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GiB
    return (f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB; Python {platform.python_version()}, "
            f"numpy {np.__version__}, {blas}; MNE {mne.__version__}, minnorm "
            f"{minnorm.__version__}; load average {os.getloadavg()[0]:.2f} at start")


def _loads(loads) -> str:
    """The 1-min load averages seen during a row's runs, as 'min–max'."""
    if not loads:
        return "–"
    low, high = min(loads), max(loads)
    return f"{low:.1f}" if high - low < 0.05 else f"{low:.1f}–{high:.1f}"


def table(rows) -> str:
    head = ("| workload | task | MNE-Python (s) | minnorm (s) | speed-up | peak MNE (GiB) | "
            "peak minnorm (GiB) | rel. error | agree | load | note |\n|---|---|---:|---:|---:|---:|"
            "---:|---:|---|---|---|")
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r.workload} | {r.task} | {statistics.median(r.mne_s):.3g} | "
            f"{statistics.median(r.ours_s):.3g} | **{r.ratio:.1f}×** | {r.mne_peak / GiB:.2f} | "
            f"{r.ours_peak / GiB:.2f} | {r.rel_err:.1e} | {'yes' if r.ok else 'NO'} | "
            f"{_loads(r.loads)} | {r.note} |")
    return "\n".join(lines)


def finish(rows, json_path=None) -> int:
    """Print the machine, the load at the end and the table; write the rows as JSON; the exit
    status (1 when a result disagrees)."""
    print("\n" + machine().split("; load")[0])
    print(f"load average at the end: {os.getloadavg()}")
    print(table(rows))
    if json_path:
        json_path.write_text(json.dumps([dict(asdict(r), ratio=r.ratio, ok=r.ok) for r in rows],
                                        indent=1))
    return 0 if all(r.ok for r in rows) else 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workload", choices=["template", "sample", "sample-meg", "all"],
                        default="all", help="sample-meg: the sample MEG channels (one-layer "
                        "BEM) on the template cortex at --spacing (ico5: 16,418 sources)")
    parser.add_argument("--spacing", default="ico5", help="the sample-meg workload's cortex")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--label-modes", default="mean_flip,pca_flip")
    parser.add_argument("--label-epochs", type=int, default=None,
                        help="epochs for the label rows (default: all)")
    parser.add_argument("--pca-epochs", type=int, default=20,
                        help="epochs for the pca_flip label row (MNE: one SVD per label and "
                             "epoch, ~1 min per 20 epochs at ico5)")
    parser.add_argument("--only", default=",".join(GROUPS),
                        help=f"comma-separated task groups among {','.join(GROUPS)}")
    parser.add_argument("--quick", action="store_true", help="ico3 / 20 epochs smoke run")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    mne.set_log_level("ERROR")
    spacing_t, spacing_s = ("ico3", "ico3") if args.quick else ("ico5", "ico4")
    n_epochs = 20 if args.quick else args.epochs
    modes = [m for m in args.label_modes.split(",") if m]
    n_label = args.label_epochs or n_epochs
    groups = tuple(g for g in args.only.split(",") if g)
    if set(groups) - set(GROUPS):
        parser.error(f"--only takes groups among {GROUPS}, got {args.only!r}")
    print(machine(), flush=True)
    rows = []
    if args.workload in ("template", "all"):
        rows += run_workload(template_inputs(spacing_t, n_epochs), args.repeats, modes, n_label,
                             min(args.pca_epochs, n_epochs), groups)
    if args.workload in ("sample", "all"):
        rows += run_workload(sample_inputs(spacing_s, n_epochs), args.repeats, modes, n_label,
                             min(args.pca_epochs, n_epochs), groups)
    if args.workload == "sample-meg":
        rows += run_workload(sample_inputs(args.spacing, n_epochs, eeg=False), args.repeats,
                             modes, n_label, min(args.pca_epochs, n_epochs), groups)
    return finish(rows, args.json)


if __name__ == "__main__":
    sys.exit(main())
