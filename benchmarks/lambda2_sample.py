"""The λ² each rule chooses on MNE's real sample evoked responses, and how it moves with nave.

Inputs: ``sample_audvis_test-ave.fif.gz`` (4 conditions, nave 3, 6, 6, 6; baseline −200…0 ms
applied), its noise covariance, and the operator minnorm makes from them with the sample
forward model (the template cortex placed in the sample head, ico3, three-layer BEM, MEG +
EEG, loose 0.2, depth 0.8: built as tests/conftest.py builds it, cached by pytest). Each
rule chooses one λ² from the 0–300 ms window.

1. Per condition, the real evoked response as it is.
2. How the choice moves with nave, for two conditions. The shared data hold no single
   trials (the full ``sample_audvis_raw.fif`` is not among them, and the 1 s of raw data
   they have holds no stimulus), so the trials are made: the condition's response without
   its noise (its whitened data cut to the components that stand out of the noise: those
   whose singular value exceeds the largest one of pure noise of the same length and nave,
   simulated) plus independent noise drawn from the real noise covariance, one draw per
   trial (low-passed as the data). The evoked of nave trials is that response plus the mean
   of nave noise draws: its noise is C / nave exactly. Medians over ``--repeats`` draws.

    python benchmarks/lambda2_sample.py          # ~1 min; --cache DIR: pytest's forward cache
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import mne
import numpy as np
from threadpoolctl import threadpool_limits

import minnorm
from minnorm.inverse.lambda2 import RULES, choose_all
from minnorm.teaching.noise import draw_noise

ROOT = Path(__file__).resolve().parent.parent
WINDOW = (0.0, 0.3)
NAVES = (5, 10, 20, 40, 60)


def sample_operator(cache: Path, spacing: str):
    """(evokeds with baseline, operator) on the sample forward model (tests' cached one)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import _forwards as fw

    files = fw.SampleFiles(Path(os.environ.get("MINNORM_SAMPLE_DATA",
                                               ROOT.parent / "shared" / "data" / "sample")))
    evokeds = mne.read_evokeds(files.evoked, baseline=(None, 0), verbose="error")
    cov = mne.read_cov(files.cov, verbose="error")
    fwd = fw.template_forward(files, evokeds[0].info, spacing, cache)
    inv = minnorm.make_inverse_operator(evokeds[0].info, fwd, cov, loose=0.2, depth=0.8)
    return evokeds, inv


def window_of(evoked):
    return (evoked.times >= WINDOW[0] - 1e-9) & (evoked.times <= WINDOW[1] + 1e-9)


def choices(inv, data, nave):
    """rule → (λ², inside the grid) on ``data`` (the operator's channels × the window)."""
    return {rule: (c.lambda2, c.inside) for rule, c in choose_all(inv, data, nave).items()}


def white_noise(rng, n, n_series, n_times, evoked):
    """Unit-variance whitened noise (n_series, n, n_times), low-passed as the data."""
    return draw_noise(rng, np.eye(n), n_series, n_times, sfreq=evoked.info["sfreq"],
                      lowpass=evoked.info["lowpass"])


def clean_response(inv, evoked, rng, max_components=None):
    """The response without its noise (sensor space) and the number of components kept."""
    data = evoked.data[minnorm._mne.pick_rows(evoked.ch_names, inv)]
    w = inv.whitener.scaled(evoked.nave)
    z = w.matrix @ (w.proj @ data)  # zero rows outside the whitened space
    U, sv, Vt = np.linalg.svd(z, full_matrices=False)
    noise = white_noise(rng, w.n_nonzero, 5, z.shape[1], evoked)
    edge = max(np.linalg.svd(x, compute_uv=False)[0] for x in noise)
    k = int(np.sum(sv > edge))
    k = k if max_components is None else min(k, max_components)
    return w.colorer @ (U[:, :k] * sv[:k]) @ Vt[:k], k


def nave_table(inv, evoked, naves, repeats, rng, max_components=None):
    """nave → (rule → λ², peak SNR), medians over repeats of response + mean of nave draws."""
    clean, k = clean_response(inv, evoked, rng, max_components)
    colour = inv.whitener.colorer  # C½: whitened → sensors, one trial's noise
    n, keep = inv.whitener.n_nonzero, window_of(evoked)
    rows = {}
    for nave in naves:
        values, snrs = {rule: [] for rule in RULES}, []
        for _ in range(repeats):
            mean = white_noise(rng, n, nave, len(evoked.times), evoked).mean(axis=0)
            full = np.zeros((len(colour), mean.shape[1]))
            full[inv.whitener.eig > 0] = mean
            data = (clean + colour @ full)[:, keep]
            snrs.append(peak_snr(inv, data, nave))
            for rule, (lam, _) in choices(inv, data, nave).items():
                values[rule].append(lam)
        rows[nave] = ({rule: float(np.median(v)) for rule, v in values.items()},
                      float(np.median(snrs)))
    return rows, k


def peak_snr(inv, data, nave):
    """max over t of √(‖z(t)‖²/n − 1): the whitened data's amplitude SNR at its peak."""
    w = inv.whitener.scaled(nave)
    power = np.sum((w.matrix @ (w.proj @ data)) ** 2, axis=0) / w.n_nonzero
    return float(np.sqrt(max(power.max() - 1.0, 0.0)))


def fmt(lam, inside=True):
    return f"{lam:.3g}" + ("" if inside else " (edge)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", type=Path, default=ROOT / ".pytest_cache" / "d" / "minnorm-forwards")
    p.add_argument("--spacing", default="ico3")
    p.add_argument("--conditions", nargs="+", default=["Left Auditory", "Left visual"])
    p.add_argument("--naves", type=int, nargs="+", default=list(NAVES))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--max-components", type=int,
                   help="keep at most this many components of the response (fewer: less of "
                        "the evoked's own noise left in it)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    evokeds, inv = sample_operator(args.cache, args.spacing)
    print(f"λ² chosen from {WINDOW[0]:g}–{WINDOW[1]:g} s (default 1/9 = 0.111); '(edge)': the "
          "rule's optimum is the end of its λ² grid, the data do not determine it\n")
    print("| data | nave | peak SNR | " + " | ".join(RULES) + " |")
    print("|---|---|---|" + "---|" * len(RULES))
    with threadpool_limits(1):  # small matrices: one BLAS thread is faster
        for ev in evokeds:
            rows = minnorm._mne.pick_rows(ev.ch_names, inv)
            data = ev.data[rows][:, window_of(ev)]
            got = choices(inv, data, ev.nave)
            print(f"| {ev.comment} (real) | {ev.nave} | {peak_snr(inv, data, ev.nave):.1f} | "
                  + " | ".join(fmt(*got[r]) for r in RULES) + " |")
        rng = np.random.default_rng(0)
        for name in args.conditions:
            ev = next(e for e in evokeds if e.comment == name)
            table, k = nave_table(inv, ev, args.naves, args.repeats, rng, args.max_components)
            for nave, (got, snr) in table.items():
                print(f"| {name}: {k} comp. + noise | {nave} | {snr:.1f} | "
                      + " | ".join(fmt(got[r]) for r in RULES) + " |")
    print(f"\n{time.perf_counter() - t0:.0f} s; {args.repeats} noise draws per nave (medians)")


if __name__ == "__main__":
    main()
