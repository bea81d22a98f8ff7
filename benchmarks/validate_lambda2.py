"""How close does each λ² rule come to the best λ² there is? (issue 15)

On minnorm's template head (ico3, MEG, fixed orientation) with known sources, every
rule chooses λ² from an evoked response, and the *oracle* λ² is the one that minimises
the relative error ‖ŝ − s‖ / ‖s‖ of the MNE estimate (A·m) against the true source time
courses, found on a fine log grid (0.02 decades) refined by a bounded scalar minimiser.

Sources: the demo's four (two auditory at 100 ms, two right temporal at 300 ms), either
``dipole`` (one cortical vertex each, along its normal) or ``patch`` (the vertex and its
neighbours on the source space's mesh, 6–8 vertices, each along its own normal with the
same time course, the moment shared among them).

The data change with nave: ``--snrs`` are the whitened peak SNRs of one trial; for each
seed ``max(naves)`` single trials of noise (the template's brain + sensor noise, low-passed
at 40 Hz, independent across trials) are drawn once, and the evoked of nave trials is
the signal plus the mean of the first nave of them, so its noise shrinks as 1/√nave and
its SNR grows as √nave. The same noise draws serve both source kinds and every SNR.

Reported per source kind and over all cases, per rule: the fraction of cases whose λ² is
within a factor 3 of the oracle's, the median ratio and |log10 ratio|, and the median and
90th percentile of error(rule) / error(oracle) − 1; then the ratios per nave.

    python benchmarks/validate_lambda2.py                       # the full grid, ~3 min
    python benchmarks/validate_lambda2.py --snrs 1 3 --naves 1 10 100 --seeds 1 --kinds patch
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import optimize
from threadpoolctl import threadpool_limits

import minnorm
from minnorm.engine import regularisation as reg
from minnorm.inverse.lambda2 import choose_from_array
from minnorm.teaching.noise import (NoiseModel, covariance_of, draw_noise, noise_for_snr,
                                    normal_gain, template_noise_matrix)
from minnorm.teaching.sources import default_sources, true_sources
from minnorm.teaching.template import load_template

SFREQ, TMIN, TMAX = 500.0, -0.1, 0.5


def patch_of(head, index):
    """The source ``index`` and its neighbours on the source space's triangulation."""
    h = 0 if index < head.hemi_sizes[0] else 1
    offset = head.hemi_sizes[0] if h else 0
    vertno = head.src[h]["vertno"]
    tris = np.searchsorted(vertno, head.src[h]["use_tris"])  # used-vertex numbering
    centre = index - offset
    ring = np.unique(tris[np.any(tris == centre, axis=1)])
    return ring + offset


def true_moments(head, kind, times):
    """(n_sources, n_times) true moments in A·m for ``kind`` "dipole" or "patch"."""
    truth = true_sources(head, default_sources(), times)
    moments = np.zeros((head.n_sources, len(times)))
    for index, wave in zip(truth.indices, truth.waveforms):
        where = [index] if kind == "dipole" else patch_of(head, index)
        moments[where] += wave / len(where)
    return moments


def error_curve(inv, data, nave, truth):
    """relative error(λ²) of the MNE estimate, from the SVD: ŝ = R½V diag(s/(s²+λ²)) y."""
    w = inv.whitener.scaled(nave)
    y = inv.eigen_fields @ (w.matrix @ (w.proj @ data))
    A = np.sqrt(inv.source_cov / nave)[:, np.newaxis] * inv.eigen_leads  # R½ V for C/nave
    n = w.n_nonzero
    A, y, s = A[:, :n], y[:n], inv.sing[:n]
    gram, cross = A.T @ A, np.sum((A.T @ truth) * y, axis=1)
    yy = y @ y.T
    t2 = float(np.sum(truth**2))

    def err(lam):
        d = s / (s**2 + lam)
        return np.sqrt(max(d @ (gram * yy) @ d - 2 * d @ cross + t2, 0.0) / t2)

    return err


def oracle(err, sing):
    grid = float(np.mean(sing**2)) * np.logspace(-6, 4, 501)
    values = np.array([err(g) for g in grid])
    k = int(np.argmin(values))
    lo, hi = np.log(grid[max(k - 1, 0)]), np.log(grid[min(k + 1, len(grid) - 1)])
    res = optimize.minimize_scalar(lambda u: err(np.exp(u)), bounds=(lo, hi), method="bounded")
    return float(np.exp(res.x)), float(res.fun)


# the evidence with the whitener for one trial whatever the data's nave: what a rule that
# ignores the noise scale would choose (the bar must fail it)
NAIVE = "evidence, nave ignored"
COLUMNS = (*reg.RULES, NAIVE)


