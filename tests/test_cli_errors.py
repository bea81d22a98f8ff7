"""Bad input to `minnorm apply`: one line naming the problem and the fix, a non-zero
exit status, no traceback, and no output file written or changed."""

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import mne
import numpy as np
import pytest

import minnorm._mne
import minnorm.engine.checks
import minnorm.io.paths
from _cli_files import CONDITION, evoked_args, evoked_one, files, run, snapshot  # noqa: F401
from minnorm.cli import main


@dataclass(frozen=True)
class Bad:
    """Paths of broken variants of the good files."""

    folder: Path


def _save_evoked(path, evoked):
    mne.write_evokeds(path, evoked, overwrite=True, verbose="error")
    return path


def _save_cov(path, cov):
    mne.write_cov(path, cov, overwrite=True, verbose="error")
    return path


@pytest.fixture(scope="module")
def bad(tmp_path_factory, files, evoked_one):
    """Write every broken file once; returns the folder (files named by case)."""
    d = tmp_path_factory.mktemp("bad-inputs")
    ev = evoked_one.copy()
    (d / "garbage-fwd.fif").write_bytes(b"this is not a FIF file\n" * 10)
    (d / "truncated-fwd.fif").write_bytes(files.fwd_vol.read_bytes()[:50_000])
    (d / "folder-fwd.fif").mkdir()
    nan = ev.copy()
    nan.data[nan.ch_names.index("MEG 0113"), 100:110] = np.nan
    _save_evoked(d / "nan-ave.fif", nan)
    # rename_channels also renames the channels in the projectors, which Evoked.copy()
    # shares with the session's evoked: rename a freshly read one
    renamed = mne.read_evokeds(files.evoked, condition=CONDITION, verbose="error")
    renamed.rename_channels({"EEG 001": "EEG 999"}, verbose="error")
    _save_evoked(d / "renamed-ave.fif", renamed)
    noref = ev.copy()
    with noref.info._unlock():
        noref.info["projs"] = [p for p in noref.info["projs"] if "EEG" not in p["desc"]]
    _save_evoked(d / "noref-ave.fif", noref)
    units = ev.copy()
    units.data[mne.pick_types(units.info, meg=True)] *= 1e15  # fT stored as T
    _save_evoked(d / "units-ave.fif", units)
    bads = ev.copy()
    bads.info["bads"] = ["MEG 2443"]
    _save_evoked(d / "bads-ave.fif", bads)

    cov = mne.read_cov(files.cov, verbose="error")
    c = cov.copy()
    c["data"][5, 5] = np.inf
    _save_cov(d / "inf-cov.fif", c)
    c = cov.copy()
    std = np.sqrt(np.diag(cov.data))
    eig, vec = np.linalg.eigh(cov.data / np.outer(std, std))
    eig[0] = -0.5  # a direction of negative variance
    c["data"] = (vec * eig) @ vec.T * np.outer(std, std)
    _save_cov(d / "notpsd-cov.fif", c)
    c = cov.copy()
    c["nfree"] = 100
    _save_cov(d / "few-cov.fif", c)
    _save_cov(d / "missing-cov.fif", cov.copy().pick_channels(
        [n for n in cov.ch_names if n != "MEG 0113"], ordered=True, verbose="error"))

    fwd = mne.read_forward_solution(files.fwd_vol, verbose="error")
    fwd["sol"]["data"][3, 7] = fwd["_orig_sol"][3, 7] = np.nan  # MNE writes _orig_sol
    mne.write_forward_solution(d / "nan-fwd.fif", fwd, verbose="error")

    epochs = mne.read_epochs(files.epochs, verbose="error")
    epochs.drop(np.arange(len(epochs)), verbose="error")
    epochs.save(d / "empty-epo.fif", verbose="error")

    label = mne.read_label(files.label_lh)
    text = files.label_lh.read_text().splitlines()
    (d / "other-subject-lh.label").write_text(
        "\n".join(["#!ascii label, from subject sample vox2ras=TkReg", *text[1:]]) + "\n")
    (d / "wrong-hemi-rh.label").write_text(files.label_lh.read_text())
    far = mne.Label(np.r_[label.vertices[:3], 200_000], hemi="lh", name="far")
    far.save(d / "far-lh.label")
    return Bad(d)


