"""minnorm's LCMV beamformer next to MNE-Python's, in one process: times, peak memory, agreement.

    python benchmarks/bench_beamformer.py                  # ico5, 200 epochs, 2 repeats
    python benchmarks/bench_beamformer.py --quick          # a smoke run (ico3, 20 epochs)
    python benchmarks/bench_beamformer.py --json out.json --mne-epochs 40   # MNE on 40, scaled

The template cortex at full fsaverage5 resolution (``load_template(spacing="ico5")``: 20 484
sources, free orientation, 306 MEG, one-layer BEM) with simulated epochs as in
bench_vs_mne.py's ``template_inputs`` (200 epochs × 421 samples at 600 Hz) and their data
covariance over 0–0.5 s (``mne.compute_covariance``, not timed):

* ``make_lcmv`` (reg 0.05, the simulation's noise covariance) for each weight_norm with
  pick_ori=None, and pick_ori="max-power" for the default weight_norm and for
  "unit-noise-gain"; checked: relative error of the filter weights;
* ``apply_lcmv_epochs`` with the default filter (pick_ori=None: the norm over orientations)
  and the max-power filter: MNE-Python's list of estimates against minnorm's list and its
  ``return_array=True`` in float64 and float32; checked: relative error of the estimates on
  the first epochs (``--check-epochs``);
* DICS (``--only dics``): ``make_dics`` at 5 frequencies (Morlet CSDs of the epochs over
  0–0.5 s, the noise CSD over the baseline, rank "info"; weight_norm None, and "unit-noise-gain" with
  max-power), ``apply_dics_csd``, and ``apply_dics_epochs`` of the 10 Hz filter on
  ``--dics-epochs`` epochs (40: both lists of estimates must fit in memory together);
  checked: weights, powers, estimates;
* ``rap_music`` and ``trap_music`` (``--only music``) with MNE's default 5 dipoles on the
  simulated evoked response and the noise covariance, once each (MNE-Python's scan takes
  about a minute at ico5); checked: the same sources found, relative error of the amplitudes.

MNE-Python's ``apply_lcmv_epochs`` loops over epochs (whiten, W @ M, the norm, one estimate
each): it runs on all epochs by default (its list is freed, but for the epochs checked, before
minnorm runs, so both never sit in memory together: ~13 GiB each at ico5); ``--mne-epochs N``
times it on the first N epochs and scales its time to all (its peak memory is then that of the
subset, and the first touch of its output is scaled too: the busy night of 2026-12-01 read 0.7×
for max-power that way, 1.2× on all epochs).
Each call is repeated ``--repeats`` times, MNE and minnorm alternating; medians, their ratio,
the peak resident memory each call added (Linux) — measured as in bench_vs_mne.py.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

import mne
import numpy as np

from threadpoolctl import threadpool_limits

import minnorm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_vs_mne import (  # noqa: E402
    GiB,
    Row,
    compare,
    finish,
    machine,
    measure,
    rel_err,
    stacked_err,
    template_inputs,
)

REG = 0.05
DEFAULT = "unit-noise-gain-invariant"
MAKE = [(None, None), ("unit-noise-gain", None), ("nai", None), (DEFAULT, None),
        (DEFAULT, "max-power"), ("unit-noise-gain", "max-power")]
APPLY = [(DEFAULT, None), (DEFAULT, "max-power")]  # the filters whose application is timed
TOL = {"float64": 1e-6, "float32": 1e-5}


def make_rows(x, data_cov, repeats: int, configs) -> tuple[list, dict]:
    """One row per (weight_norm, pick_ori); the filters of APPLY's configurations kept."""
    rows, kept = [], {}
    for weight_norm, pick_ori in configs:
        row = Row(x.name, f"make_lcmv weight_norm={weight_norm} pick_ori={pick_ori}")

        def make(bf, weight_norm=weight_norm, pick_ori=pick_ori):
            return lambda: bf.make_lcmv(x.info, x.forward, data_cov, reg=REG,
                                        noise_cov=x.noise_cov, pick_ori=pick_ori,
                                        weight_norm=weight_norm, verbose=False)

        ref, ours = compare(row.task, row, make(mne.beamformer), make(minnorm.beamformer),
                            repeats, keep=True,
                            check=lambda a, b: rel_err(b["weights"], a["weights"]))
        size = ours["weights"].nbytes
        row.note = f"filter {size / GiB:.2f} GiB ({ours['weights'].shape[0]} × " \
                   f"{ours['weights'].shape[1]})"
        if (weight_norm, pick_ori) in APPLY:
            kept[weight_norm, pick_ori] = (ref, ours)
        rows.append(row)
        del ref, ours
        gc.collect()
    return rows, kept


