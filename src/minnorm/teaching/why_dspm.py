"""The demo's "Why dSPM?": the point-spread function of every source, for every method.

Column j of the resolution matrix R = K L (inverse kernel × leadfield) is the
point-spread function (PSF) of source j: the estimate that a unit dipole there,
normal to the cortex, gives without noise (Hauk, Stenroos & Treder 2022). Two
of its measures, for every source of the template cortex::

    peak_err  ‖loc[argmax |PSF|] − loc_j‖            localisation (cm)
    sd_ext    √(Σ PSF² ‖loc − loc_j‖² / Σ PSF²)       blurring (cm; Molins et al. 2008)

for MNE, dSPM, sLORETA and eLORETA with the demo's own operator and λ², from
:func:`minnorm.resolution_maps` (tile by tile, no n × n matrix, one pass per
method). They are mapped on the cortex with one colour scale per metric,
binned by depth below the inner skull, summarised in a table and read in a
paragraph whose comparisons are computed from the numbers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from . import viz
from .. import _mne
from ..engine.kernel import METHODS
from ..resolution import resolution_maps
from .report import figure_block, paragraph_block, table_block
from .resolution_page import METRIC_TEXT

__all__ = ["METRICS", "CortexResolution", "cortex_resolution", "output_stem", "why_dspm_blocks"]

METRICS = ("peak_err", "sd_ext")
NAMES = {metric: METRIC_TEXT[metric][0] for metric in METRICS}
LABELS = {metric: f"PSF {name} (cm)" for metric, name in NAMES.items()}
FIFTH = 0.2  # the table's shallowest and deepest fifth of the sources
N_BINS = 10  # equal-count depth bins in the figure


@dataclass(frozen=True, eq=False)
class CortexResolution:
    """PSF metrics of every source for each method, and the sources' depths.

    Attributes
    ----------
    stcs : dict (method, metric) → mne.SourceEstimate
        One time point, distances in cm (as :func:`minnorm.resolution_maps`).
    depth_mm : ndarray of shape (n_sources,)
        Depth of each source below the inner skull (mm).
    lambda2 : float
    seconds : float
        Time the maps took.
    """

    stcs: dict
    depth_mm: np.ndarray
    lambda2: float
    seconds: float = 0.0

    @property
    def methods(self) -> tuple:
        return tuple(dict.fromkeys(method for method, _ in self.stcs))

    def values(self, method: str, metric: str) -> np.ndarray:
        """The metric of every source's PSF (cm), ndarray of shape (n_sources,)."""
        return self.stcs[method, metric].data[:, 0]

    def summary(self) -> list[dict]:
        """One row per method, in cm: ``{metric}_median``, ``{metric}_p90``, and the
        median over the shallowest and the deepest fifth of the sources,
        ``{metric}_shallow`` and ``{metric}_deep``; ``at_source``: the fraction
        of sources whose PSF peaks at the source itself (peak error 0)."""
        shallow = self.depth_mm <= np.quantile(self.depth_mm, FIFTH)
        deep = self.depth_mm >= np.quantile(self.depth_mm, 1 - FIFTH)
        rows = []
        for method in self.methods:
            row = dict(method=method)
            for metric in METRICS:
                v = self.values(method, metric)
                row.update({f"{metric}_median": float(np.median(v)),
                            f"{metric}_p90": float(np.percentile(v, 90)),
                            f"{metric}_shallow": float(np.median(v[shallow])),
                            f"{metric}_deep": float(np.median(v[deep]))})
            row["at_source"] = float(np.mean(self.values(method, "peak_err") == 0))
            rows.append(row)
        return rows

    def by_depth(self, n_bins: int = N_BINS) -> tuple[np.ndarray, dict]:
        """Equal-count depth bins: the median depth of each (mm), ndarray of shape
        (n_bins,), and dict (method, metric) → quartiles per bin, shape (3, n_bins)."""
        bins = np.array_split(np.argsort(self.depth_mm, kind="stable"), n_bins)
        depth = np.array([np.median(self.depth_mm[b]) for b in bins])
        quartiles = {key: np.array([np.percentile(stc.data[b, 0], (25, 50, 75)) for b in bins]).T
                     for key, stc in self.stcs.items()}
        return depth, quartiles


