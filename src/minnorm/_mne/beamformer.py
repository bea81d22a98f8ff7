"""MNE objects of a beamformer ⇄ arrays: Info, Forward and covariances in; MNE's filter dict out.

``make_lcmv``'s inputs become the arrays of :mod:`minnorm.engine.beamformer`
(channels, whitener, whitened depth-weighted gain, data covariance, ranks,
normals) by MNE-Python's rules; the filter comes back as the dict that
``mne.beamformer.Beamformer`` holds, with the same keys and conventions, so
that filters and ``-lcmv.h5`` files go both ways. The applying side: a
filter's channels in the data, its projector checked, and estimates built.
"""

from __future__ import annotations

from dataclasses import dataclass

import mne
import numpy as np
from mne.io.constants import FIFF

from ..engine import checks
from ..engine.beamformer import PICK_ORIS
from ..engine.linalg import one_blas_thread
from ..engine.priors import DepthOptions, depth_prior
from ..engine.whitening import compute_whitener, make_projector
from .checks import check_compensation_grade, check_reference
from .labels import label_vertices
from .problem import _square_cov, channel_groups, group_ranks, projector_vectors

__all__ = ["LcmvInputs", "read_lcmv_inputs", "filter_dict", "shared_filter_keys",
           "filter_channels", "filter_fields",
           "filter_n_ori", "beamformer_from_file_dict", "MEEG_TYPES"]

MEEG_TYPES = ("mag", "grad", "eeg")
SPARSE_DEPTH = dict(exp=0.8, limit=None, limit_depth_chs="whiten", combine_xyz="fro",
                    allow_fixed_depth=True)  # MNE-Python's depth defaults for beamformers


@dataclass(frozen=True, eq=False)
class LcmvInputs:
    """What the filter maths needs, and what the filter dict records."""

    ch_names: list
    info: object  # mne.Info of the channels used
    gain: np.ndarray  # (M, n_sources·n_ori) whitened, depth-weighted
    cov: np.ndarray  # (M, M) data covariance, not whitened
    whitener: np.ndarray  # (M, M) C_n^-½ (rank-deficient, symmetric form: MNE's)
    proj: np.ndarray  # (M, M) the data's SSP projector
    rank: int
    n_ori: int
    nn: np.ndarray  # (n_sources, 3) orientation reference for max-power signs
    vertices: list
    data_cov: object  # mne.Covariance restricted to ch_names
    noise_cov: object  # mne.Covariance (ad hoc σ = 1 when none was given)


def _check_types(info, forward, data_cov, noise_cov):
    for obj, cls, name in ((info, mne.Info, "info"), (forward, mne.Forward, "forward"),
                           (data_cov, mne.Covariance, "data_cov")):
        if not isinstance(obj, cls):
            raise TypeError(f"{name} must be an mne.{cls.__name__}, got {type(obj).__name__}")
    if noise_cov is not None and not isinstance(noise_cov, mne.Covariance):
        raise TypeError(f"noise_cov must be an mne.Covariance or None, got "
                        f"{type(noise_cov).__name__}")


def _channels(info, forward, data_cov, noise_cov) -> list:
    """Good channels of info, in the forward and both covariances (MNE's rule), info's order."""
    refs = {info["ch_names"][k] for k in mne.pick_types(info, meg=False, ref_meg=True)}
    fwd = set(forward["info"]["ch_names"])
    names = [c for c in info["ch_names"] if c not in info["bads"] and c in fwd and c not in refs]
    for cov in (data_cov, noise_cov):
        if cov is not None:
            have, bads = set(cov.ch_names), set(cov["bads"])
            names = [c for c in names if c in have and c not in bads]
    if not names:
        raise ValueError("no good channel is shared by info, forward and covariances: check "
                         "that they come from the same recording")
    return names


def _ranks(data_cov, noise_cov, info, rank, allow_mismatch) -> dict:
    """The data covariance's rank per channel type; the noise covariance's must be the same."""
    data_rank = mne.compute_rank(data_cov, rank=rank, info=info, verbose=False)
    noise_rank = mne.compute_rank(noise_cov, rank=rank, info=info, verbose=False)
    for key, value in data_rank.items():
        if not allow_mismatch and noise_rank.get(key) != value:
            raise ValueError(f"{key} data rank ({value}) did not match the noise rank "
                             f"({noise_rank.get(key)}): pass rank='info' or a dict, or use "
                             "covariances of the same channels and projectors")
    return data_rank


