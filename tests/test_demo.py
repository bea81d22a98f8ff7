"""`minnorm demo` end to end on the template head (high SNR, a private cache)."""

import base64
import os
import re
import stat

import mne
import numpy as np
import pytest
from scipy.spatial import cKDTree

import minnorm
from minnorm.inverse.lambda2 import RULES
from minnorm.teaching.demo import LAMBDA2, run_demo
from minnorm.teaching.template import load_template
from minnorm.teaching.why_dspm import output_stem

FIGURES = ["maps-100ms", "maps-300ms", "time-courses", "l-curve", "surface-bias",
           "psf-peak-error", "psf-spatial-deviation", "psf-by-depth", "dipoles", "lcmv-maps",
           "lcmv-correlated-sources"]


@pytest.fixture(scope="module")
def cache(cache_dir):
    return cache_dir  # the session's template cache (conftest.py)


@pytest.fixture(scope="module")
def demo(tmp_path_factory, cache, monkeypatch_module):
    monkeypatch_module.setenv("MINNORM_CACHE_DIR", str(cache))
    out = tmp_path_factory.mktemp("demo")
    lines = []
    result = run_demo(out=out, snr=30.0, seed=1, spacing="ico4", progress=False, echo=lines.append)
    return result, "\n".join(lines)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_report_holds_every_figure(demo):
    result, _ = demo
    page = result.report.read_text(encoding="utf-8")
    found = re.findall(r'<figure id="([^"]+)"><img alt="[^"]*" src="data:image/png;base64,([^"]+)"',
                       page)
    assert [name for name, _ in found] == FIGURES
    for _, data in found:
        png = base64.b64decode(data)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "http" not in page.replace("http-equiv", "")  # opens offline: nothing fetched
    for heading in ("forward model", "L-curve", "surface bias", "Why dSPM?", "Dipole",
                    "Beamformer versus minimum norm"):
        assert heading in page


def test_report_shows_the_rules_choices_next_to_the_default(demo):
    result, text = demo
    choices = result.lambda2_choices
    assert list(choices) == list(RULES)
    page = result.report.read_text(encoding="utf-8")
    section = page[page.index("3. Regularisation"):page.index("4. The surface bias")]
    assert 'id="l-curve"' in section and "What each rule optimises" in section
    for rule, lam in choices.items():
        assert 1e-6 < lam < 1e4
        assert f"<td>{rule}</td><td>{lam:.3g}</td>" in section  # the table, beside the default
        assert f"{rule}: " in section  # the paragraph
    assert f"<td>default</td><td>{LAMBDA2:.3g}</td>" in section
    assert "λ² chosen from the data (0–400 ms): gcv" in text


def test_lcurve_figure_marks_each_rule():
    from minnorm.teaching.metrics import LCurve
    from minnorm.teaching.viz import plot_lcurve

    lam = np.logspace(-3, 3, 13)
    curve = LCurve(lam, np.sqrt(lam / (1 + lam)) * 10, 1 / np.sqrt(1 + lam))
    choices = {"gcv": 0.4, "evidence": 2.0, "lcurve": 1e5}
    fig = plot_lcurve(curve, default_lambda2=LAMBDA2, n_channels=100, choices=choices)
    left, right = fig.axes
    labels = [t.get_text() for t in left.get_legend().get_texts()]
    assert labels == ["default λ² = 0.111", "gcv: λ² = 0.4", "evidence: λ² = 2",
                      "lcurve: λ² = 1e+05 (off the curve)"]
    assert sorted(line.get_xdata()[0] for line in right.lines if line.get_linestyle() == "--"
                  and len(line.get_xdata()) == 2) == [0.4, 2.0, 1e5]
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_story_is_told(demo):
    _, text = demo
    assert "306 channels × 15372 columns" in text
    assert "2562 + 2562 = 5124 sources = 15372 columns / 3  → OK" in text
    assert "condition number" in text and "λ² = 1/SNR²" in text


def test_source_estimates_are_written_for_mne(demo):
    result, _ = demo
    assert len(result.stc_files) == 26  # truth + 4 methods + 4 × 2 resolution maps, lh and rh
    stc = mne.read_source_estimate(str(result.out_dir / "demo-sLORETA"))
    head = load_template(spacing="ico4", progress=False)
    assert stc.data.shape[0] == 5124 and stc.tmin == pytest.approx(-0.1)
    for ours, theirs in zip(stc.vertices, head.vertices):
        np.testing.assert_array_equal(ours, theirs)
    truth = mne.read_source_estimate(str(result.out_dir / "demo-truth"))
    assert np.count_nonzero(np.abs(truth.data).max(axis=1)) == 4  # the four true sources


