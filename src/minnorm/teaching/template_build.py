"""Building the template head from what PyPI packages ship: nilearn's fsaverage5 cortex,
MNE-Python's fsaverage inner skull and scalp, the VectorView helmet; its source space,
conductor (one-layer BEM or sphere) and forward model."""

from __future__ import annotations

import hashlib
import json
import logging
from functools import lru_cache
from pathlib import Path

import mne
import nibabel as nib
import numpy as np

from ..io.atomic import AtomicOutputs
from .geometry import Surface, fit_sphere, meg_positions, transform_points

logger = logging.getLogger("minnorm")

MANIFEST = "manifest.json"


CACHE_FILES = {"src": "template-src.fif", "bem": "template-bem-sol.fif", "info": "template-info.fif",
          "fwd": "template-fwd.fif", "skull": "inner_skull-ico3.surf"}


def write_cached(path: Path, write) -> None:
    """Write (or rewrite, in the cache) ``path`` through ``write(tmp)``, complete or not at all."""
    with AtomicOutputs([path], overwrite=True) as outputs:
        write(str(outputs.temporary(path)))  # the same name in a private folder: MNE's suffixes


SUBJECT = "fsaverage"


BEM_ICO = 3  # inner skull decimated to ico-3: 642 vertices, 1280 triangles


BRAIN_CONDUCTIVITY = (0.3,)  # S/m, one-layer BEM


SPHERE_MARGIN = 0.003  # m between the farthest cortex vertex and the sphere's brain shell


HEMIS = (("lh", "left"), ("rh", "right"))


_MNE_FSAVERAGE = Path(mne.__file__).parent / "data" / "fsaverage"


SCALP_GAP = 0.020  # m: top of the scalp below the highest sensor (MNE's sample subject: 24 mm)


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


def _fsaverage5_surface(kind: str, hemi: str) -> tuple[np.ndarray, np.ndarray]:
    """nilearn's bundled fsaverage5 surface: vertices (10242, 3) mm, triangles (20480, 3)."""
    from nilearn import datasets

    files = datasets.fetch_surf_fsaverage("fsaverage5")  # bundled with nilearn, no download
    key = f"{kind}_{dict(HEMIS)[hemi]}"
    if key not in files:
        raise RuntimeError(f"nilearn's fsaverage5 has no {key!r} surface; nilearn >= 0.10.3 is needed")
    coords, tris = nib.load(files[key]).agg_data()
    return np.asarray(coords, float), np.asarray(tris, int)


def fsaverage_file(name: str) -> Path:
    path = _MNE_FSAVERAGE / name
    if not path.exists():
        raise RuntimeError(f"MNE-Python does not ship {path}; reinstall mne (>= 1.8)")
    return path


@lru_cache(maxsize=1)
def fsaverage_scalp_mri() -> np.ndarray:
    """fsaverage's scalp vertices (2033, 3), MRI frame, m."""
    with mne.utils.use_log_level("WARNING"):
        return mne.read_bem_surfaces(fsaverage_file("fsaverage-head.fif"))[0]["rr"]


def _write_subject(subjects_dir: Path) -> None:
    """Write a FreeSurfer-like subject ``fsaverage`` from the shipped files.

    surf/{lh,rh}.{white,sphere,inflated,pial} (nilearn's fsaverage5) and
    bem/inner_skull.surf (MNE's fsaverage inner skull), in mm.
    """
    surf = subjects_dir / SUBJECT / "surf"
    bem = subjects_dir / SUBJECT / "bem"
    surf.mkdir(parents=True, exist_ok=True)
    bem.mkdir(parents=True, exist_ok=True)
    for hemi, _ in HEMIS:
        for kind, nilearn_kind in (("white", "white"), ("sphere", "sphere"),
                                   ("inflated", "infl"), ("pial", "pial")):
            coords, tris = _fsaverage5_surface(nilearn_kind, hemi)
            write_cached(surf / f"{hemi}.{kind}",
                    lambda f, c=coords, t=tris: nib.freesurfer.write_geometry(f, c, t))
    with mne.utils.use_log_level("WARNING"):
        skull = mne.read_bem_surfaces(fsaverage_file("fsaverage-inner_skull-bem.fif"))[0]
    write_cached(bem / "inner_skull.surf",
            lambda f: nib.freesurfer.write_geometry(f, 1e3 * skull["rr"], skull["tris"]))


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
    r0, _ = fit_sphere(transform_points(mri_head, skull.rr))
    scalp = transform_points(mri_head, fsaverage_scalp_mri())
    _, scalp_radius = fit_sphere(scalp[scalp[:, 2] > r0[2]])
    cortex = transform_points(mri_head, np.concatenate([s["rr"] for s in src]))
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


