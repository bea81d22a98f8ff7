"""The embedded template head: fsaverage cortex and skull in a Neuromag helmet.

Everything comes from files that pip packages ship; nothing is downloaded.

=========  ===================================================================
cortex     nilearn's fsaverage5 white surfaces: an ico-5 mesh of 10242
           vertices per hemisphere whose first 2562 vertices are the ico-4 mesh
           and first 642 the ico-3 mesh (checked at build time).
skull      MNE's fsaverage inner skull (an ico-5 mesh of 20480 triangles),
           decimated to ico-3 (1280 triangles) for a one-layer BEM.
head frame MNE's ``fsaverage-trans.fif`` (head ↔ MRI) and fiducials; the MRI
           frame of fsaverage is MNI305 space, in metres.
sensors    MNE's canonical Neuromag VectorView layout (204 planar gradiometers,
           102 magnetometers), seated in the helmet by :func:`place_head`.
EEG        MNE's 10-05 montage on fsaverage, average reference (optional).
=========  ===================================================================

The forward model is built once and cached (see :func:`cache_root`); a broken
or stale cache is detected from a JSON manifest of SHA-256 checksums and rebuilt.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import mne
import nibabel as nib
import numpy as np
from scipy.spatial import ConvexHull, cKDTree

from .._version import __version__
from ..io.paths import user_path

__all__ = [
    "Placement",
    "Surface",
    "TemplateHead",
    "cache_root",
    "check_placement",
    "load_template",
    "place_head",
    "source_depth",
]

logger = logging.getLogger("minnorm")

#: Bump when the build changes in a way that invalidates cached heads.
TEMPLATE_VERSION = "1"
SUBJECT = "fsaverage"
SPACINGS = ("ico3", "ico4", "ico5")
CONDUCTORS = ("bem", "sphere")
SCALP_GAP = 0.020  # m: top of the scalp below the highest sensor (MNE's sample subject: 24 mm)
MIN_SENSOR_DISTANCE = 0.020  # m: no source may come closer to a sensor than this
BEM_ICO = 3  # inner skull decimated to ico-3: 642 vertices, 1280 triangles
BRAIN_CONDUCTIVITY = (0.3,)  # S/m, one-layer BEM
SPHERE_MARGIN = 0.003  # m between the farthest cortex vertex and the sphere's brain shell
_HEMIS = (("lh", "left"), ("rh", "right"))
_MNE_FSAVERAGE = Path(mne.__file__).parent / "data" / "fsaverage"


@dataclass(frozen=True)
class Surface:
    """A closed triangulated surface.

    Attributes
    ----------
    rr : ndarray of shape (n_vertices, 3)
        Vertex positions in metres (MRI frame unless said otherwise).
    tris : ndarray of shape (n_triangles, 3)
        Vertex indices of each triangle, counter-clockwise seen from outside.
    """

    rr: np.ndarray
    tris: np.ndarray


@dataclass(frozen=True, eq=False)
class TemplateHead:
    """The template head: a forward model and everything it was built from.

    Attributes
    ----------
    forward : mne.Forward
        Free orientation, head coordinates, every source of ``src`` kept;
        gain of shape (n_channels, 3·n_sources).
    info : mne.Info
        The MEG (and EEG) channels, ``dev_head_t`` from :func:`place_head`, an
        average-reference projector (inactive) when EEG is included.
    src : mne.SourceSpaces
        Two surface source spaces (lh, rh) in MRI coordinates (metres, MNI305
        space), vertex numbers of the fsaverage5 mesh, patch information
        (``use_cps`` works).
    bem : mne.bem.ConductorModel
        The conductor used for MEG: one-layer BEM solution or sphere model.
    eeg_sphere : mne.bem.ConductorModel or None
        The concentric-sphere model used for EEG (a one-layer BEM cannot
        model EEG), or None without EEG.
    trans : mne.transforms.Transform
        head → MRI.
    inner_skull : Surface
        The ico-3 inner skull (642 vertices, 1280 triangles) in MRI coordinates.
    subjects_dir : Path
        A FreeSurfer-like directory holding subject ``fsaverage`` (surf/ and
        bem/) inside the cache.
    spacing, conductor, eeg : the build parameters.
    cache_path : Path
        The cache entry the head was loaded from.
    built : bool
        True when this call built the head, False when it was read from cache.
    """

    forward: mne.Forward
    info: mne.Info
    src: mne.SourceSpaces
    bem: object
    eeg_sphere: object | None
    trans: mne.transforms.Transform
    inner_skull: Surface
    subjects_dir: Path
    spacing: str
    conductor: str
    eeg: bool
    cache_path: Path
    built: bool
    subject: str = SUBJECT

    @property
    def vertices(self) -> list[np.ndarray]:
        """Used vertex numbers per hemisphere, [lh, rh] (for SourceEstimate)."""
        return [s["vertno"].copy() for s in self.src]

    @property
    def hemi_sizes(self) -> tuple[int, int]:
        """Number of sources in the left and right hemisphere."""
        return tuple(int(s["nuse"]) for s in self.src)

    @property
    def n_sources(self) -> int:
        """Number of cortical sources, lh then rh."""
        return sum(self.hemi_sizes)

    @property
    def source_positions_mm(self) -> np.ndarray:
        """Source positions, ndarray of shape (n_sources, 3), MRI = MNI305 mm."""
        return 1e3 * np.concatenate([s["rr"][s["vertno"]] for s in self.src])

    @property
    def source_normals(self) -> np.ndarray:
        """Outward cortical normals, ndarray of shape (n_sources, 3), MRI frame."""
        return np.concatenate([s["nn"][s["vertno"]] for s in self.src])

    @property
    def sensor_positions(self) -> np.ndarray:
        """MEG sensor centres, ndarray of shape (n_meg, 3), device frame, m."""
        return _meg_positions(self.info)

    def to_head(self, positions_mm: np.ndarray) -> np.ndarray:
        """MRI mm (n, 3) → head-frame metres (n, 3)."""
        mri_head = np.linalg.inv(self.trans["trans"])
        return _apply(mri_head, 1e-3 * np.asarray(positions_mm, float))

    def to_device(self, positions_mm: np.ndarray) -> np.ndarray:
        """MRI mm (n, 3) → MEG-device-frame metres (n, 3)."""
        head_dev = np.linalg.inv(self.info["dev_head_t"]["trans"])
        return _apply(head_dev, self.to_head(positions_mm))


# --------------------------------------------------------------------------- public API


def load_template(
    *,
    spacing: Literal["ico3", "ico4", "ico5"] = "ico4",
    conductor: Literal["bem", "sphere"] = "bem",
    eeg: bool = False,
    cache_dir: str | os.PathLike | None = None,
    rebuild: bool = False,
    progress: bool = True,
) -> TemplateHead:
    """The template head, built on first use and read from cache afterwards.

    Parameters
    ----------
    spacing : "ico3", "ico4" or "ico5"
        Cortical sampling: 642, 2562 or 10242 sources per hemisphere (ico5 is
        the full fsaverage5 mesh, 20484 sources).
    conductor : "bem" or "sphere"
        MEG conductor: one-layer BEM (1280 triangles, σ = 0.3 S/m) or a sphere
        centred on the inner skull (faster, less accurate).
    eeg : bool
        Add a 10-05 EEG cap with an average-reference projector. EEG always
        uses MNE's concentric-sphere model (brain, CSF, skull, scalp).
    cache_dir : path-like, optional
        Cache root; default ``$MINNORM_CACHE_DIR``, else
        ``$XDG_CACHE_HOME/minnorm``, else ``~/.cache/minnorm``.
    rebuild : bool
        Build even if a valid cache exists.
    progress : bool
        Show a progress bar while building.
    """
    params = _build_params(spacing=spacing, conductor=conductor, eeg=eeg)
    entry = cache_root(cache_dir) / _entry_name(params)
    if not rebuild:
        problem = _validate_entry(entry, params)
        if problem is None:
            try:
                return _read_entry(entry, params, built=False)
            except (OSError, ValueError, KeyError, RuntimeError) as err:
                problem = f"unreadable ({type(err).__name__}: {err})"
        if problem != "missing":
            logger.warning("minnorm: the cached template head in %s is %s; rebuilding it.", entry, problem)
    _build_entry(entry, params, progress=progress)
    return _read_entry(entry, params, built=True)


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where template heads are cached.

    ``cache_dir`` if given, else ``$MINNORM_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/minnorm``, else ``~/.cache/minnorm``.
    """
    if cache_dir is not None:
        return user_path(cache_dir)
    if os.environ.get("MINNORM_CACHE_DIR"):
        return user_path(os.environ["MINNORM_CACHE_DIR"])
    if os.environ.get("XDG_CACHE_HOME"):
        return user_path(os.environ["XDG_CACHE_HOME"]) / "minnorm"
    return Path.home() / ".cache" / "minnorm"