def cortex_resolution(head, inverse_operator, /, *, depth_mm: np.ndarray, lambda2: float,
                      methods=METHODS) -> CortexResolution:
    """PSF peak error and spatial deviation of every source, for each method.

    Parameters
    ----------
    head : TemplateHead
        Its free-orientation forward is taken to fixed orientation, normal to
        the cortex (a copy): one PSF per source.
    inverse_operator : InverseOperator
        The operator whose resolution is measured (the demo's).
    depth_mm : ndarray of shape (n_sources,)
        :func:`minnorm.teaching.template.source_depth` of the sources.
    lambda2 : float
    methods : sequence of "MNE", "dSPM", "sLORETA", "eLORETA"
    """
    start = time.perf_counter()
    fwd = _mne.fixed_orientation_forward(head.forward)
    stcs = {}
    for method in methods:
        maps = resolution_maps(fwd, inverse_operator, method=method, lambda2=lambda2,
                               functions=("psf",), metrics=METRICS)
        stcs.update({(method, metric): maps["psf", metric] for metric in METRICS})
    return CortexResolution(stcs, np.asarray(depth_mm, float), float(lambda2),
                            time.perf_counter() - start)


def output_stem(method: str, metric: str) -> str:
    """File stem of a map in the demo's folder: demo-psf_METRIC-METHOD (-lh.stc, -rh.stc)."""
    return f"demo-psf_{metric}-{method}"


def why_dspm_blocks(res: CortexResolution, /, *, vertices, operator: str) -> list[str]:
    """The section: what is measured, the table, the maps, errors against depth, the reading.

    ``operator`` describes the operator's settings in words (e.g. "loose 0.2, depth 0.8").
    """
    rows = res.summary()
    n = len(res.depth_mm)
    blocks = [paragraph_block(
        "What would each method show for one dipole, anywhere on the cortex, without noise? "
        "That picture is the source's point-spread function (PSF), a column of the resolution "
        f"matrix R = K L; here for all {n} sources of the template (dipoles normal to the "
        f"cortex; the demo's operator: {operator}, λ² = {_lambda2(res.lambda2)}), computed "
        "tile by "
        "tile without forming R. Peak localisation error: the distance from the source to "
        "the PSF's maximum. Spatial deviation: the PSF's root-mean-square distance from the "
        "source, weighted by its square (Molins et al. 2008): how far the picture is blurred."),
        _table(rows)]
    for metric, name in (("peak_err", "psf-peak-error"), ("sd_ext", "psf-spatial-deviation")):
        blocks.append(_map_block(res, metric, name=name, vertices=vertices))
    depth, quartiles = res.by_depth()
    fig = viz.plot_by_depth(depth, quartiles, labels=LABELS,
                            title="PSF errors against source depth (equal-count bins)")
    blocks.append(figure_block(fig, f"Median (line) and interquartile range (band) of each "
                               f"method's PSF measures in {N_BINS} depth bins of "
                               f"{n // N_BINS} sources each.", name="psf-by-depth"))
    blocks.append(paragraph_block(_reading({r["method"]: r for r in rows}, res)))
    return blocks


def _lambda2(value: float) -> str:
    """1/9 rather than 0.111 when λ² is 1/SNR² for a whole SNR²."""
    inverse = 1.0 / value
    return f"1/{round(inverse)}" if abs(inverse - round(inverse)) < 1e-9 else f"{value:.3g}"


def _scale(res: CortexResolution, metric: str) -> tuple[float, float]:
    """One colour scale for all methods: 5th–95th percentiles, rounded out to 0.5 cm
    (from 0 for the peak error, whose 0 means the PSF peaks at the source)."""
    values = np.concatenate([res.values(m, metric) for m in res.methods])
    low, high = np.percentile(values, (5, 95))
    vmin = 0.0 if metric == "peak_err" else np.floor(2 * low) / 2
    return float(vmin), float(max(np.ceil(2 * high) / 2, vmin + 0.5))


def _map_block(res: CortexResolution, metric: str, *, name: str, vertices) -> str:
    vmin, vmax = _scale(res, metric)
    rows = {m: res.values(m, metric) for m in res.methods}
    fig = viz.plot_maps(rows, vertices=vertices, vmax=vmax, threshold=vmin / vmax, unit="cm",
                        title=f"{LABELS[metric]}: every source's PSF, one scale for all methods")
    grey = ("0: the PSF peaks at the source itself" if vmin == 0
            else f"{vmin:g} cm or less")
    return figure_block(fig, f"{LABELS[metric]} of each source, on the inflated cortex "
                        f"(lateral and medial views); one colour scale, {vmin:g}–{vmax:g} cm "
                        f"(larger values in its top colour), for all four methods; grey: "
                        f"{grey}.", name=name)