def _whitened_gain(data, rows, cols, whitener, ch_names) -> np.ndarray:
    """W L: the forward's ``rows`` (and ``cols``; None: every column) whitened, (M, n_cols).

    With every column the rows are picked by the whitener's columns, scattered into an
    M × n_rows(forward) matrix: one GEMM and no copy of the gain (at ico5 the copy cost as
    much as the product). Computed as (Lᵀ Wᵀ)ᵀ: the (n_cols, M) product is OpenBLAS's faster shape
    here (2×), and its rows are what the filter's stacked per-source products read contiguously.
    A forward with a non-finite value anywhere is copied and checked,
    so that the error names the channel (and an unused bad row stays harmless).
    """
    if cols is None and np.isfinite(data).all():
        picker = np.zeros((len(rows), data.shape[0]))
        picker[:, rows] = whitener
        return (data.T @ picker.T).T
    gain = data[rows] if cols is None else data[np.ix_(rows, cols)]
    checks.check_finite(gain, "forward solution", row_names=ch_names)
    return (gain.T @ whitener.T).T


def _depth(gain_w, opts: DepthOptions, *, n_ori, inversion):
    """Depth prior on the whitened gain (MNE's beamformer rule: 'fro', per column for single)."""
    if opts.exp is None:
        return None
    per_column = n_ori == 1 or inversion == "single"
    return depth_prior(gain_w, n_orient=1 if per_column else 3, exp=opts.exp, limit=opts.limit,
                       combine_xyz=opts.combine_xyz, limit_like_c=opts.limit_depth_chs is not False)


def _check_pick_ori(pick_ori, forward, n_ori):
    if pick_ori is not None and n_ori == 1:
        raise ValueError(f"Normal or max-power orientation (got {pick_ori!r}) can only be picked "
                         "when a forward operator with free orientation is used: read the "
                         "forward without force_fixed, or pass pick_ori=None")
    if pick_ori == "normal" and not forward["surf_ori"]:
        raise ValueError("Normal orientation can only be picked when a forward operator oriented "
                         "in surface coordinates is used: convert it with "
                         "mne.convert_forward_solution(fwd, surf_ori=True)")
    if pick_ori == "normal" and forward["src"].kind not in ("surface", "discrete"):
        raise ValueError("Normal source orientation is supported only for surface or discrete "
                         f"source spaces, got a {forward['src'].kind} one: pass pick_ori=None, "
                         "'max-power' or 'vector'")


def read_lcmv_inputs(info, forward, data_cov, noise_cov, *, label, pick_ori, rank, depth,
                     inversion) -> LcmvInputs:
    """The arrays of one LCMV problem, as ``mne.beamformer.make_lcmv`` prepares them."""
    _check_types(info, forward, data_cov, noise_cov)
    check_compensation_grade(forward["info"], info, "forward")
    ch_names = _channels(info, forward, data_cov, noise_cov)
    info = mne.pick_info(info, [info["ch_names"].index(c) for c in ch_names])
    types = info.get_channel_types()
    if sum(t in types for t in MEEG_TYPES) > 1 and noise_cov is None:
        raise ValueError("Source reconstruction with several sensor types requires a noise "
                         "covariance matrix to be able to apply whitening: pass noise_cov")
    allow_mismatch = noise_cov is None
    noise_cov = mne.make_ad_hoc_cov(info, std=1.0, verbose=False) if noise_cov is None \
        else noise_cov.copy()
    noise_cov.pop("estimator", None)
    with one_blas_thread():  # M × M decompositions: BLAS threads only spin at this size
        found = _ranks(data_cov, noise_cov, info, rank, allow_mismatch)
    opts = DepthOptions.from_arg({**SPARSE_DEPTH, **(depth if isinstance(depth, dict)
                                                      else dict(exp=depth))})
    if pick_ori not in PICK_ORIS:
        raise ValueError(f"Invalid value for the 'pick_ori' parameter. Allowed values are "
                         f"{', '.join(map(repr, PICK_ORIS))}, but got {pick_ori!r} instead.")

    n_ori = 1 if forward["source_ori"] == FIFF.FIFFV_MNE_FIXED_ORI else 3
    src = forward["src"]
    if label is not None:
        vertices, sel = label_vertices(label, src, forward["mri_head_t"])
    else:
        vertices, sel = [s["vertno"] for s in src], np.arange(forward["nsource"])
    _check_pick_ori(pick_ori, forward, n_ori)
    cols = sel if n_ori == 1 else (3 * sel[:, np.newaxis] + np.arange(3)).ravel()

    n = len(ch_names)
    groups = channel_groups(types)
    cov_proj = make_projector(projector_vectors(info["projs"] + noise_cov["projs"], ch_names), n)
    with one_blas_thread():
        w = compute_whitener(_square_cov(noise_cov, ch_names), groups=groups,
                             ranks=group_ranks(found, groups, rank), proj=cov_proj)
    whitener = w.eigvec.T @ w.matrix  # E^T Λ^-½ E: the symmetric form MNE-Python stores
    rows = [forward["sol"]["row_names"].index(c) for c in ch_names]
    gain = _whitened_gain(forward["sol"]["data"], rows, None if label is None else cols,
                          whitener, ch_names)
    prior = _depth(gain, opts, n_ori=n_ori, inversion=inversion)
    if prior is not None:
        gain *= np.sqrt(prior)
    nn = np.array(forward["source_nn"][2::3] if n_ori == 3 else forward["source_nn"])[sel]
    if forward["surf_ori"]:
        nn[:] = [0.0, 0.0, 1.0]
    data_cov = mne.pick_channels_cov(data_cov, include=ch_names, ordered=True, verbose=False)
    data_cov.pop("estimator", None)
    cov = _square_cov(data_cov, ch_names)
    checks.check_finite(cov, "data covariance", row_names=ch_names)
    return LcmvInputs(
        ch_names=ch_names, info=info, gain=gain, cov=cov,
        whitener=whitener, proj=make_projector(projector_vectors(info["projs"], ch_names), n),
        rank=int(sum(found.values())), n_ori=n_ori, nn=nn, vertices=[np.asarray(v) for v in
                                                                      vertices],
        data_cov=data_cov, noise_cov=noise_cov)