def place_head(sensors: np.ndarray, scalp: np.ndarray, inner_skull: np.ndarray,
               *, gap: float = SCALP_GAP) -> mne.transforms.Transform:
    """A device → head transform that seats the head in the helmet.

    No rotation; the translation t (head = device + t) centres the inner
    skull's bounding box on the sensor array's left-right and front-back, and
    pushes the head up until the top of the scalp is ``gap`` below the highest
    sensor, as a subject sitting with the head against the helmet's top.

    Parameters
    ----------
    sensors : ndarray of shape (n_sensors, 3)
        Sensor positions, device frame, m.
    scalp, inner_skull : ndarray of shape (n, 3)
        Surface vertices, head frame, m.
    gap : float
        Vertical distance (m) between the highest sensor and the top of the scalp.
    """
    def centre(x):
        return (x.min(axis=0) + x.max(axis=0)) / 2

    t = np.empty(3)
    t[:2] = centre(inner_skull)[:2] - centre(sensors)[:2]
    t[2] = scalp[:, 2].max() - (sensors[:, 2].max() - gap)
    matrix = np.eye(4)
    matrix[:3, 3] = t
    return mne.transforms.Transform("meg", "head", matrix)


@dataclass(frozen=True)
class Placement:
    """Where the cortex sits relative to the sensors and the skull.

    Attributes
    ----------
    sensor_distance : float
        Smallest distance (m) from any source to any MEG sensor.
    skull_clearance : float
        Smallest distance (m) from any source to the inner skull surface.
    n_outside_skull : int
        Sources outside the inner skull (solid-angle test).
    n_outside_helmet : int
        Sources not inside the helmet: outside the convex hull of the sensors
        and of their projections onto the horizontal plane of the lowest
        sensor. A source inside is capped by the array from above and the
        sides and lies above the helmet's lowest edge.
    fraction_in_hull : float
        Fraction of sources inside the sensors' own convex hull (those below
        the helmet's rim, e.g. inferior temporal cortex, are not).
    scalp_gap : float
        Height (m) of the highest sensor above the top of the scalp.
    """

    sensor_distance: float
    skull_clearance: float
    n_outside_skull: int
    n_outside_helmet: int
    fraction_in_hull: float
    scalp_gap: float

    @property
    def ok(self) -> bool:
        """Every source inside the skull, beneath the helmet, ≥ 2 cm from sensors."""
        return (self.n_outside_skull == 0 and self.n_outside_helmet == 0
                and self.sensor_distance >= MIN_SENSOR_DISTANCE)


