"""Builders for the real-data test fixtures (used by ``conftest.py``).

Everything here is plain functions; the pytest wiring (scopes, skipping,
caching directory) lives in ``conftest.py``.

The MNE "sample" data set has no cortical surfaces, so the surface source
spaces use a *template* cortex: fsaverage5's white surfaces (shipped offline
with nilearn) mapped into the sample head by the affine that best maps
fsaverage's inner skull (shipped with MNE) onto sample's inner skull.
"""

import hashlib
import json
import os
import re
import time
from importlib.metadata import version
from pathlib import Path

import mne
import numpy as np
from mne.io.constants import FIFF
from scipy.spatial import cKDTree

TEMPLATE_SUBJECT = "fsaverage5_in_sample"
MINDIST_MM = 5.0  # sources closer than this to the inner skull are dropped
VOL_POS_MM = 12.0  # volume grid spacing: ~750 sources
DEEP_POS_MM = 5.0  # grid spacing of the thalamic volumes of the mixed space
DEEP_LABELS = ("Left-Thalamus-Proper", "Right-Thalamus-Proper")
DISCRETE_STEP = 4  # the discrete space takes every 4th template source
LABEL_RADIUS_M = 0.020  # template labels: vertices this close to their centre
# Centres of the template auditory labels (Heschl's gyrus), fsaverage/MNI305 mm.
AUDITORY_FS_MM = {"lh": (-50.0, -22.0, 8.0), "rh": (50.0, -20.0, 8.0)}
# Bump when a builder changes in a way the cache key would not notice.
FIXTURE_SCHEMA = 1

BUILD_LOG = []  # (fixture name, "built" | "cached", seconds), for the terminal summary


def surf_spacing():
    """Template source-space spacing: ``ico3`` (1284 sources) unless overridden.

    Set ``MINNORM_SURF_SPACING=ico4`` (5124 sources) for a denser cortex.
    """
    spacing = os.environ.get("MINNORM_SURF_SPACING", "ico3")
    if not re.fullmatch("ico[1-5]", spacing):
        raise ValueError(f"MINNORM_SURF_SPACING must be ico1 … ico5, got {spacing!r}")
    return spacing


class SampleFiles:
    """Paths of the files of the MNE sample data set used by the tests."""

    def __init__(self, root):
        self.root = Path(root)
        meg = self.root / "MEG"
        self.subjects_dir = self.root / "subjects"
        bem = self.subjects_dir / "sample" / "bem"
        mri = self.subjects_dir / "sample" / "mri"
        self.evoked = meg / "sample_audvis_test-ave.fif.gz"
        self.cov = meg / "sample_audvis_test-cov.fif"
        self.cov_trunc = meg / "sample_audvis_trunc-cov.fif"
        self.trans = meg / "sample_audvis_trunc-trans.fif"
        self.raw_sss = meg / "sample_audvis_trunc_raw_sss.fif"
        self.bem_1layer = bem / "sample-1280-bem-sol.fif"
        self.bem_3layer = bem / "sample-320-320-320-bem-sol.fif"
        self.inner_skull = bem / "inner_skull.surf"
        self.t1 = mri / "T1.mgz"
        self.aseg = mri / "aseg.mgz"

    def label(self, name):
        """Path of ``labels/<name>.label`` (e.g. ``"Aud-lh"``)."""
        return self.root / "labels" / f"{name}.label"

    def inputs(self):
        """Every file a forward model depends on."""
        return [self.evoked, self.trans, self.bem_1layer, self.bem_3layer,
                self.inner_skull, self.t1, self.aseg]


# --------------------------------------------------------------------------
# Placing the template cortex in the sample head
# --------------------------------------------------------------------------

def apply_affine(affine, points):
    """Apply a 4 × 4 affine to an (n, 3) array of points."""
    return points @ affine[:3, :3].T + affine[:3, 3]