def cpu_rows(x, data_cov, repeats: int, configs) -> list:
    """make_lcmv on one BLAS thread, timed in process CPU seconds: robust on a busy machine,
    where the wall time of multithreaded BLAS (spinning threads) varies several-fold."""
    rows = []
    for weight_norm, pick_ori in configs:
        row = Row(x.name, f"make_lcmv weight_norm={weight_norm} pick_ori={pick_ori} (1 thread, "
                  "CPU s)", tol=np.inf, note="process CPU time on one BLAS thread")
        for k in range(repeats):
            for bf, times in ((mne.beamformer, row.mne_s), (minnorm.beamformer, row.ours_s)):
                with threadpool_limits(1):
                    start = time.process_time()
                    bf.make_lcmv(x.info, x.forward, data_cov, reg=REG, noise_cov=x.noise_cov,
                                 pick_ori=pick_ori, weight_norm=weight_norm, verbose=False)
                    times.append(time.process_time() - start)
                gc.collect()
            row.loads.append(os.getloadavg()[0])
        row.rel_err = 0.0  # checked in the wall-time rows
        print(f"  {row.task}: MNE {min(row.mne_s):.2f}  minnorm {min(row.ours_s):.2f}", flush=True)
        rows.append(row)
    return rows


DICS_FREQS = [6.0, 10.0, 14.0, 20.0, 30.0]


def dics_rows(x, repeats: int, n_epochs: int) -> list:
    """make_dics (two configurations), apply_dics_csd and apply_dics_epochs."""
    tfr = mne.time_frequency
    csd = tfr.csd_morlet(x.epochs, DICS_FREQS, tmin=0.0, tmax=0.5, n_cycles=3, verbose=False)
    noise_csd = tfr.csd_morlet(x.epochs, DICS_FREQS, tmin=None, tmax=0.0, n_cycles=3,
                               verbose=False)
    rows, kept = [], {}
    for weight_norm, pick_ori in ((None, None), ("unit-noise-gain", "max-power")):
        row = Row(x.name, f"make_dics {len(DICS_FREQS)} freqs weight_norm={weight_norm} "
                          f"pick_ori={pick_ori}")

        def make(bf, weight_norm=weight_norm, pick_ori=pick_ori):
            return lambda: bf.make_dics(x.info, x.forward, csd, noise_csd=noise_csd, rank="info",
                                        weight_norm=weight_norm, pick_ori=pick_ori,
                                        verbose=False)

        kept[pick_ori] = compare(row.task, row, make(mne.beamformer), make(minnorm.beamformer),
                                 repeats, keep=True,
                                 check=lambda a, b: rel_err(b["weights"], a["weights"]))
        rows.append(row)
    ref, ours = kept[None]
    row = Row(x.name, f"apply_dics_csd {len(DICS_FREQS)} freqs")
    compare(row.task, row, lambda: mne.beamformer.apply_dics_csd(csd, ref, verbose=False),
            lambda: minnorm.beamformer.apply_dics_csd(csd, ours), repeats,
            check=lambda a, b: rel_err(b[0], a[0]))
    rows.append(row)
    one = {}
    for name, filt in (("mne", ref), ("ours", ours)):
        one[name] = filt.copy()
        one[name]["weights"] = filt["weights"][1:2]
        one[name]["csd"] = filt["csd"].pick_frequency(index=1)
    epochs = x.epochs[:n_epochs]
    row = Row(x.name, f"apply_dics_epochs 10 Hz, {n_epochs} epochs")
    compare(row.task, row, lambda: mne.beamformer.apply_dics_epochs(epochs, one["mne"],
                                                                     verbose=False),
            lambda: minnorm.beamformer.apply_dics_epochs(epochs, one["ours"]), repeats,
            check=_lists_err)
    rows.append(row)
    return rows


def _lists_err(ref, ours) -> float:
    """‖ours − ref‖/‖ref‖ over two lists of estimates, pair by pair."""
    num = sum(np.linalg.norm(b.data - a.data) ** 2 for a, b in zip(ref, ours, strict=True))
    return float(np.sqrt(num / sum(np.linalg.norm(a.data) ** 2 for a in ref)))


def music_rows(x, n_dipoles: int = 5) -> list:
    """rap_music and trap_music, once each: the sources found must be MNE-Python's."""
    rows = []
    for name in ("rap_music", "trap_music"):
        row = Row(x.name, f"{name}, {n_dipoles} dipoles")

        def run(module, name=name):
            return lambda: getattr(module, name)(x.evoked, x.forward, x.noise_cov,
                                                 n_dipoles=n_dipoles, verbose=False)

        def check(ref, ours):
            if [tuple(d.pos[0]) for d in ref] != [tuple(d.pos[0]) for d in ours]:
                return np.inf  # other sources found
            return max(rel_err(a.amplitude, b.amplitude) for a, b in zip(ours, ref))

        compare(row.task, row, run(mne.beamformer), run(minnorm.beamformer), 1, check=check)
        rows.append(row)
    return rows