def check_placement(head: TemplateHead) -> Placement:
    """Check that every source lies inside the skull and inside the sensor array."""
    src_dev = head.to_device(head.source_positions_mm)
    sensors = head.sensor_positions
    src_mri = 1e-3 * head.source_positions_mm
    skull = head.inner_skull
    rim = np.column_stack([sensors[:, :2], np.full(len(sensors), sensors[:, 2].min())])
    helmet = np.vstack([sensors, rim])  # the array, extruded down to its lowest sensor
    scalp_head = _apply(np.linalg.inv(head.trans["trans"]), _fsaverage_scalp_mri())
    scalp_dev = _apply(np.linalg.inv(head.info["dev_head_t"]["trans"]), scalp_head)
    return Placement(
        sensor_distance=float(cKDTree(sensors).query(src_dev)[0].min()),
        skull_clearance=float(surface_distance(src_mri, skull).min()),
        n_outside_skull=int((~inside_surface(src_mri, skull)).sum()),
        n_outside_helmet=int((~in_convex_hull(src_dev, helmet)).sum()),
        fraction_in_hull=float(np.mean(in_convex_hull(src_dev, sensors))),
        scalp_gap=float(sensors[:, 2].max() - scalp_dev[:, 2].max()),
    )


def source_depth(head: TemplateHead, positions_mm: np.ndarray, /, *,
                 reference: Literal["inner_skull", "sensors"] = "inner_skull") -> np.ndarray:
    """Depth of points on the template: distance to the inner skull or the sensors.

    Parameters
    ----------
    positions_mm : array-like of shape (n, 3)
        Points in MRI = MNI305 mm (e.g. ``head.source_positions_mm[idx]``).
    reference : "inner_skull" or "sensors"
        Distance to the ico-3 inner skull surface (exact point-to-triangle
        distance; negative outside the skull), or to the nearest MEG sensor.

    Returns
    -------
    ndarray of shape (n,)
        Depths in mm.
    """
    positions_mm = np.atleast_2d(np.asarray(positions_mm, float))
    if positions_mm.shape[-1] != 3:
        raise ValueError(f"positions_mm must have shape (n, 3), got {positions_mm.shape}")
    if reference == "sensors":
        return 1e3 * cKDTree(head.sensor_positions).query(head.to_device(positions_mm))[0]
    if reference != "inner_skull":
        raise ValueError(f'reference must be "inner_skull" or "sensors", got {reference!r}')
    rr = 1e-3 * positions_mm
    sign = np.where(inside_surface(rr, head.inner_skull), 1.0, -1.0)
    return 1e3 * sign * surface_distance(rr, head.inner_skull)


