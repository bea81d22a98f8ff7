"""Files and helpers for the command-line tests (imported by test_cli*.py).

The real sample recording and the session's forward models are written to a
temporary folder as the files a user would have; every bad-input variant is
derived from them.
"""

import gzip
import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import mne
import pytest

from minnorm.cli import main

CONDITION = "Left Auditory"


@dataclass(frozen=True)
class Files:
    """Paths of good input files (read-only: copy before changing)."""

    folder: Path
    fwd_surf: Path  # template cortex, MEG + EEG
    fwd_vol: Path  # 12 mm volume grid, MEG + EEG
    fwd_mixed: Path  # cortex + thalami, MEG
    cov: Path
    cov_trunc: Path  # marks MEG 2443 and EEG 053 bad
    evoked: Path  # 4 conditions: the sample file, decompressed
    evoked_gz: Path  # the sample file as it is (.fif.gz)
    epochs: Path  # 12 epochs
    raw: Path
    label_lh: Path  # an auditory label on the template cortex


@pytest.fixture(scope="session")
def files(tmp_path_factory, sample_files, fwd_surf_meeg, fwd_vol_meeg, fwd_mixed_meg,
          epochs_meeg, template_labels):
    folder = tmp_path_factory.mktemp("cli-inputs")
    paths = {}
    for name, fwd in (("fwd_surf", fwd_surf_meeg), ("fwd_vol", fwd_vol_meeg),
                      ("fwd_mixed", fwd_mixed_meg)):
        paths[name] = folder / f"{name}-fwd.fif"
        mne.write_forward_solution(paths[name], fwd, verbose="error")
    # MNE-Python reads a .fif.gz by seeking in the gzip stream: ~2.3 s for all four
    # conditions, ~0.3 s decompressed. The same bytes, decompressed once, for the many runs
    # that test something else; test_cli reads the .gz itself.
    paths["evoked"] = folder / sample_files.evoked.name.removesuffix(".gz")
    with gzip.open(sample_files.evoked) as src, open(paths["evoked"], "wb") as dst:
        shutil.copyfileobj(src, dst)
    paths["epochs"] = folder / "noisy-epo.fif"
    epochs_meeg.save(paths["epochs"], verbose="error")
    paths["label_lh"] = folder / "aud-lh.label"
    template_labels[0].save(paths["label_lh"])
    return Files(folder=folder, cov=sample_files.cov, cov_trunc=sample_files.cov_trunc,
                 evoked_gz=sample_files.evoked, raw=sample_files.raw_sss, **paths)


@pytest.fixture(scope="session")
def evoked_one(sample_files):
    """The evoked response the tests invert ("Left Auditory"), as MNE reads it."""
    return mne.read_evokeds(sample_files.evoked, condition=CONDITION, verbose="error")


def run(capsys, *argv):
    """``minnorm ARGV`` in this process: (exit status, stdout, stderr)."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def snapshot(folder) -> dict:
    """Name → SHA-1 of every file under ``folder`` (hidden ones included)."""
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def evoked_args(files, fwd=None, *, condition=CONDITION):
    """Arguments of a fast, valid run on the evoked file (volume forward)."""
    return ["apply", "--fwd", fwd or files.fwd_vol, "--cov", files.cov,
            "--evoked", files.evoked, "--condition", condition]