def fit_affine_icp(source, target, n_iter=50, tol=1e-4):
    """Affine that maps the point cloud ``source`` onto the surface ``target``.

    Iterative closest point with a full (12-parameter) affine: start from the
    per-axis scaling and translation that match centroids and standard
    deviations, then alternate nearest-vertex matching and least squares.
    A full affine is needed: sample's head is pitched about 20° relative to
    fsaverage's, and without the rotation the frontal lobe pokes through the
    floor of the anterior cranial fossa.
    """
    scale = target.std(0) / source.std(0)
    affine = np.eye(4)
    affine[:3, :3] = np.diag(scale)
    affine[:3, 3] = target.mean(0) - scale * source.mean(0)
    tree = cKDTree(target)
    design = np.c_[source, np.ones(len(source))]
    for _ in range(n_iter):
        matched = target[tree.query(apply_affine(affine, source))[1]]
        new = np.eye(4)
        new[:3] = np.linalg.lstsq(design, matched, rcond=None)[0].T
        change = np.abs(new - affine).max()
        affine = new
        if change < tol:
            break
    return affine


def template_to_sample_affine(files):
    """Affine (mm → mm) from fsaverage's MRI frame into sample's MRI frame."""
    fs_bem = Path(mne.__file__).parent / "data" / "fsaverage" / "fsaverage-inner_skull-bem.fif"
    fs_skull_mm = mne.read_bem_surfaces(fs_bem, verbose=False)[0]["rr"] * 1e3  # m → mm
    sample_skull_mm = mne.read_surface(files.inner_skull)[0]  # FreeSurfer: mm
    affine = fit_affine_icp(fs_skull_mm, sample_skull_mm)
    if np.linalg.det(affine[:3, :3]) <= 0:  # would flip triangle orientation
        raise RuntimeError("template placement affine is not orientation-preserving")
    return affine


def load_template_meshes():
    """fsaverage5 white and sphere meshes (nilearn, offline): {hemi: (white, sphere)}."""
    from nilearn.datasets import load_fsaverage

    fsaverage = load_fsaverage("fsaverage5")
    meshes = {}
    for hemi, part in (("lh", "left"), ("rh", "right")):
        white = fsaverage["white_matter"].parts[part]
        sphere = fsaverage["sphere"].parts[part]
        assert np.array_equal(white.faces, sphere.faces)
        meshes[hemi] = (white, sphere)
    return meshes


def write_template_subject(subjects_dir, affine):
    """Write a FreeSurfer-like subject ``TEMPLATE_SUBJECT`` (white + sphere surfaces).

    The white surfaces are placed in the sample head with ``affine`` (see
    ``template_to_sample_affine``); the spheres are written as they are.
    """
    surf_dir = Path(subjects_dir) / TEMPLATE_SUBJECT / "surf"
    surf_dir.mkdir(parents=True, exist_ok=True)
    for hemi, (white, sphere) in load_template_meshes().items():
        placed = apply_affine(affine, np.asarray(white.coordinates, float))
        mne.write_surface(surf_dir / f"{hemi}.white", placed, white.faces, overwrite=True)
        mne.write_surface(surf_dir / f"{hemi}.sphere", sphere.coordinates, sphere.faces,
                          overwrite=True)


# --------------------------------------------------------------------------
# Source spaces
# --------------------------------------------------------------------------

def ico_n_vertices(spacing):
    """Number of vertices of an ``icoN`` subdivision (642 for ico3)."""
    return 10 * 4 ** int(spacing[3:]) + 2


def make_template_src(subjects_dir, spacing):
    """Surface source space on the template cortex, with cortical patch statistics.

    fsaverage5's sphere is the ico-5 sphere, whose first ``ico_n_vertices(k)``
    vertices are exactly the ico-k subdivision: check that MNE picked those.
    """
    src = mne.setup_source_space(TEMPLATE_SUBJECT, spacing=spacing, surface="white",
                                 add_dist="patch", subjects_dir=subjects_dir,
                                 verbose="error")
    n_ico = ico_n_vertices(spacing)
    for hemi_src in src:
        if not np.array_equal(hemi_src["vertno"], np.arange(n_ico)):
            raise RuntimeError(f"{spacing} did not map onto the first {n_ico} vertices")
    return src


def make_volume_src(files, pos_mm=VOL_POS_MM):
    """Volume grid inside sample's inner skull (a true ``"vol"`` space).

    Passing the T1 makes MNE keep the type ``"vol"``; without an MRI it would
    silently turn the grid into a ``"discrete"`` source space.
    """
    return mne.setup_volume_source_space(
        "sample", pos=pos_mm, mri=files.t1, surface=files.inner_skull, mindist=MINDIST_MM,
        add_interpolator=False, subjects_dir=files.subjects_dir, verbose="error")