# --------------------------------------------------------------------------- geometry (arrays)


def _apply(matrix: np.ndarray, rr: np.ndarray) -> np.ndarray:
    """Apply a 4×4 affine to points of shape (n, 3)."""
    return rr @ matrix[:3, :3].T + matrix[:3, 3]


def fit_sphere(rr: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares sphere through points (n, 3): |r − c|² = ρ² is linear in (c, ρ² − |c|²)."""
    A = np.column_stack([2 * rr, np.ones(len(rr))])
    sol = np.linalg.lstsq(A, np.sum(rr**2, axis=1), rcond=None)[0]
    centre = sol[:3]
    return centre, float(np.sqrt(sol[3] + centre @ centre))


def in_convex_hull(points: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Whether points (n, 3) lie inside the convex hull of vertices (m, 3), shape (n,)."""
    hull = ConvexHull(np.unique(vertices, axis=0))
    normals, offsets = hull.equations[:, :3], hull.equations[:, 3]  # outward: n·x + d ≤ 0 inside
    return np.all(points @ normals.T + offsets <= 1e-12, axis=1)


def inside_surface(points: np.ndarray, surface: Surface, *, chunk: int = 512) -> np.ndarray:
    """Whether points (n, 3) lie inside a closed surface: the solid angles sum to ±4π.

    Van Oosterom & Strackee (1983): the solid angle of triangle (a, b, c) seen
    from the origin is 2·atan2(a·(b×c), |a||b||c| + (a·b)|c| + (b·c)|a| + (c·a)|b|).
    """
    corners = surface.rr[surface.tris]  # (n_tris, 3 corners, 3)
    total = np.empty(len(points))
    for start in range(0, len(points), chunk):
        v = corners[None] - points[start:start + chunk, None, None, :]
        a, b, c = v[:, :, 0], v[:, :, 1], v[:, :, 2]
        la, lb, lc = (np.linalg.norm(x, axis=-1) for x in (a, b, c))
        num = np.einsum("ptk,ptk->pt", a, np.cross(b, c))
        den = (la * lb * lc + np.einsum("ptk,ptk->pt", a, b) * lc
               + np.einsum("ptk,ptk->pt", b, c) * la + np.einsum("ptk,ptk->pt", c, a) * lb)
        total[start:start + chunk] = 2 * np.arctan2(num, den).sum(axis=1)
    return np.abs(total) > 2 * np.pi  # ±4π inside (sign: orientation), 0 outside


def surface_distance(points: np.ndarray, surface: Surface, *, chunk: int = 256) -> np.ndarray:
    """Exact distance from points (n, 3) to a triangle mesh, shape (n,)."""
    a, b, c = (surface.rr[surface.tris[:, k]] for k in range(3))  # (n_tris, 3) each
    normal = np.cross(b - a, c - a)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    out = np.empty(len(points))
    for start in range(0, len(points), chunk):
        p = points[start:start + chunk, None, :]  # (n, 1, 3)
        height = np.einsum("ntk,tk->nt", p - a, normal)
        foot = p - height[..., None] * normal  # projection on each triangle's plane
        inside = np.ones(height.shape, bool)
        for u, v in ((a, b), (b, c), (c, a)):
            inside &= np.einsum("ntk,tk->nt", np.cross(v - u, foot - u), normal) >= 0
        edges = np.minimum(np.minimum(_segment_distance(p, a, b), _segment_distance(p, b, c)),
                           _segment_distance(p, c, a))
        out[start:start + chunk] = np.where(inside, np.abs(height), edges).min(axis=1)
    return out


def _segment_distance(p: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Distance from points p (n, 1, 3) to segments [u, v] (t, 3), shape (n, t)."""
    d = v - u
    s = np.einsum("ntk,tk->nt", p - u, d) / np.einsum("tk,tk->t", d, d)
    closest = u + np.clip(s, 0.0, 1.0)[..., None] * d
    return np.linalg.norm(p - closest, axis=-1)


def _meg_positions(info: mne.Info) -> np.ndarray:
    """MEG sensor centres (n_meg, 3), device frame."""
    picks = mne.pick_types(info, meg=True, eeg=False)
    return np.array([info["chs"][k]["loc"][:3] for k in picks])


# --------------------------------------------------------------------------- source files


def _fsaverage5_surface(kind: str, hemi: str) -> tuple[np.ndarray, np.ndarray]:
    """nilearn's bundled fsaverage5 surface: vertices (10242, 3) mm, triangles (20480, 3)."""
    from nilearn import datasets

    files = datasets.fetch_surf_fsaverage("fsaverage5")  # bundled with nilearn, no download
    key = f"{kind}_{dict(_HEMIS)[hemi]}"
    if key not in files:
        raise RuntimeError(f"nilearn's fsaverage5 has no {key!r} surface; nilearn >= 0.10.3 is needed")
    coords, tris = nib.load(files[key]).agg_data()
    return np.asarray(coords, float), np.asarray(tris, int)


def _fsaverage_file(name: str) -> Path:
    path = _MNE_FSAVERAGE / name
    if not path.exists():
        raise RuntimeError(f"MNE-Python does not ship {path}; reinstall mne (>= 1.8)")
    return path


@lru_cache(maxsize=1)
def _fsaverage_scalp_mri() -> np.ndarray:
    """fsaverage's scalp vertices (2033, 3), MRI frame, m."""
    with mne.utils.use_log_level("WARNING"):
        return mne.read_bem_surfaces(_fsaverage_file("fsaverage-head.fif"))[0]["rr"]


def _write_subject(subjects_dir: Path) -> None:
    """Write a FreeSurfer-like subject ``fsaverage`` from the shipped files.

    surf/{lh,rh}.{white,sphere,inflated,pial} (nilearn's fsaverage5) and
    bem/inner_skull.surf (MNE's fsaverage inner skull), in mm.
    """
    surf = subjects_dir / SUBJECT / "surf"
    bem = subjects_dir / SUBJECT / "bem"
    surf.mkdir(parents=True, exist_ok=True)
    bem.mkdir(parents=True, exist_ok=True)
    for hemi, _ in _HEMIS:
        for kind, nilearn_kind in (("white", "white"), ("sphere", "sphere"),
                                   ("inflated", "infl"), ("pial", "pial")):
            coords, tris = _fsaverage5_surface(nilearn_kind, hemi)
            _atomic(surf / f"{hemi}.{kind}",
                    lambda f, c=coords, t=tris: nib.freesurfer.write_geometry(f, c, t))
    with mne.utils.use_log_level("WARNING"):
        skull = mne.read_bem_surfaces(_fsaverage_file("fsaverage-inner_skull-bem.fif"))[0]
    _atomic(bem / "inner_skull.surf",
            lambda f: nib.freesurfer.write_geometry(f, 1e3 * skull["rr"], skull["tris"]))


# --------------------------------------------------------------------------- building


def _build_params(*, spacing: str, conductor: str, eeg: bool) -> dict:
    """The parameters that identify a cache entry (validated)."""
    if spacing not in SPACINGS:
        raise ValueError(f"spacing must be one of {SPACINGS}, got {spacing!r}")
    if conductor not in CONDUCTORS:
        raise ValueError(f"conductor must be one of {CONDUCTORS}, got {conductor!r}")
    if not isinstance(eeg, (bool, np.bool_)):
        raise TypeError(f"eeg must be True or False, got {eeg!r}")
    import nilearn

    return {"template": TEMPLATE_VERSION, "spacing": spacing, "conductor": conductor,
            "eeg": bool(eeg), "mne": mne.__version__, "nilearn": nilearn.__version__}


def _entry_name(params: dict) -> str:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    eeg = "-eeg" if params["eeg"] else ""
    return f"template-{params['spacing']}-{params['conductor']}{eeg}-{digest}"


def _make_src(subjects_dir: Path, spacing: str) -> mne.SourceSpaces:
    """ico-subdivided white-surface source space with patch statistics."""
    src = mne.setup_source_space(SUBJECT, spacing=spacing, add_dist="patch",
                                 subjects_dir=subjects_dir, n_jobs=None)
    n_ico = 10 * 4 ** int(spacing[3:]) + 2  # 642, 2562, 10242
    for s in src:  # the ico-k vertices of fsaverage's ico-5 mesh are its first ones
        if not np.array_equal(s["vertno"], np.arange(n_ico)):
            raise RuntimeError(f"{spacing} did not pick fsaverage5 vertices 0..{n_ico - 1}: "
                               "nilearn's fsaverage5 mesh is not ordered as expected")
    return src


def _fit_spheres(src: mne.SourceSpaces, skull: Surface, trans) -> dict:
    """Sphere parameters in head coordinates: MEG sphere and EEG shells.

    r0 is the centre of the inner skull's best-fitting sphere. The EEG model
    (MNE's brain, CSF, skull, scalp shells at 0.90, 0.92, 0.97, 1 × R) gets
    R = max(scalp radius, (farthest cortex vertex + margin) / 0.90) so that
    the brain shell holds every source.
    """
    mri_head = np.linalg.inv(trans["trans"])
    r0, _ = fit_sphere(_apply(mri_head, skull.rr))
    scalp = _apply(mri_head, _fsaverage_scalp_mri())
    _, scalp_radius = fit_sphere(scalp[scalp[:, 2] > r0[2]])
    cortex = _apply(mri_head, np.concatenate([s["rr"] for s in src]))
    reach = np.linalg.norm(cortex - r0, axis=1).max() + SPHERE_MARGIN
    return {"r0": r0.tolist(), "head_radius": float(max(scalp_radius, reach / 0.90))}


def _sphere(params: dict, *, layered: bool):
    head_radius = params["head_radius"] if layered else None
    return mne.make_sphere_model(r0=params["r0"], head_radius=head_radius, verbose=False)


def _make_info(dev_head_t: mne.transforms.Transform, *, eeg: bool) -> mne.Info:
    """Neuromag VectorView channels seated by ``dev_head_t``; optionally a 10-05 cap."""
    info = mne.channels.read_meg_canonical_info("neuromag")
    info["dev_head_t"] = dev_head_t
    if not eeg:
        return info
    names = mne.channels.get_builtin_montages()
    montage = mne.channels.make_standard_montage(
        "fsaverage_1005" if "fsaverage_1005" in names else "standard_1005")
    raw = mne.io.RawArray(np.zeros((len(info["ch_names"]), 1)), info, verbose=False)
    eeg_info = mne.create_info(montage.ch_names, info["sfreq"], "eeg")
    raw.add_channels([mne.io.RawArray(np.zeros((len(montage.ch_names), 1)), eeg_info,
                                      verbose=False)], force_update_info=True)
    raw.set_montage(montage, verbose=False)
    raw.set_eeg_reference("average", projection=True, verbose=False)
    return raw.info


def _make_forward(info, trans, src, meg_model, eeg_sphere) -> mne.Forward:
    """Free-orientation forward; MEG rows from ``meg_model``, EEG rows from ``eeg_sphere``."""
    if eeg_sphere is None:
        fwd = mne.make_forward_solution(info, trans, src, meg_model, meg=True, eeg=False,
                                        mindist=0.0, verbose=False)
    else:
        fwd = _sphere_forward(info, trans, src, eeg_sphere)
    if eeg_sphere is not None and meg_model is not eeg_sphere:  # BEM for MEG: replace MEG rows
        meg = mne.make_forward_solution(info, trans, src, meg_model, meg=True, eeg=False,
                                        mindist=0.0, verbose=False)
        rows = [fwd["sol"]["row_names"].index(name) for name in meg["sol"]["row_names"]]
        fwd["sol"]["data"][rows] = meg["sol"]["data"]
        fwd["_orig_sol"][rows] = meg["_orig_sol"]  # MNE's copy in the original orientation
    n_src = sum(int(s["nuse"]) for s in src)
    if fwd["nsource"] != n_src:
        raise RuntimeError(f"the forward model dropped {n_src - fwd['nsource']} of {n_src} "
                           "sources outside the conductor; the template is broken")
    return fwd


def _sphere_forward(info, trans, src, sphere) -> mne.Forward:
    """MEG + EEG forward in a layered sphere, computed in head coordinates.

    MNE (1.13) tests whether sources lie inside the brain shell after moving
    them to MRI coordinates, while r0 is in head coordinates (the same mix-up
    as mne-python#13370 for sensors): it drops good sources whenever head ≠
    MRI. So the forward is computed with the sources already in head
    coordinates and an identity transform, and the real transform restored.
    """
    mri_head = mne.transforms.invert_transform(trans)
    src_head = src.copy()
    for s in src_head:
        s["rr"] = mne.transforms.apply_trans(mri_head, s["rr"])
        s["nn"] = mne.transforms.apply_trans(mri_head, s["nn"], move=False)
        s["coord_frame"] = mri_head["to"]
    identity = mne.transforms.Transform("head", "mri")
    fwd = mne.make_forward_solution(info, identity, src_head, sphere, meg=True, eeg=True,
                                    mindist=0.0, verbose=False)
    fwd["mri_head_t"] = mri_head
    with fwd["info"]._unlock():  # the file stores the forward's own copy of mri_head_t
        fwd["info"]["mri_head_t"] = mri_head
    return fwd


def _build_entry(entry: Path, params: dict, *, progress: bool) -> None:
    """Build every file of a cache entry, then its manifest (last, atomically)."""
    from tqdm import tqdm

    start = time.perf_counter()
    try:
        entry.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"cannot create the template cache {entry} ({err}); set "
                      "MINNORM_CACHE_DIR or pass cache_dir= to a writable directory") from err
    (entry / _MANIFEST).unlink(missing_ok=True)  # invalid until rebuilt
    bar = tqdm(total=5, desc=f"minnorm: building the template head ({_entry_name(params)})",
               unit="step", disable=not progress, leave=False)
    with bar, mne.utils.use_log_level("WARNING"), one_blas_thread():
        parts = _build_parts(entry, params, bar)
        bar.set_postfix_str("checks")
        placement = check_placement(_assemble(entry, params, parts, built=True))
        if not placement.ok:
            raise RuntimeError(f"the template head failed its placement check: {placement}")
        bar.update()
    files = sorted(p for p in entry.rglob("*") if p.is_file() and p.name != _MANIFEST
                   and not p.name.startswith(".tmp-"))
    manifest = {"params": params, "sphere": parts["sphere"], "minnorm": __version__,
                "build_id": uuid.uuid4().hex, "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "build_seconds": round(time.perf_counter() - start, 2),
                "placement": dataclasses.asdict(placement),
                "files": {p.relative_to(entry).as_posix(): _sha256(p) for p in files}}
    _atomic(entry / _MANIFEST, lambda f: Path(f).write_text(json.dumps(manifest, indent=1)))
    logger.info("minnorm: template head built in %.1f s, cached in %s",
                manifest["build_seconds"], entry)


def _build_parts(entry: Path, params: dict, bar) -> dict:
    """Surfaces, source space, conductor, sensors and forward, written to ``entry``."""
    subjects_dir = entry / "subjects"
    bar.set_postfix_str("surfaces")
    _write_subject(subjects_dir)
    bar.update()
    bar.set_postfix_str("source space")
    src = _make_src(subjects_dir, params["spacing"])
    _atomic(entry / _FILES["src"], lambda f: mne.write_source_spaces(f, src, overwrite=True))
    bar.update()
    bar.set_postfix_str("BEM" if params["conductor"] == "bem" else "sphere")
    model = mne.make_bem_model(SUBJECT, ico=BEM_ICO, conductivity=BRAIN_CONDUCTIVITY,
                               subjects_dir=subjects_dir)
    skull = Surface(rr=model[0]["rr"], tris=model[0]["tris"])
    _atomic(entry / _FILES["skull"],
            lambda f: nib.freesurfer.write_geometry(f, 1e3 * skull.rr, skull.tris))
    trans = mne.read_trans(_fsaverage_file("fsaverage-trans.fif"))
    sphere = _fit_spheres(src, skull, trans)
    if params["conductor"] == "bem":
        bem = mne.make_bem_solution(model)
        _atomic(entry / _FILES["bem"], lambda f: mne.write_bem_solution(f, bem, overwrite=True))
    bar.update()
    bar.set_postfix_str("forward")
    info = _make_info(_seat(skull, trans), eeg=params["eeg"])
    _atomic(entry / _FILES["info"], lambda f: mne.io.write_info(f, info))
    meg_model, eeg_sphere = _conductors(entry, params, sphere)
    fwd = _make_forward(info, trans, src, meg_model, eeg_sphere)
    _atomic(entry / _FILES["fwd"], lambda f: mne.write_forward_solution(f, fwd, overwrite=True))
    bar.update()
    return {"sphere": sphere}


def _seat(skull: Surface, trans) -> mne.transforms.Transform:
    """dev_head_t for the canonical Neuromag helmet (see :func:`place_head`)."""
    mri_head = np.linalg.inv(trans["trans"])
    sensors = _meg_positions(mne.channels.read_meg_canonical_info("neuromag"))
    return place_head(sensors, _apply(mri_head, _fsaverage_scalp_mri()), _apply(mri_head, skull.rr))


def _conductors(entry: Path, params: dict, sphere: dict):
    """(MEG conductor, EEG sphere or None) of a cache entry."""
    eeg_sphere = _sphere(sphere, layered=True) if params["eeg"] else None
    if params["conductor"] == "bem":
        return mne.read_bem_solution(entry / _FILES["bem"], verbose=False), eeg_sphere
    return (eeg_sphere if params["eeg"] else _sphere(sphere, layered=False)), eeg_sphere


@contextlib.contextmanager
def one_blas_thread():
    """Run BLAS/LAPACK on one thread inside the block.

    The build and the simulations make many tiny LAPACK calls (SciPy's
    Delaunay transforms inside MNE's interior check, 306 × 306 eigh); when
    the CPU is busy, OpenBLAS's spinning threads make each of them up to
    1000× slower (20 s instead of 20 ms), and threads gain nothing at that
    size. threadpoolctl comes with scikit-learn, a dependency of nilearn.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


# --------------------------------------------------------------------------- the cache


_MANIFEST = "manifest.json"
_FILES = {"src": "template-src.fif", "bem": "template-bem-sol.fif", "info": "template-info.fif",
          "fwd": "template-fwd.fif", "skull": "inner_skull-ico3.surf"}


def _atomic(path: Path, write) -> None:
    """Write ``path`` through ``write(tmp)`` on a temporary name, then ``os.replace``."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")  # keeps MNE's suffixes
    try:
        write(str(tmp))
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _validate_entry(entry: Path, params: dict) -> str | None:
    """None if the entry is complete and intact, else what is wrong ("missing", ...)."""
    if not entry.is_dir():
        return "missing"
    try:
        manifest = json.loads((entry / _MANIFEST).read_text())
    except FileNotFoundError:
        return "incomplete (no manifest: an earlier build did not finish)"
    except (OSError, ValueError) as err:
        return f"corrupt (unreadable manifest: {err})"
    if manifest.get("params") != params:
        return f"stale (built for {manifest.get('params')}, need {params})"
    for name, checksum in manifest.get("files", {}).items():
        path = entry / name
        if not path.is_file():
            return f"incomplete ({name} is missing)"
        if _sha256(path) != checksum:
            return f"corrupt ({name} does not match its checksum)"
    required = {_FILES[k] for k in ("src", "info", "fwd", "skull")}
    if params["conductor"] == "bem":
        required.add(_FILES["bem"])
    if not required <= set(manifest.get("files", {})):
        return "corrupt (the manifest lists too few files)"
    return None


