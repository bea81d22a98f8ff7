"""How close does each λ² rule come to the best λ² there is? (issue 15)

On minnorm's simulation (template head, ico3, MEG; default sources, known truth), for
each whitened SNR and number of averages, every rule chooses λ² from the evoked, and
the *oracle* λ² is the one that minimises the relative error ‖ŝ − s‖ / ‖s‖ of the MNE
estimate (fixed orientation, A·m) against the true source time courses, found on a
fine log grid (0.02 decades) refined by a bounded scalar minimiser. Reported per rule:
the fraction of cases whose λ² is within a factor 3 of the oracle's, the median
|log10 ratio|, and the median of error(rule) / error(oracle) − 1.

    python benchmarks/validate_lambda2.py                      # full grid
    python benchmarks/validate_lambda2.py --snrs 1 3 10 30 --naves 1 10 100 --seeds 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import optimize

import minnorm
from minnorm.engine import regularisation as reg
from minnorm.teaching.simulate import simulate_evoked
from minnorm.teaching.template import load_template


def error_curve(inv, evoked, truth):
    """relative error(λ²) of the MNE estimate, from the SVD: ŝ = R½V diag(s/(s²+λ²)) y."""
    nave = evoked.nave
    w = inv.whitener.scaled(nave)
    y = inv.eigen_fields @ (w.matrix @ (w.proj @ evoked.data[minnorm._mne.pick_rows(
        evoked.ch_names, inv)]))
    A = np.sqrt(inv.source_cov / nave)[:, np.newaxis] * inv.eigen_leads  # R½ V
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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--snrs", type=float, nargs="+", default=[1, 2, 3, 5, 10, 30])
    p.add_argument("--naves", type=int, nargs="+", default=[1, 10, 30, 100])
    p.add_argument("--seeds", type=int, default=2)
    args = p.parse_args(argv)
    head = load_template(spacing="ico3", progress=False)
    rows = {r: [] for r in reg.RULES}
    t0 = time.perf_counter()
    for snr in args.snrs:
        for nave in args.naves:
            for seed in range(args.seeds):
                sim = simulate_evoked(head, snr=snr, nave=nave, seed=seed)
                inv = minnorm.make_inverse_operator(sim.evoked.info, sim.forward,
                                                    sim.noise_cov, loose=0.0, fixed=True)
                truth = sim.stc_true.data
                assert truth.shape[0] == inv.n_sources
                err = error_curve(inv, sim.evoked, truth)
                lam_o, err_o = oracle(err, inv.sing)
                for rule in reg.RULES:
                    lam = minnorm.choose_lambda2(sim.evoked, inv, rule).lambda2
                    rows[rule].append((snr, nave, lam / lam_o, err(lam) / err_o - 1))
    print(f"{len(rows['gcv'])} cases (SNR {args.snrs} × nave {args.naves} × {args.seeds} "
          f"seeds), {time.perf_counter() - t0:.0f} s\n")
    print("| rule | within ×3 of oracle λ² | median λ²/oracle | median |log10 ratio| | "
          "median error above oracle | 90th pct error above oracle |")
    print("|---|---|---|---|---|---|")
    for rule, r in rows.items():
        ratio, extra = np.array([x[2] for x in r]), np.array([x[3] for x in r])
        within = np.mean(np.abs(np.log(ratio)) <= np.log(3))
        print(f"| {rule} | {100 * within:.0f}% | {np.median(ratio):.2f} | "
              f"{np.median(np.abs(np.log10(ratio))):.2f} | {100 * np.median(extra):.1f}% | "
              f"{100 * np.percentile(extra, 90):.1f}% |")
    print("\nper case, λ²(rule)/λ²(oracle):")
    print("snr  nave  " + "  ".join(f"{r:>11s}" for r in reg.RULES))
    for k, (snr, nave, *_rest) in enumerate(rows["gcv"]):
        print(f"{snr:4g} {nave:5d}  " + "  ".join(f"{rows[r][k][2]:11.3g}" for r in reg.RULES))


if __name__ == "__main__":
    main()