def model(files, fwd=None):
    return ["--fwd", fwd or files.fwd_vol, "--cov", files.cov]


def ev(files, path=None, condition=CONDITION):
    return ["--evoked", path or files.evoked, *(["--condition", condition] if condition else [])]


# (id, argv without --out, exit status, regex of the message)
CASES = [
    # files: missing, unreadable, of the wrong kind
    ("missing-file", lambda f, b: ["apply", "--fwd", b / "nope-fwd.fif", "--cov", f.cov,
                                   *ev(f)], 1, r"--fwd: no such file: .*nope-fwd\.fif"),
    ("folder-as-file", lambda f, b: ["apply", *model(f, b / "folder-fwd.fif"), *ev(f)], 1,
     r"--fwd: .*folder-fwd\.fif is a folder, not a file"),
    ("not-fif", lambda f, b: ["apply", *model(f, b / "garbage-fwd.fif"), *ev(f)], 1,
     r"--fwd: .*garbage-fwd\.fif is not a FIF file or is damaged"),
    ("truncated", lambda f, b: ["apply", *model(f, b / "truncated-fwd.fif"), *ev(f)], 1,
     r"--fwd: .*truncated-fwd\.fif is damaged or truncated"),
    ("cov-as-fwd", lambda f, b: ["apply", "--fwd", f.cov, "--cov", f.cov, *ev(f)], 1,
     r"--fwd: sample_audvis_test-cov\.fif is a noise covariance file, not a forward "
     r"solution: pass it to --cov instead"),
    ("fwd-as-cov", lambda f, b: ["apply", "--fwd", f.fwd_vol, "--cov", f.fwd_vol, *ev(f)], 1,
     r"--cov: fwd_vol-fwd\.fif is a forward solution file, not a noise covariance: pass it "
     r"to --fwd"),
    ("evoked-as-epochs", lambda f, b: ["apply", *model(f), "--epochs", f.evoked], 1,
     r"--epochs: .* is an evoked file, not an epochs: pass it to --evoked"),
    ("raw-as-evoked", lambda f, b: ["apply", *model(f), "--evoked", f.raw], 1,
     r"--evoked: .* is a raw file, not an evoked: pass it to --raw"),
    # channels and bads
    ("channel-missing-from-fwd-and-cov",
     lambda f, b: ["apply", *model(f), *ev(f, b / "renamed-ave.fif", None)], 1,
     r"good data channels are not in the forward solution \('EEG 999'\)"),
    ("channel-missing-from-cov",
     lambda f, b: ["apply", "--fwd", f.fwd_vol, "--cov", b / "missing-cov.fif", *ev(f)], 1,
     r"1 good data channels are not in the noise covariance \('MEG 0113'\)"),
    ("bad-in-cov-only", lambda f, b: ["apply", "--fwd", f.fwd_vol, "--cov", f.cov_trunc,
                                      *ev(f)], 1,
     r"2 channels are bad in the noise covariance but not in the data \('MEG 2443', "
     r"'EEG 053'\): add them to info\['bads'\] .*--union-bads"),
    ("bad-in-data-only", lambda f, b: ["apply", *model(f), *ev(f, b / "bads-ave.fif", None)],
     1, r"1 channels are bad in the data but not in the noise covariance \('MEG 2443'\)"),
    # NaN / Inf
    ("nan-data", lambda f, b: ["apply", *model(f), *ev(f, b / "nan-ave.fif", None)], 1,
     r"the data contains 10 NaN or Inf values in 1 rows \('MEG 0113'\)"),
    ("nan-forward", lambda f, b: ["apply", *model(f, b / "nan-fwd.fif"), *ev(f)], 1,
     r"the forward solution contains 1 NaN or Inf values in 1 rows"),
    ("inf-cov", lambda f, b: ["apply", "--fwd", f.fwd_vol, "--cov", b / "inf-cov.fif",
                              *ev(f)], 1, r"the noise covariance contains 1 NaN or Inf"),
    # covariance
    ("cov-not-psd", lambda f, b: ["apply", "--fwd", f.fwd_vol, "--cov", b / "notpsd-cov.fif",
                                  *ev(f)], 1,
     r"the noise covariance is not positive semi-definite .*recompute it"),
    ("cov-few-samples", lambda f, b: ["apply", "--fwd", f.fwd_vol, "--cov", b / "few-cov.fif",
                                      *ev(f)], 1,
     r"estimated from 100 samples for 366 channels: at least 366 are needed"),
    # EEG reference
    ("eeg-without-average-reference",
     lambda f, b: ["apply", *model(f), *ev(f, b / "noref-ave.fif", None)], 1,
     r"EEG average reference \(using a projector\) is mandatory .*set_eeg_reference"),
    # option values
    ("lambda2-zero", lambda f, b: ["apply", *model(f), *ev(f), "--lambda2", "0"], 2,
     r"argument --lambda2: lambda2 must be > 0"),
    ("lambda2-negative", lambda f, b: ["apply", *model(f), *ev(f), "--lambda2", "-1"], 2,
     r"lambda2 must be > 0"),
    ("snr-zero", lambda f, b: ["apply", *model(f), *ev(f), "--snr", "0"], 2,
     r"argument --snr: snr must be > 0"),
    ("loose-above-1", lambda f, b: ["apply", *model(f), *ev(f), "--loose", "1.5"], 2,
     r"argument --loose: loose must be between 0 \(fixed\) and 1 \(free\)"),
    ("loose-negative", lambda f, b: ["apply", *model(f), *ev(f), "--loose", "-0.1"], 2,
     r"loose must be between 0"),
    ("depth-negative", lambda f, b: ["apply", *model(f), *ev(f), "--depth", "-1"], 2,
     r"argument --depth: depth must be >= 0"),
    ("unknown-method", lambda f, b: ["apply", *model(f), *ev(f), "--method", "LORETA"], 2,
     r"argument --method: invalid choice: 'LORETA'"),
    ("unknown-pick-ori", lambda f, b: ["apply", *model(f), *ev(f), "--pick-ori", "tangent"],
     2, r"argument --pick-ori: invalid choice: 'tangent'"),
    ("fixed-on-volume", lambda f, b: ["apply", *model(f), *ev(f), "--fixed"], 1,
     r"fixed orientation .* needs surface normals, which volume source spaces lack"),
    ("normal-on-volume", lambda f, b: ["apply", *model(f), *ev(f), "--pick-ori", "normal"], 1,
     r'pick_ori="normal" needs surface normals'),
    ("inv-and-fwd", lambda f, b: ["apply", "--inv", f.fwd_vol, *model(f), *ev(f)], 2,
     r"--inv is a ready inverse operator: --fwd, --cov cannot change it"),
    ("no-model", lambda f, b: ["apply", "--cov", f.cov, *ev(f)], 2,
     r"give --fwd and --cov .* or --inv"),
    # labels
    ("label-other-subject",
     lambda f, b: ["apply", *model(f, f.fwd_surf), *ev(f), "--label",
                   b / "other-subject-lh.label"], 1,
     r"label 'other-subject-lh' is of subject 'sample', but the source space is of "
     r"'fsaverage5_in_sample': morph it"),
    ("label-other-hemisphere",
     lambda f, b: ["apply", *model(f, f.fwd_surf), *ev(f), "--label",
                   b / "wrong-hemi-rh.label"], 1,
     r"says right hemisphere, but its positions are those of the left hemisphere's "
     r"vertices: it is a lh label"),
    ("label-vertex-out-of-range",
     lambda f, b: ["apply", *model(f, f.fwd_surf), *ev(f), "--label", b / "far-lh.label"], 1,
     r"label 'far-lh' has vertex 200000, but the left hemisphere .* has 10242 vertices"),
    ("label-on-volume", lambda f, b: ["apply", *model(f), *ev(f), "--label", f.label_lh], 1,
     r"labels need a surface source space, got a volume one"),
    # selections
    ("unknown-condition", lambda f, b: ["apply", *model(f), *ev(f, condition="Nope")], 1,
     r"condition 'Nope' is not in sample_audvis_test-ave\.fif: its conditions are "
     r"0: 'Left Auditory', 1: 'Right Auditory'"),
    ("condition-index-out-of-range", lambda f, b: ["apply", *model(f), *ev(f, condition="7")],
     1, r"condition '7' is not in"),
    ("no-condition-with-several", lambda f, b: ["apply", *model(f), *ev(f, condition=None)],
     1, r"holds 4 conditions .*choose one with --condition"),
    ("tmin-after-data", lambda f, b: ["apply", *model(f), *ev(f), "--tmin", "2"], 1,
     r"tmin = 2 s is outside the evoked .* \(-0\.200 … 0\.499 s\)"),
    ("tmax-before-data", lambda f, b: ["apply", *model(f), "--raw", f.raw, "--tmax", "-1"], 1,
     r"tmax = -1 s is outside the raw"),
    ("tmin-after-tmax", lambda f, b: ["apply", *model(f), *ev(f), "--tmin", "0.3",
                                      "--tmax", "0.1"], 1, r"tmin = 0\.3 s is after tmax"),
    ("empty-epochs", lambda f, b: ["apply", *model(f), "--epochs", b / "empty-epo.fif"], 1,
     r"empty-epo\.fif holds no epoch"),
    # settings that drive the estimate out of floating-point range (MNE-Python gives NaN)
    ("lambda2-underflows-dSPM", lambda f, b: ["apply", *model(f), *ev(f), "--lambda2", "1e300"],
     1, r"lambda2 = 1e\+300 is too large for this operator: the dSPM kernel of \d+ sources "
        r"leaves floating-point range .*typically 1/9"),
    ("depth-overflows", lambda f, b: ["apply", *model(f), *ev(f), "--depth", "100"], 1,
     r"depth exponent 100 drives the depth weights of \d+ of \d+ sources out of "
     r"floating-point range .*typically 0\.8"),
    # a home folder of a user who does not exist
    ("unknown-user-input", lambda f, b: ["apply", "--fwd", "~nosuchuser-minnorm/x-fwd.fif",
                                         "--cov", f.cov, *ev(f)], 1,
     r"~nosuchuser-minnorm/x-fwd\.fif: there is no user 'nosuchuser-minnorm' on this machine"),
]


