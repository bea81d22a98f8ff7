"""The template head: geometry, placement in the helmet, forward model and cache.

The ico4 head is the demos' (BEM conductor), built once a session into a temporary
cache; the ico3 heads are built with the sphere conductor (seconds), and with the BEM
once, to check how EEG and BEM rows are merged.
"""

import dataclasses
import json
import logging
import os
import shutil

import mne
import nibabel as nib
import numpy as np
import pytest
from nilearn import datasets

from minnorm.teaching import template, template_build
from minnorm.teaching.template import (
    Surface,
    cache_root,
    check_placement,
    inside_surface,
    load_template,
    place_head,
    source_depth,
    surface_distance,
)


pytestmark = pytest.mark.usefixtures("one_blas")  # see conftest.py


@pytest.fixture(scope="module")
def small_head(cache_dir):
    """The ico3 sphere head, in the session's cache: its 1284 sources are the first of each
    hemisphere's ico4 sources, and its geometry checks take a quarter of the time."""
    return load_template(spacing="ico3", conductor="sphere", cache_dir=cache_dir, progress=False)


# --------------------------------------------------------------------------- geometry


def test_ico4_uses_the_first_2562_vertices_of_fsaverage5(head):
    assert head.hemi_sizes == (2562, 2562)
    assert head.n_sources == 5124
    for hemi, side, vertno in zip(("lh", "rh"), ("left", "right"), head.vertices):
        np.testing.assert_array_equal(vertno, np.arange(2562))
        white = nib.load(datasets.fetch_surf_fsaverage("fsaverage5")[f"white_{side}"]).agg_data()[0]
        positions = head.source_positions_mm[:2562] if hemi == "lh" else head.source_positions_mm[2562:]
        np.testing.assert_allclose(positions, white[:2562], atol=1e-3)  # vertex numbers = fsaverage5's
    assert head.subject == "fsaverage"


def test_ico4_sources_are_spread_evenly_like_an_icosahedron(head):
    """Nearest-neighbour spacing of ico4 on fsaverage is about 4-5 mm, with no clumps."""
    from scipy.spatial import cKDTree

    lh = head.source_positions_mm[:2562]
    spacing = cKDTree(lh).query(lh, k=2)[0][:, 1]
    assert 3.0 < np.median(spacing) < 6.5
    assert spacing.min() > 0.3


def test_patch_information_is_present_and_used_by_use_cps(head):
    for s in head.src:
        assert s["patch_inds"] is not None and len(s["pinfo"]) == 2562
    fwd = head.forward
    assert fwd["src"][0]["patch_inds"] is not None  # survives the cache
    kw = dict(surf_ori=True, force_fixed=True, verbose=False)
    cps = mne.convert_forward_solution(fwd, use_cps=True, **kw)["source_nn"]
    raw = mne.convert_forward_solution(fwd, use_cps=False, **kw)["source_nn"]
    angle = np.degrees(np.arccos(np.clip(np.sum(cps * raw, axis=1), -1, 1)))
    assert np.median(angle) > 1.0  # patch-averaged normals differ from the vertex normals


def test_forward_has_every_source_in_head_coordinates(head):
    fwd = head.forward
    assert fwd["nsource"] == head.n_sources
    assert fwd["sol"]["data"].shape == (306, 3 * head.n_sources)
    assert fwd["coord_frame"] == mne.io.constants.FIFF.FIFFV_COORD_HEAD
    rr = np.concatenate([s["rr"][s["vertno"]] for s in fwd["src"]])
    np.testing.assert_allclose(rr, head.to_head(head.source_positions_mm), atol=1e-6)
    assert np.all(np.isfinite(fwd["sol"]["data"]))


# --------------------------------------------------------------------------- placement


def test_every_source_lies_inside_the_skull_and_beneath_the_helmet(head):
    p = check_placement(head)
    assert p.ok
    assert p.n_outside_skull == 0 and p.n_outside_helmet == 0
    assert p.sensor_distance >= 0.02
    assert p.skull_clearance > 0.002
    assert p.scalp_gap == pytest.approx(template_build.SCALP_GAP, abs=1e-4)
    assert p.fraction_in_hull > 0.95