def apply_rows(x, filters, pick_ori, repeats: int, n_mne: int, n_check: int) -> list:
    """MNE's list (on n_mne epochs, scaled) against minnorm's list, float64 and float32 arrays."""
    ref_filter, ours_filter = filters
    epochs, n = x.epochs, len(x.epochs)
    scale = n / n_mne
    subset = epochs[:n_mne]

    def mne_fn():
        return mne.beamformer.apply_lcmv_epochs(subset, ref_filter, verbose=False)

    ours = {
        "list": lambda: minnorm.beamformer.apply_lcmv_epochs(epochs, ours_filter),
        "array float64": lambda: minnorm.beamformer.apply_lcmv_epochs(
            epochs, ours_filter, return_array=True),
        "array float32": lambda: minnorm.beamformer.apply_lcmv_epochs(
            epochs, ours_filter, return_array=True, dtype="float32"),
    }
    rows = {k: Row(x.name, f"apply_lcmv_epochs pick_ori={pick_ori} {k}",
                   tol=TOL["float32" if "32" in k else "float64"]) for k in ours}
    mne_s, mne_peak, ref = [], 0, None
    for k in range(repeats):
        ref, t, peak = measure(mne_fn)
        mne_s.append(t * scale)
        mne_peak = max(mne_peak, peak)
        ref = ref[:n_check]  # kept for the check: the rest is freed at once
        gc.collect()
        for name, fn in ours.items():
            out, t, peak = measure(fn)
            row = rows[name]
            row.ours_s.append(t)
            row.ours_peak = max(row.ours_peak, peak)
            row.loads.append(os.getloadavg()[0])
            if k == repeats - 1:
                row.rel_err = (stacked_err(ref, out[:n_check]) if name != "list"
                               else stacked_err(ref, np.array([s.data for s in out[:n_check]])))
                row.note = _apply_note(out, ours_filter, n_mne, n, n_check)
            del out
            gc.collect()
            print(f"  {row.task}: MNE {mne_s[-1]:7.2f} s (scaled)  minnorm {row.ours_s[-1]:7.2f} s"
                  f"  (load {os.getloadavg()[0]:.1f})", flush=True)
    for row in rows.values():
        row.mne_s, row.mne_peak = list(mne_s), mne_peak
    return list(rows.values())


def _apply_note(out, filters, n_mne, n, n_check) -> str:
    if isinstance(out, list):
        size = sum(s.data.nbytes for s in out)
    else:
        size = out.nbytes
    w = filters["weights"]
    itemsize = 4 if not isinstance(out, list) and out.dtype == np.float32 else 8
    scaled = "" if n_mne == n else f"MNE timed on {n_mne} epochs × {n / n_mne:g}; "
    return (f"{scaled}output {size / GiB:.2f} GiB + filter {w.size * itemsize / GiB:.2f} GiB; "
            f"checked on {n_check} epochs")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--mne-epochs", type=int, default=None,
                        help="time MNE-Python's apply_lcmv_epochs on this many epochs and scale "
                             "(default: all)")
    parser.add_argument("--check-epochs", type=int, default=10)
    parser.add_argument("--only", default="make,apply",
                        help="comma-separated among make, apply, cpu (make_lcmv on one "
                             "thread), dics, music (rap_music, trap_music)")
    parser.add_argument("--dics-epochs", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="ico3 / 20 epochs smoke run")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    mne.set_log_level("ERROR")
    spacing = "ico3" if args.quick else "ico5"
    n_epochs = 20 if args.quick else args.epochs
    n_mne = n_epochs if args.mne_epochs is None else min(args.mne_epochs, n_epochs)
    n_check = min(args.check_epochs, n_mne)
    print(machine(), flush=True)
    x = template_inputs(spacing, n_epochs)
    data_cov = mne.compute_covariance(x.epochs, tmin=0.0, tmax=0.5, verbose=False)
    print(f"\n== {x.describe}; data covariance 0–0.5 s, reg {REG}", flush=True)
    groups = set(args.only.split(","))
    configs = MAKE if "make" in groups else APPLY
    rows, kept = ([], {}) if not {"make", "apply"} & groups else make_rows(
        x, data_cov, args.repeats if "make" in groups else 1, configs)
    rows = rows if "make" in groups else []
    if "cpu" in groups:
        rows += cpu_rows(x, data_cov, args.repeats, MAKE)
    for key in APPLY if "apply" in groups else ():
        rows += apply_rows(x, kept[key], key[1], args.repeats, n_mne, n_check)
    if "dics" in groups:
        rows += dics_rows(x, args.repeats, min(args.dics_epochs, n_epochs))
    if "music" in groups:
        rows += music_rows(x)
    return finish(rows, args.json)


if __name__ == "__main__":
    sys.exit(main())