def test_inverse_solutions_localise_at_high_snr(demo):
    result, _ = demo
    src = load_template(spacing="ico4", progress=False).source_positions_mm
    spacing = np.median(cKDTree(src).query(src, k=2)[0][:, 1])
    by = {}
    for row in result.table:
        by.setdefault(row["method"], []).append(row)
    for method in ("sLORETA", "eLORETA"):
        errors = [r["ple_mm"] for r in by[method]]
        assert max(errors) <= spacing + 1e-9, f"{method}: {errors} > {spacing:.1f} mm"
    mne_rows = by["MNE"]
    peak = np.mean([r["peak_depth_mm"] for r in mne_rows])
    true = np.mean([r["true_depth_mm"] for r in mne_rows])
    assert peak < true - 2.0, "plain MNE should put its peaks nearer the surface"


def test_dipoles_fit_the_early_field_not_the_late_one(demo):
    result, _ = demo
    early, late = result.dipoles
    assert early.gof > 0.95
    assert late.gof < early.gof - 0.1


def test_existing_report_is_not_overwritten(demo, cache, monkeypatch):
    result, _ = demo
    monkeypatch.setenv("MINNORM_CACHE_DIR", str(cache))
    before = result.report.read_bytes()
    with pytest.raises(FileExistsError, match="--overwrite"):
        run_demo(out=result.out_dir, progress=False, echo=lambda *a: None)
    assert result.report.read_bytes() == before


def test_outputs_have_the_users_normal_permissions(demo):
    """Not a temporary file's 0600: what open() gives under the user's umask."""
    result, _ = demo
    umask = os.umask(0)
    os.umask(umask)
    for path in [result.report, *result.stc_files]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path


def test_an_existing_estimate_stops_the_run_before_any_work(cache, monkeypatch, tmp_path):
    """Every output is checked up front: one old estimate (or a folder in the way of one)
    stops the demo before it computes, and nothing is written."""
    monkeypatch.setenv("MINNORM_CACHE_DIR", str(cache))
    monkeypatch.setattr("minnorm.teaching.demo.load_template", lambda **kw: pytest.fail("computed"))
    (tmp_path / "demo-dSPM-rh.stc").write_bytes(b"an earlier result")
    with pytest.raises(FileExistsError, match=r"demo-dSPM-rh\.stc exists: pass --overwrite"):
        run_demo(out=tmp_path, progress=False, echo=lambda *a: None)
    (tmp_path / "demo-dSPM-rh.stc").unlink()
    (tmp_path / "report.html").mkdir()
    with pytest.raises(IsADirectoryError, match=r"report\.html is a folder"):
        run_demo(out=tmp_path, overwrite=True, progress=False, echo=lambda *a: None)
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_cache_is_reused(demo, cache, monkeypatch):
    """The demo's head build is reused (a corrupted cache is rebuilt: tests/test_template.py)."""
    monkeypatch.setenv("MINNORM_CACHE_DIR", str(cache))
    head = load_template(spacing="ico4", progress=False)
    assert not head.built
    assert next(head.cache_path.glob("*fwd.fif")).stat().st_size > 1000


def test_why_dspm_reports_the_resolution_maps(demo):
    """The section's numbers are resolution_maps' (recomputed here for dSPM and eLORETA on the
    demo's operator, whose kernels are cached), its table shows them, and the maps written
    beside the estimates are the ones summarised."""
    result, text = demo
    res = result.resolution
    rows = {r["method"]: r for r in res.summary()}
    assert list(rows) == ["MNE", "dSPM", "sLORETA", "eLORETA"]
    fwd = mne.convert_forward_solution(load_template(spacing="ico4", progress=False).forward,
                                       surf_ori=True, force_fixed=True, verbose=False)
    for method in ("dSPM", "eLORETA"):
        maps = minnorm.resolution_maps(fwd, result.inverse, method=method, lambda2=LAMBDA2,
                                       functions=("psf",), metrics=("peak_err", "sd_ext"))
        for metric in ("peak_err", "sd_ext"):
            values = maps["psf", metric].data[:, 0]
            np.testing.assert_allclose(rows[method][f"{metric}_median"], np.median(values),
                                       rtol=1e-6)
            np.testing.assert_allclose(rows[method][f"{metric}_p90"],
                                       np.percentile(values, 90), rtol=1e-6)
    page = result.report.read_text(encoding="utf-8")
    section = page.split("Why dSPM?", 1)[1].split("<h2>", 1)[0]
    for r in rows.values():
        assert (f"<td>{r['method']}</td><td>{r['peak_err_median']:.2f}</td>"
                f"<td>{r['peak_err_p90']:.2f}</td>") in section
    assert f"{rows['MNE']['peak_err_median']:.2f} cm" in section  # the paragraph's numbers
    assert "Why dSPM?" in text  # and the terminal's
    for (method, metric), stc in res.stcs.items():
        written = mne.read_source_estimate(str(result.out_dir / output_stem(method, metric)))
        np.testing.assert_allclose(written.data, stc.data, rtol=1e-6)  # .stc holds float32


