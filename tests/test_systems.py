"""Other MEG systems: CTF (3rd-order gradient compensation) and KIT/Yokogawa.

minnorm equals ``mne.minimum_norm`` on them, and refuses CTF data at another
compensation grade than their forward or operator wherever data meet one, as
MNE-Python does (its RuntimeError; minnorm's error is a ValueError as well).

The recordings have no MRI: a spherical head (fitted to KIT's digitised head
shape; a fixed one for CTF, which has only its 3 fiducials), a volume grid
inside it, the head frame as MRI frame (``trans=None``). They live in
``../shared/data/systems`` (or ``MINNORM_SYSTEMS_DATA``); without them every
test here skips. Forwards take about a second each: built once per session.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path

import mne
import numpy as np
import pytest
from mne.io.constants import FIFF

import minnorm
from _cli_files import run, snapshot
from minnorm.decoding import SourceTransformer

REPO_ROOT = Path(__file__).resolve().parent.parent
POS_MM = 15.0  # volume grid spacing
# No source at the sphere's centre: a dipole there is radial, its field zero,
# and the depth prior 1/‖gain‖ infinite (MNE-Python fails on it too).
EXCLUDE_MM = 10.0
TOL, TOL_ELORETA = 1e-6, 1e-3
STC_TOL = 1e-6  # .stc files hold float32
METHODS = ("MNE", "dSPM", "sLORETA", "eLORETA")
LAMBDA2 = 1.0 / 9.0
MAKE_REFUSED = r"Compensation grade of forward \(3\) and data \(0\) do not match"
APPLY_REFUSED = r"Compensation grade of inverse \(3\) and data \(0\) do not match"
FIX = r"raw\.apply_gradient_compensation\(3\)"

SPECS = {
    # CTF: 0.5 s, fewer samples than channels: a regularised covariance (closed form)
    "ctf": dict(file="ctf_comp_raw.fif", sphere=((0.0, 0.0, 0.04), 0.09), epoch_s=0.1,
                cov_method="oas"),
    "kit": dict(file="kit_raw.fif", sphere=("auto", "auto"), epoch_s=0.2,
                cov_method="empirical"),
}


@dataclass(frozen=True, eq=False)
class Recording:
    """One system's recording and what the tests make from it (read-only)."""

    name: str
    raw: object
    epochs: object  # fixed-length epochs of the raw data
    evoked: object  # their average
    sphere: object
    fwd: object
    cov: object


