"""`minnorm resolution` on the user's files: the maps read back with MNE-Python equal
minnorm.resolution_maps on the same inputs (with --cov and with --inv), the page is
self-contained, and bad input is one line, an exit status and nothing written."""

import re
from dataclasses import dataclass
from pathlib import Path

import mne
import numpy as np
import pytest

import minnorm
from _cli_files import run, snapshot
from minnorm._mne import info_from_forward

STC_TOL = 1e-6  # .stc files hold float32


@dataclass(frozen=True)
class ResFiles:
    fwd: Path  # template cortex (ico3), MEG, free orientation
    fwd_vol: Path
    cov: Path
    cov_trunc: Path  # marks MEG 2443 and EEG 053 bad: a mismatch with the forward
    inv: Path  # minnorm's operator of fwd and cov (loose 0.2, depth 0.8)
    op: minnorm.InverseOperator  # that operator, as made in memory


@pytest.fixture(scope="module")
def res_files(tmp_path_factory, fwd_surf_meg, fwd_vol_meg, noise_cov, noise_cov_trunc):
    folder = tmp_path_factory.mktemp("resolution-inputs")
    paths = dict(fwd=folder / "surf-fwd.fif", fwd_vol=folder / "vol-fwd.fif",
                 cov=folder / "noise-cov.fif", cov_trunc=folder / "trunc-cov.fif",
                 inv=folder / "surf-inv.fif")
    mne.write_forward_solution(paths["fwd"], fwd_surf_meg, verbose="error")
    mne.write_forward_solution(paths["fwd_vol"], fwd_vol_meg, verbose="error")
    mne.write_cov(paths["cov"], noise_cov, verbose="error")
    mne.write_cov(paths["cov_trunc"], noise_cov_trunc, verbose="error")
    # what the command makes from --fwd and --cov (no data: the forward's channels)
    op = minnorm.make_inverse_operator(info_from_forward(fwd_surf_meg, noise_cov), fwd_surf_meg,
                                       noise_cov)
    minnorm.write_inverse_operator(paths["inv"], op)
    return ResFiles(**paths, op=op)


def _assert_maps_equal(out_dir, fwd, inv, *, methods, functions, metrics, **kw):
    fixed = mne.convert_forward_solution(fwd, surf_ori=True, force_fixed=True, verbose="error")
    for method in methods:
        expected = minnorm.resolution_maps(fixed, inv, method=method, functions=functions,
                                           metrics=metrics, **kw)
        assert set(expected) == {(f, m) for f in functions for m in metrics}
        for (function, metric), want in expected.items():
            got = mne.read_source_estimate(out_dir / f"{method}-{function}-{metric}")
            for a, b in zip(got.vertices, want.vertices):
                np.testing.assert_array_equal(a, b)
            np.testing.assert_allclose(got.data, want.data, rtol=STC_TOL,
                                       atol=STC_TOL * np.abs(want.data).max(),
                                       err_msg=f"{method} {function} {metric}")


def test_maps_with_cov_equal_resolution_maps(res_files, fwd_surf_meg, tmp_path, capsys):
    out_dir = tmp_path / "new" / "res"  # made by the command
    code, out, err = run(capsys, "resolution", "--fwd", res_files.fwd, "--cov", res_files.cov,
                         "--method", "MNE", "dSPM", "--metrics", "peak_err", "sd_ext",
                         "peak_amp", "--out", out_dir)
    assert code == 0, err
    names = sorted(p.name for p in out_dir.iterdir())
    assert len(names) == 2 * 2 * 3 * 2 + 1 and "resolution.html" in names
    assert "dSPM-ctf-sd_ext-rh.stc" in names
    _assert_maps_equal(out_dir, fwd_surf_meg, res_files.op,
                       methods=("MNE", "dSPM"), functions=("psf", "ctf"),
                       metrics=("peak_err", "sd_ext", "peak_amp"))
    summary = out.strip()
    assert "\n" not in summary and summary.startswith("Computed 3 resolution metrics")
    assert f"Wrote 25 files in {out_dir}" in summary and "Median PSF peak" in summary


def test_maps_with_saved_operator_equal_resolution_maps(res_files, fwd_surf_meg, tmp_path,
                                                        capsys):
    code, out, err = run(capsys, "resolution", "--fwd", res_files.fwd, "--inv", res_files.inv,
                         "--method", "sLORETA", "--functions", "ctf", "--metrics", "cog_err",
                         "maxrad_ext", "--threshold", "0.3", "--snr", "1",
                         "--max-memory", "2MB", "--out", tmp_path)
    assert code == 0, err
    assert "the inverse operator surf-inv.fif" in out
    inv = minnorm.read_inverse_operator(res_files.inv)
    _assert_maps_equal(tmp_path, fwd_surf_meg, inv, methods=("sLORETA",), functions=("ctf",),
                       metrics=("cog_err", "maxrad_ext"), lambda2=1.0, threshold=0.3)