def test_dev_head_t_is_a_realistic_seat(head):
    t = head.info["dev_head_t"]
    assert t["from"] == mne.io.constants.FIFF.FIFFV_COORD_DEVICE
    np.testing.assert_allclose(t["trans"][:3, :3], np.eye(3))
    x, y, z = t["trans"][:3, 3]
    assert abs(x) < 0.005 and abs(y) < 0.02 and 0.03 < z < 0.08  # MNE's sample: z = 65 mm


@pytest.mark.parametrize("shift, failure", [(0.06, "sensor_distance"), (-0.03, "n_outside_helmet")])
def test_placement_check_fails_for_a_badly_seated_head(head, small_head, shift, failure):
    """Pushing the head 6 cm into the helmet or letting it hang 3 cm lower must be caught
    (on the ico3 head, seated as the ico4 head and checked at its build: the check is per
    source, so the same with fewer of them)."""
    info = small_head.info.copy()
    np.testing.assert_array_equal(info["dev_head_t"]["trans"], head.info["dev_head_t"]["trans"])
    moved = info["dev_head_t"]["trans"].copy()
    moved[2, 3] -= shift  # head = device + t: a smaller t_z lifts the head towards the sensors
    info["dev_head_t"] = mne.transforms.Transform("meg", "head", moved)
    p = check_placement(dataclasses.replace(small_head, info=info))
    assert not p.ok
    if failure == "sensor_distance":
        assert p.sensor_distance < template.MIN_SENSOR_DISTANCE
    else:
        assert p.n_outside_helmet > 0


def test_place_head_centres_and_lifts():
    rng = np.random.default_rng(0)
    sensors = rng.uniform([-0.1, -0.1, 0.0], [0.1, 0.14, 0.11], size=(50, 3))
    skull = rng.uniform([-0.07, -0.08, 0.0], [0.07, 0.1, 0.12], size=(50, 3))
    scalp = skull * 1.1
    t = place_head(sensors, scalp, skull, gap=0.02)["trans"][:3, 3]
    skull_dev, scalp_dev = skull - t, scalp - t
    centre = (skull_dev.min(0) + skull_dev.max(0)) / 2
    np.testing.assert_allclose(centre[:2], ((sensors.min(0) + sensors.max(0)) / 2)[:2])
    assert sensors[:, 2].max() - scalp_dev[:, 2].max() == pytest.approx(0.02)
    t_up = place_head(sensors, scalp + [0, 0, 0.01], skull + [0, 0, 0.01], gap=0.02)["trans"][:3, 3]
    assert t_up[2] - t[2] == pytest.approx(0.01)