def build_parts(entry: Path, params: dict, bar) -> dict:
    """Surfaces, source space, conductor, sensors and forward, written to ``entry``."""
    subjects_dir = entry / "subjects"
    bar.set_postfix_str("surfaces")
    _write_subject(subjects_dir)
    bar.update()
    bar.set_postfix_str("source space")
    src = _make_src(subjects_dir, params["spacing"])
    write_cached(entry / CACHE_FILES["src"], lambda f: mne.write_source_spaces(f, src, overwrite=True))
    bar.update()
    bar.set_postfix_str("BEM" if params["conductor"] == "bem" else "sphere")
    model = mne.make_bem_model(SUBJECT, ico=BEM_ICO, conductivity=BRAIN_CONDUCTIVITY,
                               subjects_dir=subjects_dir)
    skull = Surface(rr=model[0]["rr"], tris=model[0]["tris"])
    write_cached(entry / CACHE_FILES["skull"],
            lambda f: nib.freesurfer.write_geometry(f, 1e3 * skull.rr, skull.tris))
    trans = mne.read_trans(fsaverage_file("fsaverage-trans.fif"))
    sphere = _fit_spheres(src, skull, trans)
    if params["conductor"] == "bem":
        bem = mne.make_bem_solution(model)
        write_cached(entry / CACHE_FILES["bem"], lambda f: mne.write_bem_solution(f, bem, overwrite=True))
    bar.update()
    bar.set_postfix_str("forward")
    info = _make_info(seat(skull, trans), eeg=params["eeg"])
    write_cached(entry / CACHE_FILES["info"], lambda f: mne.io.write_info(f, info))
    meg_model, eeg_sphere = conductors(entry, params, sphere)
    fwd = _make_forward(info, trans, src, meg_model, eeg_sphere)
    write_cached(entry / CACHE_FILES["fwd"], lambda f: mne.write_forward_solution(f, fwd, overwrite=True))
    bar.update()
    return {"sphere": sphere}


def seat(skull: Surface, trans) -> mne.transforms.Transform:
    """dev_head_t for the canonical Neuromag helmet (see :func:`place_head`)."""
    mri_head = np.linalg.inv(trans["trans"])
    sensors = meg_positions(mne.channels.read_meg_canonical_info("neuromag"))
    return place_head(sensors, transform_points(mri_head, fsaverage_scalp_mri()), transform_points(mri_head, skull.rr))


def conductors(entry: Path, params: dict, sphere: dict):
    """(MEG conductor, EEG sphere or None) of a cache entry."""
    eeg_sphere = _sphere(sphere, layered=True) if params["eeg"] else None
    if params["conductor"] == "bem":
        return mne.read_bem_solution(entry / CACHE_FILES["bem"], verbose=False), eeg_sphere
    return (eeg_sphere if params["eeg"] else _sphere(sphere, layered=False)), eeg_sphere


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def validate_entry(entry: Path, params: dict) -> str | None:
    """None if the entry is complete and intact, else what is wrong ("missing", ...)."""
    if not entry.is_dir():
        return "missing"
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
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
        if sha256(path) != checksum:
            return f"corrupt ({name} does not match its checksum)"
    required = {CACHE_FILES[k] for k in ("src", "info", "fwd", "skull")}
    if params["conductor"] == "bem":
        required.add(CACHE_FILES["bem"])
    if not required <= set(manifest.get("files", {})):
        return "corrupt (the manifest lists too few files)"
    return None
