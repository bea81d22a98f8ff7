"""Resolution analysis: minnorm.resolution_maps next to MNE-Python's dense matrix, in one process.

    python benchmarks/bench_resolution.py                        # full resolution (ico5)
    python benchmarks/bench_resolution.py --spacing ico4 --json out.json

Workload: the template cortex (minnorm.teaching.template; ico5 = the full fsaverage5 mesh,
20 484 sources), 306 MEG channels, one-layer BEM, noise covariance of the template's noise
model; PSFs of dipoles normal to the cortex (the forward converted to fixed orientation).

1. fixed-orientation inverse (depth 0.8), where MNE-Python's dense n × n matrix fits: for
   each method, MNE-Python's make_inverse_resolution_matrix + resolution_metrics for the six
   metrics of PSFs and CTFs (12 maps) against one minnorm.resolution_maps call giving the
   same 12 maps, from the same operator; the relative error of every map is checked
   (1e-6; eLORETA 1e-3).
2. loose inverse (0.2): minnorm alone — MNE-Python's (3n × n) matrix and the copies its
   metrics make do not fit here; the script prints what they would need — all 12 maps for
   each of the four methods: total time and the peak resident memory each call added.

Times are single runs (MNE-Python's take minutes); the load average is printed beside each.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import mne
import numpy as np

import minnorm
from minnorm.engine.resolution import FUNCTIONS, METRICS
from minnorm.teaching.simulate import noise_covariance
from minnorm.teaching.template import load_template

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_vs_mne import GiB, Row, compare, machine, measure, table  # noqa: E402

LAMBDA2 = 1.0 / 9.0
METHODS = ("MNE", "dSPM", "sLORETA", "eLORETA")
TOL = {"eLORETA": 1e-3}


def mne_maps(fwd_fixed, inv, method):
    """MNE-Python's way: the dense matrix, then one resolution_metrics call per map."""
    resmat = mne.minimum_norm.make_inverse_resolution_matrix(fwd_fixed, inv, method=method,
                                                             lambda2=LAMBDA2, verbose="error")
    src = fwd_fixed["src"]
    return {(f, m): mne.minimum_norm.resolution_metrics(resmat, src, f, m, verbose="error")
            for f in FUNCTIONS for m in METRICS}


def worst_error(theirs, ours) -> float:
    """The largest relative error ‖ours − MNE‖/‖MNE‖ over the maps (absolute where MNE's map
    is zero everywhere, e.g. sLORETA's peak localisation error with fixed orientation)."""
    return max(float(np.linalg.norm(ours[k].data - theirs[k].data)
                     / (np.linalg.norm(theirs[k].data) or 1.0)) for k in theirs)


def fixed_rows(fwd, fwd_fixed, info, cov, methods):
    inv = mne.minimum_norm.make_inverse_operator(info, fwd, cov, loose=0.0, fixed=True,
                                                 depth=0.8, verbose="error")
    op = minnorm.InverseOperator.from_mne(inv)
    rows = []
    for method in methods:
        row = Row("fixed", f"12 maps, {method}", tol=TOL.get(method, 1e-6),
                  note=f"load {os.getloadavg()[0]:.1f}")
        op._kernels.clear()  # minnorm pays for its kernel (and eLORETA's fit) as MNE does
        compare(method, row, lambda: mne_maps(fwd_fixed, inv, method),
                lambda: minnorm.resolution_maps(fwd_fixed, op, method=method, lambda2=LAMBDA2),
                1, check=worst_error)
        rows.append(row)
    return rows


def loose_rows(fwd, fwd_fixed, info, cov, methods):
    op = minnorm.make_inverse_operator(info, fwd, cov, loose=0.2, depth=0.8)
    out = []
    for method in methods:
        load = os.getloadavg()[0]
        maps, seconds, peak = measure(
            lambda: minnorm.resolution_maps(fwd_fixed, op, method=method, lambda2=LAMBDA2))
        assert len(maps) == 12 and all(np.isfinite(s.data).all() for s in maps.values())
        out.append(dict(method=method, seconds=seconds, peak_gib=peak / GiB, load=load))
        print(f"  loose {method}: {seconds:.1f} s, peak +{peak / GiB:.2f} GiB (load {load:.1f})",
              flush=True)
    return out


def mne_loose_need(n: int) -> str:
    resmat = 3 * n * n * 8
    rectified = n * n * 8
    return (f"MNE-Python would hold the (3n × n) = ({3 * n} × {n}) float64 matrix "
            f"({resmat / GiB:.1f} GiB) and, to rectify it, a list of n rows and their stacked "
            f"copy ({2 * rectified / GiB:.1f} GiB): {(resmat + 2 * rectified) / GiB:.1f} GiB "
            "per method at least, and it raises for 6 of the 12 maps")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spacing", default="ico5", choices=["ico3", "ico4", "ico5"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--part", choices=["fixed", "loose", "both"], default="both",
                        help="fixed: side by side with MNE-Python; loose: minnorm alone")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)

    print(machine(), flush=True)
    head = load_template(spacing=args.spacing, progress=False)
    fwd = head.forward
    cov = noise_covariance(head)
    info = head.info
    fwd_fixed = mne.convert_forward_solution(fwd, surf_ori=True, force_fixed=True, copy=True,
                                             verbose="error")
    n = fwd["nsource"]
    print(f"template {args.spacing}: {n} sources, {fwd['nchan']} channels", flush=True)

    started = time.perf_counter()
    rows = [] if args.part == "loose" else fixed_rows(fwd, fwd_fixed, info, cov, args.methods)
    loose = [] if args.part == "fixed" else loose_rows(fwd, fwd_fixed, info, cov, args.methods)
    total = sum(r["seconds"] for r in loose)

    print()
    if rows:
        print(table(rows))
        print()
    if loose:
        print("| loose 0.2, all 12 maps | minnorm (s) | peak added (GiB) | load |\n"
              "|---|---:|---:|---:|")
        for r in loose:
            print(f"| {r['method']} | {r['seconds']:.1f} | {r['peak_gib']:.2f} | {r['load']:.1f} |")
        print(f"| **all methods** | **{total:.1f}** | {max(r['peak_gib'] for r in loose):.2f} | |")
        print(f"\n{mne_loose_need(n)}.")
    print(f"wall time of the benchmark: {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(dict(
            machine=machine(), spacing=args.spacing, n_sources=n,
            fixed=[dict(task=r.task, mne_s=r.mne_s, ours_s=r.ours_s, ratio=r.ratio,
                        mne_peak=r.mne_peak, ours_peak=r.ours_peak, rel_err=r.rel_err,
                        note=r.note) for r in rows],
            loose=loose, loose_total_s=total, mne_loose_need=mne_loose_need(n)), indent=1))


if __name__ == "__main__":
    main()
