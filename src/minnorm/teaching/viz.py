"""Pictures of the minimum-norm story, drawn with matplotlib only (no 3-D backend).

Cortical maps are an orthographic projection of a hemisphere's mesh drawn back
to front, with the source values spread to every mesh vertex by nearest
source. The template head's maps use fsaverage5's inflated surface (shipped
with nilearn; :func:`cortex_mesh`), shaded by the sulcal depth; maps of any
other subject use the surface its source space carries
(:func:`source_space_mesh`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.colors import ListedColormap, Normalize  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402

__all__ = ["CortexMesh", "cortex_mesh", "source_space_mesh", "plot_cortex", "plot_maps",
           "plot_time_courses", "plot_lcurve", "plot_surface_bias", "plot_by_depth", "plot_dipoles"]

HEMIS = ("lh", "rh")
VIEWS = ("lateral", "medial")
# viewing direction (from the eye into the brain) per hemisphere and view
_DIRECTION = {("lh", "lateral"): (1, 0, 0), ("lh", "medial"): (-1, 0, 0),
              ("rh", "lateral"): (-1, 0, 0), ("rh", "medial"): (1, 0, 0)}
METHOD_COLORS = {"truth": "k", "MNE": "C0", "dSPM": "C1", "sLORETA": "C2", "eLORETA": "C3"}


@dataclass(frozen=True, eq=False)
class CortexMesh:
    """One hemisphere, ready to draw.

    Attributes
    ----------
    coords : ndarray of shape (n_vertices, 3)
        Vertex positions (fsaverage5 inflated: 10242 vertices, mm).
    faces : ndarray of shape (n_faces, 3)
    sulc : ndarray of shape (n_vertices,)
        Sulcal depth (for the grey background: darker where > 0).
    nearest : ndarray of shape (n_vertices,)
        For each mesh vertex, the index of the nearest used source vertex.
    """

    coords: np.ndarray
    faces: np.ndarray
    sulc: np.ndarray
    nearest: np.ndarray


@functools.lru_cache(maxsize=4)
def _fsaverage5():
    from nilearn import datasets

    mesh = datasets.load_fsaverage("fsaverage5")
    sulc = datasets.load_fsaverage_data("fsaverage5", data_type="sulcal")
    parts = {"lh": "left", "rh": "right"}
    return {h: (np.asarray(mesh["inflated"].parts[p].coordinates),
                np.asarray(mesh["inflated"].parts[p].faces),
                np.asarray(mesh["sphere"].parts[p].coordinates),
                np.asarray(sulc.data.parts[p]).ravel()) for h, p in parts.items()}


def cortex_mesh(hemi: str, vertices: np.ndarray) -> CortexMesh:
    """The inflated hemisphere and the map from source vertices to mesh vertices.

    Parameters
    ----------
    hemi : "lh" or "rh"
    vertices : ndarray of int
        Vertex numbers (of the fsaverage5 mesh) that carry sources.
    """
    coords, faces, sphere, sulc = _fsaverage5()[hemi]
    _, nearest = cKDTree(sphere[vertices]).query(sphere)
    return CortexMesh(coords, faces, sulc, nearest)


def source_space_mesh(space) -> CortexMesh:
    """One hemisphere of a surface source space (``fwd["src"][i]``), for any subject.

    Drawn as it is (not inflated, so the folds hide part of the sulci) from
    what forward and inverse files carry: the vertex positions ``rr`` and the
    triangulation of the used sources, ``use_tris`` (ico and oct spacings),
    else the whole surface, ``tris``. No sulcal depth is stored there, so the
    background is one grey, shaded by the light.
    """
    coords = 1e3 * np.asarray(space["rr"], dtype=np.float64)  # m → mm
    faces = space.get("use_tris")
    if faces is None or not len(faces):
        faces = space["tris"]
    vertno = np.asarray(space["vertno"])
    _, nearest = cKDTree(coords[vertno]).query(coords)
    return CortexMesh(coords, np.asarray(faces), np.zeros(len(coords)), nearest)


def plot_cortex(ax, mesh: CortexMesh, values: np.ndarray, *, hemi: str, view: str,
                vmax: float, threshold: float = 0.25, cmap: str = "hot") -> None:
    """Draw one view of a hemisphere with source values overlaid.

    Parameters
    ----------
    ax : matplotlib Axes
    mesh : CortexMesh
    values : ndarray of shape (n_used_vertices,)
        Non-negative values on the hemisphere's sources.
    hemi, view : "lh"/"rh", "lateral"/"medial"
    vmax : float
        Value of the top of the colour scale.
    threshold : float
        Values below ``threshold · vmax`` are not coloured.
    """
    direction = np.asarray(_DIRECTION[(hemi, view)], float)
    up = np.array([0.0, 0.0, 1.0])
    right = np.cross(direction, up)
    tri = mesh.coords[mesh.faces]  # (n_faces, 3, 3)
    xy = np.stack([tri @ right, tri @ up], axis=-1)
    depth = (tri @ direction).mean(axis=1)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
    light = 0.55 + 0.45 * np.clip(-(normal @ direction), 0, 1)
    base = np.where(mesh.sulc[mesh.faces].mean(axis=1) > 0, 0.55, 0.8)
    colors = np.repeat((base * light)[:, None], 3, axis=1)
    face_values = np.asarray(values)[mesh.nearest][mesh.faces].mean(axis=1) / vmax
    shown = face_values > threshold
    level = np.clip((face_values - threshold) / (1 - threshold), 0, 1)
    overlay = plt.get_cmap(cmap)(0.15 + 0.7 * level)  # the ends of "hot" are black and white
    colors[shown] = overlay[shown, :3] * light[shown, None]
    order = np.argsort(-depth)  # far faces first
    faces = PolyCollection(xy[order], facecolors=colors[order], edgecolors="none")
    faces.set_in_layout(False)  # tight_layout need not measure 20,480 polygons: limits are set
    ax.add_collection(faces, autolim=False)
    ax.set_xlim(xy[..., 0].min(), xy[..., 0].max())
    ax.set_ylim(xy[..., 1].min(), xy[..., 1].max())
    ax.set_aspect("equal")
    ax.axis("off")


def plot_maps(rows: dict, *, vertices, title: str, cmap: str = "hot", meshes=None,
              vmax: float | None = None, threshold: float = 0.25, unit: str | None = None):
    """Grid of cortical maps: one row per estimate, lateral and medial views of both hemispheres.

    Parameters
    ----------
    rows : dict of str → ndarray of shape (n_sources,)
        Non-negative values on all sources (lh then rh), e.g. {"truth": …, "MNE": …}.
    vertices : list of two ndarray
        The used vertex numbers per hemisphere.
    title : str
    meshes : dict "lh"/"rh" → CortexMesh, optional
        Default: the template's inflated fsaverage5 (:func:`cortex_mesh`);
        another subject's from :func:`source_space_mesh`.
    vmax : float, optional
        One colour scale for every row (values above it saturate); default
        each row's maximum.
    threshold : float
        Values below ``threshold · vmax`` are not coloured.
    unit : str, optional
        With ``vmax``: a colour bar labelled ``unit``.

    Returns
    -------
    fig : matplotlib Figure
    """
    if meshes is None:
        meshes = {h: cortex_mesh(h, v) for h, v in zip(HEMIS, vertices)}
    n_lh = len(vertices[0])
    fig, axes = plt.subplots(len(rows), 4, figsize=(12, 2.3 * len(rows)), squeeze=False)
    for r, (name, values) in enumerate(rows.items()):
        top = (np.max(values) or 1.0) if vmax is None else vmax
        for c, (hemi, view) in enumerate([(h, v) for h in HEMIS for v in VIEWS]):
            part = values[:n_lh] if hemi == "lh" else values[n_lh:]
            plot_cortex(axes[r, c], meshes[hemi], part, hemi=hemi, view=view, vmax=top,
                        threshold=threshold, cmap=cmap)
            if r == 0:
                axes[r, c].set_title(f"{hemi} {view}", fontsize=10)
        axes[r, 0].text(-0.05, 0.5, name, transform=axes[r, 0].transAxes, rotation=90,
                        ha="right", va="center", fontsize=12, fontweight="bold")
    fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    if vmax is not None and unit is not None:
        _colour_bar(fig, cmap, threshold * vmax, vmax, unit)
    return fig


def _colour_bar(fig, cmap: str, vmin: float, vmax: float, unit: str) -> None:
    """The overlay's colours (the middle of ``cmap``, as plot_cortex draws them), on the right."""
    colours = plt.get_cmap(cmap)(np.linspace(0.15, 0.85, 256))
    scale = ScalarMappable(norm=Normalize(vmin, vmax), cmap=ListedColormap(colours))
    fig.subplots_adjust(right=0.9)
    fig.colorbar(scale, cax=fig.add_axes([0.92, 0.15, 0.012, 0.7]), label=unit)