def test_why_dspm_deep_sources_favour_noise_normalisation(demo):
    """Plain MNE's PSF peaks drift from deep sources (the surface bias); dSPM's noise
    normalisation and sLORETA's standardisation undo that for the deepest fifth, and
    sLORETA's peak sits on the source for most sources (exactly, for fixed orientations; the
    demo's operator is loose). With the wrong depths, methods or kernels these would fail."""
    res = demo[0].resolution
    rows = {r["method"]: r for r in res.summary()}
    mne_ = rows["MNE"]
    assert mne_["peak_err_deep"] > 2 * mne_["peak_err_shallow"]
    assert rows["dSPM"]["peak_err_deep"] < 0.75 * mne_["peak_err_deep"]
    assert rows["dSPM"]["peak_err_shallow"] > mne_["peak_err_shallow"]  # the price, at the top
    assert rows["sLORETA"]["peak_err_deep"] < 0.25 * mne_["peak_err_deep"]
    assert rows["sLORETA"]["peak_err_median"] == 0 and rows["sLORETA"]["at_source"] > 0.8
    depth = np.sort(res.depth_mm)
    assert depth[0] > 0 and len(depth) == 5124  # every source inside the skull


def test_beamformer_section_shows_its_numbers(demo):
    """The section's tables and paragraphs carry the comparison's numbers, and the terminal
    says them too."""
    result, text = demo
    comp = result.beamformer
    page = result.report.read_text(encoding="utf-8")
    section = page.split("7. Beamformer versus minimum norm", 1)[1]
    assert 'id="lcmv-maps"' in section and 'id="lcmv-correlated-sources"' in section
    names = [r["source"] for r in comp.table if r["case"] == "correlated" and r["method"] == "LCMV"]
    assert names == ["auditory-lh", "auditory-rh", "temporal-rh", "fusiform-rh"]
    for source in names:  # the localisation table, a row per source, four errors
        cells = "".join(f"<td>{comp.row(c, m, source)['ple_mm']:.1f}</td>"
                        for c in ("correlated", "independent") for m in ("dSPM", "LCMV"))
        assert f"<td>{source}</td>{cells}" in section
    for r in comp.pair:
        assert f"<td>{r['LCMV_power_ratio']:.3g}</td>" in section
        assert f"LCMV {r['LCMV_power_ratio']:.3g}, dSPM {r['dSPM_power_ratio']:.3g}" in text
    assert "Why? Minimising the output power" in section


def test_lcmv_loses_the_correlated_pair_and_finds_the_independent_one(demo):
    """At the fixture's SNR (30, 60 trials) and with the forward that made the data, LCMV
    with independent N100m time courses puts each auditory peak within one source spacing of
    the source: a unit-noise-gain beamformer is unbiased for uncorrelated sources (Van Veen et
    al. 1997; Sekihara & Nagarajan 2008), and one spacing leaves room for the covariance's
    estimation from 60 trials (observed: 0 mm). With identical time courses the pair cancels:
    a filter whose unit gain at one source would let the other through can null its own signal
    with the correlated field, the deeper the higher the SNR. Bound: power at the true sources
    below 1/20 of the independent case's (observed ~1/1000 and ~1/1700 at seed 1). dSPM's
    kernel ignores the data: its power changes only by the noise at the moved source's other
    peak time (observed 0.96–0.97), bounded to 0.8–1.25."""
    comp = demo[0].beamformer
    head = load_template(spacing="ico4", progress=False)
    src = head.source_positions_mm
    spacing = np.median(cKDTree(src).query(src, k=2)[0][:, 1])
    for source in ("auditory-lh", "auditory-rh"):
        assert comp.row("independent", "LCMV", source)["ple_mm"] <= spacing + 1e-9
    for r in comp.pair:
        assert r["rho"]["correlated"] == pytest.approx(1.0)
        assert abs(r["rho"]["independent"]) < 0.05
        assert r["LCMV_power_ratio"] < 1 / 20, r
        assert 0.8 < r["dSPM_power_ratio"] < 1.25, r
    # the second simulation is the first with one source moved: the same noise draws
    first, second = (comp.cases[c] for c in ("correlated", "independent"))
    change = second.epochs.get_data() - first.epochs.get_data()
    assert np.allclose(change, change[0])  # the same in every trial
    s = np.linalg.svd(change[0], compute_uv=False)
    assert s[1] < 1e-9 * s[0]  # one field times one time course