def rel_err(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def build_forward(info, sphere):
    src = mne.setup_volume_source_space(sphere=sphere, pos=POS_MM, exclude=EXCLUDE_MM,
                                        verbose="error")
    return mne.make_forward_solution(info, None, src, sphere, meg=True, eeg=False,
                                     verbose="error")


def segment(name, raw):
    """Fixed-length epochs of ``raw`` and their average."""
    epochs = mne.make_fixed_length_epochs(raw, duration=SPECS[name]["epoch_s"], preload=True,
                                          verbose="error")
    return epochs, epochs.average()


def build(folder, name) -> Recording:
    spec = SPECS[name]
    raw = mne.io.read_raw_fif(folder / spec["file"], preload=True, verbose="error")
    sphere = mne.make_sphere_model(*spec["sphere"], info=raw.info, verbose="error")
    cov = mne.compute_raw_covariance(raw, method=spec["cov_method"], verbose="error")
    epochs, evoked = segment(name, raw)
    return Recording(name, raw, epochs, evoked, sphere, build_forward(raw.info, sphere), cov)


@pytest.fixture(scope="session")
def systems_dir():
    default = REPO_ROOT.parent / "shared" / "data" / "systems"
    path = Path(os.environ.get("MINNORM_SYSTEMS_DATA", default)).expanduser()
    missing = [s["file"] for s in SPECS.values() if not (path / s["file"]).is_file()]
    if missing:
        pytest.skip(f"MEG system recordings {missing} not found in {path}: set "
                    "MINNORM_SYSTEMS_DATA or put them in ../shared/data/systems")
    return path


@pytest.fixture(scope="session")
def recordings(systems_dir):
    return {name: build(systems_dir, name) for name in SPECS}


@pytest.fixture(scope="session", params=list(SPECS))
def rec(request, recordings) -> Recording:
    return recordings[request.param]


@pytest.fixture(scope="session")
def ctf(recordings) -> Recording:
    return recordings["ctf"]


@pytest.fixture(scope="session")
def ctf0(ctf) -> Recording:
    """The CTF recording at grade 0 (compensation undone), its own forward at grade 0."""
    raw = ctf.raw.copy().apply_gradient_compensation(0, verbose="error")
    epochs, evoked = segment("ctf", raw)
    return Recording("ctf0", raw, epochs, evoked, ctf.sphere,
                     build_forward(raw.info, ctf.sphere), ctf.cov)


@pytest.fixture(scope="session")
def operators(recordings):
    """Per system: (minnorm's operator, MNE-Python's), free orientation, depth 0.8."""
    return {name: (minnorm.make_inverse_operator(r.evoked.info, r.fwd, r.cov),
                   mne.minimum_norm.make_inverse_operator(r.evoked.info, r.fwd, r.cov,
                                                          verbose="error"))
            for name, r in recordings.items()}


# --------------------------------------------------------------------------
# The recordings


def test_recordings_have_what_the_forward_needs(recordings):
    ctf, kit = recordings["ctf"], recordings["kit"]
    for r in (ctf, kit):
        assert not np.allclose(r.raw.info["dev_head_t"]["trans"], np.eye(4))
        n_meg = len(mne.pick_types(r.raw.info, meg=True, ref_meg=False))
        assert r.fwd["sol"]["data"].shape == (n_meg, 3 * r.fwd["nsource"])
        assert np.isfinite(r.fwd["sol"]["data"]).all() and r.fwd["nsource"] > 300
        assert r.fwd["info"].compensation_grade == r.raw.info.compensation_grade
    assert ctf.raw.info.compensation_grade == 3 and len(ctf.raw.info["comps"]) > 0
    assert len(mne.pick_types(ctf.raw.info, meg=False, ref_meg=True)) > 0
    assert (kit.raw.info.compensation_grade or 0) == 0
    head_shape = [d for d in kit.raw.info["dig"] if d["kind"] == FIFF.FIFFV_POINT_EXTRA]
    assert len(head_shape) > 100  # the sphere is fitted to them
    assert 0.07 < kit.sphere.radius < 0.12 and np.linalg.norm(kit.sphere["r0"]) < 0.06


# --------------------------------------------------------------------------
# Equal to MNE-Python


@pytest.fixture(scope="session")
def mne_prepared(recordings, operators):
    """MNE-Python's operator prepared for the evoked data, per (system, method), once."""
    cache = {}

    def prepared(name, method):
        if (name, method) not in cache:
            cache[name, method] = mne.minimum_norm.prepare_inverse_operator(
                operators[name][1], recordings[name].evoked.nave, LAMBDA2, method,
                verbose="error")
        return cache[name, method]

    return prepared


@pytest.mark.parametrize("pick_ori", [None, "vector"])
@pytest.mark.parametrize("method", METHODS)
def test_evoked_equals_mne(rec, operators, mne_prepared, method, pick_ori):
    ours = minnorm.apply_inverse(rec.evoked, operators[rec.name][0], LAMBDA2, method,
                                 pick_ori=pick_ori)
    ref = mne.minimum_norm.apply_inverse(rec.evoked, mne_prepared(rec.name, method), LAMBDA2,
                                         method, pick_ori=pick_ori, prepared=True,
                                         verbose="error")
    assert type(ours) is type(ref)
    np.testing.assert_array_equal(ours.vertices[0], ref.vertices[0])
    assert rel_err(ours.data, ref.data) < (TOL_ELORETA if method == "eLORETA" else TOL)


def test_epochs_and_raw_equal_mne(rec, operators):
    op, inv = operators[rec.name]
    ref = mne.minimum_norm.apply_inverse_epochs(rec.epochs, inv, LAMBDA2, "dSPM",
                                                verbose="error")
    ours = minnorm.apply_inverse_epochs(rec.epochs, op, LAMBDA2, "dSPM")
    ref_data = np.stack([s.data for s in ref])
    assert rel_err(np.stack([s.data for s in ours]), ref_data) < TOL
    array = minnorm.apply_inverse_epochs(rec.epochs, op, LAMBDA2, "dSPM", return_array=True)
    assert rel_err(array, ref_data) < TOL
    start, stop = 10, len(rec.raw.times) - 10
    ref = mne.minimum_norm.apply_inverse_raw(rec.raw, inv, LAMBDA2, "sLORETA", start=start,
                                             stop=stop, pick_ori="vector", verbose="error")
    ours = minnorm.apply_inverse_raw(rec.raw, op, LAMBDA2, "sLORETA", start=start, stop=stop,
                                     pick_ori="vector")
    assert ours.tmin == pytest.approx(ref.tmin) and rel_err(ours.data, ref.data) < TOL


def test_no_depth_weighting_equals_mne(rec):
    op = minnorm.make_inverse_operator(rec.evoked.info, rec.fwd, rec.cov, loose=1, depth=None)
    inv = mne.minimum_norm.make_inverse_operator(rec.evoked.info, rec.fwd, rec.cov, loose=1,
                                                 depth=None, verbose="error")
    ref = mne.minimum_norm.apply_inverse(rec.evoked, inv, 1.0, "MNE", verbose="error")
    assert rel_err(minnorm.apply_inverse(rec.evoked, op, 1.0, "MNE").data, ref.data) < TOL


# --------------------------------------------------------------------------
# CTF compensation grades


def test_make_refuses_data_at_another_grade(ctf, ctf0):
    with pytest.raises(RuntimeError, match=MAKE_REFUSED):  # MNE-Python refuses too
        mne.minimum_norm.make_inverse_operator(ctf0.evoked.info, ctf.fwd, ctf.cov,
                                               verbose="error")
    with pytest.raises(ValueError, match=MAKE_REFUSED + ".*" + FIX) as error:
        minnorm.make_inverse_operator(ctf0.evoked.info, ctf.fwd, ctf.cov)
    assert isinstance(error.value, RuntimeError) and "\n" not in str(error.value)
    with pytest.raises(ValueError, match=r"forward \(0\) and data \(3\).*"
                                         r"apply_gradient_compensation\(0\)"):
        minnorm.make_inverse_operator(ctf.evoked.info, ctf0.fwd, ctf.cov)


def test_forward_at_grade_0_equals_mne(ctf0):
    """Data and forward both at grade 0: no refusal, and MNE-Python's numbers."""
    op = minnorm.make_inverse_operator(ctf0.evoked.info, ctf0.fwd, ctf0.cov)
    inv = mne.minimum_norm.make_inverse_operator(ctf0.evoked.info, ctf0.fwd, ctf0.cov,
                                                 verbose="error")
    ref = mne.minimum_norm.apply_inverse(ctf0.evoked, inv, LAMBDA2, "dSPM", verbose="error")
    assert rel_err(minnorm.apply_inverse(ctf0.evoked, op, LAMBDA2, "dSPM").data, ref.data) < TOL


@dataclass(frozen=True)
class _Grade0:
    """Data at grade 0 for an operator at grade 3 (and good epochs to fit a transformer)."""

    evoked: object
    epochs: object
    raw: object
    good_epochs: object


def _write_epochs(op, d, tmp):
    minnorm.write_inverse_epochs(tmp / "e.h5", d.epochs, op, LAMBDA2)


def _write_raw(op, d, tmp):
    minnorm.write_inverse_raw(tmp / "r.h5", d.raw, op, LAMBDA2)


def _transform(op, d, tmp):
    SourceTransformer(op, lambda2=LAMBDA2, method="dSPM").fit(d.good_epochs).transform(d.epochs)


APPLY_PATHS = {
    "apply_inverse": lambda op, d, tmp: minnorm.apply_inverse(d.evoked, op, LAMBDA2),
    "apply_inverse_epochs": lambda op, d, tmp: minnorm.apply_inverse_epochs(d.epochs, op,
                                                                            LAMBDA2),
    "apply_inverse_epochs generator": lambda op, d, tmp: list(minnorm.apply_inverse_epochs(
        d.epochs, op, LAMBDA2, return_generator=True)),
    "apply_inverse_epochs array": lambda op, d, tmp: minnorm.apply_inverse_epochs(
        d.epochs, op, LAMBDA2, return_array=True),
    "apply_inverse_epochs array generator": lambda op, d, tmp: list(
        minnorm.apply_inverse_epochs(d.epochs, op, LAMBDA2, return_array=True,
                                     return_generator=True)),
    "apply_inverse_raw": lambda op, d, tmp: minnorm.apply_inverse_raw(d.raw, op, LAMBDA2),
    "iter_inverse_epochs": lambda op, d, tmp: list(minnorm.iter_inverse_epochs(d.epochs, op)),
    "iter_inverse_raw": lambda op, d, tmp: list(minnorm.iter_inverse_raw(d.raw, op)),
    "write_inverse_epochs": _write_epochs,
    "write_inverse_raw": _write_raw,
    # (volume operator: at the right grade the label would be refused next, for its space)
    "extract_label_time_course": lambda op, d, tmp: minnorm.extract_label_time_course(
        d.evoked, op, [mne.Label(vertices=[0], hemi="lh")], LAMBDA2),
    "SourceTransformer.fit": lambda op, d, tmp: SourceTransformer(
        op, lambda2=LAMBDA2, method="dSPM").fit(d.epochs),
    "SourceTransformer.transform": _transform,
}


@pytest.mark.parametrize("given", ["minnorm", "mne"])
@pytest.mark.parametrize("path", list(APPLY_PATHS))
def test_every_apply_path_refuses_data_at_another_grade(ctf, ctf0, operators, path, given,
                                                        tmp_path):
    op = operators["ctf"][0 if given == "minnorm" else 1]
    data = _Grade0(ctf0.evoked, ctf0.epochs, ctf0.raw, ctf.epochs)
    with pytest.raises(ValueError, match=APPLY_REFUSED + ".*" + FIX) as error:
        APPLY_PATHS[path](op, data, tmp_path)
    assert isinstance(error.value, RuntimeError)  # as MNE-Python's
    assert list(tmp_path.iterdir()) == []  # refused before any file is made


def test_mne_refuses_the_same_data(ctf0, operators):
    inv = operators["ctf"][1]
    for call in (lambda: mne.minimum_norm.apply_inverse(ctf0.evoked, inv, LAMBDA2),
                 lambda: mne.minimum_norm.apply_inverse_epochs(ctf0.epochs, inv, LAMBDA2),
                 lambda: mne.minimum_norm.apply_inverse_raw(ctf0.raw, inv, LAMBDA2)):
        with pytest.raises(RuntimeError, match=APPLY_REFUSED):
            call()


def test_operator_keeps_its_grade_through_mne_and_files(ctf, ctf0, operators, tmp_path):
    op, inv = operators["ctf"]
    expected = minnorm.apply_inverse(ctf.evoked, op, LAMBDA2, "dSPM").data
    assert op.info.compensation_grade == 3
    assert op.to_mne()["info"].compensation_grade == 3
    # minnorm's file, read by MNE-Python: grade 3, refused at grade 0, same numbers at 3
    minnorm.write_inverse_operator(tmp_path / "minnorm-inv.fif", op)
    theirs = mne.minimum_norm.read_inverse_operator(tmp_path / "minnorm-inv.fif",
                                                    verbose="error")
    assert theirs["info"].compensation_grade == 3
    with pytest.raises(RuntimeError, match=APPLY_REFUSED):
        mne.minimum_norm.apply_inverse(ctf0.evoked, theirs, LAMBDA2, verbose="error")
    ref = mne.minimum_norm.apply_inverse(ctf.evoked, theirs, LAMBDA2, "dSPM", verbose="error")
    assert rel_err(ref.data, expected) < TOL
    # MNE-Python's file and object, read by minnorm
    mne.minimum_norm.write_inverse_operator(tmp_path / "mne-inv.fif", inv, verbose="error")
    for ours in (minnorm.read_inverse_operator(tmp_path / "mne-inv.fif"),
                 minnorm.InverseOperator.from_mne(inv)):
        assert ours.info.compensation_grade == 3
        with pytest.raises(ValueError, match=APPLY_REFUSED):
            minnorm.apply_inverse(ctf0.evoked, ours, LAMBDA2)
        assert rel_err(minnorm.apply_inverse(ctf.evoked, ours, LAMBDA2, "dSPM").data,
                       expected) < TOL


def test_transformer_at_the_right_grade_equals_mne(ctf, operators):
    op, inv = operators["ctf"]
    features = SourceTransformer(op, lambda2=LAMBDA2, method="dSPM").fit_transform(ctf.epochs)
    ref = mne.minimum_norm.apply_inverse_epochs(ctf.epochs, inv, LAMBDA2, "dSPM",
                                                verbose="error")
    assert rel_err(features, np.stack([s.data for s in ref])) < TOL


# --------------------------------------------------------------------------
# The command line on each system's files


@pytest.fixture(scope="session")
def system_files(recordings, tmp_path_factory):
    """Per system: the forward, covariance and evoked files a user would have."""
    folder = tmp_path_factory.mktemp("systems-inputs")
    paths = {}
    for name, r in recordings.items():
        paths[name] = dict(fwd=folder / f"{name}-fwd.fif", cov=folder / f"{name}-cov.fif",
                           evoked=folder / f"{name}-ave.fif")
        mne.write_forward_solution(paths[name]["fwd"], r.fwd, verbose="error")
        mne.write_cov(paths[name]["cov"], r.cov, verbose="error")
        r.evoked.save(paths[name]["evoked"], verbose="error")
    return paths


def _mne_operator(files, info):
    fwd = mne.read_forward_solution(files["fwd"], verbose="error")
    cov = mne.read_cov(files["cov"], verbose="error")
    return mne.minimum_norm.make_inverse_operator(info, fwd, cov, verbose="error")


def test_cli_evoked_and_raw_equal_mne(rec, systems_dir, system_files, tmp_path, capsys):
    files = system_files[rec.name]
    code, out, err = run(capsys, "apply", "--fwd", files["fwd"], "--cov", files["cov"],
                         "--evoked", files["evoked"], "--out", tmp_path / "ev")
    assert code == 0, err
    evoked = mne.read_evokeds(files["evoked"], verbose="error")[0]
    ref = mne.minimum_norm.apply_inverse(evoked, _mne_operator(files, evoked.info), LAMBDA2,
                                         "dSPM", verbose="error")
    assert rel_err(mne.read_source_estimate(tmp_path / "ev-vl.stc").data, ref.data) < STC_TOL
    peak = float(re.search(r"Peak value (\S+)", out).group(1))
    assert peak == pytest.approx(np.abs(ref.data).max(), rel=1e-3)  # printed with 4 digits
    raw_file = systems_dir / SPECS[rec.name]["file"]  # the recording itself
    code, _, err = run(capsys, "apply", "--fwd", files["fwd"], "--cov", files["cov"],
                       "--raw", raw_file, "--tmin", "0.1", "--tmax", "0.3", "--method", "MNE",
                       "--format", "h5", "--out", tmp_path / "raw")
    assert code == 0, err
    raw = mne.io.read_raw_fif(raw_file, verbose="error")
    start, stop = raw.time_as_index([0.1, 0.3], use_rounding=True)
    ref = mne.minimum_norm.apply_inverse_raw(raw, _mne_operator(files, raw.info), LAMBDA2,
                                             "MNE", start=start, stop=stop + 1, verbose="error")
    read = mne.read_source_estimate(tmp_path / "raw-stc.h5")
    assert read.tmin == pytest.approx(ref.tmin) and rel_err(read.data, ref.data) < TOL


def test_cli_refuses_data_at_another_grade(ctf0, operators, system_files, tmp_path, capsys):
    files = system_files["ctf"]
    raw0 = tmp_path / "in" / "ctf0_raw.fif"
    raw0.parent.mkdir()
    ctf0.raw.save(raw0, verbose="error")
    minnorm.write_inverse_operator(tmp_path / "in" / "ctf-inv.fif", operators["ctf"][0])
    out = tmp_path / "out"
    out.mkdir()
    for inputs, refusal in (
            (["--fwd", files["fwd"], "--cov", files["cov"]], MAKE_REFUSED),
            (["--inv", tmp_path / "in" / "ctf-inv.fif"], APPLY_REFUSED)):
        code, _, err = run(capsys, "apply", *inputs, "--raw", raw0, "--out", out / "x")
        assert code == 1
        assert err.count("\n") == 1, err
        assert re.search(refusal + ".*" + FIX, err), err
        assert snapshot(out) == {}