def plot_time_courses(times, courses: dict, *, names, title: str):
    """Time courses at each true source, every method scaled to its own peak.

    Parameters
    ----------
    times : ndarray of shape (n_times,)
    courses : dict of str → ndarray of shape (n_true, n_times)
        {"truth": …, "MNE": …, …}; each row is drawn divided by its maximum.
    names : sequence of str
        Name of each true source.
    """
    n = len(names)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.0), squeeze=False, sharey=True)
    for i, ax in enumerate(axes[0]):
        for method, data in courses.items():
            trace = np.abs(data[i])
            ax.plot(1e3 * times, trace / (trace.max() or 1), color=METHOD_COLORS.get(method),
                    lw=2.5 if method == "truth" else 1.3,
                    ls="--" if method == "truth" else "-", label=method)
        ax.set_title(names[i], fontsize=10)
        ax.set_xlabel("time (ms)")
        ax.axvline(0, color="0.7", lw=0.8)
    axes[0, 0].set_ylabel("amplitude / its peak")
    axes[0, -1].legend(fontsize=8, loc="upper right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


_RULE_STYLE = {"gcv": ("C1", "s"), "lcurve": ("C2", "^"), "discrepancy": ("C4", "D"),
               "evidence": ("C5", "v"), "cv": ("C9", "P")}


def plot_lcurve(curve, *, default_lambda2: float, n_channels: int, choices=None):
    """The L-curve ‖v‖ against ‖y − Gv‖, and both terms of F against λ².

    ``choices``: rule name → the λ² it chose from the same data, marked on both
    panels (on the curve, interpolated in log–log between its λ² points; a
    λ² beyond the curve's range is drawn at its end and said so).
    """
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.4))
    ax1.loglog(curve.residual, curve.norm, "o-", ms=3, color="C0")
    k = int(np.argmin(np.abs(np.log(curve.lambda2 / default_lambda2))))
    ax1.loglog(curve.residual[k], curve.norm[k], "o", ms=10, mfc="none", mec="C3", mew=2,
               label=f"default λ² = {default_lambda2:.3g}")
    for rule, lam in (choices or {}).items():
        colour, marker = _RULE_STYLE.get(rule, ("0.3", "x"))
        u, grid = np.log(lam), np.log(curve.lambda2)
        at = [np.exp(np.interp(u, grid, np.log(y))) for y in (curve.residual, curve.norm)]
        off = "" if grid[0] <= u <= grid[-1] else " (off the curve)"
        ax1.loglog(*at, marker, ms=8, color=colour, mec="k", mew=0.5,
                   label=f"{rule}: λ² = {lam:.3g}{off}")
        ax2.axvline(lam, color=colour, lw=1.2, ls="--")
    ax1.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax1.set_xlabel("data misfit ‖y − G v‖ (whitened)")
    ax1.set_ylabel("source norm ‖v‖ (weighted)")
    ax1.set_title("L-curve: fit against current used" + (", λ² by rule" if choices else ""))
    ax1.legend(fontsize=8)
    ax2.loglog(curve.lambda2, curve.residual**2, label="misfit ‖y − Gv‖²")
    ax2.loglog(curve.lambda2, curve.lambda2 * curve.norm**2, label="penalty λ²‖v‖²")
    ax2.loglog(curve.lambda2, curve.cost, "k--", label="F = misfit + penalty")
    ax2.axhline(n_channels, color="0.6", lw=0.8, ls=":", label="noise level (n channels)")
    ax2.axvline(default_lambda2, color="C3", lw=1)
    ax2.set_xlabel("λ²")
    ax2.set_title("the two terms of the cost F(λ²)" + (" (dashed: the rules)" if choices else ""))
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_surface_bias(loc_by_method: dict, *, names):
    """Depth of each method's peak against the true depth (the surface bias)."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    methods = list(loc_by_method)
    width = 0.8 / (len(methods) + 1)
    x = np.arange(len(names))
    true_depth = next(iter(loc_by_method.values())).true_depth
    ax.bar(x - 0.4 + width / 2, true_depth, width, color="k", label="true source")
    for i, method in enumerate(methods):
        ax.bar(x - 0.4 + width * (i + 1.5), loc_by_method[method].peak_depth, width,
               color=METHOD_COLORS.get(method), label=method)
    ax.set_xticks(x, names, rotation=15, fontsize=9)
    ax.set_ylabel("depth below the inner skull (mm)")
    ax.set_title("Where does each method put the peak? Shallower bars = surface bias")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def plot_by_depth(depth_mm: np.ndarray, quartiles: dict, *, labels: dict, title: str):
    """Each method's metric against source depth: median (line) and quartiles (band) per bin.

    Parameters
    ----------
    depth_mm : ndarray of shape (n_bins,)
        Median depth of the sources in each bin (x axis).
    quartiles : dict (method, metric) → ndarray of shape (3, n_bins)
        25th, 50th and 75th percentiles of the metric in each bin.
    labels : dict metric → str
        One panel per metric, in this order, with this y label.
    title : str
    """
    fig, axes = plt.subplots(1, len(labels), figsize=(5.2 * len(labels), 3.8), squeeze=False)
    for ax, (metric, label) in zip(axes[0], labels.items()):
        for (method, name), q in quartiles.items():
            if name != metric:
                continue
            color = METHOD_COLORS.get(method)
            ax.fill_between(depth_mm, q[0], q[2], color=color, alpha=0.12, lw=0)
            ax.plot(depth_mm, q[1], "o-", ms=3.5, color=color, label=method)
        ax.set_xlabel("source depth below the inner skull (mm)")
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_dipoles(positions_mm, fits: list, truth_mm, *, peaks: list):
    """Glass-brain projections: sources, true positions, dipoles and dSPM peaks.

    Parameters
    ----------
    positions_mm : ndarray of shape (n_sources, 3)
    fits : list of MultiDipoleFit
        One per time point (dipole positions in mm).
    truth_mm : ndarray of shape (n_true, 3)
    peaks : list of ndarray of shape (n, 3)
        dSPM peak positions at each fit's time.
    """
    planes = [("sagittal (from the right)", 1, 2, "y (mm)", "z (mm)"),
              ("coronal (from behind)", 0, 2, "x (mm)", "z (mm)"),
              ("axial (from above)", 0, 1, "x (mm)", "y (mm)")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4))
    for ax, (name, i, j, xl, yl) in zip(axes, planes):
        ax.scatter(positions_mm[:, i], positions_mm[:, j], s=1, c="0.85")
        ax.scatter(truth_mm[:, i], truth_mm[:, j], s=110, facecolors="none", edgecolors="k",
                   linewidths=1.5, label="true sources")
        for k, (multi, peak) in enumerate(zip(fits, peaks)):
            where = np.array([f.position for f in multi.fits])
            ax.scatter(where[:, i], where[:, j], s=170, marker="*", color=f"C{k}",
                       edgecolors="k", label=f"dipoles {1e3 * multi.time:.0f} ms "
                       f"(GOF {100 * multi.gof:.0f}%)")
            ax.scatter(peak[:, i], peak[:, j], s=45, marker="o", color=f"C{k}", alpha=0.6,
                       label=f"dSPM peaks {1e3 * multi.time:.0f} ms")
        ax.set_title(name)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.set_aspect("equal")
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    return fig


def spread(positions_mm: np.ndarray, values: np.ndarray, radius_mm: float = 7.0) -> np.ndarray:
    """Each non-zero value also given to the sources within ``radius_mm`` (the largest wins),
    so that a single-source map shows on the cortex.

    Parameters
    ----------
    positions_mm : ndarray of shape (n_sources, 3)
    values : ndarray of shape (n_sources,)
    """
    out = np.zeros_like(values)
    for k in np.flatnonzero(values):
        near = np.linalg.norm(positions_mm - positions_mm[k], axis=1) <= radius_mm
        out[near] = np.maximum(out[near], values[k])
    return out
