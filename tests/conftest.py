"""Real-data fixtures: the MNE "sample" subject and forward models in it.

The data live in ``../shared/data/sample`` from the repository root (override
with ``MINNORM_SAMPLE_DATA``); without them every fixture here skips.

All fixtures are session-scoped and shared between tests: treat them as
read-only (``.copy()`` before modifying). Forward solutions are built once and
cached between sessions in pytest's cache directory (``.pytest_cache``), under
a name that includes the MNE version and the build parameters; ``pytest
--cache-clear`` rebuilds them. Builders live in ``_forwards.py``.

Forwards (all free orientation, ``mindist=5`` mm, as read back from disk so
their gain is float32):

========================  ==================================================
``fwd_vol_meg``           12 mm volume grid in sample's inner skull, 1-layer BEM, MEG
``fwd_vol_meeg``          same grid, 3-layer BEM, MEG + EEG
``fwd_surf_meg``          template cortex (fsaverage5 placed in sample), 1-layer BEM, MEG
``fwd_surf_meeg``         template cortex, 3-layer BEM, MEG + EEG
``fwd_mixed_meg``         template cortex + both thalami (5 mm), 1-layer BEM, MEG
``fwd_discrete_meg``      every 4th template source with its normal, 1-layer BEM, MEG
========================  ==================================================
"""

import os
from pathlib import Path

import mne
import pytest

import _forwards as fw
import minnorm
from _operators import CONFIGS

REPO_ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def sample_dir():
    """pathlib.Path of the MNE sample data (skips when it is missing)."""
    default = REPO_ROOT.parent / "shared" / "data" / "sample"
    path = Path(os.environ.get("MINNORM_SAMPLE_DATA", default)).expanduser()
    if not (path / "MEG").is_dir():
        pytest.skip(f"real sample data not found at {path}: set MINNORM_SAMPLE_DATA "
                    "or put MNE's sample data in ../shared/data/sample")
    return path


@pytest.fixture(scope="session")
def sample_files(sample_dir):
    """``_forwards.SampleFiles``: named paths of every file used."""
    return fw.SampleFiles(sample_dir)


@pytest.fixture(scope="session")
def trans(sample_files):
    """Path of the head → MRI transform (sample_audvis_trunc-trans.fif)."""
    return sample_files.trans


@pytest.fixture(scope="session")
def bem_1layer(sample_files):
    """One-layer BEM solution (inner skull, 1280 triangles): for MEG."""
    return mne.read_bem_solution(sample_files.bem_1layer, verbose="error")


@pytest.fixture(scope="session")
def bem_3layer(sample_files):
    """Three-layer BEM solution (320 triangles per surface): for MEG + EEG."""
    return mne.read_bem_solution(sample_files.bem_3layer, verbose="error")


# --------------------------------------------------------------------------
# Sensor data
# --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def evoked_meeg(sample_files):
    """"Left Auditory" evoked (nave=3), baseline (None, 0), 4 active projectors, no bads."""
    return mne.read_evokeds(sample_files.evoked, condition="Left Auditory",
                            baseline=(None, 0), verbose="error")


@pytest.fixture(scope="session")
def evoked_all(sample_files):
    """List of the 4 evoked conditions (Left/Right Auditory, Left/Right visual)."""
    return mne.read_evokeds(sample_files.evoked, baseline=(None, 0), verbose="error")


@pytest.fixture(scope="session")
def noise_cov(sample_files):
    """Noise covariance of the evoked file: 366 MEG+EEG channels, no bads, 4 projectors."""
    return mne.read_cov(sample_files.cov, verbose="error")


@pytest.fixture(scope="session")
def noise_cov_trunc(sample_files):
    """The other covariance of the session; it marks MEG 2443 and EEG 053 as bad."""
    return mne.read_cov(sample_files.cov_trunc, verbose="error")


@pytest.fixture(scope="session")
def epochs_meeg(evoked_meeg, noise_cov):
    """12 EpochsArray epochs: evoked_meeg + noise drawn from noise_cov (seed 0)."""
    return fw.make_noisy_epochs(evoked_meeg, noise_cov, n_epochs=12, seed=0)


@pytest.fixture(scope="session")
def raw_sss(sample_files):
    """1 s of Maxwell-filtered raw data (300 Hz, 376 channels), preloaded, as in the file."""
    return mne.io.read_raw_fif(sample_files.raw_sss, preload=True, verbose="error")