def _cube(half=1.0):
    """A closed cube of 12 outward-oriented triangles."""
    rr = half * np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
    tris = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                     [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    return Surface(rr=rr, tris=tris)


def test_inside_and_distance_on_a_cube():
    cube = _cube()
    points = np.array([[0, 0, 0], [0.5, 0.2, -0.9], [1.5, 0, 0], [2, 2, 2], [0, 0, -3]], float)
    np.testing.assert_array_equal(inside_surface(points, cube), [True, True, False, False, False])
    expected = [1.0, 0.1, 0.5, np.sqrt(3), 2.0]  # face, face, face, corner, face
    np.testing.assert_allclose(surface_distance(points, cube), expected, atol=1e-12)
    flipped = Surface(rr=cube.rr, tris=cube.tris[:, ::-1])  # inward-facing triangles
    np.testing.assert_array_equal(inside_surface(points, flipped), inside_surface(points, cube))


def test_source_depth(head):
    skull_mm = 1e3 * head.inner_skull.rr[:20]
    np.testing.assert_allclose(source_depth(head, skull_mm), 0.0, atol=1e-3)
    centre_mm = 1e3 * head.inner_skull.rr.mean(axis=0)
    assert source_depth(head, centre_mm)[0] > 40  # the middle of the brain is deep
    assert source_depth(head, centre_mm + [0, 0, 200])[0] < 0  # above the skull: negative
    depths = source_depth(head, head.source_positions_mm[::50])
    assert np.all(depths > 0)
    to_sensors = source_depth(head, head.source_positions_mm[::50], reference="sensors")
    assert np.all(to_sensors > depths)  # the sensors are outside the skull
    with pytest.raises(ValueError, match="reference must be"):
        source_depth(head, centre_mm, reference="scalp")


# --------------------------------------------------------------------------- EEG


@pytest.fixture(scope="module")
def eeg_heads(cache_dir, small_head):
    kw = dict(spacing="ico3", cache_dir=cache_dir, progress=False)
    heads = {(c, e): load_template(conductor=c, eeg=e, **kw)
             for c in ("sphere", "bem") for e in (False, True) if (c, e) != ("sphere", False)}
    return {("sphere", False): small_head, **heads}


def test_eeg_has_an_average_reference_projector(eeg_heads):
    head = eeg_heads["sphere", True]
    eeg = mne.pick_types(head.info, meg=False, eeg=True)
    assert len(eeg) > 300  # the 10-05 cap
    projs = head.info["projs"]
    assert len(projs) == 1 and "Average EEG reference" in projs[0]["desc"]
    vec = projs[0]["data"]["data"][0]
    np.testing.assert_allclose(vec, vec[0])  # uniform over the EEG channels
    assert head.forward["sol"]["data"].shape[0] == 306 + len(eeg)
    assert head.forward["nsource"] == 2 * 642  # no source lost to the sphere's brain shell
    assert not eeg_heads["sphere", False].info["projs"]


def test_eeg_electrodes_sit_on_the_fsaverage_scalp(eeg_heads):
    from scipy.spatial import cKDTree

    head = eeg_heads["sphere", True]
    eeg = mne.pick_types(head.info, meg=False, eeg=True)
    electrodes = np.array([head.info["chs"][k]["loc"][:3] for k in eeg])
    scalp = template.transform_points(np.linalg.inv(head.trans["trans"]), template.fsaverage_scalp_mri())
    assert np.median(cKDTree(scalp).query(electrodes)[0]) < 0.01


def test_bem_meg_rows_and_sphere_eeg_rows_are_merged(eeg_heads):
    def rows(head, kind):
        picks = mne.pick_types(head.forward["info"], meg=kind == "meg", eeg=kind == "eeg")
        return head.forward["sol"]["data"][picks]

    merged = eeg_heads["bem", True]
    assert merged.bem["is_sphere"] is False and merged.eeg_sphere["is_sphere"]
    # exact: every build runs on one BLAS thread (one_blas_thread in _build_entry), so the
    # same computation gives the same bits
    np.testing.assert_array_equal(rows(merged, "meg"), rows(eeg_heads["bem", False], "meg"))
    np.testing.assert_array_equal(rows(merged, "eeg"), rows(eeg_heads["sphere", True], "eeg"))
    # BEM and sphere really differ for MEG, so the equality above is not trivial
    assert not np.allclose(rows(merged, "meg"), rows(eeg_heads["sphere", True], "meg"))
    np.testing.assert_array_equal(rows(eeg_heads["sphere", True], "meg"),
                                  rows(eeg_heads["sphere", False], "meg"))


# --------------------------------------------------------------------------- cache


def _manifest(entry):
    return json.loads((entry / "manifest.json").read_text())


def test_cache_is_reused_without_rebuilding(head, cache_dir):
    entry = head.cache_path
    before = {p: os.stat(p).st_mtime_ns for p in entry.rglob("*") if p.is_file()}
    build_id = _manifest(entry)["build_id"]
    again = load_template(spacing="ico4", conductor="bem", cache_dir=cache_dir, progress=False)
    assert not again.built and again.cache_path == entry
    assert _manifest(entry)["build_id"] == build_id
    assert {p: os.stat(p).st_mtime_ns for p in entry.rglob("*") if p.is_file()} == before
    np.testing.assert_array_equal(again.forward["sol"]["data"], head.forward["sol"]["data"])


def _break(entry, how):
    if how == "truncated":
        fwd = entry / "template-fwd.fif"
        fwd.write_bytes(fwd.read_bytes()[: fwd.stat().st_size // 2])
    elif how == "stale":
        manifest = _manifest(entry)
        manifest["params"]["mne"] = "0.0"
        (entry / "manifest.json").write_text(json.dumps(manifest))
    elif how == "incomplete":
        (entry / "manifest.json").unlink()
    elif how == "garbled":
        (entry / "manifest.json").write_text("{not json")


@pytest.fixture(scope="module")
def sphere_cache(tmp_path_factory, small_head):
    """A cache holding the ico3 sphere head (the session's entry, copied): tests that break it
    work on copies."""
    root = tmp_path_factory.mktemp("sphere-cache")
    shutil.copytree(small_head.cache_path, root / small_head.cache_path.name)
    return root


@pytest.mark.parametrize("how, message", [("truncated", "corrupt"), ("stale", "stale"),
                                          ("incomplete", "incomplete"), ("garbled", "corrupt")])
def test_broken_cache_is_detected_and_rebuilt(tmp_path, caplog, how, message, sphere_cache):
    shutil.copytree(sphere_cache, tmp_path, dirs_exist_ok=True)
    kw = dict(spacing="ico3", conductor="sphere", cache_dir=tmp_path, progress=False)
    first = load_template(**kw)
    assert not first.built  # the copy is a valid cache
    build_id = _manifest(first.cache_path)["build_id"]
    _break(first.cache_path, how)
    with caplog.at_level(logging.WARNING, logger="minnorm"):
        second = load_template(**kw)
    assert second.built
    assert any(message in r.getMessage() and "rebuilding" in r.getMessage() for r in caplog.records)
    assert _manifest(second.cache_path)["build_id"] != build_id
    # exact: both builds run on one BLAS thread (one_blas_thread in _build_entry)
    np.testing.assert_array_equal(second.forward["sol"]["data"], first.forward["sol"]["data"])
    assert not load_template(**kw).built  # and it is valid again
    assert not list(tmp_path.rglob(".tmp-*"))  # no temporary files left behind


def test_rebuild_forces_a_build_and_progress_bar_shows(tmp_path, capsys, sphere_cache):
    shutil.copytree(sphere_cache, tmp_path, dirs_exist_ok=True)
    kw = dict(spacing="ico3", conductor="sphere", cache_dir=tmp_path)
    assert not load_template(progress=False, **kw).built
    head = load_template(rebuild=True, progress=True, **kw)
    assert head.built
    assert "building the template head" in capsys.readouterr().err


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MINNORM_CACHE_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "a"
    assert cache_root(tmp_path / "b") == tmp_path / "b"
    monkeypatch.delenv("MINNORM_CACHE_DIR")
    assert cache_root() == tmp_path / "xdg" / "minnorm"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "minnorm"


def test_cache_entries_are_keyed_by_parameters_and_versions():
    names = {template._entry_name(template._build_params(spacing=s, conductor=c, eeg=e))
             for s in template.SPACINGS for c in template.CONDUCTORS for e in (False, True)}
    assert len(names) == 12
    params = template._build_params(spacing="ico4", conductor="bem", eeg=False)
    assert params["mne"] == mne.__version__
    assert template._entry_name(params) != template._entry_name({**params, "template": "0"})


@pytest.mark.parametrize("kwargs, match", [
    (dict(spacing="oct6"), "spacing must be one of"),
    (dict(conductor="fem"), "conductor must be one of"),
    (dict(eeg="yes"), "eeg must be True or False"),
])
def test_invalid_parameters_are_named(tmp_path, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        load_template(cache_dir=tmp_path, progress=False, **kwargs)
