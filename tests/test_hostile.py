"""Hostile values and outputs through the Python API: every option's whole domain
gets a clear error naming it, and outputs appear all together or not at all."""

import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest

import minnorm
import minnorm.io
import minnorm.io.paths
from minnorm.engine import checks
from minnorm.engine.expand import parse_memory


@pytest.fixture(scope="module")
def op_vol(evoked_meeg, fwd_vol_meeg, noise_cov):
    return minnorm.make_inverse_operator(evoked_meeg.info, fwd_vol_meeg, noise_cov)


# --------------------------------------------------------------------------- option domains


@pytest.mark.parametrize("value", [1e300, 1e-300, 1e155, 1e-155])
def test_snr_whose_lambda2_is_not_representable(value):
    with pytest.raises(ValueError, match=re.escape(f"snr = {value} is out of range: λ² = 1/SNR²")):
        checks.lambda2_from_snr(value)


def test_snr_at_the_edges_of_its_domain():
    assert checks.lambda2_from_snr(1e150) == pytest.approx(1e-300)
    assert checks.lambda2_from_snr(1e-150) == pytest.approx(1e300)
    assert checks.lambda2_from_snr(3) == pytest.approx(1 / 9)


@pytest.mark.parametrize("value, error, match", [
    (float("inf"), ValueError, r"max_memory must be a finite size of at least 1 byte"),
    ("1e400", ValueError, r"max_memory must be a finite size"),
    (float("nan"), ValueError, r"max_memory must be a finite size"),
    (0.5, ValueError, r"at least 1 byte"),
    ("1.2.3MB", ValueError, r"max_memory must be a number of bytes or a string like '500MB'"),
    ("..MB", ValueError, r"max_memory must be a number of bytes"),
    ("5 XB", ValueError, r"max_memory must be a number of bytes"),
    ("inf", ValueError, r"max_memory must be a number of bytes"),
    (True, TypeError, r"max_memory must be a number of bytes .* got bool"),
    ([1], TypeError, r"got list"),
])
def test_memory_budget_domain(value, error, match):
    with pytest.raises(error, match=match):
        parse_memory(value)


@pytest.mark.parametrize("text, expected", [
    ("500MB", 500e6), ("2 GiB", 2 * 2**30), ("1.5e3kb", 1.5e6), (".5GB", 5e8), (1e30, 1e30)])
def test_memory_budget_sizes(text, expected):
    assert parse_memory(text) == int(expected)


@pytest.mark.parametrize("params, error, match", [
    (dict(eps="small"), TypeError, r"eLORETA eps must be a number > 0 \(default 1e-6\), "
                                   r"got 'small'"),
    (dict(eps=float("nan")), ValueError, r"eLORETA eps must be a finite number > 0"),
    (dict(eps=-1.0), ValueError, r"eLORETA eps must be a finite number > 0"),
    (dict(max_iter=2.5), TypeError, r"eLORETA max_iter must be a whole number >= 1"),
    (dict(max_iter=float("inf")), TypeError, r"eLORETA max_iter must be a whole number"),
    (dict(max_iter="20"), TypeError, r"eLORETA max_iter must be a whole number"),
    (dict(max_iter=0), ValueError, r"eLORETA max_iter must be >= 1"),
    (dict(force_equal="yes"), TypeError, r"eLORETA force_equal must be True or False"),
])
def test_eloreta_options_of_the_wrong_type(op_vol, evoked_meeg, params, error, match):
    with pytest.raises(error, match=match):
        minnorm.apply_inverse(evoked_meeg, op_vol, 1 / 9, "eLORETA", method_params=params)


@pytest.mark.parametrize("nave, error", [("3", TypeError), (True, TypeError),
                                         (np.inf, ValueError), (0, ValueError)])
def test_nave_domain(op_vol, nave, error):
    with pytest.raises(error, match=r"nave \(number of averages\) must be a"):
        minnorm.prepare_kernel(op_vol, lambda2=1 / 9, nave=nave)


