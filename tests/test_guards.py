"""The command line's checks guard the Python API too, with exceptions of the right type."""

import warnings

import mne
import numpy as np
import pytest

import minnorm
from minnorm.engine import checks
from minnorm._log import MinnormWarning


@pytest.fixture(scope="module")
def op_vol(evoked_meeg, fwd_vol_meeg, noise_cov):
    return minnorm.make_inverse_operator(evoked_meeg.info, fwd_vol_meeg, noise_cov)


def test_bads_mismatch_warns_or_raises_and_equals_mne(evoked_meeg, fwd_vol_meeg,
                                                       noise_cov_trunc):
    with pytest.raises(ValueError, match=r"bad in the noise covariance but not in the data "
                                         r"\('MEG 2443', 'EEG 053'\)"):
        minnorm.make_inverse_operator(evoked_meeg.info, fwd_vol_meeg, noise_cov_trunc,
                                      on_mismatch="raise")
    with pytest.warns(MinnormWarning, match="bad in the noise covariance"):  # the default
        minnorm.make_inverse_operator(evoked_meeg.info, fwd_vol_meeg, noise_cov_trunc)
    ours = minnorm.make_inverse_operator(evoked_meeg.info, fwd_vol_meeg, noise_cov_trunc,
                                         on_mismatch="ignore")
    ref = mne.minimum_norm.make_inverse_operator(evoked_meeg.info, fwd_vol_meeg,
                                                 noise_cov_trunc, verbose="error")
    assert list(ours.ch_names) == ref["noise_cov"]["names"]
    a = minnorm.apply_inverse(evoked_meeg, ours, 1 / 9, "dSPM")
    b = mne.minimum_norm.apply_inverse(evoked_meeg, ref, 1 / 9, "dSPM", verbose="error")
    assert np.linalg.norm(a.data - b.data) / np.linalg.norm(b.data) < 1e-6
    with pytest.raises(ValueError, match="on_mismatch must be one of"):
        minnorm.make_inverse_operator(evoked_meeg.info, fwd_vol_meeg, noise_cov_trunc,
                                      on_mismatch="silently")


def test_channels_missing_from_covariance(evoked_meeg, fwd_vol_meeg, noise_cov):
    cov = noise_cov.copy().pick_channels([c for c in noise_cov.ch_names if c != "EEG 010"],
                                         ordered=True, verbose="error")
    with pytest.raises(ValueError, match=r"not in the noise covariance \('EEG 010'\)"):
        minnorm.make_inverse_operator(evoked_meeg.info, fwd_vol_meeg, cov, on_mismatch="raise")
    with pytest.warns(MinnormWarning, match=r"not in the noise covariance \('EEG 010'\)"):
        op = minnorm.make_inverse_operator(evoked_meeg.info, fwd_vol_meeg, cov)
    assert "EEG 010" not in op.ch_names  # left out, as MNE-Python does


def test_covariance_checks(evoked_meeg, fwd_vol_meeg, noise_cov):
    cov = noise_cov.copy()
    cov["nfree"] = 50
    with pytest.raises(ValueError, match="from 50 samples for 366 channels"):
        minnorm.make_inverse_operator(evoked_meeg.info, fwd_vol_meeg, cov)
    cov["method"] = "shrunk"  # regularised: full rank by construction
    minnorm.make_inverse_operator(evoked_meeg.info, fwd_vol_meeg, cov)
    cov = noise_cov.copy()
    cov["data"] = cov.data.copy()
    cov["data"][0, 0] = -cov.data[0, 0]
    with pytest.raises(ValueError, match=r"zero or negative variance \('MEG 0113'\)"):
        minnorm.make_inverse_operator(evoked_meeg.info, fwd_vol_meeg, cov)


