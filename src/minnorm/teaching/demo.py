"""``minnorm demo``: the minimum-norm story on the template head, with pictures.

1. the forward model, told with its own numbers;
2. MNE, dSPM, sLORETA and eLORETA against the known truth: peak localisation
   error, spatial dispersion, depth of the peaks (surface bias), explained variance;
3. the L-curve: both terms of the cost over λ², the default and the λ² each rule
   (GCV, L-curve corner, discrepancy, evidence, cross-validation) chooses marked;
4. why dSPM? the point-spread function of every source for every method: peak
   localisation error and spatial deviation over the whole cortex and against
   depth (:mod:`minnorm.teaching.why_dspm`);
5. an equivalent current dipole at 100 ms and 300 ms beside the maps;
6. the LCMV beamformer beside dSPM on simulated trials, and its failure on
   correlated sources (:mod:`minnorm.teaching.beamformer_page`);
7. a self-contained HTML report, and the source estimates and resolution maps
   in MNE's formats.
"""

from __future__ import annotations

import logging
import time
import webbrowser
from dataclasses import dataclass, field
from pathlib import Path

import mne
import numpy as np

from . import viz
from ..inverse.apply import apply_inverse
from ..inverse.lambda2 import choose_all, rules_paragraph
from .dipole import fit_dipoles
from ..engine.kernel import METHODS, prepare_kernel
from .metrics import explained_variance, lcurve, localisation
from ..inverse.operator import make_inverse_operator
from ..io import AtomicOutputs, check_new_outputs, write_source_estimate, write_text_output
from .report import figure_block, html_page, paragraph_block, table_block, text_block
from .simulate import simulate_evoked
from .story import forward_story
from .template import load_template, source_depth
from .beamformer_page import BeamformerComparison, beamformer_blocks, compare_beamformer
from .why_dspm import METRICS, CortexResolution, cortex_resolution, output_stem, why_dspm_blocks

__all__ = ["DemoResult", "run_demo"]

logger = logging.getLogger("minnorm")
LAMBDA2 = 1.0 / 9.0
LOOSE, DEPTH = 0.2, 0.8  # the operator: make_inverse_operator's defaults on a surface
DIPOLE_TIMES = (0.100, 0.300)


@dataclass(frozen=True, eq=False)
class DemoResult:
    """What the demo computed and wrote.

    Attributes
    ----------
    out_dir : Path
    report : Path
        The HTML report.
    stc_files : list of Path
        Source estimates written (MNE's .stc format, one pair per method + truth).
    table : list of dict
        One row per (method, true source): ple_mm, sd_mm, peak_depth_mm,
        true_depth_mm, explained_variance.
    dipoles : list of MultiDipoleFit
        One dipole per hemisphere at 100 ms and 300 ms (positions in MRI mm).
    figures : list of str
        Names of the figures in the report.
    story : str
    seconds : float
    resolution : CortexResolution or None
        "Why dSPM?": PSF peak error and spatial deviation of every source for
        each method (cm), the sources' depths; ``resolution.summary()`` gives
        the table's numbers.
    inverse : InverseOperator or None
        The operator the demo made (loose 0.2, depth 0.8), its kernels cached.
    lambda2_choices : dict
        Rule name → the λ² it chose from the evoked's 0–400 ms window (the
        L-curve's data), :func:`minnorm.choose_lambda2` with that window.
    beamformer : BeamformerComparison or None
        "Beamformer versus minimum norm": LCMV and dSPM on simulated trials with
        the N100m pair correlated and independent, their localisation and power.
    """

    out_dir: Path
    report: Path
    stc_files: list
    table: list
    dipoles: list
    figures: list = field(default_factory=list)
    story: str = ""
    seconds: float = 0.0
    resolution: CortexResolution | None = None
    inverse: object = None
    lambda2_choices: dict = field(default_factory=dict)
    beamformer: BeamformerComparison | None = None


def _reconstruct(sim, inv):
    """Every method's estimate and its measures against the truth."""
    stcs, kernels = {}, {}
    for method in METHODS:
        stcs[method] = apply_inverse(sim.evoked, inv, LAMBDA2, method)
        kernels[method] = prepare_kernel(inv, lambda2=LAMBDA2, method=method, nave=sim.evoked.nave)
    return stcs, kernels