def test_page_is_self_contained_and_shows_every_method(res_files, tmp_path, capsys):
    code, _, err = run(capsys, "resolution", "--fwd", res_files.fwd, "--cov", res_files.cov,
                       "--functions", "psf", "--metrics", "peak_err", "--out", tmp_path,
                       "--quiet")
    assert code == 0, err
    page = (tmp_path / "resolution.html").read_text(encoding="utf-8")
    sources = re.findall(r"""\b(?:src|href)\s*=\s*["']?([^"'\s>]*)""", page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources), sources
    assert "<link" not in page and "@import" not in page and "url(" not in page
    for method in ("MNE", "dSPM", "sLORETA", "eLORETA"):
        assert f"<td>{method}</td>" in page  # in the summary table
        assert method in page.split('id="psf-peak_err"')[1]  # and in the caption of the maps
    for column in ("median", "90th percentile", "max", "unit", "cm"):
        assert f">{column}<" in page


def _fast(res_files, *extra):
    return ["resolution", "--fwd", res_files.fwd, "--cov", res_files.cov, "--method", "MNE",
            "--functions", "psf", "--metrics", "peak_err", *extra]


def test_no_overwrite_without_overwrite(res_files, tmp_path, capsys):
    code, _, err = run(capsys, *_fast(res_files, "--out", tmp_path, "--quiet"))
    assert code == 0, err
    before = snapshot(tmp_path)
    (tmp_path / "resolution.html").unlink()  # the maps are still there: still refused
    code, out, err = run(capsys, *_fast(res_files, "--out", tmp_path))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and re.search(r"MNE-psf-peak_err-lh\.stc exists .*--overwrite",
                                             err), err
    assert set(snapshot(tmp_path)) == set(before) - {"resolution.html"}  # nothing written
    code, _, err = run(capsys, *_fast(res_files, "--out", tmp_path, "--overwrite", "--quiet"))
    assert code == 0, err
    assert set(snapshot(tmp_path)) == set(before)


CASES = [  # (id, extra arguments, exit status, pattern on stderr)
    ("volume-forward", lambda f: ["--fwd", f.fwd_vol, "--cov", f.cov], 1,
     r"--fwd: vol-fwd\.fif is on a volume source space, and resolution metrics need a "
     r"surface source space .*: compute the forward on one"),
    ("missing-forward", lambda f: ["--fwd", f.fwd.with_name("nope-fwd.fif"), "--cov", f.cov], 1,
     r"--fwd: no such file: .*nope-fwd\.fif \(check the path\)"),
    ("cov-as-forward", lambda f: ["--fwd", f.cov, "--cov", f.cov], 1,
     r"--fwd: noise-cov\.fif is a noise covariance file, not a forward solution: pass it to "
     r"--cov instead"),
    ("lambda2-rule", lambda f: ["--fwd", f.fwd, "--cov", f.cov, "--lambda2", "gcv"], 2,
     r"--lambda2 gcv: the rules choose λ² from the data being estimated .*, and minnorm "
     r"resolution estimates none: give a number instead \(e\.g\. --lambda2 0\.111"),
    ("unknown-metric", lambda f: ["--fwd", f.fwd, "--cov", f.cov, "--metrics", "peak_err",
                                  "blur"], 2,
     r"argument --metrics: invalid choice: 'blur' \(choose from 'peak_err', .*'sum_amp'\)"),
    ("unknown-method", lambda f: ["--fwd", f.fwd, "--cov", f.cov, "--method", "LCMV"], 2,
     r"argument --method: invalid choice: 'LCMV'"),
    ("threshold-1", lambda f: ["--fwd", f.fwd, "--cov", f.cov, "--threshold", "1"], 2,
     r"argument --threshold: must be a fraction in \[0, 1\), got 1"),
    ("no-model", lambda f: ["--fwd", f.fwd], 2, r"give --cov .* or --inv"),
    ("inv-and-loose", lambda f: ["--fwd", f.fwd, "--inv", f.inv, "--loose", "1"], 2,
     r"--inv is a ready inverse operator: --loose cannot change it"),
    ("channel-mismatch", lambda f: ["--fwd", f.fwd, "--cov", f.cov_trunc], 1,
     r"channels are bad in the noise covariance but not in the data .*--union-bads"),
]


@pytest.mark.parametrize("build, status, pattern", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input(res_files, tmp_path, capsys, build, status, pattern):
    out_dir = tmp_path / "out"  # does not exist: must not be made
    code, out, err = run(capsys, "resolution", *build(res_files), "--out", out_dir)
    assert code == status, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("minnorm resolution: error: ")
    assert re.search(pattern, err), err
    assert out == ""
    assert list(tmp_path.iterdir()) == []  # nothing written, no folder made


def test_help_lists_the_command_and_its_options(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "resolution" in out and "minnorm resolution --fwd" in out
    code, out, _ = run(capsys, "resolution", "--help")
    assert code == 0 and "examples:" in out and "force_fixed=True" in out
    for option in ("--fwd", "--cov", "--inv", "--method", "--functions", "--metrics",
                   "--snr", "--lambda2", "--loose", "--depth", "--fixed", "--threshold",
                   "--max-memory", "--out", "--overwrite", "--union-bads"):
        assert option in out, option


def test_the_pictures_use_the_forwards_own_cortex(fwd_surf_meg):
    """Each mesh vertex takes the value of its nearest source: a source's own vertex, its own."""
    from minnorm.teaching.viz import source_space_mesh

    for space in fwd_surf_meg["src"]:
        mesh = source_space_mesh(space)
        np.testing.assert_allclose(mesh.coords, 1e3 * space["rr"])
        np.testing.assert_array_equal(mesh.faces, space["use_tris"])
        np.testing.assert_array_equal(mesh.nearest[space["vertno"]], np.arange(space["nuse"]))