# --------------------------------------------------------------------------- NaN estimates


@pytest.mark.parametrize("method", ["dSPM", "sLORETA"])
def test_lambda2_that_underflows_the_noise_normalisation(op_vol, evoked_meeg, method):
    """MNE-Python returns NaN here; minnorm says which setting to change."""
    with pytest.raises(ValueError, match=rf"lambda2 = 1e\+300 is too large for this operator: "
                                         rf"the {method} kernel of \d+ sources"):
        minnorm.apply_inverse(evoked_meeg, op_vol, 1e300, method)
    stc = minnorm.apply_inverse(evoked_meeg, op_vol, 1e30, method)  # large, still finite
    assert np.all(np.isfinite(stc.data))


def test_depth_exponent_that_underflows_the_prior(evoked_meeg, fwd_vol_meeg, noise_cov):
    with pytest.raises(ValueError, match=r"depth exponent 100 drives the depth weights of \d+ "
                                         r"of \d+ sources out of floating-point range"):
        minnorm.make_inverse_operator(evoked_meeg.info, fwd_vol_meeg, noise_cov, depth=100)
    op = minnorm.make_inverse_operator(evoked_meeg.info, fwd_vol_meeg, noise_cov, depth=5)
    assert np.all(np.isfinite(minnorm.apply_inverse(evoked_meeg, op, 1 / 9).data))


# --------------------------------------------------------------------------- paths


def test_home_of_an_unknown_user():
    with pytest.raises(FileNotFoundError, match=r"there is no user 'nosuchuser-minnorm'"):
        minnorm.read_inverse_operator("~nosuchuser-minnorm/x-inv.fif")
    assert minnorm.io.paths.user_path("~/x") == Path.home() / "x"


# --------------------------------------------------------------------------- atomic outputs


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def test_outputs_get_the_users_normal_permissions(tmp_path):
    paths = minnorm.io.check_new_outputs(tmp_path / "new" / "dir", ["a.html"])
    paths[0].parent.mkdir(parents=True)
    with minnorm.io.AtomicOutputs(paths) as out:
        minnorm.io.write_text_output(out, paths[0], "<p>hi</p>")
    assert stat.S_IMODE(paths[0].stat().st_mode) == _default_mode()
    assert paths[0].read_text() == "<p>hi</p>"


