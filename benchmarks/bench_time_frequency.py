"""Source power next to MNE-Python in one process: induced power, multitaper and Welch spectra.

    python benchmarks/bench_time_frequency.py                        # ico4 and ico5
    python benchmarks/bench_time_frequency.py --spacing ico4 --json out.json
    python benchmarks/bench_time_frequency.py --quick                # ico3 smoke run

Workload (the issue's): the template cortex (loose 0.2, depth 0.8, 306 MEG), 100 simulated
epochs of 1 s at 600 Hz (601 samples), dSPM, λ² = 1/9:

* source_induced_power at 20 frequencies 4–40 Hz (n_cycles = f / 2), pick_ori None,
  with the phase-locking value (MNE's default) and without;
* compute_source_psd_epochs with MNE's defaults (4 Hz multitaper, 0–200 Hz), as a list;
* compute_source_psd on 60 s of raw (the simulated epochs end to end), MNE's defaults
  (Hann windows of 2048 samples, half overlap, 0–200 Hz).

MNE-Python loops over epochs (and, for induced power, frequencies) doing the same work for
each, so its time on all epochs is its time on ``--mne-epochs`` of them times the ratio of
the counts; that is measured, not modelled: the table says on how many epochs MNE ran.
minnorm runs on all epochs (its time is not linear in them: the cross-spectrum route pays
for the cortex once per frequency). Both run once more on the same subset of epochs, where
their peak memory (resident high-water mark added by the call, Linux) and their agreement
(‖minnorm − MNE‖_F / ‖MNE‖_F, bar 1e-6; float32 1e-5) are taken.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import mne
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_vs_mne import GiB, machine, measure  # noqa: E402

import minnorm  # noqa: E402
from minnorm.teaching import simulate  # noqa: E402
from minnorm.teaching.template import load_template  # noqa: E402

LAMBDA2 = 1.0 / 9.0
FREQS = np.linspace(4.0, 40.0, 20)


@dataclass
class Result:
    workload: str
    task: str
    mne_s: float  # scaled to all epochs
    ours_s: float
    mne_epochs: int
    n_epochs: int
    mne_peak: float
    ours_peak: float
    rel_err: float
    tol: float

    @property
    def ratio(self) -> float:
        return self.mne_s / self.ours_s


def power_of(out):
    """The array to compare: induced power (and plv), or stacked spectra."""
    if isinstance(out, np.ndarray):
        return out
    if isinstance(out, tuple):
        if isinstance(out[0], np.ndarray) and isinstance(out[1], np.ndarray):
            return np.concatenate([np.ravel(x) for x in out])
        return out[0].data
    if isinstance(out, list):
        return np.stack([stc.data for stc in out])
    return out.data if hasattr(out, "data") else out


def rel_err(ours, ref) -> float:
    a, b = power_of(ours), power_of(ref)
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b))


def run_task(name, workload, mne_fn, ours_fn, epochs, n_sub, tol):
    """MNE on n_sub epochs (scaled), minnorm on all; both on the subset for memory and agreement."""
    sub = epochs[:n_sub] if hasattr(epochs, "__getitem__") and n_sub else epochs
    _, ours_s, _ = measure(lambda: ours_fn(epochs))
    ref, mne_s, mne_peak = measure(lambda: mne_fn(sub))
    ours, _, ours_peak = measure(lambda: ours_fn(sub))
    n_all = len(epochs) if hasattr(epochs, "events") and n_sub else 1
    scale = n_all / (n_sub or 1)
    result = Result(workload, name, mne_s * scale, ours_s, n_sub or 1, n_all,
                    mne_peak / GiB, ours_peak / GiB, rel_err(ours, ref), tol)
    print(f"  {name}: MNE {mne_s:7.1f} s on {n_sub or 'all'} (→ {result.mne_s:7.1f} s), minnorm "
          f"{ours_s:7.1f} s → {result.ratio:5.1f}×, peak {result.mne_peak:.2f} / "
          f"{result.ours_peak:.2f} GiB, error {result.rel_err:.1e} (load "
          f"{os.getloadavg()[0]:.1f})", flush=True)
    return result


def workload(spacing, n_epochs, mne_epochs, mne_psd_epochs, dtypes, induced_rows):
    head = load_template(spacing=spacing, progress=False)
    sim = simulate.simulate_epochs(head, n_epochs=n_epochs, tmin=-0.2, tmax=0.8, sfreq=600.0,
                                   seed=0)
    epochs = sim.epochs
    inv = mne.minimum_norm.make_inverse_operator(epochs.info, head.forward, sim.noise_cov,
                                                 loose=0.2, depth=0.8, verbose=False)
    op = minnorm.InverseOperator.from_mne(inv)
    name = f"template-{spacing} ({head.n_sources} sources)"
    print(f"\n== {name}: {n_epochs} epochs x {len(epochs.times)} samples", flush=True)
    results = []
    mn = mne.minimum_norm
    for plv, dtype in induced_rows:
        task = f"source_induced_power, 20 freqs, {'with' if plv else 'no'} plv, {dtype}"
        results.append(run_task(
            task, name,
            lambda e, plv=plv: mn.source_induced_power(e, inv, FREQS, n_cycles=FREQS / 2,
                                                       return_plv=plv, verbose=False),
            lambda e, plv=plv, dtype=dtype: minnorm.source_induced_power(
                e, op, FREQS, n_cycles=FREQS / 2, return_plv=plv, dtype=dtype),
            epochs, mne_epochs, 1e-6 if dtype == "float64" else 1e-5))
    for dtype in dtypes:
        results.append(run_task(
            f"compute_source_psd_epochs, {dtype}", name,
            lambda e: mn.compute_source_psd_epochs(e, inv, LAMBDA2, verbose=False),
            lambda e, dtype=dtype: minnorm.compute_source_psd_epochs(e, op, LAMBDA2, dtype=dtype),
            epochs, mne_psd_epochs, 1e-6 if dtype == "float64" else 1e-5))
    raw = mne.io.RawArray(np.concatenate(list(epochs.get_data()[:60, :, :600]), axis=1),
                          epochs.info, verbose=False)
    for dtype in dtypes:
        results.append(run_task(
            f"compute_source_psd, 60 s raw, {dtype}", name,
            lambda r: mn.compute_source_psd(r, inv, LAMBDA2, verbose=False),
            lambda r, dtype=dtype: minnorm.compute_source_psd(r, op, LAMBDA2, dtype=dtype),
            raw, 0, 1e-6 if dtype == "float64" else 1e-5))
    return results


def table(results) -> str:
    lines = ["| workload | task | MNE-Python (s) | minnorm (s) | speed-up | MNE ran on | "
             "peak MNE (GiB) | peak minnorm (GiB) | rel. error |",
             "|---|---|---:|---:|---:|---|---:|---:|---:|"]
    for r in results:
        ran = "all" if r.mne_epochs == r.n_epochs or r.n_epochs == 1 else \
            f"{r.mne_epochs} of {r.n_epochs} epochs"
        lines.append(f"| {r.workload} | {r.task} | {r.mne_s:.1f} | {r.ours_s:.1f} | "
                     f"**{r.ratio:.1f}×** | {ran} | {r.mne_peak:.2f} | {r.ours_peak:.2f} | "
                     f"{r.rel_err:.1e}{'' if r.rel_err < r.tol else ' (NOT EQUAL)'} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spacing", default="ico4,ico5")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--mne-epochs", type=int, default=4,
                        help="epochs MNE-Python's induced power runs on (its time is scaled)")
    parser.add_argument("--mne-psd-epochs", type=int, default=10)
    parser.add_argument("--dtypes", default="float64,float32", help="for the spectra")
    parser.add_argument("--induced", default="plv:float64,plv:float32,noplv:float64,noplv:float32",
                        help="source_induced_power rows: with/without plv and dtype")
    parser.add_argument("--quick", action="store_true", help="ico3, 60 epochs, MNE on 2")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    mne.set_log_level("ERROR")
    spacings = ["ico3"] if args.quick else args.spacing.split(",")
    n_epochs = 60 if args.quick else args.epochs
    mne_epochs = 2 if args.quick else args.mne_epochs
    print(machine(), flush=True)
    results = []
    for spacing in spacings:
        induced = [(kind == "plv", dtype) for kind, dtype in
                   (item.split(":") for item in args.induced.split(",") if item)]
        results += workload(spacing, n_epochs, mne_epochs, 2 if args.quick else
                            args.mne_psd_epochs, args.dtypes.split(","), induced)
    print(f"\nload average at the end: {os.getloadavg()}")
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps([dict(asdict(r), ratio=r.ratio) for r in results],
                                        indent=1))
    return 0 if all(r.rel_err < r.tol for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