def filter_dict(inputs: LcmvInputs, forward, result, *, weight_norm, pick_ori,
                inversion) -> dict:
    """MNE-Python's Beamformer keys for a computed LCMV filter."""
    return dict(
        shared_filter_keys(inputs, forward, weight_norm=weight_norm, pick_ori=pick_ori,
                           inversion=inversion),
        kind="LCMV", weights=result.weights, data_cov=inputs.data_cov,
        noise_cov=inputs.noise_cov, is_ssp=bool(inputs.info["projs"]),
        n_sources=forward["nsource"], rank=inputs.rank, max_power_ori=result.max_power_ori)


def shared_filter_keys(inputs: LcmvInputs, forward, *, weight_norm, pick_ori,
                       inversion) -> dict:
    """The keys LCMV and DICS filters share: channels, whitener, projector, sources, options."""
    return dict(
        whitener=inputs.whitener, weight_norm=weight_norm, pick_ori=pick_ori,
        ch_names=list(inputs.ch_names), proj=inputs.proj, vertices=inputs.vertices,
        is_free_ori=inputs.n_ori == 3 and pick_ori in (None, "vector"),
        src_type=forward["src"].kind, source_nn=np.array(forward["source_nn"]),
        subject=forward["src"][0].get("subject_his_id"), inversion=inversion)


def filter_channels(data_ch_names, filters) -> list:
    """Rows of the data for the filter's channels, in the filter's order."""
    index = {c: k for k, c in enumerate(data_ch_names)}
    missing = [c for c in filters["ch_names"] if c not in index]
    if missing:
        raise ValueError(f"The spatial filter was computed with channel {missing[0]} which is "
                         "not present in the data: compute a new spatial filter restricted to "
                         "the good data channels")
    return [index[c] for c in filters["ch_names"]]


PROJ_ATOL = 1e-10  # projectors are matrices of O(1) numbers: a real mismatch is far larger


def filter_fields(filters, projs, info=None) -> np.ndarray:
    """The filter's sensor-side matrix (M, M): the whitener, else the projector, else I.

    The data's projectors ``projs`` must be the filter's (when it used SSP;
    None: not checked, for arrays). With ``info`` (an Evoked/Epochs/Raw's), EEG
    must be average-referenced.
    """
    names = filters["ch_names"]
    if info is not None:
        check_reference(info, names)
    if filters.get("is_ssp", True) and projs is not None:
        proj = make_projector(projector_vectors(projs, names), len(names))
        if not np.allclose(proj, filters["proj"], atol=PROJ_ATOL, rtol=0):
            raise ValueError("The SSP projections present in the data do not match the "
                             "projections used when calculating the spatial filter: apply the "
                             "filter to data with the same projectors, or make it again")
    if filters.get("is_ssp", True) and filters["whitener"] is None:
        return np.asarray(filters["proj"], np.float64)
    if filters["whitener"] is not None:
        return np.asarray(filters["whitener"], np.float64)
    return np.eye(len(names))


def filter_n_ori(filters) -> int:
    """Rows of the weights per source location: 3 for a free filter, else 1."""
    n_loc = sum(len(v) for v in filters["vertices"])
    return len(filters["weights"]) // n_loc


def beamformer_from_file_dict(d: dict) -> dict:
    """The dict h5io reads from an ``-lcmv.h5`` file → MNE's types (bools, Covariances)."""
    for key in ("normalize_fwd", "is_free_ori", "is_ssp"):
        if key in d:
            d[key] = bool(d[key])
    for key in ("data_cov", "noise_cov"):
        cov = d.get(key)
        if cov is not None:
            projs = [mne.Projection(**p) for p in cov["projs"]]
            for p in projs:
                p["active"] = bool(p["active"])
            d[key] = mne.Covariance(*[projs if arg == "projs" else cov.get(arg) for arg in (
                "data", "names", "bads", "projs", "nfree", "eig", "eigvec", "method",
                "loglik")])
    return d