def _table(rows) -> str:
    header = ["PSF measure (cm)", "method", "median", "90th percentile",
              "median, shallowest 20 %", "median, deepest 20 %"]
    body = [[NAMES[metric] if i == 0 else "", r["method"]]
            + [f"{r[f'{metric}_{k}']:.2f}" for k in ("median", "p90", "shallow", "deep")]
            for metric in METRICS for i, r in enumerate(rows)]
    return table_block(header, body, caption="Over all sources, and over the fifth of the "
                       "sources nearest to (shallowest) and farthest from (deepest) the inner "
                       "skull.")


def _than(a: float, b: float) -> str:
    return "below" if a < b else "above" if a > b else "equal to"


def _reading(r: dict, res: CortexResolution) -> str:
    """The paragraph that reads the pictures: every comparison computed from the numbers."""
    _, quartiles = res.by_depth()
    deepest = {m: quartiles[m, "peak_err"][1, -1] for m in ("MNE", "dSPM")}
    return " ".join([_read_mne(r["MNE"]), _read_dspm(r["dSPM"], r["MNE"], deepest),
                     _read_standardised(r, res), _read_spread(r)])


def _read_mne(mne_: dict) -> str:
    text = (f"Plain MNE, even with the operator's depth weighting, puts the PSF's peak a median "
            f"{mne_['peak_err_shallow']:.1f} cm from the source for the shallowest fifth of the "
            f"sources and {mne_['peak_err_deep']:.1f} cm for the deepest fifth")
    if mne_["peak_err_deep"] > mne_["peak_err_shallow"]:
        return text + (": the deeper the source, the further its peak from it — what section "
                       "4 showed for four sources as peaks shallower than the truth, here for "
                       "every source (these maps measure the distance, not its direction).")
    return text + "."


def _read_dspm(dspm: dict, mne_: dict, deepest: dict) -> str:
    deep, shallow = dspm["peak_err_deep"], dspm["peak_err_shallow"]
    text = (f"dSPM divides each source by its noise sensitivity, largest near the sensors: its "
            f"median error is {deep:.1f} cm for the deepest fifth "
            f"({_than(deep, mne_['peak_err_deep'])} MNE's) and {shallow:.1f} cm for the "
            f"shallowest ({_than(shallow, mne_['peak_err_shallow'])} MNE's)")
    if deep < mne_["peak_err_deep"] and shallow > mne_["peak_err_shallow"]:
        text += (", so it reverses the trend with depth rather than removing the error: over "
                 "the whole cortex")
    else:
        text += "; over the whole cortex"
    return text + (f" its median is {dspm['peak_err_median']:.2f} cm, MNE's "
                   f"{mne_['peak_err_median']:.2f} cm, and in the deepest tenth of the sources "
                   f"dSPM's is {deepest['dSPM']:.1f} cm, MNE's {deepest['MNE']:.1f} cm. What it "
                   "adds is units: its values are the estimate divided by its noise, a "
                   "statistic comparable across sources.")


def _read_standardised(r: dict, res: CortexResolution) -> str:
    std = [m for m in ("sLORETA", "eLORETA") if m in r]
    if not std:
        return ""
    better = all(r[m]["peak_err_median"] <= r["dSPM"]["peak_err_median"]
                 and r[m]["peak_err_p90"] <= r["dSPM"]["peak_err_p90"] for m in std)
    return (" and ".join(f"{m}'s" for m in std) + " standardisation puts the peak on the "
            "source itself for " + " and ".join(f"{100 * r[m]['at_source']:.0f} %" for m in std)
            + " of the sources (largest errors " + " and ".join(
                f"{res.values(m, 'peak_err').max():.1f} cm" for m in std)
            + "): the error is zero for every source with fixed orientations, and this "
            "operator's are loose."
            + (" On peak placement alone they do better than dSPM here." if better else ""))


def _read_spread(r: dict) -> str:
    sd = [row["sd_ext_median"] for row in r.values()]
    wider = [m for m, row in r.items() if row["sd_ext_deep"] > row["sd_ext_shallow"]]
    return (f"None of them narrows the picture: the median spatial deviation is "
            f"{min(sd):.1f}–{max(sd):.1f} cm for all {len(r)} methods"
            + (", larger for deep than for shallow sources in "
               + ("every one" if len(wider) == len(r) else f"{len(wider)} of them")
               if wider else "")
            + " — a normalisation rescales each source's value, which can move the peak but "
            "not undo the blur of a few hundred sensors. And every number here belongs to this "
            "operator, its orientation constraint, depth weighting and λ²: no normalisation "
            "removes the dependence on them, and the demo does not vary them, so it does not "
            "say how large that dependence is.")