def make_mixed_src(surface_src, files):
    """Template cortex + the two thalami of sample's aseg (5 mm grids): 4 spaces."""
    deep = mne.setup_volume_source_space(
        TEMPLATE_SUBJECT, pos=DEEP_POS_MM, mri=files.aseg, volume_label=list(DEEP_LABELS),
        add_interpolator=False, subjects_dir=files.subjects_dir, verbose="error")
    return surface_src.copy() + deep


def make_discrete_src(surface_src, step=DISCRETE_STEP):
    """Discrete space: every ``step``-th template source of both hemispheres, with normals."""
    rr = np.concatenate([s["rr"][s["vertno"][::step]] for s in surface_src])  # metres
    nn = np.concatenate([s["nn"][s["vertno"][::step]] for s in surface_src])
    return mne.setup_volume_source_space(TEMPLATE_SUBJECT, pos=dict(rr=rr, nn=nn),
                                         verbose="error")


def make_forward(info, files, src, bem, *, meg, eeg):
    """``mne.make_forward_solution`` with the sample trans and ``mindist=MINDIST_MM``."""
    return mne.make_forward_solution(info, files.trans, src, bem, meg=meg, eeg=eeg,
                                     mindist=MINDIST_MM, verbose="error")


# --------------------------------------------------------------------------
# On-disk cache of forward solutions
# --------------------------------------------------------------------------

def cache_key(name, params, files):
    """File stem naming a forward: fixture name, MNE version, parameters, input digest."""
    stats = [(p.name, p.stat().st_size) for p in files.inputs()]
    blob = json.dumps([params, stats, version("nilearn"), FIXTURE_SCHEMA], sort_keys=True)
    digest = hashlib.sha1(blob.encode()).hexdigest()[:10]
    readable = "_".join(f"{k}-{v}" for k, v in sorted(params.items()))
    return f"{name}_mne-{mne.__version__}_{readable}_{digest}"


def _read_cached(path):
    """Read a cached forward, or None when it is missing or unreadable."""
    if not path.exists():
        return None
    try:
        fwd = mne.read_forward_solution(path, verbose="error")
    except Exception:  # corrupt/truncated/stale file: any failure means rebuild
        return None
    return fwd if fwd["nsource"] > 0 and np.isfinite(fwd["sol"]["data"]).all() else None


def load_or_build_forward(cache_dir, key, build, label=None):
    """The forward cached as ``<cache_dir>/<key>-fwd.fif``, building it on a miss.

    A fresh build is written (atomically) and read back, so that a cold and
    a warm session see the very same forward (the file stores float32).
    """
    start = time.perf_counter()
    path = Path(cache_dir) / f"{key}-fwd.fif"
    fwd = _read_cached(path)
    status = "cached"
    if fwd is None:
        status = "built"
        tmp = path.with_name(f"{key}.tmp{os.getpid()}-fwd.fif")
        mne.write_forward_solution(tmp, build(), overwrite=True, verbose="error")
        os.replace(tmp, path)
        fwd = mne.read_forward_solution(path, verbose="error")
    if label is not None:
        BUILD_LOG.append((label, status, time.perf_counter() - start))
    return fwd


def template_forward(files, info, spacing, cache_dir, *, eeg=True):
    """The fwd_surf_meeg (``eeg=True``: three-layer BEM, MEG + EEG) or fwd_surf_meg
    (one-layer BEM, MEG) fixture's forward at ``spacing`` (template cortex in the
    sample head), from the same cache entry: for the benchmarks."""
    name, bem_name = ("fwd_surf_meeg", "bem_3layer") if eeg else ("fwd_surf_meg", "bem_1layer")
    params = {"surf": spacing, "subject": TEMPLATE_SUBJECT, "bem": bem_name, "eeg": eeg,
              "mindist": f"{MINDIST_MM:g}mm"}

    def build():
        import tempfile

        subjects_dir = Path(tempfile.mkdtemp())
        write_template_subject(subjects_dir, template_to_sample_affine(files))
        src = make_template_src(subjects_dir, spacing)
        bem = mne.read_bem_solution(getattr(files, bem_name), verbose="error")
        return make_forward(info, files, src, bem, meg=True, eeg=eeg)

    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    return load_or_build_forward(cache_dir, cache_key(name, params, files), build)


