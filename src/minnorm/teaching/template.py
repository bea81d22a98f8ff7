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

import dataclasses
import hashlib
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import mne
import nibabel as nib
import numpy as np
from scipy.spatial import cKDTree

from .._version import __version__
from ..engine.linalg import one_blas_thread
from ..io.paths import user_path
from .geometry import (
    Surface,
    in_convex_hull,
    inside_surface,
    meg_positions,
    surface_distance,
    transform_points,
)
from .template_build import (
    CACHE_FILES,
    MANIFEST,
    SUBJECT,
    build_parts,
    conductors,
    fsaverage_file,
    fsaverage_scalp_mri,
    place_head,
    sha256,
    validate_entry,
    write_cached,
)

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
SPACINGS = ("ico3", "ico4", "ico5")
CONDUCTORS = ("bem", "sphere")
MIN_SENSOR_DISTANCE = 0.020  # m: no source may come closer to a sensor than this


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
        return meg_positions(self.info)

    def to_head(self, positions_mm: np.ndarray) -> np.ndarray:
        """MRI mm (n, 3) → head-frame metres (n, 3)."""
        mri_head = np.linalg.inv(self.trans["trans"])
        return transform_points(mri_head, 1e-3 * np.asarray(positions_mm, float))

    def to_device(self, positions_mm: np.ndarray) -> np.ndarray:
        """MRI mm (n, 3) → MEG-device-frame metres (n, 3)."""
        head_dev = np.linalg.inv(self.info["dev_head_t"]["trans"])
        return transform_points(head_dev, self.to_head(positions_mm))


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
        problem = validate_entry(entry, params)
        if problem is None:
            try:
                return _read_entry(entry, params, built=False)
            except (OSError, ValueError, KeyError, RuntimeError) as err:
                problem = f"unreadable ({type(err).__name__}: {err})"
        if problem != "missing":
            logger.warning("minnorm: the cached template head in %s is %s; rebuilding it.", entry, problem)
    build_entry(entry, params, progress=progress)
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
    scalp_head = transform_points(np.linalg.inv(head.trans["trans"]), fsaverage_scalp_mri())
    scalp_dev = transform_points(np.linalg.inv(head.info["dev_head_t"]["trans"]), scalp_head)
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


# --------------------------------------------------------------------------- source files


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


# --------------------------------------------------------------------------- the cache


def build_entry(entry: Path, params: dict, *, progress: bool) -> None:
    """Build every file of a cache entry, then its manifest (last, atomically)."""
    from tqdm import tqdm

    start = time.perf_counter()
    try:
        entry.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"cannot create the template cache {entry} ({err}); set "
                      "MINNORM_CACHE_DIR or pass cache_dir= to a writable directory") from err
    (entry / MANIFEST).unlink(missing_ok=True)  # invalid until rebuilt
    bar = tqdm(total=5, desc=f"minnorm: building the template head ({_entry_name(params)})",
               unit="step", disable=not progress, leave=False)
    with bar, mne.utils.use_log_level("WARNING"), one_blas_thread():
        parts = build_parts(entry, params, bar)
        bar.set_postfix_str("checks")
        placement = check_placement(_assemble(entry, params, parts, built=True))
        if not placement.ok:
            raise RuntimeError(f"the template head failed its placement check: {placement}")
        bar.update()
    files = sorted(p for p in entry.rglob("*") if p.is_file() and p.name != MANIFEST
                   and not p.name.startswith(".tmp-"))
    manifest = {"params": params, "sphere": parts["sphere"], "minnorm": __version__,
                "build_id": uuid.uuid4().hex, "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "build_seconds": round(time.perf_counter() - start, 2),
                "placement": dataclasses.asdict(placement),
                "files": {p.relative_to(entry).as_posix(): sha256(p) for p in files}}
    write_cached(entry / MANIFEST, lambda f: Path(f).write_text(json.dumps(manifest, indent=1)))
    logger.info("minnorm: template head built in %.1f s, cached in %s",
                manifest["build_seconds"], entry)


def _read_entry(entry: Path, params: dict, *, built: bool) -> TemplateHead:
    """Read a validated cache entry."""
    manifest = json.loads((entry / MANIFEST).read_text())
    with mne.utils.use_log_level("WARNING"):
        parts = {"sphere": manifest["sphere"]}
        return _assemble(entry, params, parts, built=built)


def _assemble(entry: Path, params: dict, parts: dict, *, built: bool) -> TemplateHead:
    """A TemplateHead from the files of ``entry``."""
    rr, tris = nib.freesurfer.read_geometry(str(entry / CACHE_FILES["skull"]))
    meg_model, eeg_sphere = conductors(entry, params, parts["sphere"])
    return TemplateHead(
        forward=mne.read_forward_solution(entry / CACHE_FILES["fwd"], verbose=False),
        info=mne.io.read_info(entry / CACHE_FILES["info"], verbose=False),
        src=mne.read_source_spaces(entry / CACHE_FILES["src"], verbose=False),
        bem=meg_model, eeg_sphere=eeg_sphere,
        trans=mne.read_trans(fsaverage_file("fsaverage-trans.fif")),
        inner_skull=Surface(rr=1e-3 * rr, tris=np.asarray(tris, int)),
        subjects_dir=entry / "subjects", spacing=params["spacing"],
        conductor=params["conductor"], eeg=params["eeg"], cache_path=entry, built=built,
    )