@pytest.mark.parametrize("build, status, pattern", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input(files, bad, tmp_path, capsys, build, status, pattern):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for name in ("result-vl.stc", "result-lh.stc", "result-rh.stc"):  # an earlier run's
        (out_dir / name).write_bytes(b"the previous result")
    before = snapshot(out_dir)
    code, out, err = run(capsys, *build(files, bad.folder), "--out", out_dir / "result",
                         "--overwrite")
    assert code == status, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert re.search(pattern, err), err
    assert err.startswith("minnorm apply: error: ")
    assert out == ""
    assert snapshot(out_dir) == before  # nothing written or changed
    assert len(list(out_dir.iterdir())) == 3  # not even a temporary folder left


def test_union_bads_does_as_mne(files, tmp_path, capsys):
    code, _, err = run(capsys, "apply", "--fwd", files.fwd_vol, "--cov", files.cov_trunc,
                       *ev(files), "--union-bads", "--out", tmp_path / "x")
    assert code == 0, err
    assert (tmp_path / "x-vl.stc").exists()


def test_wrong_units_warn_and_go_on(files, bad, tmp_path, capsys):
    code, out, err = run(capsys, "apply", *model(files), *ev(files, bad.folder / "units-ave.fif",
                                                            None), "--out", tmp_path / "x")
    assert code == 0
    lines = err.splitlines()
    assert any(re.match(r"minnorm apply: warning: mag data have a typical amplitude of "
                        r"[\d.e+]+ T, outside the plausible .* stored in fT", line)
               for line in lines), err
    assert any("grad data have a typical amplitude" in line for line in lines), err
    assert (tmp_path / "x-vl.stc").exists() and "Peak value" in out


@pytest.mark.parametrize("case", ["missing", "parent-is-a-file", "not-writable", "is-a-folder"])
def test_output_folder(files, tmp_path, capsys, monkeypatch, case):
    if case == "missing":
        out, pattern = tmp_path / "nope" / "x", r"the output folder .*nope does not exist: create"
    elif case == "parent-is-a-file":
        (tmp_path / "file").write_text("")
        out, pattern = tmp_path / "file" / "x", r"the output folder .*file is not a folder"
    elif case == "is-a-folder":
        (tmp_path / "results").mkdir()
        out, pattern = tmp_path / "results", r"--out .*results is a folder: give a file prefix"
    else:  # root may write anywhere: make the check see a read-only folder
        real = os.access
        monkeypatch.setattr(minnorm.io.paths.os, "access",
                            lambda p, mode: False if Path(p) == tmp_path else real(p, mode))
        out, pattern = tmp_path / "x", r"the output folder .* is not writable"
    before = snapshot(tmp_path)
    code, _, err = run(capsys, *evoked_args(files), "--out", out)
    assert code == 1 and re.search(pattern, err) and err.count("\n") == 1, err
    assert snapshot(tmp_path) == before


def test_raw_window_too_large_for_memory(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(minnorm.engine.checks, "available_memory", lambda: 2**20)
    code, _, err = run(capsys, "apply", *model(files), "--raw", files.raw, "--out",
                       tmp_path / "x")
    assert code == 1 and err.count("\n") == 1, err
    assert re.search(r"the raw estimate \(752 source rows × 301 samples\) would take "
                     r"3\.5 MiB of memory, more than the 1\.0 MiB available: choose a "
                     r"shorter window with --tmin/--tmax", err), err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root reads every file")
def test_unreadable_file(files, tmp_path, capsys):
    locked = tmp_path / "locked-cov.fif"
    locked.write_bytes(files.cov.read_bytes())
    locked.chmod(0)
    code, _, err = run(capsys, "apply", "--fwd", files.fwd_vol, "--cov", locked, *ev(files),
                       "--out", tmp_path / "x")
    assert code == 1 and "permission denied" in err


def _epochs_args(files, folder):
    return ["apply", *model(files), "--epochs", files.epochs, "--out", folder / "e",
            "--save-inverse"]


@pytest.fixture(scope="module")
def old_outputs(tmp_path_factory, files):
    """A folder of earlier results: an evoked run's and an epochs run's (with the operator)."""
    folder = tmp_path_factory.mktemp("old-outputs")
    assert main([str(a) for a in [*evoked_args(files), "--out", folder / "x"]]) == 0
    assert main([str(a) for a in _epochs_args(files, folder)]) == 0
    return folder


@pytest.mark.parametrize("failure, status, pattern", [
    (KeyboardInterrupt(), 130, r"interrupted: no output was written or changed"),
    (OSError(28, "No space left on device"), 1,
     r"No space left on device \(no output was written or changed: free disk space"),
    (RuntimeError("a crash"), 3, r"internal error: RuntimeError: a crash .*--debug"),
])
def test_interrupted_write_keeps_the_old_files(files, old_outputs, tmp_path, capsys, monkeypatch,
                                               failure, status, pattern):
    """Ctrl-C, a full disk or a crash while writing: each old file stays, complete."""
    shutil.copytree(old_outputs, tmp_path, dirs_exist_ok=True)  # the earlier runs' files
    args_epochs = _epochs_args(files, tmp_path)
    before = snapshot(tmp_path)
    assert sorted(before) == [*(f"e-epoch{k:02d}-vl.stc" for k in range(12)), "e-inv.fif",
                              "x-vl.stc"]
    real_save = minnorm._mne.save_stc
    calls = []

    def save_then_fail(stc, prefix, *, ftype):
        calls.append(prefix)
        if len(calls) == 3:  # mid-way: files written before stay in the temporary folder
            Path(str(prefix) + "-vl.stc").write_bytes(b"partial")
            raise failure
        real_save(stc, prefix, ftype=ftype)

    monkeypatch.setattr(minnorm._mne, "save_stc", save_then_fail)
    code, out, err = run(capsys, *args_epochs, "--method", "MNE", "--overwrite")
    assert code == status and re.search(pattern, err) and err.count("\n") == 1, err
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before)  # no temporary folder


@pytest.mark.parametrize("argv, pattern", [
    (lambda f, b: ["story", "--fwd", f.fwd_vol, "--cov", f.cov, "--evoked", b / "nan-ave.fif"],
     r"the evoked response 'Left Auditory' contains 10 NaN or Inf values in 1 rows "
     r"\('MEG 0113'\)"),
    (lambda f, b: ["story", "--fwd", "~nosuchuser-minnorm/x-fwd.fif"],
     r"there is no user 'nosuchuser-minnorm' on this machine"),
    (lambda f, b: ["story", "--fwd", f.cov], r"--fwd: .* is a noise covariance file"),
    (lambda f, b: ["story", "--fwd", b / "nope-fwd.fif"], r"--fwd: no such file"),
    (lambda f, b: ["story", "--fwd", f.fwd_vol, "--evoked", f.evoked], r"holds 4 conditions"),
])
def test_story_bad_input(files, bad, capsys, argv, pattern):
    code, out, err = run(capsys, *argv(files, bad.folder))
    assert code == 1 and out == "" and err.count("\n") == 1, err
    assert err.startswith("minnorm story: error: ") and re.search(pattern, err), err


def test_story_refuses_a_lambda2_rule(files, capsys):
    code, out, err = run(capsys, "story", "--fwd", files.fwd_vol, "--lambda2", "gcv")
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert re.search(r"--lambda2 gcv: the rules choose λ² from the data being estimated "
                     r"\(minnorm apply --lambda2 gcv\), and minnorm story estimates none: give "
                     r"a number", err), err


def test_sigterm_cleans_up_like_ctrl_c(files, tmp_path):
    """`kill` during a run: exit status 130, no output, no temporary folder."""
    import signal
    import subprocess
    import sys
    import time

    cmd = [sys.executable, "-m", "minnorm.cli", "apply", "--fwd", files.fwd_surf, "--cov",
           files.cov, "--epochs", files.epochs, "--method", "eLORETA", "--out", tmp_path / "x"]
    proc = subprocess.Popen(list(map(str, cmd)), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(tmp_path.iterdir()) and time.monotonic() < deadline:  # the temporary folder
        time.sleep(0.05)
    assert any(tmp_path.iterdir()), "the run never started writing"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted: no output was written or changed" in err
    assert list(tmp_path.iterdir()) == []



def test_story_of_a_forward_and_covariance_alone(files, capsys):
    """The documented `story --fwd F --cov C`: the projectors come from the covariance."""
    code, out, err = run(capsys, "story", "--fwd", files.fwd_vol, "--cov", files.cov)
    assert code == 0, err
    assert "SSP projectors: PCA-v1 (active)" in out
    assert re.search(r"At λ² = 0\.111: \d+ of the \d+ whitened components", out), out
    assert "Data b:" not in out  # no data given: no SNR line


@pytest.mark.parametrize("argv, pattern", [
    (["apply", "--snr", "1e300"], r"argument --snr: snr = 1e300 is out of range: λ² = 1/SNR² "
                                  r"is not a representable positive number; use an snr "
                                  r"between 1e-150 and 1e150"),
    (["apply", "--snr", "1e-300"], r"argument --snr: snr = 1e-300 is out of range"),
    (["demo", "--snr", "1e200"], r"argument --snr: snr = 1e200 is out of range"),
    (["demo", "--seed", "-1"], r"argument --seed: must be between 0 and 4294967295, got -1"),
    (["demo", "--seed", "99999999999999999999"], r"argument --seed: must be between 0 and"),
    (["decode-demo", "--epochs", "10"], r"argument --epochs: must be between 30 and 5000"),
    (["decode-demo", "--epochs", "99999999999999999999"],
     r"argument --epochs: must be between 30 and 5000"),
    (["decode-demo", "--permutations", "0"],
     r"argument --permutations: must be between 1 and 1000, got 0"),
    (["decode-demo", "--seed", "2.5"], r"argument --seed: expected a whole number, got '2\.5'"),
])
def test_option_values_outside_their_domain(capsys, tmp_path, argv, pattern):
    """Every numeric option is checked over its whole domain: exit 2, one line, no output."""
    code, out, err = run(capsys, *argv, "--out", tmp_path / "x")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert re.search(pattern, err), err
    assert list(tmp_path.iterdir()) == []


def test_nan_estimate_is_never_written(files, tmp_path, capsys, monkeypatch):
    """The last guard: an estimate with NaN is refused before anything is written."""
    import minnorm.cli.estimates

    real = minnorm.cli.estimates.apply_inverse

    def nan_estimate(*args, **kwargs):
        stc = real(*args, **kwargs)
        stc.data[3, 4] = np.nan
        return stc

    monkeypatch.setattr(minnorm.cli.estimates, "apply_inverse", nan_estimate)
    code, _, err = run(capsys, *evoked_args(files), "--out", tmp_path / "x")
    assert code == 1 and err.count("\n") == 1, err
    assert "the dSPM estimate has 1 NaN or Inf values, so nothing was written" in err
    assert list(tmp_path.iterdir()) == []


def test_complex_data_are_written_as_hdf5(files, evoked_one, tmp_path, capsys):
    """Hilbert-transformed data: MNE's .stc holds no complex values, so auto gives -stc.h5
    (with MNE-Python's numbers) and --format stc is refused before any work."""
    evoked = evoked_one.copy().apply_hilbert()
    path = _save_evoked(tmp_path / "hilbert-ave.fif", evoked)
    base = ["apply", *model(files, files.fwd_surf), "--evoked", path, "--pick-ori", "normal"]
    code, _, err = run(capsys, *base, "--format", "stc", "--out", tmp_path / "s")
    assert code == 1 and "the data are complex" in err and "--format h5" in err, err
    code, _, err = run(capsys, *base, "--out", tmp_path / "x")
    assert code == 0, err
    stc = mne.read_source_estimate(tmp_path / "x-stc.h5")
    assert np.iscomplexobj(stc.data)
    inv = mne.minimum_norm.make_inverse_operator(
        evoked.info, mne.read_forward_solution(files.fwd_surf, verbose="error"),
        mne.read_cov(files.cov, verbose="error"), verbose="error")
    ref = mne.minimum_norm.apply_inverse(evoked, inv, 1 / 9, "dSPM", pick_ori="normal",
                                         verbose="error")
    np.testing.assert_allclose(stc.data, ref.data, rtol=1e-6, atol=1e-6 * np.abs(ref.data).max())


@pytest.mark.parametrize("condition, asked", [
    (CONDITION, [CONDITION]),                 # found by its comment: that condition alone
    ("2", ["2", 2]),                          # not a comment: then as an index
    (3, [3]),
    ("Nope", ["Nope", None]),                 # not found: every condition, to list them
])
def test_reading_one_condition_reads_only_it(files, monkeypatch, condition, asked):
    """MNE-Python reads just the condition asked for (0.4 s instead of 2.9 s for all four of
    the sample .fif.gz); every condition is read only to list them in an error (the sample
    file's four, decompressed once for the CLI tests)."""
    import minnorm.io.fif as fif

    seen, read = [], mne.read_evokeds

    def spy(path, condition=None, **kwargs):
        seen.append(condition)
        return read(path, condition=condition, **kwargs)

    monkeypatch.setattr(fif.mne, "read_evokeds", spy)
    names = ["Left Auditory", "Right Auditory", "Left visual", "Right visual"]
    try:
        evoked = fif.read_evoked(files.evoked, condition)
    except ValueError:
        evoked = None
    assert seen == asked
    assert (evoked is None) == (condition == "Nope")
    if evoked is not None:
        assert evoked.comment == names[names.index(condition) if condition in names
                                       else int(condition)]