# --------------------------------------------------------------------------
# Data: epochs, raw, labels
# --------------------------------------------------------------------------

def make_noisy_epochs(evoked, noise_cov, n_epochs=12, seed=0):
    """Epochs = the evoked + Gaussian noise drawn from the noise covariance.

    The noise of the MEG/EEG channels has covariance ``noise_cov`` (realistic
    amplitude and spatial structure per channel type, and it already lies in
    the span the evoked's active projectors leave); stim/EOG get none.
    """
    picks = mne.pick_channels(evoked.ch_names, noise_cov.ch_names, ordered=True)
    eigval, eigvec = np.linalg.eigh(noise_cov.data)
    sqrt_cov = eigvec * np.sqrt(np.clip(eigval, 0, None))
    n_times = len(evoked.times)
    white = np.random.default_rng(seed).standard_normal((n_epochs, len(picks), n_times))
    data = np.repeat(evoked.data[np.newaxis], n_epochs, axis=0)
    data[:, picks] += sqrt_cov @ white
    events = np.c_[np.arange(n_epochs) * 2 * n_times, np.zeros(n_epochs, int),
                   np.ones(n_epochs, int)]
    return mne.EpochsArray(data, evoked.info, events=events, tmin=evoked.tmin,
                           event_id={evoked.comment or "event": 1}, verbose="error")


def has_average_eeg_reference(info):
    """True when ``info`` carries an average EEG reference projector."""
    return any(p["desc"] == "Average EEG reference"
               or p["kind"] == FIFF.FIFFV_PROJ_ITEM_EEG_AVREF
               for p in info["projs"])


def prepare_raw_for_inverse(raw):
    """A copy of ``raw`` with its MEG+EEG channels and an average-reference projector.

    sample_audvis_trunc_raw_sss.fif already carries an (inactive) average
    EEG reference projector, so nothing is added there; stim and EOG channels
    are dropped so that the channels are exactly the noise covariance's.
    """
    raw = raw.copy().pick(["meg", "eeg"])
    if not has_average_eeg_reference(raw.info):
        raw.set_eeg_reference(projection=True, verbose="error")
    return raw


def template_label(src, affine, hemi, centre_fs_mm, radius=LABEL_RADIUS_M, name=None):
    """Label on the template cortex: its vertices within ``radius`` (m) of a point.

    ``centre_fs_mm`` is given in fsaverage's frame (mm, ≈ MNI305) and placed
    with ``affine``. Every vertex of the hemisphere counts, not only the
    sources, as in a FreeSurfer label.
    """
    hemi_src = src[0 if hemi == "lh" else 1]
    centre_m = apply_affine(affine, np.asarray(centre_fs_mm, float)[np.newaxis])[0] * 1e-3
    vertices = np.flatnonzero(np.linalg.norm(hemi_src["rr"] - centre_m, axis=1) <= radius)
    return mne.Label(vertices, pos=hemi_src["rr"][vertices], hemi=hemi,
                     name=name or f"template-{hemi}", subject=src._subject)


# --------------------------------------------------------------------------
# Geometry check for the tests
# --------------------------------------------------------------------------

def points_inside_surface(points, rr, tris, chunk=128):
    """Which ``points`` lie inside the closed triangulated surface (``rr``, ``tris``).

    Sums the solid angles the triangles subtend at each point (Van Oosterom &
    Strackee, 1983): 4π inside, 0 outside.
    """
    inside = np.empty(len(points), bool)
    corners = rr[tris]  # (n_tris, 3, 3)
    for start in range(0, len(points), chunk):
        vec = corners[np.newaxis] - points[start:start + chunk, np.newaxis, np.newaxis]
        r1, r2, r3 = vec[:, :, 0], vec[:, :, 1], vec[:, :, 2]
        l1, l2, l3 = (np.linalg.norm(r, axis=-1) for r in (r1, r2, r3))
        triple = np.einsum("ptk,ptk->pt", r1, np.cross(r2, r3))
        denom = (l1 * l2 * l3 + np.einsum("ptk,ptk->pt", r1, r2) * l3
                 + np.einsum("ptk,ptk->pt", r1, r3) * l2
                 + np.einsum("ptk,ptk->pt", r2, r3) * l1)
        total = 2 * np.arctan2(triple, denom).sum(axis=1)
        inside[start:start + chunk] = np.abs(total) > 2 * np.pi
    return inside
