"""`minnorm apply` and `minnorm story` on the real sample data: outputs read back
with MNE-Python equal minnorm.apply_inverse* on the same inputs."""

import re
import subprocess
import sys

import mne
import numpy as np
import pytest

import minnorm
from _cli_files import CONDITION, evoked_args, evoked_one, files, run, snapshot  # noqa: F401
from minnorm.io import read_estimates_array

STC_TOL = 1e-6  # .stc files hold float32
H5_TOL = 1e-12


def rel_err(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def operator(files, fwd_path, info, **kw):
    fwd = mne.read_forward_solution(fwd_path, verbose="error")
    cov = mne.read_cov(files.cov, verbose="error")
    return minnorm.make_inverse_operator(info, fwd, cov, **kw)


def assert_stc_equal(read, expected, tol):
    assert type(read) is type(expected)
    for a, b in zip(read.vertices, expected.vertices):
        np.testing.assert_array_equal(a, b)
    assert read.tmin == pytest.approx(expected.tmin, abs=1e-6)
    assert read.tstep == pytest.approx(expected.tstep, rel=1e-6)
    assert rel_err(read.data, expected.data) < tol


def test_evoked_surface_dspm_and_saved_inverse(files, evoked_one, tmp_path, capsys):
    code, out, err = run(capsys, "apply", "--fwd", files.fwd_surf, "--cov", files.cov,
                         "--evoked", files.evoked_gz, "--condition", CONDITION,
                         "--out", tmp_path / "aud", "--save-inverse")
    assert code == 0, err
    assert sorted(snapshot(tmp_path)) == ["aud-inv.fif", "aud-lh.stc", "aud-rh.stc"]
    op = operator(files, files.fwd_surf, evoked_one.info)
    expected = minnorm.apply_inverse(evoked_one, op, 1 / 9, "dSPM")
    read = mne.read_source_estimate(tmp_path / "aud")
    assert_stc_equal(read, expected, STC_TOL)
    # the one-paragraph summary: method, data, peak (time and place) and files
    assert out.count("\n") == 1
    peak = np.unravel_index(np.argmax(np.abs(expected.data)), expected.data.shape)
    assert f"Peak value {np.abs(expected.data).max():.4g}" in out
    assert f"t = {expected.times[peak[1]]:.3f} s" in out
    for word in ("dSPM", "λ² = 0.1111", "SNR 3", repr(CONDITION), "aud-lh.stc", "aud-inv.fif"):
        assert word in out
    # the saved operator is MNE's and gives the same estimate in MNE-Python
    inv = mne.minimum_norm.read_inverse_operator(tmp_path / "aud-inv.fif", verbose="error")
    ref = mne.minimum_norm.apply_inverse(evoked_one, inv, 1 / 9, "dSPM", verbose="error")
    assert rel_err(ref.data, expected.data) < 1e-6


def test_evoked_volume_vector_h5(files, evoked_one, tmp_path, capsys):
    code, _, err = run(capsys, *evoked_args(files), "--method", "sLORETA", "--snr", "2",
                       "--pick-ori", "vector", "--depth", "none", "--out", tmp_path / "vec")
    assert code == 0, err
    assert sorted(snapshot(tmp_path)) == ["vec-stc.h5"]
    op = operator(files, files.fwd_vol, evoked_one.info, depth=None)
    expected = minnorm.apply_inverse(evoked_one, op, 1 / 4, "sLORETA", pick_ori="vector")
    assert_stc_equal(mne.read_source_estimate(tmp_path / "vec-stc.h5"), expected, H5_TOL)


def test_mixed_source_space_goes_to_h5(files, evoked_one, tmp_path, capsys):
    code, _, err = run(capsys, *evoked_args(files, files.fwd_mixed), "--method", "MNE",
                       "--lambda2", "0.5", "--out", tmp_path / "mixed")
    assert code == 0, err
    op = operator(files, files.fwd_mixed, evoked_one.info)
    expected = minnorm.apply_inverse(evoked_one, op, 0.5, "MNE")
    read = mne.read_source_estimate(tmp_path / "mixed-stc.h5")
    assert_stc_equal(read, expected, H5_TOL)


def test_epochs_one_file_per_epoch_and_one_array(files, tmp_path, capsys):
    epochs = mne.read_epochs(files.epochs, verbose="error")  # as stored (float32)
    args = ["apply", "--fwd", files.fwd_vol, "--cov", files.cov, "--epochs", files.epochs,
            "--snr", "1", "--tmin", "0.05", "--tmax", "0.15"]
    code, out, err = run(capsys, *args, "--out", tmp_path / "ep")
    assert code == 0, err
    names = sorted(snapshot(tmp_path))
    assert names == [f"ep-epoch{k:02d}-vl.stc" for k in range(12)]
    code, _, err = run(capsys, *args, "--epochs-output", "array", "--out", tmp_path / "arr")
    assert code == 0, err
    op = operator(files, files.fwd_vol, epochs.info)
    expected = [s.crop(0.05, 0.15) for s in minnorm.apply_inverse_epochs(epochs, op, 1.0)]
    array = read_estimates_array(tmp_path / "arr-epochs.h5")
    assert array.data.shape == (12, *expected[0].data.shape)
    assert array.method == "dSPM" and array.lambda2 == 1.0
    np.testing.assert_array_equal(array.events, epochs.events)
    with minnorm.read_source_array(tmp_path / "arr-epochs.h5") as f:  # the same file, lazily
        np.testing.assert_array_equal(f.data[5], array.data[5])
        assert f.attrs["pick_ori"] == "None" and f.kind == "volume"
    for k in (0, 5, 11):
        assert_stc_equal(mne.read_source_estimate(tmp_path / f"ep-epoch{k:02d}-vl.stc"),
                         expected[k], STC_TOL)
        assert_stc_equal(array.to_mne()[k], expected[k], H5_TOL)
    assert "in epoch" in out and "12 epochs" in out


def test_raw_window(files, raw_meeg, tmp_path, capsys):
    code, _, err = run(capsys, "apply", "--fwd", files.fwd_vol, "--cov", files.cov,
                       "--raw", files.raw, "--tmin", "0.2", "--tmax", "0.6", "--snr", "1",
                       "--method", "MNE", "--out", tmp_path / "raw")
    assert code == 0, err
    op = operator(files, files.fwd_vol, raw_meeg.info)
    start, stop = raw_meeg.time_as_index([0.2, 0.6], use_rounding=True)
    expected = minnorm.apply_inverse_raw(raw_meeg, op, 1.0, "MNE", start=start, stop=stop + 1)
    assert_stc_equal(mne.read_source_estimate(tmp_path / "raw-vl.stc"), expected, STC_TOL)


def test_saved_inverse_and_label(files, evoked_one, template_labels, tmp_path, capsys):
    """--inv reuses an operator; --label restricts the output to the label's sources."""
    op = operator(files, files.fwd_surf, evoked_one.info, fixed=True)
    minnorm.write_inverse_operator(tmp_path / "op-inv.fif", op)
    code, out, err = run(capsys, "apply", "--inv", tmp_path / "op-inv.fif", "--evoked",
                         files.evoked, "--condition", "0", "--label", files.label_lh,
                         "--method", "sLORETA", "--out", tmp_path / "lab")
    assert code == 0, err
    expected = minnorm.apply_inverse(evoked_one, op, 1 / 9, "sLORETA", label=template_labels[0])
    read = mne.read_source_estimate(tmp_path / "lab")
    assert len(read.vertices[0]) == len(expected.vertices[0]) > 0 and not len(read.vertices[1])
    assert_stc_equal(read, expected, STC_TOL)
    assert "the inverse operator op-inv.fif" in out and "aud-lh.label" in out
    assert err == ""  # the label's positions (MRI frame) match the head-frame source space


def test_quiet_and_verbose(files, tmp_path, capsys):
    code, out, err = run(capsys, *evoked_args(files), "--quiet", "--out", tmp_path / "q")
    assert code == 0 and out == "" and err == ""
    code, out, err = run(capsys, *evoked_args(files), "--verbose", "--out", tmp_path / "v")
    assert code == 0 and "minnorm: Computing the SVD of the whitened, weighted gain" in err


def test_existing_outputs_need_overwrite(files, tmp_path, capsys):
    args = [*evoked_args(files), "--out", tmp_path / "x"]
    assert run(capsys, *args)[0] == 0
    before = snapshot(tmp_path)
    code, _, err = run(capsys, *args, "--method", "MNE")
    assert code == 1 and "exists" in err and "--overwrite" in err
    assert snapshot(tmp_path) == before
    assert run(capsys, *args, "--method", "MNE", "--overwrite")[0] == 0
    after = snapshot(tmp_path)
    assert sorted(after) == sorted(before) and after != before


def test_story_tells_the_story(files, capsys):
    code, out, err = run(capsys, "story", "--fwd", files.fwd_surf, "--cov", files.cov,
                         "--evoked", files.evoked, "--condition", CONDITION)
    assert code == 0, err
    fwd = mne.read_forward_solution(files.fwd_surf, verbose="error")
    n_lh, n_rh = (s["nuse"] for s in fwd["src"])
    n_cols = fwd["sol"]["data"].shape[1]
    assert f"{n_lh} + {n_rh} = {n_lh + n_rh} sources = {n_cols} columns / 3" in out
    assert "OK" in out and "MISMATCH" not in out
    for text in ("204 planar gradiometers", "102 magnetometers", "60 EEG electrodes",
                 f"of {fwd['src'][0]['np']:7d} vertices", "T/(A·m)", "V/(A·m)",
                 "(G (366 × 366) + εI (366 × 366))⁻¹", f"Lᵀ ({n_cols} × 366)",
                 "rank 362", "condition number", "rank meg 303, eeg 59",
                 "Average EEG reference", "λ² = 1/SNR² = 1/3² = 0.111",
                 "effective components", "amplitude SNR"):
        assert text in out, text
    # the rules' choices from the evoked's post-stimulus samples, next to the λ² used
    flat = " ".join(out.split())  # the paragraph is wrapped
    assert "λ² chosen from these data (t ≥ 0 s, 301 samples, nave 3)" in flat
    assert "used here: 0.111 (SNR 3)" in flat
    assert "no baseline correction" in flat  # the file's evoked is stored without one
    for rule in minnorm.inverse.lambda2.RULES:
        assert re.search(rf"{rule} [0-9.e+-]+ \(SNR [0-9.e+-]+", flat), rule
        assert f"{rule}: " in flat  # what it optimises


def test_console_script_one_line_errors_and_debug(tmp_path):
    """The installed command: no traceback unless --debug."""
    cmd = [sys.executable, "-m", "minnorm.cli", "apply", "--fwd", tmp_path / "no-fwd.fif",
           "--cov", tmp_path / "no-cov.fif", "--evoked", tmp_path / "no-ave.fif",
           "--out", tmp_path / "x"]
    res = subprocess.run(list(map(str, cmd)), capture_output=True, text=True)
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert "no such file" in res.stderr and "no-ave.fif" in res.stderr
    res = subprocess.run(list(map(str, cmd + ["--debug"])), capture_output=True, text=True)
    assert res.returncode != 0 and "Traceback" in res.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [[], ["apply"], ["story"], ["demo"], ["decode-demo"]])
def test_help_is_complete_with_examples(argv, capsys):
    code, out, _ = run(capsys, *argv, "--help")
    assert code == 0 and "examples:" in out
    if argv == ["apply"]:
        for option in ("--fwd", "--cov", "--inv", "--evoked", "--epochs", "--raw", "--condition",
                       "--tmin", "--tmax", "--method", "--snr", "--lambda2", "--loose", "--depth",
                       "--fixed", "--pick-ori", "--label", "--out", "--save-inverse",
                       "--epochs-output", "--overwrite", "--format", "--union-bads"):
            assert option in out, option
    if argv == ["demo"]:
        for option in ("--out", "--snr", "--seed", "--open", "--spacing", "--overwrite"):
            assert option in out, option
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"minnorm {minnorm.__version__}"


def test_demo_command_checks_its_input(tmp_path, capsys):
    code, _, err = run(capsys, "demo", "--snr", "0")
    assert code == 2 and "snr must be > 0" in err
    (tmp_path / "report.html").write_text("an earlier report")
    code, _, err = run(capsys, "demo", "--out", str(tmp_path), "--quiet")
    assert code == 1 and "exists: pass --overwrite" in err
    assert (tmp_path / "report.html").read_text() == "an earlier report"
