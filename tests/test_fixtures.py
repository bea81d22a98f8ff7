"""Sanity checks of the real-data fixtures of conftest.py (fast once forwards are cached)."""

import mne
import numpy as np
import pytest
from mne.io.constants import FIFF
from scipy.spatial import ConvexHull, Delaunay

import _forwards as fw

FORWARDS = {  # fixture → (source-space kind, channel types)
    "fwd_vol_meg": ("volume", "meg"),
    "fwd_vol_meeg": ("volume", "meeg"),
    "fwd_surf_meg": ("surface", "meg"),
    "fwd_surf_meeg": ("surface", "meeg"),
    "fwd_mixed_meg": ("mixed", "meg"),
    "fwd_discrete_meg": ("discrete", "meg"),
}


def test_sensor_files(evoked_meeg, evoked_all, noise_cov):
    assert evoked_meeg.comment == "Left Auditory" and evoked_meeg.nave == 3
    assert len(evoked_meeg.ch_names) == 376 and evoked_meeg.info["bads"] == []
    assert [p["active"] for p in evoked_meeg.info["projs"]] == [True] * 4
    assert fw.has_average_eeg_reference(evoked_meeg.info)
    assert [e.comment for e in evoked_all] == ["Left Auditory", "Right Auditory",
                                               "Left visual", "Right visual"]
    assert len(noise_cov.ch_names) == 366 and noise_cov["bads"] == []
    assert set(noise_cov.ch_names) <= set(evoked_meeg.ch_names)


def test_template_src_is_ico_with_patch_info(template_src):
    n_ico = fw.ico_n_vertices(fw.surf_spacing())
    assert template_src.kind == "surface" and template_src._subject == fw.TEMPLATE_SUBJECT
    for hemi_src in template_src:
        np.testing.assert_array_equal(hemi_src["vertno"], np.arange(n_ico))
        assert hemi_src["patch_inds"] is not None


def test_template_sources_inside_inner_skull(template_src, sample_files):
    """Every template source is inside sample's inner skull, and the cortex fills it."""
    rr_mm, tris = mne.read_surface(sample_files.inner_skull)
    sources_mm = np.concatenate([s["rr"][s["vertno"]] for s in template_src]) * 1e3
    assert fw.points_inside_surface(sources_mm, rr_mm, tris).all()
    cortex_mm = np.concatenate([s["rr"] for s in template_src]) * 1e3
    extent = np.ptp(cortex_mm, axis=0) / np.ptp(rr_mm, axis=0)
    assert (extent[:2] > 0.8).all(), f"cortex/skull extent ratios {extent}"


def test_inside_check_on_a_convex_polyhedron():
    """points_inside_surface agrees with scipy's Delaunay test on a random convex hull."""
    rng = np.random.default_rng(0)
    hull = ConvexHull(rng.standard_normal((40, 3)))
    tris = hull.simplices.copy()
    corners = hull.points[tris]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    outward = np.einsum("tk,tk->t", normals, hull.equations[:, :3]) > 0
    tris[~outward] = tris[~outward][:, ::-1]  # orient consistently
    points = rng.uniform(-2.5, 2.5, (400, 3))
    expected = Delaunay(hull.points[hull.vertices]).find_simplex(points) >= 0
    assert 50 < expected.sum() < 350
    np.testing.assert_array_equal(fw.points_inside_surface(points, hull.points, tris), expected)


@pytest.mark.parametrize("name", FORWARDS)
def test_forward(request, evoked_meeg, name):
    kind, chs = FORWARDS[name]
    fwd = request.getfixturevalue(name)
    n_meg = len(mne.pick_types(evoked_meeg.info, meg=True, exclude="bads"))
    n_eeg = len(mne.pick_types(evoked_meeg.info, meg=False, eeg=True, exclude="bads"))
    assert n_meg == 306 and n_eeg == 60
    assert fwd["nchan"] == (n_meg if chs == "meg" else n_meg + n_eeg)
    assert fwd["src"].kind == kind
    assert fwd["source_ori"] == FIFF.FIFFV_MNE_FREE_ORI
    assert fwd["sol"]["data"].shape == (fwd["nchan"], 3 * fwd["nsource"])
    assert np.isfinite(fwd["sol"]["data"]).all()
    if kind == "volume":
        assert fwd["src"][0]["type"] == "vol"  # not silently "discrete"


