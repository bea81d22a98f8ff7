"""``minnorm decode-demo``: predicting "subjective experience" from source space.

Simulated single trials on the template head: an early bilateral visual
response (100 ms) that is the same in every trial, and a later right
occipito-temporal source (300 ms) whose strength grows with the reported
level of experience (three levels). A classifier predicts the level at each
time sample, from the sensors and from dSPM source estimates (the exact fast
path, see :mod:`minnorm.decoding`), with chance level and a permutation band;
the classifier's activation pattern (Haufe et al. 2014) is mapped on the
cortex.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import Ridge, RidgeClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from . import viz
from ..decoding import SourceTransformer, decode_over_time, haufe_pattern
from ..inverse.operator import make_inverse_operator
from ..io import AtomicOutputs, check_new_outputs, write_text_output
from .report import figure_block, html_page, table_block
from .simulate import Source, simulate_epochs
from .template import load_template, one_blas_thread

__all__ = ["DecodeResult", "run_decode_demo", "experience_sources", "simulate_levels"]

LEVELS = (0.2, 1.0, 1.8)  # strength of the late source for levels 0, 1, 2
WINDOW = (0.25, 0.35)  # s, where the levels differ


def experience_sources() -> tuple:
    """Early bilateral visual (shared), late right occipito-temporal (graded)."""
    return (
        Source("visual-lh", position=(-12.0, -92.0, 2.0), amplitude=25.0, latency=0.10, width=0.02),
        Source("visual-rh", position=(12.0, -92.0, 2.0), amplitude=25.0, latency=0.10, width=0.02),
        Source("occipitotemporal-rh", position=(44.0, -60.0, -10.0), amplitude=25.0,
               latency=0.30, width=0.04),
    )


@dataclass(frozen=True, eq=False)
class DecodeResult:
    """Accuracy over time in sensor and source space, and the pattern.

    Attributes
    ----------
    times : ndarray of shape (n_times,)
    sensor, source : TimeDecoding
    pattern : ndarray of shape (n_sources,)
        |Haufe pattern| of a ridge read-out of the level from dSPM in the window.
    pattern_peak_mm : float
        Distance from the pattern's peak to the graded source.
    report : Path
    seconds : float
    """

    times: np.ndarray
    sensor: object
    source: object
    pattern: np.ndarray
    pattern_peak_mm: float
    report: Path
    seconds: float


def simulate_levels(head, n_epochs: int, *, seed: int = 0, sfreq: float = 100.0):
    """Single trials with balanced, shuffled levels 0, 1, 2 → (SimulatedEpochs, levels)."""
    rng = np.random.default_rng(seed)
    levels = rng.permutation(np.arange(n_epochs) % len(LEVELS))
    scale = np.ones((n_epochs, 3))
    scale[:, 2] = np.asarray(LEVELS)[levels]
    sim = simulate_epochs(head, n_epochs=n_epochs, sources=experience_sources(),
                          amplitude_scale=scale, amplitude_jitter=0.2, conditions=levels + 1,
                          seed=seed, sfreq=sfreq, snr=8.0)
    return sim, levels


def _accuracy_figure(res):
    fig, ax = plt.subplots(figsize=(8, 4))
    for name, dec, color in (("sensors", res[0], "C0"), ("sources (dSPM)", res[1], "C3")):
        lo, hi = dec.band()
        ax.plot(1e3 * dec.times, dec.scores, color=color, lw=2, label=name)
        ax.fill_between(1e3 * dec.times, lo, hi, color=color, alpha=0.15,
                        label=f"{name}: 95% of shuffled-label scores")
    ax.axhline(res[0].chance, color="k", ls="--", lw=1, label="chance")
    ax.axvspan(1e3 * WINDOW[0], 1e3 * WINDOW[1], color="0.9", zorder=0,
               label="levels differ (late source)")
    ax.axvline(100, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("accuracy (cross-validated)")
    ax.set_title("Decoding the level of experience over time")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def run_decode_demo(*, out="minnorm-decode-demo", n_epochs: int = 180, seed: int = 0,
                    spacing: str = "ico4", n_permutations: int = 10, cv: int = 5,
                    overwrite: bool = False, progress: bool = True, echo=print) -> DecodeResult:
    """Simulate, decode over time in sensor and source space, write decode.html."""
    start = time.perf_counter()
    (report,) = check_new_outputs(out, ["decode.html"], overwrite=overwrite)
    head = load_template(spacing=spacing, progress=progress)
    sim, y = simulate_levels(head, n_epochs, seed=seed)
    epochs, times = sim.epochs, sim.epochs.times
    inv = make_inverse_operator(epochs.info, sim.forward, sim.noise_cov)
    X_sens = epochs.get_data()
    source = SourceTransformer(inv, lambda2=1.0, method="dSPM", pick_ori="normal",
                               ch_names=epochs.ch_names, fast=True).fit(X_sens)
    X_src = source.transform(X_sens)  # same predictions as the 5124 dSPM sources
    kw = dict(times=times, cv=cv, n_permutations=n_permutations, seed=seed)
    # ridge classifiers: fast, and L2-penalised, so the fast source path is exact
    with one_blas_thread():  # many small fits: spinning BLAS threads only get in the way
        sensor = decode_over_time(X_sens, y, make_pipeline(StandardScaler(), RidgeClassifier()),
                                  **kw)
        src = decode_over_time(X_src, y, RidgeClassifier(alpha=10.0), **kw)
    pattern, dist = _pattern(head, sim, inv, epochs, y)
    echo(f"Peak accuracy: sensors {sensor.scores.max():.2f}, sources {src.scores.max():.2f} "
         f"(chance {sensor.chance:.2f}); pattern peak {dist:.0f} mm from the graded source")
    vertices = head.vertices
    truth = np.zeros(head.n_sources)
    truth[sim.truth.indices[2]] = 1.0
    graded = viz.spread(head.source_positions_mm, truth)
    maps = viz.plot_maps({"graded source": graded, "|pattern|": pattern},
                         vertices=vertices, title="Where the level is read out (250–350 ms)")
    rows = [[f"{1e3 * t:.0f}", f"{a:.2f}", f"{b:.2f}"]
            for t, a, b in zip(times[::5], sensor.scores[::5], src.scores[::5])]
    page = html_page("minnorm: predicting subjective experience in source space", [
        ("Accuracy over time", [figure_block(_accuracy_figure((sensor, src)),
                                             "Cross-validated accuracy at each time sample, "
                                             "sensor and source space, with chance and the "
                                             "permutation band.", name="accuracy")]),
        ("Activation pattern on the cortex", [figure_block(maps, "True graded source and the "
                                                           "|Haufe pattern| of a ridge read-out "
                                                           "of the level (dSPM, 250–350 ms).",
                                                           name="pattern")]),
        ("Scores", [table_block(["time (ms)", "sensors", "sources"], rows)]),
    ])
    report.parent.mkdir(parents=True, exist_ok=True)
    with AtomicOutputs([report], overwrite=overwrite) as outputs:
        write_text_output(outputs, report, page)
    seconds = time.perf_counter() - start
    echo(f"Report: {report} ({seconds:.0f} s)")
    return DecodeResult(times, sensor, src, pattern, dist, report, seconds)


def _pattern(head, sim, inv, epochs, y):
    """|Haufe pattern| of a ridge read-out of the level from dSPM sources in the window."""
    window = np.flatnonzero((epochs.times >= WINDOW[0]) & (epochs.times <= WINDOW[1]))
    features = SourceTransformer(inv, lambda2=1.0, method="dSPM", pick_ori="normal",
                                 times=window, average_time=True).fit_transform(epochs)
    w = Ridge(alpha=1.0).fit(features, y.astype(float)).coef_
    pattern = np.abs(haufe_pattern(features, w))
    peak = head.source_positions_mm[np.argmax(pattern)]
    dist = float(np.linalg.norm(peak - sim.truth.positions_mm[2]))
    return pattern, dist