def _measures(head, sim, inv, stcs, kernels, depth):
    truth = sim.truth
    positions = head.source_positions_mm
    rows = [sim.evoked.ch_names.index(c) for c in inv.ch_names]
    data = sim.evoked.data[rows]
    locs, table = {}, []
    t_idx = [int(np.argmin(np.abs(sim.evoked.times - lat))) for lat in truth.latencies]
    for method, stc in stcs.items():
        amps = np.stack([stc.data[:, t] for t in t_idx])
        locs[method] = loc = localisation(amps, positions=positions, true_index=truth.indices,
                                          depth=depth)
        ev = explained_variance(kernels[method], data)
        for i, name in enumerate(truth.names):
            table.append(dict(method=method, source=name, ple_mm=loc.ple[i], sd_mm=loc.sd[i],
                              peak_depth_mm=loc.peak_depth[i], true_depth_mm=loc.true_depth[i],
                              explained_variance=ev))
    return locs, table


def _dipoles(head, sim, inv, kernel):
    fwd = mne.convert_forward_solution(sim.forward, surf_ori=False, force_fixed=False,
                                       verbose=False)
    rows = [fwd["sol"]["row_names"].index(c) for c in inv.ch_names]
    gain = np.asarray(fwd["sol"]["data"][rows], float)
    data_rows = [sim.evoked.ch_names.index(c) for c in inv.ch_names]
    whitener = kernel.whitener.matrix @ kernel.whitener.proj
    n_lh = head.hemi_sizes[0]
    hemis = [np.arange(n_lh), np.arange(n_lh, head.n_sources)]  # one dipole per hemisphere
    fits = []
    for t in DIPOLE_TIMES:
        k = int(np.argmin(np.abs(sim.evoked.times - t)))
        fits.append(fit_dipoles(gain, sim.evoked.data[data_rows, k], whitener=whitener,
                                positions=head.source_positions_mm, groups=hemis, time=t))
    return fits


def _lcurve(sim, inv):
    """The L-curve of the 0–400 ms window, and rule → λ² chosen from the same window."""
    rows = [sim.evoked.ch_names.index(c) for c in inv.ch_names]
    window = (sim.evoked.times >= 0) & (sim.evoked.times <= 0.4)
    data, nave = sim.evoked.data[rows][:, window], sim.evoked.nave
    curve = lcurve(inv, data, lambda2=np.logspace(-5, 3, 49), nave=nave)
    return curve, {rule: c.lambda2 for rule, c in choose_all(inv, data, nave).items()}


def _rules_blocks(choices):
    """The rules' choices next to the default: a table and what each rule optimises."""
    rows = [["default", f"{LAMBDA2:.3g}", f"{1 / np.sqrt(LAMBDA2):.3g}", "1"]]
    rows += [[rule, f"{lam:.3g}", f"{1 / np.sqrt(lam):.3g}", f"{lam / LAMBDA2:.3g}"]
             for rule, lam in choices.items()]
    return [table_block(["rule", "λ²", "SNR = 1/√λ²", "λ² / default"], rows,
                        caption="λ² chosen from the simulated evoked (0–400 ms)"),
            paragraph_block(rules_paragraph(LAMBDA2))]


def _figures(head, sim, stcs, locs, fits, curve, choices, n_channels):
    truth, blocks = sim.truth, []
    for t in sorted(set(np.round(truth.latencies, 3))):
        k = int(np.argmin(np.abs(sim.evoked.times - t)))
        rows = {"truth": _visible_truth(head, sim, k)}
        rows.update({m: np.abs(stc.data[:, k]) for m, stc in stcs.items()})
        fig = viz.plot_maps(rows, vertices=head.vertices,
                            title=f"t = {1e3 * t:.0f} ms — each row scaled to its own maximum")
        blocks.append(figure_block(fig, f"Cortical maps at {1e3 * t:.0f} ms: truth and the four "
                                   "methods (inflated fsaverage, lateral and medial views).",
                                   name=f"maps-{1e3 * t:.0f}ms"))
    courses = {"truth": truth.waveforms}
    courses.update({m: stc.data[truth.indices] for m, stc in stcs.items()})
    blocks.append(figure_block(viz.plot_time_courses(sim.evoked.times, courses, names=truth.names,
                                                     title="Time courses at the true sources"),
                               "Estimated time courses at each true source, each scaled to its "
                               "peak, against the true waveform (dashed). At a given source MNE, "
                               "dSPM and sLORETA differ only by a constant factor, so their "
                               "scaled curves coincide (sLORETA drawn on top); eLORETA's weights "
                               "change the shape.", name="time-courses"))
    blocks.append(figure_block(viz.plot_lcurve(curve, default_lambda2=LAMBDA2,
                                               n_channels=n_channels, choices=choices),
                               "The trade-off the cost function balances: misfit against source "
                               "norm over λ² (red: the default 1/9; the other markers and the "
                               "dashed lines: the λ² each rule chooses from these data).",
                               name="l-curve"))
    blocks.append(figure_block(viz.plot_surface_bias(locs, names=truth.names),
                               "Depth of each method's peak against the true depth: plain MNE "
                               "pulls deep sources towards the surface.", name="surface-bias"))
    peaks = [head.source_positions_mm[locs["dSPM"].peak_index[
        np.abs(truth.latencies - f.time) < 0.05]] for f in fits]
    blocks.append(figure_block(viz.plot_dipoles(head.source_positions_mm, fits,
                                                truth.positions_mm, peaks=peaks),
                               "One equivalent current dipole per hemisphere at 100 ms and 300 ms "
                               "against the true sources and the dSPM peaks (glass brain, MRI "
                               "mm). The bilateral N100m is dipolar; the late field, made by two "
                               "distant sources in one hemisphere, is not.", name="dipoles"))
    return blocks