def test_noise_cov_definiteness_is_scale_free():
    """A valid covariance mixing T² (1e-26) and V² (1e-12) scales passes; -ε does not."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((6, 200))
    scale = np.array([1e-13] * 3 + [1e-6] * 3)
    C = (A @ A.T / 200) * np.outer(scale, scale)
    names = [f"ch{k}" for k in range(6)]
    checks.check_noise_cov(C, names, nfree=200, diagonal=False, regularized=False)
    w, v = np.linalg.eigh(C / np.outer(scale, scale))
    w[0] = -0.1
    bad = (v * w) @ v.T * np.outer(scale, scale)
    with pytest.raises(ValueError, match="not positive semi-definite"):
        checks.check_noise_cov(bad, names, nfree=200, diagonal=False, regularized=False)


def test_nan_data_and_wrong_units(evoked_meeg, op_vol):
    ev = evoked_meeg.copy()
    ev.data[ev.ch_names.index("EEG 005"), 3] = np.inf
    with pytest.raises(ValueError, match=r"the data contains 1 NaN or Inf values in 1 rows "
                                         r"\('EEG 005'\)"):
        minnorm.apply_inverse(ev, op_vol)
    ev = evoked_meeg.copy()
    ev.data[mne.pick_types(ev.info, meg=False, eeg=True)] *= 1e6  # µV stored as V
    with pytest.warns(MinnormWarning, match=r"eeg data have a typical amplitude .* µV"):
        minnorm.apply_inverse(ev, op_vol)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MinnormWarning)
        minnorm.apply_inverse(evoked_meeg, op_vol)  # real data: no warning


def test_units_against_the_noise_covariance():
    data = np.full((2, 10), 1e-12) * np.arange(10)  # plausible magnetometer amplitudes
    problems = checks.unit_problems(data, ["mag", "mag"], noise_std=np.full(2, 1e-18))
    assert len(problems) == 1 and "different units" in problems[0]
    assert checks.unit_problems(data, ["mag", "mag"], noise_std=np.full(2, 1e-12)) == []


def test_operator_channel_bad_in_data(evoked_meeg, op_vol):
    ev = evoked_meeg.copy()
    ev.info["bads"] = ["MEG 0113"]
    with pytest.raises(ValueError, match=r"marked bad in the data \('MEG 0113'\)"):
        minnorm.apply_inverse(ev, op_vol)


def test_labels_of_another_subject_or_hemisphere(evoked_meeg, fwd_surf_meg, noise_cov,
                                                 template_labels):
    op = minnorm.make_inverse_operator(evoked_meeg.info, fwd_surf_meg, noise_cov)
    lh = template_labels[0]
    other = lh.copy()
    other.subject = "sample"
    with pytest.raises(ValueError, match="is of subject 'sample'"):
        minnorm.apply_inverse(evoked_meeg, op, label=other)
    swapped = mne.Label(lh.vertices, pos=lh.pos, hemi="rh", name="swapped",
                        subject=lh.subject)
    with pytest.raises(ValueError, match="it is a lh label"):
        minnorm.apply_inverse(evoked_meeg, op, label=swapped)
    far = mne.Label(np.array([5, 10**6]), hemi="lh", name="far", subject=lh.subject)
    with pytest.raises(ValueError, match="has vertex 1000000"):
        minnorm.apply_inverse(evoked_meeg, op, label=far)
    src_lh = op.src[0]
    unused = np.setdiff1d(np.arange(src_lh["np"]), src_lh["vertno"])[:3]
    empty = mne.Label(unused, hemi="lh", name="between", subject=lh.subject)
    with pytest.raises(ValueError, match="contains none of the source space's"):
        minnorm.apply_inverse(evoked_meeg, op, label=empty)
    minnorm.apply_inverse(evoked_meeg, op, label=lh)  # the right one passes


def test_file_readers_name_the_kind_and_the_fix(tmp_path, sample_files, op_vol):
    with pytest.raises(FileNotFoundError, match="no such file"):
        minnorm.read_inverse_operator(tmp_path / "none-inv.fif")
    with pytest.raises(ValueError, match="is a noise covariance file, not an inverse operator"):
        minnorm.read_inverse_operator(sample_files.cov)
    with pytest.raises(ValueError, match="must end in -inv.fif"):
        minnorm.write_inverse_operator(tmp_path / "op.fif", op_vol)


def test_write_inverse_operator_is_atomic(tmp_path, op_vol, monkeypatch):
    fname = tmp_path / "op-inv.fif"
    minnorm.write_inverse_operator(fname, op_vol)
    before = fname.read_bytes()

    def fail(path, inv, *, overwrite):
        path.write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(minnorm._mne, "write_inverse", fail)
    with pytest.raises(KeyboardInterrupt):
        minnorm.write_inverse_operator(fname, op_vol, overwrite=True)
    assert fname.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["op-inv.fif"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        minnorm.write_inverse_operator(tmp_path / "no" / "op-inv.fif", op_vol)


def test_empty_epochs(evoked_meeg, op_vol):
    epochs = mne.EpochsArray(evoked_meeg.data[np.newaxis], evoked_meeg.info, verbose="error")
    epochs.drop([0], verbose="error")
    with pytest.raises(ValueError, match="the Epochs are empty"):
        minnorm.apply_inverse_epochs(epochs, op_vol, 1.0)


@pytest.mark.parametrize("func, value, match", [
    (checks.lambda2_from_snr, 0, "snr must be > 0"),
    (checks.lambda2_from_snr, "x", "snr must be a number"),
    (checks.check_loose, 1.2, "loose must be between 0"),
    (checks.check_loose, "tight", "loose must be a number"),
    (checks.check_depth, -0.5, "depth must be >= 0"),
])
def test_option_checks(func, value, match):
    with pytest.raises(ValueError, match=match):
        func(value)


def test_time_window():
    times = np.linspace(-0.2, 0.5, 8)
    checks.check_time_window(-0.2, 0.5, times)
    with pytest.raises(ValueError, match="tmax = 0.6 s is outside the data"):
        checks.check_time_window(None, 0.6, times)
    with pytest.raises(ValueError, match="after tmax"):
        checks.check_time_window(0.3, 0.1, times)


def test_progress_bar_only_on_a_terminal_and_when_switched_on(monkeypatch):
    import io

    from minnorm import _log

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for tty, enabled, shown in ((True, True, True), (True, False, False), (False, True, False)):
        err = Terminal() if tty else io.StringIO()
        monkeypatch.setattr(_log.sys, "stderr", err)
        monkeypatch.setattr(_log, "PROGRESS_DELAY_S", 0.0)
        with _log.show_progress(enabled):
            assert list(_log.progress(range(3), desc="work")) == [0, 1, 2]
        assert ("work" in err.getvalue()) is shown