def test_a_folder_where_a_file_goes_is_refused_up_front(tmp_path):
    (tmp_path / "b.txt").mkdir()
    for overwrite in (False, True):
        with pytest.raises(IsADirectoryError, match=r"b\.txt is a folder, and a file is to be "
                                                    r"written there"):
            minnorm.io.AtomicOutputs([tmp_path / "a.txt", tmp_path / "b.txt"],
                                     overwrite=overwrite)
    with pytest.raises(IsADirectoryError):
        minnorm.io.check_new_outputs(tmp_path, ["a.txt", "b.txt"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.txt"]


def test_a_broken_link_is_an_existing_output(tmp_path):
    (tmp_path / "a.txt").symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileExistsError, match=r"a\.txt \(a broken symbolic link\) exists"):
        minnorm.io.AtomicOutputs([tmp_path / "a.txt"])
    with minnorm.io.AtomicOutputs([tmp_path / "a.txt"], overwrite=True) as out:
        minnorm.io.write_text_output(out, tmp_path / "a.txt", "new")
    assert not (tmp_path / "a.txt").is_symlink() and (tmp_path / "a.txt").read_text() == "new"
    assert not (tmp_path / "nowhere").exists()  # written in place of the link, not through it


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_failed_move_undoes_the_earlier_ones(tmp_path, monkeypatch, overwrite):
    """The last of three moves fails: the first two are undone, old files come back."""
    names = ["a.txt", "b.txt", "c.txt"]
    if overwrite:
        for name in names:
            (tmp_path / name).write_text(f"old {name}")
    before = {p.name: p.read_text() for p in tmp_path.iterdir()}
    real = os.replace
    moved = []

    def replace(src, dst):
        if Path(src).name == "c.txt" and Path(dst) == tmp_path / "c.txt":  # the new c
            raise OSError(28, "No space left on device")
        moved.append(dst)
        real(src, dst)

    monkeypatch.setattr(minnorm.io.atomic.os, "replace", replace)
    with pytest.raises(OSError, match="No space left"):
        with minnorm.io.AtomicOutputs([tmp_path / n for n in names], overwrite=overwrite) as out:
            for name in names:
                minnorm.io.write_text_output(out, tmp_path / name, f"new {name}")
    assert any(Path(d) == tmp_path / "b.txt" for d in moved)  # b had been moved into place
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == before


def _dipoles_in_a_sphere(evoked_meeg, rr):
    """(MEG info, free-orientation forward, MEG evoked) for dipoles at ``rr`` (m) in a sphere
    centred at (0, 0, 4 cm)."""
    import mne

    info = mne.pick_info(evoked_meeg.info, mne.pick_types(evoked_meeg.info, meg=True))
    sphere = mne.make_sphere_model(r0=(0.0, 0.0, 0.04), head_radius=None)
    rr = np.asarray(rr, dtype=float)
    src = mne.setup_volume_source_space(pos=dict(rr=rr, nn=np.tile([0.0, 0.0, 1.0], (len(rr), 1))),
                                        verbose="error")
    fwd = mne.make_forward_solution(info, None, src, sphere, eeg=False, verbose="error")
    return info, fwd, evoked_meeg.copy().pick(info.ch_names)


def test_a_source_no_sensor_sees(evoked_meeg, noise_cov):
    """At the centre of a spherical head a dipole has no field: MNE-Python fails on an
    inf in its depth prior; minnorm gives MNE's estimate (zero there) and refuses the
    noise-normalised ones, which would be NaN, naming the source."""
    info, fwd, evoked = _dipoles_in_a_sphere(evoked_meeg, [[0.0, 0.0, 0.04], [0.02, 0.01, 0.06],
                                                           [-0.03, 0.0, 0.05]])
    op = minnorm.make_inverse_operator(info, fwd, noise_cov, verbose="error")
    stc = minnorm.apply_inverse(evoked, op, 1 / 9, "MNE")
    assert np.all(stc.data[0] == 0) and np.all(np.isfinite(stc.data))
    assert np.all(np.abs(stc.data[1:]).max(axis=1) > 0)
    for method in ("dSPM", "sLORETA"):
        with pytest.raises(ValueError, match=r"1 sources \(index 0\) have zero gain: no sensor "
                                             r"sees them"):
            minnorm.apply_inverse(evoked, op, 1 / 9, method)


@pytest.mark.parametrize("pick_ori", [None, "vector"])
def test_eloreta_with_fewer_source_components_than_data_dimensions(evoked_meeg, noise_cov,
                                                                    pick_ori):
    """Three free dipoles (9 gain columns) against 303 whitened MEG dimensions: MNE-Python
    fits eLORETA there; minnorm once refused it ("needs the gain in its 303 components")."""
    import mne

    info, fwd, evoked = _dipoles_in_a_sphere(evoked_meeg, [[0.01, 0.0, 0.06], [0.02, 0.01, 0.06],
                                                           [-0.03, 0.0, 0.05]])
    inv = mne.minimum_norm.make_inverse_operator(info, fwd, noise_cov, verbose="error")
    ref = mne.minimum_norm.apply_inverse(evoked, inv, 1 / 9, "eLORETA", pick_ori=pick_ori,
                                         verbose="error")
    op = minnorm.make_inverse_operator(info, fwd, noise_cov, verbose="error")
    assert op.eigen_leads.shape[1] == 9 < op.whitener.n_nonzero
    stc = minnorm.apply_inverse(evoked, op, 1 / 9, "eLORETA", pick_ori=pick_ori)
    assert np.linalg.norm(stc.data - ref.data) / np.linalg.norm(ref.data) < 1e-3