@pytest.fixture(scope="session")
def raw_meeg(raw_sss):
    """raw_sss reduced to its 366 MEG+EEG channels, with an average EEG reference projector."""
    return fw.prepare_raw_for_inverse(raw_sss)


# --------------------------------------------------------------------------
# Source spaces and labels
# --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def template_affine(sample_files):
    """4 × 4 affine (mm → mm) placing fsaverage in sample's MRI frame (skull onto skull)."""
    return fw.template_to_sample_affine(sample_files)


@pytest.fixture(scope="session")
def template_subjects_dir(tmp_path_factory, template_affine):
    """Temporary subjects_dir holding the placed template subject ``fsaverage5_in_sample``."""
    subjects_dir = tmp_path_factory.mktemp("template_subjects")
    fw.write_template_subject(subjects_dir, template_affine)
    return subjects_dir


@pytest.fixture(scope="session")
def template_src(template_subjects_dir):
    """Surface source space (both hemispheres) on the template cortex, with patch info."""
    return fw.make_template_src(template_subjects_dir, fw.surf_spacing())


@pytest.fixture(scope="session")
def sample_labels(sample_files):
    """Dict of the sample labels (Aud-lh, Aud-rh, Vis-lh, Vis-rh), subject "sample".

    Not usable with the template forwards: their vertices are those of
    sample's own (absent) cortex, and their positions are not in the MRI
    frame (Vis-lh has x > 0); use ``template_labels``.
    """
    names = ("Aud-lh", "Aud-rh", "Vis-lh", "Vis-rh")
    return {name: mne.read_label(sample_files.label(name), subject="sample") for name in names}


@pytest.fixture(scope="session")
def template_labels(template_src, template_affine):
    """[lh, rh, lh + rh]: auditory-cortex labels (20 mm discs) on the template cortex.

    The last one is a BiHemiLabel. Built from fsaverage coordinates of
    Heschl's gyrus (``_forwards.AUDITORY_FS_MM``), placed with the affine.
    """
    lh, rh = (fw.template_label(template_src, template_affine, hemi, centre, name=f"aud-{hemi}")
              for hemi, centre in fw.AUDITORY_FS_MM.items())
    return [lh, rh, lh + rh]


# --------------------------------------------------------------------------
# Forward solutions (cached on disk)
# --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def forward_cache_dir(request, tmp_path_factory):
    """Where forwards are cached: pytest's cache dir, or a temp dir without one."""
    cache = getattr(request.config, "cache", None)  # None with -p no:cacheprovider
    if cache is None:
        return tmp_path_factory.mktemp("minnorm-forwards")
    return cache.mkdir("minnorm-forwards")


def _src_params(src_fixture):
    """Parameters of a source-space fixture, for the cache key."""
    if src_fixture == "vol_src":
        return {"vol": f"{fw.VOL_POS_MM:g}mm"}
    params = {"surf": fw.surf_spacing(), "subject": fw.TEMPLATE_SUBJECT}
    if src_fixture == "mixed_src":
        params["deep"] = f"thalami{fw.DEEP_POS_MM:g}mm"
    if src_fixture == "discrete_src":
        params["discrete"] = f"every{fw.DISCRETE_STEP}"
    return params


def _forward_fixture(name, src_fixture, bem_fixture, *, eeg, doc):
    """Make a session fixture ``name``: the forward of ``src_fixture`` with ``bem_fixture``."""

    def fixture(request, sample_files, forward_cache_dir):
        def build():
            get = request.getfixturevalue  # only built on a cache miss
            info = get("evoked_meeg").info
            return fw.make_forward(info, sample_files, get(src_fixture), get(bem_fixture),
                                   meg=True, eeg=eeg)

        params = dict(_src_params(src_fixture), bem=bem_fixture, eeg=eeg,
                      mindist=f"{fw.MINDIST_MM:g}mm")
        key = fw.cache_key(name, params, sample_files)
        return fw.load_or_build_forward(forward_cache_dir, key, build, label=name)

    fixture.__doc__ = doc
    return pytest.fixture(fixture, scope="session", name=name)


@pytest.fixture(scope="session")
def vol_src(sample_files):
    """12 mm volume source space ("vol") inside sample's inner skull (~750 sources)."""
    return fw.make_volume_src(sample_files)


@pytest.fixture(scope="session")
def mixed_src(template_src, sample_files):
    """Template cortex + left and right thalamus (5 mm grids from sample's aseg)."""
    return fw.make_mixed_src(template_src, sample_files)


