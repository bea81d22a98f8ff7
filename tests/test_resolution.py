"""Resolution analysis: equal to MNE-Python on the sample subject, tiled = dense, and the maths.

MNE-Python forms the dense resolution matrix; minnorm's ``resolution_maps``
never does. Checked here: the matrix, PSFs/CTFs (every mode, norm, vector)
and every metric against MNE-Python 1.x; the tiled metrics against the dense
ones for any tile width; the invariants (zero peak error of sLORETA and
eLORETA, symmetry, growth of the spatial deviation with λ²); the memory plan.
"""

import tracemalloc

import mne
import numpy as np
import pytest
from mne.minimum_norm import resolution_matrix as mne_rm
from mne.minimum_norm import spatial_resolution as mne_sr

import minnorm
from minnorm.engine import resolution as eng

METHODS = ("MNE", "dSPM", "sLORETA", "eLORETA")
ORIENTATIONS = {"fixed": dict(loose=0.0, fixed=True), "loose": dict(loose=0.2),
                "free": dict(loose=1.0)}
TOL = {"eLORETA": 1e-3}  # MNE-Python and minnorm stop eLORETA's iteration at eps = 1e-6


def rel_err(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.fixture(scope="module")
def meg(evoked_meeg):
    return evoked_meeg.copy().pick("meg")


@pytest.fixture(scope="module")
def fwd_fixed(fwd_surf_meg):
    return mne.convert_forward_solution(fwd_surf_meg, surf_ori=True, force_fixed=True,
                                        copy=True, verbose="error")


@pytest.fixture(scope="module")
def inverses(meg, fwd_surf_meg, noise_cov):
    """MNE-Python's operator per orientation (minnorm converts it)."""
    return {name: mne.minimum_norm.make_inverse_operator(meg.info, fwd_surf_meg, noise_cov,
                                                         verbose="error", **kw)
            for name, kw in ORIENTATIONS.items()}


@pytest.fixture(scope="module")
def mne_resmat(inverses, fwd_fixed):
    """MNE-Python's dense matrix for a fixed forward, computed once per (orientation, method)."""
    cache = {}

    def get(orientation, method):
        if (orientation, method) not in cache:
            cache[orientation, method] = mne_rm.make_inverse_resolution_matrix(
                fwd_fixed, inverses[orientation], method=method, lambda2=1 / 9, verbose="error")
        return cache[orientation, method]

    return get


# --------------------------------------------------------------------------
# Equal to MNE-Python


# MNE-Python's eLORETA costs seconds per call: one orientation of it is enough here
CASES = [(o, m) for o in ORIENTATIONS for m in METHODS if m != "eLORETA" or o == "loose"]


@pytest.mark.parametrize("orientation, method", CASES)
def test_resolution_matrix_equals_mne(orientation, method, inverses, fwd_fixed, mne_resmat):
    ours = minnorm.make_inverse_resolution_matrix(fwd_fixed, inverses[orientation], method, 1 / 9)
    theirs = mne_resmat(orientation, method)
    assert ours.shape == theirs.shape == ((1 if orientation == "fixed" else 3) * 1281, 1281)
    assert rel_err(ours, theirs) < TOL.get(method, 1e-6)


@pytest.mark.parametrize("orientation, method", [("loose", "dSPM"), ("free", "MNE"),
                                                 ("fixed", "sLORETA")])
def test_free_forward_in_mne_frames(orientation, method, inverses, fwd_surf_meg, meg, noise_cov):
    """A free forward is turned into the operator's frame: for a loose operator, the
    tangential directions MNE-Python chooses, which minnorm's own operator shares."""
    inv = inverses[orientation]
    theirs = mne_rm.make_inverse_resolution_matrix(fwd_surf_meg, inv, method=method,
                                                   verbose="error")
    assert rel_err(minnorm.make_inverse_resolution_matrix(fwd_surf_meg, inv, method), theirs) < 1e-6
    ours_op = minnorm.make_inverse_operator(meg.info, fwd_surf_meg, noise_cov,
                                            **ORIENTATIONS[orientation])
    np.testing.assert_array_equal(ours_op.source_nn, inv["source_nn"])  # same frames, exactly
    assert rel_err(minnorm.make_inverse_resolution_matrix(fwd_surf_meg, ours_op, method),
                   theirs) < 1e-6


# pairs MNE-Python computes on a (3n, n) matrix; minnorm computes the others too
MNE_COMPUTES_3N = {("psf", "peak_err"), ("psf", "cog_err"), ("ctf", "peak_err"),
                   ("ctf", "cog_err"), ("psf", "peak_amp"), ("psf", "sum_amp")}


# the metrics do not depend on the method: two per orientation cover both shapes of R
@pytest.mark.parametrize("orientation, method", [("fixed", "MNE"), ("fixed", "sLORETA"),
                                                 ("loose", "dSPM"), ("loose", "eLORETA")])
def test_metrics_equal_mne_and_maps(orientation, method, inverses, fwd_fixed, mne_resmat):
    """Every metric: minnorm's resolution_metrics = MNE-Python's wherever it computes, and
    resolution_maps (tiled, from the kernel) = resolution_metrics of the dense matrix."""
    resmat = mne_resmat(orientation, method)
    maps = minnorm.resolution_maps(fwd_fixed, inverses[orientation], method=method)
    assert set(maps) == {(f, m) for f in eng.FUNCTIONS for m in eng.METRICS}
    src = fwd_fixed["src"]
    # minnorm's eLORETA weights and MNE-Python's reach the same fixed point by different
    # iterates, each stopping at a relative change < 1e-6: they agree to ~2e-7, and a
    # centre of gravity can move by a few times that
    rtol = 1e-5 if method == "eLORETA" else 1e-6
    for (function, metric), stc in maps.items():
        dense = minnorm.resolution_metrics(resmat, src, function, metric)
        assert isinstance(stc, mne.SourceEstimate) and stc.data.shape == (1281, 1)
        assert all(np.array_equal(a, b) for a, b in zip(stc.vertices, dense.vertices))
        assert np.all(np.isfinite(stc.data)) and np.all(stc.data >= 0)
        np.testing.assert_allclose(stc.data, dense.data, rtol=rtol, atol=1e-9 * dense.data.max(),
                                   err_msg=f"{function} {metric}")
        if orientation == "fixed" or (function, metric) in MNE_COMPUTES_3N:
            theirs = mne_sr.resolution_metrics(resmat, src, function, metric, verbose="error")
            np.testing.assert_allclose(dense.data, theirs.data, rtol=1e-9,
                                       atol=1e-12 * theirs.data.max(),
                                       err_msg=f"{function} {metric}")
        else:
            with pytest.raises(Exception):  # MNE-Python cannot; minnorm rectifies first
                mne_sr.resolution_metrics(resmat, src, function, metric, verbose="error")


def test_maxrad_is_mne_quirk(fwd_fixed, mne_resmat):
    """maxrad_ext is MNE-Python's value: √(max over x, y, z of Σ squared offsets) of the
    supra-threshold sources — not the largest distance, which the test also computes."""
    resmat = mne_resmat("fixed", "MNE")
    loc = 100 * np.vstack([s["rr"][s["vertno"]] for s in fwd_fixed["src"]])
    j = 17
    col = np.abs(resmat[:, j])
    near = loc[col > 0.5 * col.max()] - loc[j]
    ours = minnorm.resolution_metrics(resmat, fwd_fixed["src"], "psf", "maxrad_ext").data[j, 0]
    assert ours == pytest.approx(np.sqrt((near**2).sum(axis=0).max()), rel=1e-9)
    assert ours != pytest.approx(np.linalg.norm(near, axis=1).max(), rel=1e-3)


MODES = [(None, 1), ("mean", 1), ("sum", 1), ("max", 2), ("maxval", 2), ("svd", 3),
         ("pca", 1), ("maxnorm", 1)]


@pytest.mark.parametrize("function", ["get_point_spread", "get_cross_talk"])
@pytest.mark.parametrize("orientation", ["fixed", "loose"])
def test_point_spread_cross_talk_equal_mne(function, orientation, inverses, fwd_fixed,
                                           mne_resmat, template_labels):
    resmat = mne_resmat(orientation, "dSPM")
    inv = inverses[orientation]
    ours_op = minnorm.InverseOperator.from_mne(inv)
    ctf_vector_fails = function == "get_cross_talk" and orientation == "loose"
    norms = (False, "max", "norm", True, None)
    for m, (mode, n_comp) in enumerate(MODES):
        for g, idx in enumerate(([[3, 10, 200], [5, 600]], [7], template_labels[:2])):
            norm = norms[(m + g) % len(norms)]  # every mode, norm and idx kind, crossed
            for vector in (False, True):
                kw = dict(mode=mode, n_comp=n_comp, norm=norm, vector=vector,
                          return_pca_vars=mode in ("svd", "pca"))
                given = [list(v) for v in idx] if isinstance(idx[0], list) else list(idx)
                if vector and ctf_vector_fails:  # CTFs of a fixed forward: 1 value per source
                    with pytest.raises(ValueError, match="pass as src the forward"):
                        getattr(minnorm, function)(resmat, ours_op, given, **kw)
                    continue
                theirs = getattr(mne_rm, function)(resmat, inv, [list(v) for v in idx]
                                                   if isinstance(idx[0], list) else idx,
                                                   verbose="error", **kw)
                ours = getattr(minnorm, function)(resmat, ours_op, given, **kw)
                if kw["return_pca_vars"]:
                    (theirs, tv), (ours, ov) = theirs, ours
                    for o, t in zip(ov if isinstance(ov, list) else [ov],
                                    tv if isinstance(tv, list) else [tv]):
                        np.testing.assert_allclose(o, t, rtol=1e-10)
                theirs = theirs if isinstance(theirs, list) else [theirs]
                ours = ours if isinstance(ours, list) else [ours]
                assert len(ours) == len(theirs)
                for a, b in zip(ours, theirs):
                    assert type(a) is type(b)
                    np.testing.assert_allclose(a.data, b.data, rtol=1e-9,
                                               atol=1e-12 * np.abs(b.data).max())
                # minnorm does not rewrite the caller's indices (MNE-Python does)
                assert given == ([list(v) for v in idx] if isinstance(idx[0], list) else idx)


def test_point_spread_volume_equals_mne(fwd_vol_meg, meg, noise_cov):
    inv = mne.minimum_norm.make_inverse_operator(meg.info, fwd_vol_meg, noise_cov, loose=1.0,
                                                 depth=None, verbose="error")
    theirs_R = mne_rm.make_inverse_resolution_matrix(fwd_vol_meg, inv, "sLORETA", verbose="error")
    ours_R = minnorm.make_inverse_resolution_matrix(fwd_vol_meg, inv, "sLORETA")
    assert rel_err(ours_R, theirs_R) < 1e-6
    for function in ("get_point_spread", "get_cross_talk"):
        for vector in (False, True):
            theirs = getattr(mne_rm, function)(theirs_R, inv, [[1, 40]], mode="svd", n_comp=2,
                                               vector=vector, verbose="error")
            ours = getattr(minnorm, function)(ours_R, inv, [[1, 40]], mode="svd", n_comp=2,
                                              vector=vector)
            assert type(ours) is type(theirs)
            # singular vectors' signs follow the (equal to 1e-15) matrices
            assert rel_err(np.abs(ours.data), np.abs(theirs.data)) < 1e-6
    with pytest.raises(ValueError, match="surface source space"):
        minnorm.resolution_metrics(ours_R[:, :], fwd_vol_meg["src"], "psf", "peak_err")


# --------------------------------------------------------------------------
# Tiles


@pytest.mark.parametrize("width", [1, 7, 500, 10_000])
def test_tiles_equal_dense(width, inverses, fwd_fixed):
    """Any tile height — 1, heights that do not divide n, one tile — gives the dense numbers
    (the dense path tiles columns for PSFs: a different algorithm)."""
    f = minnorm.resolution.resolution_factors(fwd_fixed, inverses["loose"], method="sLORETA")
    loc = np.vstack([s["rr"][s["vertno"]] for s in fwd_fixed["src"]])
    tiled = eng.lowrank_metrics(f.A, f.B, loc, functions=eng.FUNCTIONS, metrics=eng.METRICS,
                                width=width)
    R = f.A @ f.B
    for function in eng.FUNCTIONS:
        dense = eng.dense_metrics(R, loc, function, eng.METRICS)
        for metric in eng.METRICS:
            np.testing.assert_allclose(tiled[function, metric], dense[metric], rtol=1e-9,
                                       atol=1e-12, err_msg=f"{function} {metric}")


def test_tiles_respect_memory_budget(inverses, fwd_fixed):
    """What the tiles allocate stays within max_memory (tracemalloc sees numpy's arrays)."""
    f = minnorm.resolution.resolution_factors(fwd_fixed, inverses["loose"], method="dSPM")
    loc = np.vstack([s["rr"][s["vertno"]] for s in fwd_fixed["src"]])
    budget = eng.plan_bytes(len(loc), 3, 24)  # ~6 MB: a small fraction of R (39 MB)
    tracemalloc.start()
    try:
        eng.lowrank_metrics(f.A, f.B, loc, functions=eng.FUNCTIONS, metrics=eng.METRICS,
                            max_memory=budget)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    outputs = 12 * len(loc) * 8
    assert peak < budget + outputs + 200_000, (peak, budget)
    assert peak > budget / 4  # the tiles do use the budget: the check is not vacuous
    with pytest.raises(ValueError, match="max_memory=1000 bytes is too small"):
        eng.lowrank_metrics(f.A, f.B, loc, functions=("psf",), metrics=("peak_err",),
                            max_memory=1000)


# --------------------------------------------------------------------------
# The mathematics


def test_sloreta_eloreta_localise_exactly(inverses, fwd_fixed):
    """Fixed orientation, no noise: sLORETA's and eLORETA's PSFs peak at their source —
    zero error for every source — and the plain minimum-norm estimate's do not."""
    inv = inverses["fixed"]
    errors = {m: minnorm.resolution_maps(fwd_fixed, inv, method=m, functions=("psf",),
                                         metrics=("peak_err",))["psf", "peak_err"].data
              for m in METHODS}
    assert np.all(errors["sLORETA"] == 0) and np.all(errors["eLORETA"] == 0)
    assert np.mean(errors["MNE"] > 0) > 0.3 and errors["MNE"].max() > 3  # cm


def test_resolution_matrix_symmetric_without_depth(fwd_surf_meg, fwd_fixed, meg, noise_cov):
    """R = K L = G̃ᵀ (G̃ G̃ᵀ + λ²I)⁻¹ G̃ (whitened gain) is symmetric when R has no depth
    weighting and the orientation is fixed; with depth weighting it is not."""
    for depth, symmetric in ((None, True), (0.8, False)):
        inv = minnorm.make_inverse_operator(meg.info, fwd_surf_meg, noise_cov, loose=0.0,
                                            fixed=True, depth=depth)
        R = minnorm.make_inverse_resolution_matrix(fwd_fixed, inv, "MNE")
        assert bool(rel_err(R, R.T) < 1e-8) is symmetric


def test_spatial_deviation_grows_with_lambda2(inverses, fwd_fixed):
    """More regularisation, wider functions: the median spatial deviation of PSFs and CTFs
    grows with λ², and (nearly) every source's does."""
    previous = None
    for lambda2 in (1 / 81, 1 / 9, 1.0, 9.0):
        maps = minnorm.resolution_maps(fwd_fixed, inverses["fixed"], method="MNE",
                                       lambda2=lambda2, metrics=("sd_ext",))
        sd = {f: maps[f, "sd_ext"].data[:, 0] for f in eng.FUNCTIONS}
        if previous is not None:
            for f in eng.FUNCTIONS:
                assert np.median(sd[f]) > np.median(previous[f])
                assert np.mean(sd[f] > previous[f]) > 0.9
        previous = sd


# --------------------------------------------------------------------------
# Refused inputs


def test_refusals(inverses, fwd_fixed, fwd_surf_meg, fwd_vol_meg, mne_resmat):
    inv = inverses["loose"]
    with pytest.raises(ValueError, match="fixed-orientation forward"):
        minnorm.resolution_maps(fwd_surf_meg, inv)
    with pytest.raises(ValueError, match="chooses λ² from the data"):
        minnorm.resolution_maps(fwd_fixed, inv, lambda2="gcv")
    with pytest.raises(ValueError, match="metrics must be a non-empty selection"):
        minnorm.resolution_maps(fwd_fixed, inv, metrics=("peak_err", "psf_width"))
    with pytest.raises(ValueError, match="functions must be a non-empty selection"):
        minnorm.resolution_maps(fwd_fixed, inv, functions=())
    with pytest.raises(ValueError, match="threshold must be"):
        minnorm.resolution_maps(fwd_fixed, inv, threshold=1.5)
    with pytest.raises(ValueError, match="sources .* are not the inverse operator's"):
        minnorm.make_inverse_resolution_matrix(fwd_vol_meg, inv)
    with pytest.raises(TypeError, match="forward must be an mne.Forward"):
        minnorm.make_inverse_resolution_matrix(fwd_fixed["sol"]["data"], inv)
    resmat = mne_resmat("loose", "dSPM")
    with pytest.raises(ValueError, match="is not a recognized metric"):
        minnorm.resolution_metrics(resmat, fwd_fixed["src"], "psf", "width")
    with pytest.raises(ValueError, match="cannot be lower"):
        minnorm.resolution_metrics(resmat.T, fwd_fixed["src"], "psf", "peak_err")
    with pytest.raises(ValueError, match="out of range"):
        minnorm.get_point_spread(resmat, inv, [5000])
    with pytest.raises(ValueError, match="n_comp must be 1 for mode=mean"):
        minnorm.get_point_spread(resmat, inv, [5], mode="mean", n_comp=2)
    with pytest.raises(TypeError, match="pass the forward or the inverse operator"):
        minnorm.get_point_spread(resmat, fwd_fixed["src"], [5], vector=True)


def test_meg_eeg_with_bad_channels(fwd_surf_meeg, evoked_meeg, noise_cov_trunc):
    """Only the operator's good channels, in its order: MEG + EEG, average reference, two bads."""
    evoked = evoked_meeg.copy()
    evoked.info["bads"] = ["MEG 2443", "EEG 053"]
    evoked.set_eeg_reference(projection=True, verbose="error")
    fwd_fixed = mne.convert_forward_solution(fwd_surf_meeg, surf_ori=True, force_fixed=True,
                                             copy=True, verbose="error")
    inv = mne.minimum_norm.make_inverse_operator(evoked.info, fwd_surf_meeg, noise_cov_trunc,
                                                 loose=0.2, verbose="error")
    theirs = mne_rm.make_inverse_resolution_matrix(fwd_fixed, inv, method="sLORETA",
                                                   verbose="error")
    assert rel_err(minnorm.make_inverse_resolution_matrix(fwd_fixed, inv, "sLORETA"), theirs) < 1e-6