@pytest.mark.parametrize("name", ["fwd_surf_meg", "fwd_surf_meeg", "fwd_mixed_meg",
                                  "fwd_discrete_meg"])
def test_template_sources_survive_mindist(request, template_src, name):
    fwd = request.getfixturevalue(name)
    n_template = sum(s["nuse"] for s in template_src)
    if name == "fwd_discrete_meg":
        n_template = sum(len(s["vertno"][::fw.DISCRETE_STEP]) for s in template_src)
    n_kept = sum(s["nuse"] for s in fwd["src"] if s["type"] in ("surf", "discrete"))
    assert n_kept >= 0.95 * n_template
    if name != "fwd_discrete_meg":
        assert all(s["patch_inds"] is not None for s in fwd["src"][:2])


def test_mixed_has_two_surfaces_and_two_volumes(fwd_mixed_meg):
    assert [s["type"] for s in fwd_mixed_meg["src"]] == ["surf", "surf", "vol", "vol"]
    assert all(s["nuse"] > 20 for s in fwd_mixed_meg["src"][2:])
    assert fwd_mixed_meg["src"]._subject == fw.TEMPLATE_SUBJECT


def test_epochs(epochs_meeg, evoked_meeg, noise_cov):
    assert len(epochs_meeg) == 12 and epochs_meeg.tmin == evoked_meeg.tmin
    assert epochs_meeg.ch_names == evoked_meeg.ch_names
    assert [p["desc"] for p in epochs_meeg.info["projs"]] == \
        [p["desc"] for p in evoked_meeg.info["projs"]]
    picks = mne.pick_channels(epochs_meeg.ch_names, noise_cov.ch_names, ordered=True)
    noise = epochs_meeg.get_data(picks=picks) - evoked_meeg.data[picks]
    ratio = noise.std(axis=(0, 2)) / np.sqrt(np.diag(noise_cov.data))
    assert 0.8 < np.median(ratio) < 1.2


def test_raw(raw_sss, raw_meeg, noise_cov):
    assert len(raw_sss.ch_names) == 376 and raw_sss.info["bads"] == []
    assert raw_sss.info["proc_history"]  # Maxwell filtered: MEG rank well below 306
    assert raw_meeg.ch_names == noise_cov.ch_names
    assert fw.has_average_eeg_reference(raw_meeg.info)
    assert not raw_meeg.info["custom_ref_applied"]


def test_template_labels(template_labels, fwd_surf_meg):
    lh, rh, both = template_labels
    assert (lh.hemi, rh.hemi) == ("lh", "rh") and isinstance(both, mne.BiHemiLabel)
    for label, hemi_src in ((lh, fwd_surf_meg["src"][0]), (rh, fwd_surf_meg["src"][1])):
        assert label.subject == fw.TEMPLATE_SUBJECT
        assert np.isin(label.vertices, hemi_src["vertno"]).sum() >= 5  # sources in it
        centre_mm = hemi_src["rr"][label.vertices].mean(0) * 1e3
        assert (centre_mm[0] < 0) == (label.hemi == "lh")


def test_cache_rebuilds_corrupt_file(tmp_path, fwd_vol_meg):
    (tmp_path / "key-fwd.fif").write_bytes(b"not a forward solution")
    calls = []

    def build():
        calls.append(1)
        return fwd_vol_meg

    for _ in range(2):  # corrupt → rebuilt; then read from the cache
        fwd = fw.load_or_build_forward(tmp_path, "key", build)
        assert fwd["nsource"] == fwd_vol_meg["nsource"]
    assert len(calls) == 1
    np.testing.assert_array_equal(fwd["sol"]["data"], fwd_vol_meg["sol"]["data"])
