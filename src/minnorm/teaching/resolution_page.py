"""The resolution page: metric maps of several inverse methods on a subject's cortex, and a table.

Given the maps of :func:`minnorm.resolution_maps` for several methods, one
figure per metric and function (PSF, CTF): a row per method, lateral and
medial views of both hemispheres, drawn on the forward's own source space
(:func:`~minnorm.teaching.viz.source_space_mesh`, so any subject works), one
colour scale for every method so that they can be compared; then a table of
the median, 90th percentile and maximum of every map.
"""

from __future__ import annotations

import numpy as np

from .report import figure_block, html_page, table_block, text_block
from .viz import HEMIS, plot_maps, source_space_mesh

__all__ = ["METRIC_TEXT", "FUNCTION_TEXT", "summary_rows", "resolution_page"]


# metric → (name, unit)
METRIC_TEXT = {
    "peak_err": ("peak localisation error", "cm"),
    "cog_err": ("centre-of-gravity localisation error", "cm"),
    "sd_ext": ("spatial deviation", "cm"),
    "maxrad_ext": ("maximum radius", "cm"),
    "peak_amp": ("peak amplitude", "relative to the largest"),
    "sum_amp": ("summed amplitude", "relative to the largest"),
}
FUNCTION_TEXT = {"psf": "point-spread function (PSF)", "ctf": "cross-talk function (CTF)"}

METRICS_EXPLAINED = """\
The resolution matrix R = K L (inverse kernel times leadfield) holds the
point-spread function (PSF) of every source as a column — the estimate of a
unit dipole there — and its cross-talk function (CTF) as a row — how much
every other source leaks into the estimate there (Hauk, Stenroos & Treder
2022). Each map gives, at every source, one metric of its PSF or CTF:

  peak_err    distance from the source to the peak of the function (cm)
  cog_err     distance from the source to the function's centre of gravity (cm)
  sd_ext      spatial deviation: the function's spread about the source (cm)
  maxrad_ext  spread of the values above the threshold (cm; MNE-Python's value:
              the square root of the largest, over x, y and z, of the summed
              squared offsets, not quite a radius)
  peak_amp    the function's largest value, relative to the largest over sources
  sum_amp     the sum of its values, relative to the largest over sources

Noise-normalised methods (dSPM, sLORETA) are compared on their own scale:
the amplitudes are relative within each map."""


def summary_rows(maps: dict) -> list:
    """Rows of the summary table: metric, function, method, median, 90th percentile, max, unit.

    Parameters
    ----------
    maps : dict method → dict (function, metric) → SourceEstimate
        From :func:`minnorm.resolution_maps`, one per method.
    """
    rows = []
    for metric, function in _metric_function_pairs(maps):
        for method, by_key in maps.items():
            values = by_key[(function, metric)].data[:, 0]
            median, p90 = np.percentile(values, [50, 90])
            rows.append([metric, function.upper(), method, f"{median:.3g}", f"{p90:.3g}",
                         f"{values.max():.3g}", METRIC_TEXT[metric][1]])
    return rows


def resolution_page(maps: dict, src, *, title: str, intro: str) -> str:
    """The self-contained HTML page (figures embedded as PNG).

    Parameters
    ----------
    maps : dict method → dict (function, metric) → SourceEstimate
    src : mne.SourceSpaces
        The forward's surface source space (both hemispheres): the cortex drawn.
    title : str
    intro : str
        What was computed, from which files (shown first, as text).
    """
    meshes = {hemi: source_space_mesh(space) for hemi, space in zip(HEMIS, src)}
    vertices = [np.asarray(space["vertno"]) for space in src]
    header = ["metric", "function", "method", "median", "90th percentile", "max", "unit"]
    sections = [("What was computed", [text_block(intro), text_block(METRICS_EXPLAINED)]),
                ("Summary", [table_block(header, summary_rows(maps))])]
    metrics = list(dict.fromkeys(metric for metric, _ in _metric_function_pairs(maps)))
    for metric in metrics:
        blocks = [_map_figure(maps, metric, function, vertices, meshes)
                  for m, function in _metric_function_pairs(maps) if m == metric]
        sections.append((f"{METRIC_TEXT[metric][0].capitalize()} ({metric})", blocks))
    return html_page(title, sections)


def _metric_function_pairs(maps: dict) -> list:
    """(metric, function) in the order asked for, metrics first."""
    keys = list(next(iter(maps.values())))
    metrics = list(dict.fromkeys(metric for _, metric in keys))
    functions = list(dict.fromkeys(function for function, _ in keys))
    return [(metric, function) for metric in metrics for function in functions]


def _map_figure(maps, metric, function, vertices, meshes) -> str:
    name, unit = METRIC_TEXT[metric]
    rows = {method: by_key[(function, metric)].data[:, 0] for method, by_key in maps.items()}
    top = float(np.percentile(np.concatenate(list(rows.values())), 98))
    top = top if top > 0 else 1.0
    fig = plot_maps(rows, vertices=vertices, meshes=meshes, vmax=top, threshold=0.0, unit=unit,
                    title=f"{function.upper()} {name}")
    caption = (f"{FUNCTION_TEXT[function].capitalize()} {name} ({metric}) of every source for "
               f"{', '.join(rows)}: lateral and medial views of both hemispheres, on the "
               f"forward's own cortex. One colour scale for all methods, saturating at the 98th "
               f"percentile of their values ({top:.3g} {unit}); grey: 0.")
    return figure_block(fig, caption, name=f"{function}-{metric}", dpi=72)
