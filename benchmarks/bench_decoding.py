"""Decoding from source space: the naive loop next to minnorm's pipeline, in one process.

    python benchmarks/bench_decoding.py                   # 500 epochs, template ico5, 3 repeats
    python benchmarks/bench_decoding.py --quick           # ico3, 60 epochs (a smoke run)

The task (the decode-demo's simulation, at full template resolution): 500 single trials
(306 MEG, 500 Hz, -0.1…0.5 s) on the template cortex (fsaverage5, 20 484 sources, loose
0.2); predict the trial's level of experience (3 classes) from dSPM (pick_ori="normal")
averaged over the window 250–350 ms where the levels differ, with an L2 logistic
regression under 5-fold cross-validation.

naive            what users write today: crop the epochs to the window,
                 mne.minimum_norm.apply_inverse_epochs (a list of 500 estimates), np.stack,
                 average over time, cross_val_score(LogisticRegression()) on the result
minnorm          cross_val_score(make_pipeline(SourceTransformer(..., times=window,
                 average_time=True), LogisticRegression())) on the sensor array: the
                 inverse is applied inside each fold, by the batched engine
minnorm fast     the same with SourceTransformer(fast=True): ≤ 306 features that give the
                 logistic regression the same predictions (exact, see minnorm.decoding)

The table gives the median time, the peak resident memory each added (the kernel's
high-water mark, reset before every run: Linux only), the mean accuracy, and checks that
the fold scores agree (naive vs minnorm: equal features; fast: equal predictions, so
equal scores up to ties at the decision boundary).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mne
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_vs_mne import GiB, machine, measure  # noqa: E402

import minnorm  # noqa: E402
from minnorm.teaching.decode_demo import WINDOW, simulate_levels  # noqa: E402
from minnorm.decoding import SourceTransformer  # noqa: E402
from minnorm.teaching.template import load_template  # noqa: E402

LAMBDA2 = 1.0  # single trials: SNR ≈ 1


def model():
    return LogisticRegression(C=1e-3, max_iter=1000, tol=1e-6)


@dataclass
class Contender:
    """One way of doing the task, and what it measured."""

    name: str
    run: Callable[[], np.ndarray]  # → the 5 fold scores
    tol: float  # allowed difference of a fold score from the naive loop's
    seconds: list = field(default_factory=list)
    peak: int = 0
    scores: np.ndarray | None = None


def contenders(epochs, y, op, window, cv) -> list:
    """The naive loop first (the reference), then minnorm's pipeline and its fast path."""
    inv, X = op.to_mne(), epochs.get_data()

    def naive():
        part = epochs.copy().crop(epochs.times[window[0]], epochs.times[window[-1]])
        stcs = mne.minimum_norm.apply_inverse_epochs(part, inv, LAMBDA2, "dSPM",
                                                     pick_ori="normal")
        features = np.stack([stc.data for stc in stcs]).mean(axis=-1)
        del stcs
        return cross_val_score(model(), features, y, cv=cv)

    def pipeline(fast):
        def run():
            pipe = make_pipeline(SourceTransformer(op, lambda2=LAMBDA2, method="dSPM",
                                                   pick_ori="normal", times=window,
                                                   average_time=True, fast=fast,
                                                   ch_names=epochs.ch_names), model())
            return cross_val_score(pipe, X, y, cv=cv)
        return run

    one_tie_per_fold = 1.01 * cv.get_n_splits() / len(y)  # fast: equal predictions, up to ties
    return [Contender("naive loop (apply_inverse_epochs, stack, fit)", naive, 0.0),
            Contender("minnorm SourceTransformer pipeline", pipeline(False), 0.0),
            Contender("minnorm SourceTransformer fast=True", pipeline(True), one_tie_per_fold)]


def report(results) -> bool:
    """Print the table; whether every contender's fold scores equal the naive loop's."""
    ref = results[0]
    base = statistics.median(ref.seconds)
    print(f"\n{machine().split('; load')[0]}")
    print("| contender | time (s) | speed-up | peak memory (GiB) | accuracy (5-fold) | "
          "fold scores equal naive |\n|---|---:|---:|---:|---:|---|")
    ok = True
    for c in results:
        same = bool(np.allclose(c.scores, ref.scores, rtol=0, atol=c.tol + 1e-12))
        ok &= same
        med = statistics.median(c.seconds)
        print(f"| {c.name} | {med:.2f} | {base / med:.1f}× | {c.peak / GiB:.2f} | "
              f"{c.scores.mean():.3f} | {'yes' if same else 'NO'} |")
    return ok


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    mne.set_log_level("ERROR")
    spacing, n_epochs = ("ico3", 60) if args.quick else ("ico5", args.epochs)
    print(machine(), flush=True)
    head = load_template(spacing=spacing, progress=False)
    sim, y = simulate_levels(head, n_epochs, seed=0, sfreq=500.0)
    epochs = sim.epochs
    op = minnorm.make_inverse_operator(epochs.info, head.forward, sim.noise_cov, loose=0.2,
                                       depth=0.8)
    window = np.flatnonzero((epochs.times >= WINDOW[0]) & (epochs.times <= WINDOW[1]))
    print(f"{n_epochs} epochs × {len(epochs.ch_names)} channels × {len(epochs.times)} samples; "
          f"{head.n_sources} sources; window {len(window)} samples", flush=True)
    results = contenders(epochs, y, op, window, StratifiedKFold(5, shuffle=True, random_state=0))
    for _ in range(args.repeats):
        for c in results:
            c.scores, t, peak = measure(c.run)
            c.seconds.append(t)
            c.peak = max(c.peak, peak)
            print(f"  {c.name}: {t:.2f} s, peak +{peak / GiB:.2f} GiB, "
                  f"accuracy {c.scores.mean():.3f}", flush=True)
    return 0 if report(results) else 1


if __name__ == "__main__":
    sys.exit(main())