def _visible_truth(head, sim, k):
    """|true moment| at time index k, spread to the nearby sources so it shows on a map."""
    values = np.zeros(head.n_sources)
    values[sim.truth.indices] = np.abs(sim.stc_true.data[sim.truth.indices, k])
    return viz.spread(head.source_positions_mm, values)


def _table_block(table):
    header = ["method", "true source", "peak error (mm)", "dispersion (mm)",
              "peak depth (mm)", "true depth (mm)", "explained variance"]
    rows = [[r["method"], r["source"], f"{r['ple_mm']:.1f}", f"{r['sd_mm']:.1f}",
             f"{r['peak_depth_mm']:.1f}", f"{r['true_depth_mm']:.1f}",
             f"{100 * r['explained_variance']:.1f}%"] for r in table]
    return table_block(header, rows)


def _write(paths, overwrite: bool, sim, stcs, resolution, page: str) -> list:
    """The estimates (truth first), the resolution maps and the report, all written or none."""
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    estimates = [(f"demo-{name}", stc) for name, stc in [("truth", sim.stc_true), *stcs.items()]]
    estimates += [(output_stem(*key), stc) for key, stc in resolution.stcs.items()]
    with AtomicOutputs(paths, overwrite=overwrite) as outputs:
        for stem, stc in estimates:
            write_source_estimate(paths[0].parent / stem, stc, ftype="stc", outputs=outputs)
        write_text_output(outputs, paths[-1], page)
    return paths


def _output_names() -> list[str]:
    """demo-NAME-lh.stc / -rh.stc for the truth and each method, the resolution maps
    (see :func:`output_stem`), then report.html."""
    stems = [f"demo-{name}" for name in ("truth", *METHODS)]
    stems += [output_stem(method, metric) for method in METHODS for metric in METRICS]
    return [f"{stem}-{hemi}.stc" for stem in stems for hemi in ("lh", "rh")] + ["report.html"]