@pytest.fixture(scope="session")
def discrete_src(template_src):
    """Discrete source space: every 4th template source with its surface normal."""
    return fw.make_discrete_src(template_src)


fwd_vol_meg = _forward_fixture("fwd_vol_meg", "vol_src", "bem_1layer", eeg=False,
                               doc="Volume forward, 1-layer BEM, MEG (306 channels).")
fwd_vol_meeg = _forward_fixture("fwd_vol_meeg", "vol_src", "bem_3layer", eeg=True,
                                doc="Volume forward, 3-layer BEM, MEG + EEG (366 channels).")
fwd_surf_meg = _forward_fixture("fwd_surf_meg", "template_src", "bem_1layer", eeg=False,
                                doc="Template-cortex forward, 1-layer BEM, MEG.")
fwd_surf_meeg = _forward_fixture("fwd_surf_meeg", "template_src", "bem_3layer", eeg=True,
                                 doc="Template-cortex forward, 3-layer BEM, MEG + EEG.")
fwd_mixed_meg = _forward_fixture("fwd_mixed_meg", "mixed_src", "bem_1layer", eeg=False,
                                 doc="Mixed (cortex + thalami) forward, 1-layer BEM, MEG.")
fwd_discrete_meg = _forward_fixture("fwd_discrete_meg", "discrete_src", "bem_1layer",
                                    eeg=False, doc="Discrete forward, 1-layer BEM, MEG.")


def pytest_terminal_summary(terminalreporter):
    """List how each forward fixture was obtained (built or cached) and how long it took."""
    if fw.BUILD_LOG:
        lines = [f"{name}: {status} in {secs:.1f} s" for name, status, secs in fw.BUILD_LOG]
        terminalreporter.write_sep("-", "minnorm forward fixtures")
        terminalreporter.write_line("; ".join(lines))


# --------------------------------------------------------------------------
# The template head (no real data needed)
# --------------------------------------------------------------------------

@pytest.fixture
def one_blas():
    """One BLAS thread: the template tests make many small LAPACK calls, which
    spinning OpenBLAS threads slow down badly when the CPU is shared."""
    from minnorm.teaching.template import one_blas_thread

    with one_blas_thread():
        yield


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """A template cache private to this test session (built once)."""
    return tmp_path_factory.getbasetemp() / "minnorm-cache"


@pytest.fixture(scope="session")
def head(cache_dir):
    """The ico4 template head with the BEM conductor: the head of ``minnorm demo`` and
    ``minnorm decode-demo``, whose tests use the same cache, so it is built once a session
    (the sphere conductor is built and checked at ico3, in test_template.py)."""
    from minnorm.teaching.template import load_template

    return load_template(spacing="ico4", conductor="bem", cache_dir=cache_dir, progress=False)


# --------------------------------------------------------------------------
# Inverse operators on the sample subject, MNE-Python's and minnorm's (built once per session)
# --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def operators(request, evoked_meeg, noise_cov):
    """(MNE operator, minnorm operator) per configuration, built once."""
    cache = {}

    def get(name):
        if name not in cache:
            fwd_name, options, _ = CONFIGS[name]
            fwd = request.getfixturevalue(fwd_name)
            ref = mne.minimum_norm.make_inverse_operator(
                evoked_meeg.info, fwd, noise_cov, verbose=False, **options)
            ours = minnorm.make_inverse_operator(evoked_meeg.info, fwd, noise_cov, **options)
            cache[name] = ref, ours
        return cache[name]

    return get


@pytest.fixture(scope="session")
def prepared_eloreta(operators, evoked_meeg):
    """MNE-Python's operator prepared for eLORETA (its weights fitted), once per configuration
    and λ²: MNE's own ``prepared=True`` path, so the pick_ori cases share one fit.

    MNE-Python stops at a relative change of the weights < 1e-4 here (its default 1e-6 costs
    a third more of its slow iterations): the fixed point contracts by ~0.3 per iteration, so
    its weights are within ~5e-5 of the converged ones, far inside eLORETA's 1e-3 bar, and
    minnorm's (at the default 1e-6) are compared with them."""
    cache = {}

    def get(name, lambda2):
        if (name, lambda2) not in cache:
            cache[name, lambda2] = mne.minimum_norm.prepare_inverse_operator(
                operators(name)[0], evoked_meeg.nave, lambda2, "eLORETA",
                method_params=dict(eps=1e-4), verbose=False)
        return cache[name, lambda2]

    return get