def _read_entry(entry: Path, params: dict, *, built: bool) -> TemplateHead:
    """Read a validated cache entry."""
    manifest = json.loads((entry / _MANIFEST).read_text())
    with mne.utils.use_log_level("WARNING"):
        parts = {"sphere": manifest["sphere"]}
        return _assemble(entry, params, parts, built=built)


def _assemble(entry: Path, params: dict, parts: dict, *, built: bool) -> TemplateHead:
    """A TemplateHead from the files of ``entry``."""
    rr, tris = nib.freesurfer.read_geometry(str(entry / _FILES["skull"]))
    meg_model, eeg_sphere = _conductors(entry, params, parts["sphere"])
    return TemplateHead(
        forward=mne.read_forward_solution(entry / _FILES["fwd"], verbose=False),
        info=mne.io.read_info(entry / _FILES["info"], verbose=False),
        src=mne.read_source_spaces(entry / _FILES["src"], verbose=False),
        bem=meg_model, eeg_sphere=eeg_sphere,
        trans=mne.read_trans(_fsaverage_file("fsaverage-trans.fif")),
        inner_skull=Surface(rr=1e-3 * rr, tris=np.asarray(tris, int)),
        subjects_dir=entry / "subjects", spacing=params["spacing"],
        conductor=params["conductor"], eeg=params["eeg"], cache_path=entry, built=built,
    )