def run_cases(head, kinds, snrs, naves, seeds):
    """One row per case: (kind, snr, nave, seed, {rule: (λ²/oracle, error/oracle's − 1)},
    oracle λ²)."""
    times = np.arange(round(TMIN * SFREQ), round(TMAX * SFREQ) + 1) / SFREQ
    noise = NoiseModel()
    n_max = max(naves)
    truths = {kind: true_moments(head, kind, times) for kind in kinds}
    unit = template_noise_matrix(head, noise)  # one trial's C, unscaled
    rows = []
    for seed in range(seeds):
        trials = draw_noise(np.random.default_rng(seed), unit, n_max, len(times), sfreq=SFREQ,
                            lowpass=noise.lowpass)
        means = {nave: trials[:nave].mean(axis=0) for nave in naves}  # (M, T) per nave
        for kind, truth in truths.items():
            active = np.flatnonzero(np.any(truth, axis=1))
            signal = normal_gain(head, active) @ truth[active]
            for snr in snrs:
                C, _ = noise_for_snr(head, signal, nave=1, snr=snr, noise=noise)  # one trial
                scale = np.sqrt(C[0, 0] / unit[0, 0])  # C is the unit matrix scaled
                inv = minnorm.make_inverse_operator(head.info, head.forward,
                                                    covariance_of(C, head.info), loose=0.0,
                                                    fixed=True)
                assert truth.shape[0] == inv.n_sources
                rows_of = [head.info["ch_names"].index(c) for c in inv.ch_names]
                for nave in naves:
                    data = (signal + scale * means[nave])[rows_of]
                    err = error_curve(inv, data, nave, truth)
                    lam_o, err_o = oracle(err, inv.sing)
                    result = {}
                    for rule in COLUMNS:
                        lam = (choose_from_array(inv, data, "evidence", 1).lambda2
                               if rule == NAIVE else
                               choose_from_array(inv, data, rule, nave).lambda2)
                        result[rule] = (lam / lam_o, err(lam) / err_o - 1)
                    rows.append((kind, snr, nave, seed, result, lam_o))
    return rows


def summary(rows, title):
    print(f"\n{title} ({len(rows)} cases)\n")
    print("| rule | within ×3 of oracle λ² | median λ²/oracle | median |log10 ratio| | "
          "median error above oracle | 90th pct error above oracle |")
    print("|---|---|---|---|---|---|")
    for rule in COLUMNS:
        ratio = np.array([r[4][rule][0] for r in rows])
        extra = np.array([r[4][rule][1] for r in rows])
        within = np.mean(np.abs(np.log(ratio)) <= np.log(3))
        print(f"| {rule} | {100 * within:.0f}% | {np.median(ratio):.2f} | "
              f"{np.median(np.abs(np.log10(ratio))):.2f} | {100 * np.median(extra):.1f}% | "
              f"{100 * np.percentile(extra, 90):.1f}% |")


def by_nave(rows, naves):
    print("\nmedian λ²(rule)/λ²(oracle) [fraction within ×3] per nave, all SNRs and seeds; "
          "the oracle's λ² (median, range over SNRs and seeds):\n")
    print("| kind | nave | oracle λ² | " + " | ".join(COLUMNS) + " |")
    print("|---|---|---|" + "---|" * len(COLUMNS))
    for kind in dict.fromkeys(r[0] for r in rows):
        for nave in naves:
            sel = [r for r in rows if r[0] == kind and r[2] == nave]
            oracles = np.array([r[5] for r in sel])
            cells = [f"{np.median(oracles):.2g} ({oracles.min():.1g}–{oracles.max():.1g})"]
            for rule in COLUMNS:
                ratio = np.array([r[4][rule][0] for r in sel])
                within = np.mean(np.abs(np.log(ratio)) <= np.log(3))
                cells.append(f"{np.median(ratio):.2f} [{100 * within:.0f}%]")
            print(f"| {kind} | {nave} | " + " | ".join(cells) + " |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--snrs", type=float, nargs="+", default=[0.3, 1, 3, 10, 30],
                   help="whitened peak SNR of one trial")
    p.add_argument("--naves", type=int, nargs="+", default=[1, 10, 30, 100])
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--kinds", nargs="+", choices=["dipole", "patch"], default=["dipole", "patch"])
    p.add_argument("--cases", action="store_true", help="print every case's ratios too")
    args = p.parse_args(argv)
    head = load_template(spacing="ico3", progress=False)
    sizes = [len(patch_of(head, i)) for i in true_sources(head, default_sources(), [0.0]).indices]
    t0 = time.perf_counter()
    with threadpool_limits(1):  # small matrices: one BLAS thread is faster (×15 when busy)
        rows = run_cases(head, args.kinds, args.snrs, sorted(args.naves), args.seeds)
    print(f"{len(rows)} cases: {args.kinds} × single-trial SNR {args.snrs} × nave "
          f"{sorted(args.naves)} × {args.seeds} seeds (patches of {sizes} vertices), "
          f"{time.perf_counter() - t0:.0f} s")
    for kind in args.kinds:
        summary([r for r in rows if r[0] == kind], f"{kind} sources")
    if len(args.kinds) > 1:
        summary(rows, "all cases")
    by_nave(rows, sorted(args.naves))
    if args.cases:
        print("\nkind    snr  nave seed  " + "  ".join(f"{r[:11]:>11s}" for r in COLUMNS))
        for kind, snr, nave, seed, res, _ in rows:
            print(f"{kind:6s} {snr:5g} {nave:5d} {seed:4d}  "
                  + "  ".join(f"{res[r][0]:11.3g}" for r in COLUMNS))


if __name__ == "__main__":
    main()