def run_demo(*, out="minnorm-demo", snr: float = 3.0, seed: int = 0, spacing: str = "ico4",
             open_browser: bool = False, overwrite: bool = False, progress: bool = True,
             echo=print) -> DemoResult:
    """Run the whole story and write the report; see the module docstring.

    Parameters
    ----------
    out : path-like
        Output directory (created); its report.html is not replaced unless ``overwrite``.
    snr : float
        Whitened SNR of the simulated evoked response at its peak.
    seed : int
        Random seed of the simulation.
    spacing : "ico3" | "ico4" | "ico5"
        Source spacing of the template cortex.
    open_browser : bool
        Open the report in the web browser.
    overwrite : bool
        Replace an existing report and source-estimate files.
    progress : bool
        Progress bar while the template head is built.
    echo : callable
        Where the story is printed.
    """
    if not snr > 0:
        raise ValueError(f"snr must be > 0, got {snr}")
    start = time.perf_counter()
    paths = check_new_outputs(out, _output_names(), overwrite=overwrite)
    out = paths[0].parent
    head = load_template(spacing=spacing, progress=progress)
    sim = simulate_evoked(head, snr=snr, seed=seed)
    inv = make_inverse_operator(sim.evoked.info, sim.forward, sim.noise_cov, loose=LOOSE,
                                depth=DEPTH)
    story = forward_story(sim.forward, info=sim.evoked.info, noise_cov=sim.noise_cov,
                          inverse=inv, snr=3.0)
    echo(story)
    stcs, kernels = _reconstruct(sim, inv)
    depth = source_depth(head, head.source_positions_mm)
    locs, table = _measures(head, sim, inv, stcs, kernels, depth)
    echo(_summary_text(table))
    fits = _dipoles(head, sim, inv, kernels["MNE"])
    for multi in fits:
        where = "; ".join(f"{1e9 * f.amplitude:.0f} nA·m at {np.round(f.position).astype(int)} mm"
                          for f in multi.fits)
        echo(f"Dipoles at {1e3 * multi.time:.0f} ms (one per hemisphere): GOF "
             f"{100 * multi.gof:.1f}% — {where}")
    curve, choices = _lcurve(sim, inv)
    echo("λ² chosen from the data (0–400 ms): " + ", ".join(
        f"{rule} {lam:.3g}" for rule, lam in choices.items()) + f"; default {LAMBDA2:.3g}")
    blocks = _figures(head, sim, stcs, locs, fits, curve, choices, len(inv.ch_names))
    resolution, why = _why_dspm(head, inv, depth, echo)
    beamformer, lcmv = _beamformer(head, inv, depth, sim, echo)
    sections = [
        ("1. The forward model", [text_block(story)]),
        ("2. Four methods against the truth", [_table_block(table)] + blocks[:-3]),
        ("3. Regularisation: the L-curve, and λ² chosen from the data",
         [blocks[-3], *_rules_blocks(choices)]),
        ("4. The surface bias", [blocks[-2]]),
        ("5. Why dSPM? Every source's point-spread function", why),
        ("6. Dipole fit versus distributed estimate", [blocks[-1], text_block(
            "\n".join(f"{1e3 * f.time:.0f} ms: goodness of fit of one dipole per hemisphere "
                      f"{100 * f.gof:.1f}%" for f in fits))]),
        ("7. Beamformer versus minimum norm", lcmv),
    ]
    names = [b.split('id="', 1)[1].split('"', 1)[0] for _, part in sections for b in part
             if b.startswith("<figure")]
    page = html_page("minnorm demo: the minimum-norm estimate on a template head", sections)
    *stc_files, report = _write(paths, overwrite, sim, stcs, resolution, page)
    seconds = time.perf_counter() - start
    echo(f"Report: {report} ({seconds:.0f} s). Source estimates: {out}/demo-*-lh.stc/-rh.stc")
    if open_browser:
        webbrowser.open(report.resolve().as_uri())
    return DemoResult(out, report, stc_files, table, fits, names, story, seconds, resolution,
                      inv, choices, beamformer)


def _why_dspm(head, inv, depth, echo):
    """The resolution maps of the four methods and the report's section, timed."""
    resolution = cortex_resolution(head, inv, depth_mm=depth, lambda2=LAMBDA2)
    start = time.perf_counter()
    blocks = why_dspm_blocks(resolution, vertices=head.vertices,
                             operator=f"loose {LOOSE:g}, depth {DEPTH:g}")
    echo(f"Why dSPM? PSF peak error and spatial deviation of {head.n_sources} sources, "
         f"{len(resolution.methods)} methods: maps {resolution.seconds:.1f} s, figures "
         f"{time.perf_counter() - start:.1f} s")
    for r in resolution.summary():
        echo(f"{r['method']:8s} peak error median {r['peak_err_median']:.2f} cm (90th pct "
             f"{r['peak_err_p90']:.2f}), spatial deviation median {r['sd_ext_median']:.2f} cm")
    return resolution, blocks


def _beamformer(head, inv, depth, sim, echo):
    """LCMV beside dSPM, the N100m pair correlated and independent; the section, timed."""
    comp = compare_beamformer(head, inv, snr=sim.snr, seed=sim.seed, nave=sim.nave,
                              lambda2=LAMBDA2, depth_mm=depth)
    start = time.perf_counter()
    blocks = beamformer_blocks(comp, head=head, lambda2_text=f"1/{1 / LAMBDA2:.0f}")
    echo(f"Beamformer versus minimum norm: {comp.seconds:.1f} s, figures "
         f"{time.perf_counter() - start:.1f} s")
    for r in comp.pair:
        echo(f"{r['source']:12s} peak power correlated ÷ independent: LCMV "
             f"{r['LCMV_power_ratio']:.3g}, dSPM {r['dSPM_power_ratio']:.3g}")
    return comp, blocks


def _summary_text(table) -> str:
    lines = [f"{'method':8s} {'source':24s} {'error':>7s} {'spread':>7s} {'depth':>7s} {'true':>6s}"]
    for r in table:
        lines.append(f"{r['method']:8s} {r['source']:24s} {r['ple_mm']:6.1f}  {r['sd_mm']:6.1f}  "
                     f"{r['peak_depth_mm']:6.1f}  {r['true_depth_mm']:5.1f}  (mm)")
    return "\n".join(lines)
