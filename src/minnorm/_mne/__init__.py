"""The edge with MNE-Python: MNE objects in, plain arrays out, and back.

This is the only module that looks inside MNE objects (Info, Forward,
Covariance, SourceSpaces, Label, Evoked/Epochs/Raw, SourceEstimate and MNE's
own InverseOperator dict). Everything else in minnorm works on arrays.
"""

from __future__ import annotations

import contextlib
import logging
from copy import deepcopy
from dataclasses import dataclass, field

import mne
import numpy as np
from mne.io.constants import FIFF

from ..engine import checks
from .._log import warn
from ..engine.whitening import Whitener, make_projector

logger = logging.getLogger("minnorm")

_KIND = {"surf": "surface", "vol": "volume", "discrete": "discrete"}
_ORI_TO_FIFF = {"free": FIFF.FIFFV_MNE_FREE_ORI, "fixed": FIFF.FIFFV_MNE_FIXED_ORI}
_FIFF_TO_ORI = {v: k for k, v in _ORI_TO_FIFF.items()}


@contextlib.contextmanager
def log_level(verbose):
    """Use ``verbose`` (MNE's convention) for minnorm's and MNE's loggers."""
    if verbose is None or verbose is False:
        level = "WARNING" if verbose is False else None
    elif verbose is True:
        level = "INFO"
    else:
        level = verbose.upper() if isinstance(verbose, str) else int(verbose)
    old = logger.level
    if level is not None:
        logger.setLevel(level)
    try:
        with mne.utils.use_log_level(level or "WARNING"):
            yield
    finally:
        logger.setLevel(old)


@dataclass(frozen=True, eq=False)
class MneContext:
    """What MNE-Python needs around the maths: never read by the maths itself."""

    src: object  # mne.SourceSpaces
    info: object  # mne.Info of the operator's channels
    projs: list
    mri_head_t: object
    coord_frame: int
    methods: int
    cov_meta: dict = field(default_factory=dict)

    @property
    def subject(self):
        """The source space's subject (or None)."""
        return self.src[0].get("subject_his_id")


@dataclass(frozen=True, eq=False)
class Problem:
    """The inputs of ``make_inverse_operator`` as arrays, channels aligned."""

    ch_names: list
    groups: dict  # whitening group → channel indices
    ranks: dict  # whitening group → rank
    noise_cov: np.ndarray  # (M, M), not projected
    proj: np.ndarray  # (M, M), the data's SSP projector
    cov_proj: np.ndarray  # (M, M), data's and covariance's projectors together
    gain: np.ndarray  # (M, n_cols) as the forward is now
    gain_xyz: np.ndarray | None  # (M, 3·n_sources) cartesian, if the forward has it
    source_nn: np.ndarray  # (n_cols, 3)
    is_fixed: bool
    surf_ori: bool
    kinds: list  # kind of each source space
    n_used: list  # sources in each source space
    depth_rows: np.ndarray  # channels that define the depth prior
    has_patch_info: bool
    normals_plain: list = field(repr=False)
    normals_cps: list = field(repr=False)
    context: MneContext = field(repr=False)

    def normals(self, use_cps: bool) -> list:
        """Surface normal of every source, per source space: (n_used, 3) each."""
        return self.normals_cps if use_cps else self.normals_plain


def _check_types(info, forward, noise_cov):
    for obj, cls, name, hint in (
        (info, mne.Info, "info", "pass evoked.info (or raw.info, epochs.info)"),
        (forward, mne.Forward, "forward", "read it with mne.read_forward_solution"),
        (noise_cov, mne.Covariance, "noise_cov", "read it with mne.read_cov"),
    ):
        if not isinstance(obj, cls):
            raise TypeError(f"{name} must be an mne.{cls.__name__}, got {type(obj).__name__}: {hint}")


class CompensationGradeError(ValueError, RuntimeError):
    """CTF data at another compensation grade than their forward or inverse operator.

    A ValueError like minnorm's other input errors, and a RuntimeError like
    MNE-Python's for the same refusal, so that ``except`` clauses for either work.
    """


def compensation_grade(info) -> int:
    """CTF gradient-compensation grade of ``info``'s MEG channels (0: none, as MNE)."""
    return info.compensation_grade or 0


def check_compensation_grade(model_info, data_info, model: str) -> None:
    """Data must be at the grade ``model`` ("forward" or "inverse") was computed for.

    As MNE-Python: the grades of all MEG channels of both infos (no MEG channel
    counts as grade 0), compared where data meet a forward or an operator.
    """
    made, data = compensation_grade(model_info), compensation_grade(data_info)
    if made != data:
        redo = "compute the forward solution" if model == "forward" else \
            "make the inverse operator"
        raise CompensationGradeError(
            f"Compensation grade of {model} ({made}) and data ({data}) do not match: use "
            f"raw.apply_gradient_compensation({made}) before epoching or averaging, or "
            f"{redo} from data at grade {data}")


_DATA_TYPES = ("mag", "grad", "eeg")
MISMATCH_CHOICES = ("raise", "warn", "ignore")


def check_channel_match(info, forward, noise_cov, *, on_mismatch="raise") -> None:
    """Data, forward and covariance must agree on the channels and on the bad ones.

    MNE-Python silently leaves out every channel that one of the three lacks
    or marks bad; minnorm says so: ``on_mismatch`` "raise" (ValueError),
    "warn" or "ignore" (MNE-Python's behaviour). Only the channel types the
    forward models (magnetometers, gradiometers, EEG) are compared.
    """
    if on_mismatch not in MISMATCH_CHOICES:
        raise ValueError(f"on_mismatch must be one of {list(MISMATCH_CHOICES)}, "
                         f"got {on_mismatch!r}")
    if on_mismatch == "ignore":
        return
    fwd_names = set(forward["sol"]["row_names"])
    fwd_types = {t for t, c in zip(forward["info"].get_channel_types(), forward["info"]["ch_names"])
                 if c in fwd_names} & set(_DATA_TYPES)
    types = dict(zip(info["ch_names"], info.get_channel_types()))
    data = [c for c in info["ch_names"] if types[c] in fwd_types]
    bads_data, bads_cov = set(info["bads"]), set(noise_cov["bads"])
    good = [c for c in data if c not in bads_data]
    cov_names = set(noise_cov.ch_names)
    problems = []
    missing_fwd = [c for c in good if c not in fwd_names]
    if missing_fwd:
        problems.append(f"{len(missing_fwd)} good data channels are not in the forward "
                        f"solution ({checks.name_list(missing_fwd)}): recompute the forward "
                        "with this recording's info, or mark them bad")
    missing_cov = [c for c in good if c not in cov_names and c in fwd_names]
    if missing_cov:
        problems.append(f"{len(missing_cov)} good data channels are not in the noise "
                        f"covariance ({checks.name_list(missing_cov)}): recompute the "
                        "covariance with these channels, or mark them bad")
    shared = [c for c in data if c in cov_names and c in fwd_names]
    only_cov = [c for c in shared if c in bads_cov and c not in bads_data]
    only_data = [c for c in shared if c in bads_data and c not in bads_cov]
    for names, bad_in, good_in, where in ((only_cov, "the noise covariance", "the data",
                                           "info['bads'] of the data"),
                                          (only_data, "the data", "the noise covariance",
                                           "the covariance's bads")):
        if names:
            problems.append(f"{len(names)} channels are bad in {bad_in} but not in "
                            f"{good_in} ({checks.name_list(names)}): add them to {where}, "
                            "or leave bads of either out of both (on_mismatch='ignore', "
                            "command line --union-bads)")
    if problems:
        message = "; ".join(problems)
        if on_mismatch == "raise":
            raise ValueError(message)
        warn(message)


def select_channels(info, forward, noise_cov) -> list:
    """Good channels present in info, forward and covariance, in info's order."""
    available = set(forward["sol"]["row_names"]) & set(noise_cov.ch_names)
    bads = set(info["bads"]) | set(noise_cov["bads"])
    names = [c for c in info["ch_names"] if c in available and c not in bads]
    if not names:
        raise ValueError(
            "no channel is shared by info, forward and noise covariance (after "
            "excluding bads): check that they come from the same recording"
        )
    return names


def projector_vectors(projs, ch_names) -> np.ndarray:
    """All projection vectors, restricted to ch_names: (n_vectors, M)."""
    index = {name: k for k, name in enumerate(ch_names)}
    rows = []
    for p in projs:
        data, cols = p["data"]["data"], p["data"]["col_names"]
        vecs = np.zeros((data.shape[0], len(ch_names)))
        for j, name in enumerate(cols):
            if name in index:
                vecs[:, index[name]] = data[:, j]
        rows.append(vecs)
    return np.concatenate(rows) if rows else np.zeros((0, len(ch_names)))


def channel_groups(ch_types) -> dict:
    """Whitening groups: MEG (mag and grad together when both), EEG, others."""
    groups = {}
    for k, kind in enumerate(ch_types):
        groups.setdefault(kind, []).append(k)
    if "mag" in groups and "grad" in groups:
        groups["meg"] = sorted(groups.pop("mag") + groups.pop("grad"))
    return {name: np.array(idx) for name, idx in groups.items()}


def _ranks(cov_p, ch_names, info_picked, projs, rank, groups) -> dict:
    """Rank per group, as MNE-Python estimates it (mne.compute_rank)."""
    cov = mne.Covariance(cov_p, ch_names, [], projs, 0)
    found = mne.compute_rank(cov, rank=rank, info=info_picked, on_rank_mismatch="ignore")
    ranks = {}
    for name in groups:
        if name in found:
            ranks[name] = int(found[name])
        elif name in ("mag", "grad") and "meg" in found:
            ranks[name] = int(found["meg"])
        else:
            raise ValueError(f"no rank found for {name} channels in rank={rank!r}")
    return ranks


def _depth_rows(ch_types) -> np.ndarray:
    """MNE's rule: gradiometers if any, else magnetometers, else EEG, else all."""
    ch_types = np.asarray(ch_types)
    for kind in ("grad", "mag", "eeg"):
        rows = np.flatnonzero(ch_types == kind)
        if len(rows):
            return rows
    return np.arange(len(ch_types))


def _normals(src, use_cps: bool) -> list:
    """Per source space, the normals of the used vertices (patch-averaged if asked)."""
    out = []
    for s in src:
        vertno = s["vertno"]
        if use_cps and s.get("patch_inds") is not None:
            patches = [s["pinfo"][i] for i in s["patch_inds"]]
            starts = np.cumsum([0] + [len(p) for p in patches[:-1]])
            nn = np.add.reduceat(s["nn"][np.concatenate(patches)], starts, axis=0)
            nn /= np.linalg.norm(nn, axis=-1, keepdims=True)
        else:
            nn = s["nn"][vertno]
        out.append(np.asarray(nn, dtype=np.float64))
    return out


def _square_cov(noise_cov, ch_names) -> np.ndarray:
    data = noise_cov.data
    data = np.diag(data) if data.ndim == 1 else data
    idx = [noise_cov.ch_names.index(c) for c in ch_names]
    return np.array(data[np.ix_(idx, idx)], dtype=np.float64)


def _methods(ch_types) -> int:
    has_meg = any(t in ("mag", "grad") for t in ch_types)
    has_eeg = "eeg" in ch_types
    if has_meg and has_eeg:
        return FIFF.FIFFV_MNE_MEG_EEG
    return FIFF.FIFFV_MNE_MEG if has_meg else FIFF.FIFFV_MNE_EEG


_REGULARIZED = ("shrunk", "shrinkage", "ledoit_wolf", "oas", "factor_analysis", "pca",
                "diagonal_fixed", "ad-hoc")


def check_noise_cov(noise_cov, ch_names, cov: np.ndarray) -> None:
    """Definiteness and sampling of the covariance restricted to ``ch_names``."""
    method = noise_cov.get("method") or ""
    methods = method if isinstance(method, (list, tuple)) else [method]
    checks.check_noise_cov(
        cov, ch_names, nfree=int(noise_cov["nfree"] or 0), diagonal=bool(noise_cov["diag"]),
        regularized=any(str(m) in _REGULARIZED for m in methods),
    )


def read_problem(info, forward, noise_cov, *, rank, on_mismatch="raise") -> Problem:
    """Extract aligned arrays from (info, forward, noise_cov)."""
    _check_types(info, forward, noise_cov)
    check_compensation_grade(forward["info"], info, "forward")
    check_channel_match(info, forward, noise_cov, on_mismatch=on_mismatch)
    ch_names = select_channels(info, forward, noise_cov)
    info_picked = mne.pick_info(info, [info["ch_names"].index(c) for c in ch_names])
    ch_types = info_picked.get_channel_types()
    cov = _square_cov(noise_cov, ch_names)
    check_noise_cov(noise_cov, ch_names, cov)
    projs = info_picked["projs"]
    n = len(ch_names)
    proj = make_projector(projector_vectors(projs, ch_names), n)
    cov_proj = make_projector(projector_vectors(projs + noise_cov["projs"], ch_names), n)
    groups = channel_groups(ch_types)
    ranks = _ranks(cov_proj @ cov @ cov_proj.T, ch_names, info_picked,
                   projs + noise_cov["projs"], rank, groups)

    rows = [forward["sol"]["row_names"].index(c) for c in ch_names]
    gain = forward["sol"]["data"][rows]
    checks.check_finite(gain, "forward solution", row_names=ch_names)
    orig = forward.get("_orig_sol")
    orig_fixed = forward.get("_orig_source_ori", forward["source_ori"]) == FIFF.FIFFV_MNE_FIXED_ORI
    gain_xyz = None if orig is None or orig_fixed else np.asarray(orig[rows], np.float64)

    fwd_names = forward["info"]["ch_names"]
    fwd_info = mne.pick_info(forward["info"], [fwd_names.index(c) for c in ch_names])
    with fwd_info._unlock():
        fwd_info["bads"] = [b for b in info["bads"] if b in fwd_info["ch_names"]]
    src = forward["src"]
    context = MneContext(
        src=src, info=fwd_info, projs=deepcopy(projs),
        mri_head_t=forward["mri_head_t"], coord_frame=forward["coord_frame"],
        methods=_methods(ch_types),
        cov_meta=dict(bads=list(noise_cov["bads"]), projs=deepcopy(noise_cov["projs"]),
                      nfree=noise_cov["nfree"], method=noise_cov.get("method"),
                      loglik=noise_cov.get("loglik")),
    )
    return Problem(
        ch_names=ch_names, groups=groups, ranks=ranks, noise_cov=cov, proj=proj,
        cov_proj=cov_proj, gain=gain, gain_xyz=gain_xyz,
        source_nn=np.asarray(forward["source_nn"], np.float64),
        is_fixed=forward["source_ori"] == FIFF.FIFFV_MNE_FIXED_ORI,
        surf_ori=bool(forward["surf_ori"]),
        kinds=[_KIND[s["type"]] for s in src], n_used=[int(s["nuse"]) for s in src],
        depth_rows=_depth_rows(ch_types),
        has_patch_info=any(s.get("patch_inds") is not None for s in src),
        normals_plain=_normals(src, False), normals_cps=_normals(src, True),
        context=context,
    )


# --------------------------------------------------------------------------
# MNE's InverseOperator dict ⇄ minnorm.InverseOperator


def _diag_cov_dict(data, kind):
    return dict(data=data, kind=kind, bads=[], diag=True, names=[], eig=None,
                eigvec=None, dim=data.size, nfree=1, projs=[])


def inverse_to_mne(op):
    """The ``mne.minimum_norm.InverseOperator`` equal to ``op``."""
    ctx = op.mne
    meta = ctx.cov_meta
    noise_cov = mne.Covariance(
        op.noise_cov, list(op.ch_names), list(meta.get("bads", [])),
        deepcopy(meta.get("projs", [])), meta.get("nfree", 1),
        eig=op.whitener.eig, eigvec=op.whitener.eigvec,
        method=meta.get("method"), loglik=meta.get("loglik"),
    )
    inv = dict(
        projs=deepcopy(ctx.projs), eigen_leads_weighted=False,
        source_ori=_ORI_TO_FIFF[op.source_ori], mri_head_t=ctx.mri_head_t,
        nsource=op.n_sources, units="Am", coord_frame=ctx.coord_frame,
        source_nn=op.source_nn, src=ctx.src, fmri_prior=None,
        info=ctx.info.copy(),
        eigen_fields=dict(data=op.eigen_fields, col_names=list(op.ch_names),
                          row_names=[], nrow=op.eigen_fields.shape[0],
                          ncol=op.eigen_fields.shape[1]),
        eigen_leads=dict(data=op.eigen_leads, nrow=op.eigen_leads.shape[0],
                         ncol=op.eigen_leads.shape[1], row_names=[], col_names=[]),
        sing=op.sing, nave=1.0,
        depth_prior=None if op.depth_prior is None
        else _diag_cov_dict(op.depth_prior, FIFF.FIFFV_MNE_DEPTH_PRIOR_COV),
        orient_prior=None if op.orient_prior is None
        else _diag_cov_dict(op.orient_prior, FIFF.FIFFV_MNE_ORIENT_PRIOR_COV),
        source_cov=_diag_cov_dict(op.source_cov, FIFF.FIFFV_MNE_SOURCE_COV),
        noise_cov=noise_cov, methods=ctx.methods,
    )
    return mne.minimum_norm.InverseOperator(inv)


def inverse_from_mne(inv, cls):
    """A minnorm operator from MNE's InverseOperator (not prepared for eLORETA)."""
    if not isinstance(inv, dict) or "eigen_leads" not in inv:
        raise TypeError(
            f"expected an mne.minimum_norm.InverseOperator, got {type(inv).__name__}: "
            "read one with minnorm.read_inverse_operator"
        )
    nave = float(inv["nave"])
    source_cov = np.asarray(inv["source_cov"]["data"], np.float64) * nave
    leads = np.asarray(inv["eigen_leads"]["data"], np.float64)
    if inv["eigen_leads_weighted"]:
        if not np.all(np.isfinite(source_cov)):
            raise ValueError(
                "this inverse operator was prepared for eLORETA and cannot be reused: "
                "pass the operator as made or read from file"
            )
        leads = leads / np.sqrt(source_cov / nave)[:, np.newaxis]
    cov = inv["noise_cov"]
    names = list(cov["names"])
    data = cov["data"]
    if data.ndim == 1:
        eig, eigvec, data = data.copy(), np.eye(len(data)), np.diag(data)
    else:
        eig, eigvec = cov["eig"], cov["eigvec"]
    eig = np.where(eig > 0, eig, 0.0) * nave
    proj = make_projector(projector_vectors(inv["projs"], names), len(names))
    src = inv["src"]
    ch_types = inv["info"].get_channel_types()
    context = MneContext(
        src=src, info=inv["info"].copy(), projs=deepcopy(inv["projs"]),
        mri_head_t=inv["mri_head_t"], coord_frame=inv["coord_frame"],
        methods=inv.get("methods", _methods(ch_types)),
        cov_meta=dict(bads=list(cov["bads"]), projs=deepcopy(cov["projs"]),
                      nfree=cov["nfree"], method=cov.get("method"),
                      loglik=cov.get("loglik")),
    )
    prior = {k: None if inv[k] is None else np.asarray(inv[k]["data"], np.float64)
             for k in ("depth_prior", "orient_prior")}
    return cls(
        ch_names=tuple(names),
        whitener=Whitener(eig, np.asarray(eigvec, np.float64), proj),
        noise_cov=np.asarray(data, np.float64) * nave,
        eigen_fields=np.asarray(inv["eigen_fields"]["data"], np.float64),
        sing=np.asarray(inv["sing"], np.float64),
        eigen_leads=leads,
        source_cov=source_cov,
        depth_prior=prior["depth_prior"], orient_prior=prior["orient_prior"],
        source_ori=_FIFF_TO_ORI[int(inv["source_ori"])],
        source_nn=np.asarray(inv["source_nn"], np.float64),
        n_sources=int(inv["nsource"]), mne=context,
    )


# --------------------------------------------------------------------------
# Data in, source estimates out


def info_from_forward(forward, noise_cov=None):
    """A full measurement Info for a forward alone (``forward['info']`` lacks most keys).

    Channels, bads and transforms are the forward's; the SSP projectors are
    the noise covariance's (those the data it came from had), none without one.
    """
    fwd_info = forward["info"]
    info = mne.create_info(list(fwd_info["ch_names"]), sfreq=1000.0)
    with info._unlock():
        info["chs"] = deepcopy(fwd_info["chs"])
        info["dev_head_t"] = deepcopy(fwd_info["dev_head_t"])
        info["bads"] = [b for b in fwd_info["bads"] if b in fwd_info["ch_names"]]
        info["projs"] = [] if noise_cov is None else deepcopy(noise_cov["projs"])
        info._update_redundant()
    info._check_consistency()
    return info


def check_reference(info, ch_names):
    """EEG needs an average-reference projector (and no custom reference)."""
    wanted = set(ch_names)
    all_types = info.get_channel_types()  # once: it is slow (a pick per call)
    types = [t for c, t in zip(info["ch_names"], all_types) if c in wanted]
    if "eeg" not in types:
        return
    if info.get("custom_ref_applied", False):
        raise ValueError(
            "custom EEG reference is not allowed for inverse modelling: use "
            "set_eeg_reference('average', projection=True) on the original data"
        )
    has_avg = any(
        p["kind"] == FIFF.FIFFV_PROJ_ITEM_EEG_AVREF
        or p["desc"].startswith("Average EEG reference")
        for p in info["projs"]
    )
    if not has_avg:
        raise ValueError(
            "EEG average reference (using a projector) is mandatory for "
            "modeling: use inst.set_eeg_reference(projection=True)"
        )


def check_channels(op, info):
    """The operator's channels must all be in the data, at the operator's CTF grade."""
    missing = sorted(set(op.ch_names) - set(info["ch_names"]))
    if missing:
        raise ValueError(
            f"{len(missing)} channels of the inverse operator are not in the data "
            f"({checks.name_list(missing)}): make the inverse operator from this data's info"
        )
    check_compensation_grade(op.info, info, "inverse")
    bads = set(info["bads"])
    bad = [c for c in op.ch_names if c in bads]
    if bad:
        raise ValueError(
            f"{len(bad)} channels that the inverse operator uses are marked bad in the "
            f"data ({checks.name_list(bad)}): make the inverse operator from this data's "
            "info, so that they are left out"
        )
    check_reference(info, op.ch_names)


def check_data(data: np.ndarray, op, info, *, nave: float = 1.0, units: bool = True) -> None:
    """Data in the operator's channel order: finite, and (a warning) in SI units."""
    checks.check_finite(data, "data", row_names=op.ch_names)
    if units:
        types = dict(zip(info["ch_names"], info.get_channel_types()))
        noise_std = np.sqrt(np.clip(np.diag(op.noise_cov), 0, None) / nave)
        for problem in checks.unit_problems(data, [types[c] for c in op.ch_names], noise_std):
            warn(problem)


def pick_rows(data_ch_names, op) -> list:
    """Indices of the operator's channels in the data, in the operator's order."""
    index = {c: k for k, c in enumerate(data_ch_names)}
    return [index[c] for c in op.ch_names]


def label_vertices(label, src, mri_head_t=None):
    """Vertices and source indices of a surface source space inside ``label``.

    ``mri_head_t`` (MRI → head) lets the label's positions (MRI frame) be
    compared with a source space in head coordinates (see :func:`check_label`).
    """
    if src[0]["type"] != "surf":
        raise ValueError(
            f"labels need a surface source space, got a {_KIND[src[0]['type']]} one: "
            "pass label=None"
        )
    check_label(label, src, mri_head_t)
    vertno = [src[0]["vertno"], src[1]["vertno"]]
    hemis = {"lh": [label], "rh": []} if label.hemi == "lh" else \
        {"lh": [], "rh": [label]} if label.hemi == "rh" else \
        {"lh": [label.lh], "rh": [label.rh]}
    out_vert, out_sel, offset = [], [], 0
    for h, verts in zip(("lh", "rh"), vertno):
        if hemis[h]:
            v = np.intersect1d(verts, hemis[h][0].vertices)
            out_sel.append(np.searchsorted(verts, v) + offset)
        else:
            v = np.array([], int)
        out_vert.append(v)
        offset += len(verts)
    sel = np.concatenate(out_sel)
    if not len(sel):
        raise ValueError(
            f"label {label.name!r} contains none of the source space's "
            f"{sum(len(v) for v in vertno)} sources: it is too small for this source "
            "spacing, or drawn on another subject or hemisphere"
        )
    return out_vert, sel


_HEMI_NAME = {"lh": "left", "rh": "right"}
LABEL_POS_TOL_M = 0.010  # label positions this far from the cortex: another surface


def check_label(label, src, mri_head_t=None) -> None:
    """A label must be of the source space's subject and of the hemisphere it says.

    Its subject (when known) must be the source space's, its vertex numbers
    must exist in its hemisphere, and its positions (when given) must not be
    those of the other hemisphere's vertices. Positions far from the source
    space's vertices of the same numbers only warn (another surface, e.g.
    pial instead of white, is fine).
    """
    if not isinstance(label, (mne.Label, mne.BiHemiLabel)):
        raise TypeError(f"label must be an mne.Label or mne.BiHemiLabel, got "
                        f"{type(label).__name__}: read one with mne.read_label")
    subject = src[0].get("subject_his_id")
    if label.subject is not None and subject is not None and label.subject != subject:
        raise ValueError(f"label {label.name!r} is of subject {label.subject!r}, but the "
                         f"source space is of {subject!r}: morph it with "
                         f"label.morph(subject_to={subject!r})")
    parts = [label.lh, label.rh] if label.hemi == "both" else [label]
    for part in parts:
        if part.hemi not in _HEMI_NAME:
            raise ValueError(f"label {part.name!r} has hemisphere {part.hemi!r}: "
                             "expected 'lh' or 'rh'")
        _check_label_hemi(part, src, _label_to_src_frame(src, mri_head_t))


def _label_to_src_frame(src, mri_head_t):
    """A function mapping label positions (MRI frame) into the source space's frame."""
    frame = int(src[0].get("coord_frame", FIFF.FIFFV_COORD_MRI))
    if frame == FIFF.FIFFV_COORD_MRI:
        return lambda pos: pos
    if frame == FIFF.FIFFV_COORD_HEAD and mri_head_t is not None:
        trans = mri_head_t["trans"]
        if mri_head_t["from"] != FIFF.FIFFV_COORD_MRI:
            trans = np.linalg.inv(trans)
        return lambda pos: pos @ trans[:3, :3].T + trans[:3, 3]
    return None  # unknown frame: positions are not compared


def _check_label_hemi(label, src, to_src_frame) -> None:
    """Vertex numbers in range; positions (if any) on this hemisphere's surface."""
    k = 0 if label.hemi == "lh" else 1
    surf = src[k]
    verts = np.asarray(label.vertices)
    if len(verts) and (verts.min() < 0 or verts.max() >= surf["np"]):
        raise ValueError(
            f"label {label.name!r} has vertex {int(verts.max())}, but the "
            f"{_HEMI_NAME[label.hemi]} hemisphere of the source space has {surf['np']} "
            "vertices: the label was drawn on another subject's cortex; morph it"
        )
    pos = np.asarray(label.pos, float)
    if to_src_frame is None or not len(verts) or pos.shape != (len(verts), 3) \
            or not np.any(pos):
        return
    pos = to_src_frame(pos)
    mean_dist = {h: float(np.mean(np.linalg.norm(s["rr"][verts] - pos, axis=1)))
                 for h, s in zip(("lh", "rh"), src[:2]) if verts.max() < s["np"]}
    other = "rh" if label.hemi == "lh" else "lh"
    here = mean_dist[label.hemi]
    if here > LABEL_POS_TOL_M and mean_dist.get(other, np.inf) < LABEL_POS_TOL_M / 10:
        raise ValueError(
            f"label {label.name!r} says {_HEMI_NAME[label.hemi]} hemisphere, but its "
            f"positions are those of the {_HEMI_NAME[other]} hemisphere's vertices: it is "
            f"a {other} label (its file name must end in -{other}.label)"
        )
    if here > LABEL_POS_TOL_M:
        warn(f"label {label.name!r}: its positions are {here * 1e3:.0f} mm on average from "
             "the source space's vertices of the same numbers: was it drawn on another "
             "subject or surface?")


def vertices(src):
    """Vertex numbers used in each source space."""
    return [s["vertno"] for s in src]


def make_stc(data, vertno, *, src, tmin, tstep, vector, source_nn):
    """The SourceEstimate class MNE would return, vectors rotated to x, y, z."""
    kind = src.kind
    if kind == "surface":
        cls = mne.VectorSourceEstimate if vector else mne.SourceEstimate
    elif kind in ("volume", "discrete"):
        cls = mne.VolVectorSourceEstimate if vector else mne.VolSourceEstimate
    else:
        cls = mne.MixedVectorSourceEstimate if vector else mne.MixedSourceEstimate
    if vector:
        n = sum(len(v) for v in vertno)
        if len(data) == n:  # fixed orientation: the normal times the amplitude
            data = data[:, np.newaxis] * source_nn[:, :, np.newaxis]
        else:
            frames = source_nn.reshape(n, 3, 3)
            data = np.matmul(frames.transpose(0, 2, 1), data.reshape(n, 3, -1))
    return cls(data=data, vertices=vertno, tmin=tmin, tstep=tstep,
               subject=src[0].get("subject_his_id"))


def stc_kind(stc) -> str:
    """"surface", "volume" (scalar, one file in .stc), "vector" or "mixed"."""
    if isinstance(stc, (mne.VectorSourceEstimate, mne.VolVectorSourceEstimate,
                        mne.MixedVectorSourceEstimate)):
        return "vector"
    if isinstance(stc, mne.MixedSourceEstimate):
        return "mixed"
    if isinstance(stc, mne.VolSourceEstimate):
        return "volume" if len(stc.vertices) == 1 else "mixed"
    return "surface"


def stc_space_kind(stc) -> str:
    """The source-space kind of an estimate: "surface", "volume" or "mixed"."""
    if isinstance(stc, (mne.MixedSourceEstimate, mne.MixedVectorSourceEstimate)):
        return "mixed"
    if isinstance(stc, (mne.VolSourceEstimate, mne.VolVectorSourceEstimate)):
        return "volume"
    return "surface"


_STC_CLASSES = {
    ("surface", False): mne.SourceEstimate, ("surface", True): mne.VectorSourceEstimate,
    ("volume", False): mne.VolSourceEstimate, ("volume", True): mne.VolVectorSourceEstimate,
    ("mixed", False): mne.MixedSourceEstimate, ("mixed", True): mne.MixedVectorSourceEstimate,
}


def stc_from_arrays(data, vertices, *, tmin, tstep, subject, kind, vector):
    """An MNE source estimate of ``kind`` from its arrays (vectors already x, y, z).

    Discrete source spaces give volume estimates, as in MNE-Python.
    """
    kind = "volume" if kind == "discrete" else kind
    return _STC_CLASSES[kind, bool(vector)](data=data, vertices=list(vertices), tmin=tmin,
                                            tstep=tstep, subject=subject)


def save_stc(stc, prefix, *, ftype):
    """``stc.save``: MNE appends -lh.stc/-rh.stc, -vl.stc or -stc.h5 to ``prefix``."""
    stc.save(str(prefix), ftype=ftype, overwrite=True, verbose="error")


def read_stc(fname):
    """An MNE source estimate from a .stc or -stc.h5 file."""
    return mne.read_source_estimate(fname)


_FRAMES = {FIFF.FIFFV_COORD_HEAD: "head", FIFF.FIFFV_COORD_MRI: "MRI"}


def describe_source(src, vertices, row: int) -> str:
    """Where the ``row``-th location of an estimate with ``vertices`` is, in words."""
    offset = 0
    for k, (space, verts) in enumerate(zip(src, vertices)):
        if row < offset + len(verts):
            vertex = int(verts[row - offset])
            pos = space["rr"][vertex] * 1e3
            frame = _FRAMES.get(int(space.get("coord_frame", -1)), "source-space")
            if space["type"] == "surf":
                hemi = "left" if space["id"] == FIFF.FIFFV_MNE_SURF_LEFT_HEMI else "right"
                what = f"{hemi} hemisphere vertex {vertex}"
            else:
                what = f"{_KIND[space['type']]} source {vertex}"
                if len(src) > 1:
                    what += f" (source space {k + 1} of {len(src)})"
            return (f"{what} at ({pos[0]:.1f}, {pos[1]:.1f}, {pos[2]:.1f}) mm in "
                    f"{frame} coordinates")
        offset += len(verts)
    raise IndexError(f"row {row} is beyond the estimate's {offset} locations")


def channel_counts(info, ch_names=None) -> dict:
    """Number of channels per type (of ``ch_names`` only, when given)."""
    names = set(info["ch_names"] if ch_names is None else ch_names)
    counts = {}
    for name, kind in zip(info["ch_names"], info.get_channel_types()):
        if name in names:
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def format_counts(counts: dict) -> str:
    """``102 mag, 204 grad, 60 eeg``."""
    return ", ".join(f"{n} {kind}" for kind, n in counts.items())


def describe_operator(op) -> str:
    """Channels, sources, orientation, depth and rank of an operator, in words."""
    counts = format_counts(channel_counts(op.info, op.ch_names))
    if op.source_ori == "fixed":
        ori = "fixed orientation"
    elif op.orient_prior is not None and op.orient_prior.min() < 1:
        ori = f"loose orientation {op.orient_prior.min():g}"
    else:
        ori = "free orientation"
    depth = "depth-weighted" if op.depth_prior is not None else "no depth weighting"
    return (f"{len(op.ch_names)} channels: {counts}; {op.n_sources} {op.src.kind} sources, "
            f"{ori}, {depth}; noise rank {op.n_nonzero}")


def residual_evoked(evoked, rows, estimate):
    """A copy of ``evoked`` minus the estimate on the operator's channels."""
    residual = evoked.copy()
    residual.data[rows] -= estimate
    return residual


_INSTANCE = {"evoked": "Evoked", "epochs": "Epochs", "raw": "Raw"}


def check_instance(inst, kind):
    """Type check of the data argument, naming what was given."""
    classes = {"evoked": mne.Evoked, "epochs": mne.BaseEpochs, "raw": mne.io.BaseRaw}
    if not isinstance(inst, classes[kind]):
        raise TypeError(f"{kind} must be an mne {_INSTANCE[kind]}, got {type(inst).__name__}")
    if kind == "epochs" and len(inst.drop_log) and not len(inst.events):
        raise ValueError("the Epochs are empty (every epoch was dropped): nothing to invert")


def iter_epochs(epochs):
    """Each epoch's data (n_channels, n_times), as MNE-Python iterates them."""
    yield from epochs


def read_inverse(fname):
    """Read a -inv.fif file into MNE's InverseOperator."""
    return mne.minimum_norm.read_inverse_operator(fname, verbose=False)


def write_inverse(fname, mne_inv, *, overwrite):
    """Write MNE's InverseOperator to a -inv.fif file."""
    mne.minimum_norm.write_inverse_operator(fname, mne_inv, overwrite=overwrite, verbose=False)


# --------------------------------------------------------------------------
# Facts for ``minnorm story``


@dataclass(frozen=True, eq=False)
class SpaceFacts:
    """One source space: kind ("surface", "volume", "discrete"), name, used/total points."""

    kind: str
    name: str
    n_used: int
    n_total: int


@dataclass(frozen=True, eq=False)
class ForwardFacts:
    """What the story tells about a forward solution, as plain values and arrays."""

    ch_names: list
    ch_types: list
    gain: np.ndarray  # (M, n_columns)
    n_orient: int  # columns per source: 3 (free) or 1 (fixed)
    spaces: list  # of SpaceFacts
    coord_frame: str
    surf_ori: bool


@dataclass(frozen=True, eq=False)
class CovFacts:
    """What the story tells about a noise covariance."""

    n_channels: int
    ranks: dict  # channel type → rank (after projectors)
    projs: list  # (description, active, number of vectors)
    nfree: int
    diagonal: bool
    bads: list


def forward_facts(forward) -> ForwardFacts:
    """Channels, gain, orientation and source spaces of ``forward``."""
    if not isinstance(forward, mne.Forward):
        raise TypeError(f"forward must be an mne.Forward, got {type(forward).__name__}")
    names = list(forward["sol"]["row_names"])
    types = dict(zip(forward["info"]["ch_names"], forward["info"].get_channel_types()))
    spaces = []
    for s in forward["src"]:
        kind = _KIND[s["type"]]
        if s["type"] == "surf":
            name = "left hemisphere" if s["id"] == FIFF.FIFFV_MNE_SURF_LEFT_HEMI \
                else "right hemisphere"
        else:
            name = s.get("seg_name") or kind
        spaces.append(SpaceFacts(kind, name, int(s["nuse"]), int(s["np"])))
    return ForwardFacts(
        ch_names=names, ch_types=[types[c] for c in names],
        gain=np.asarray(forward["sol"]["data"], np.float64),
        n_orient=1 if forward["source_ori"] == FIFF.FIFFV_MNE_FIXED_ORI else 3,
        spaces=spaces, coord_frame=_FRAMES.get(int(forward["coord_frame"]), "other"),
        surf_ori=bool(forward["surf_ori"]),
    )


def cov_facts(noise_cov, info) -> CovFacts:
    """Rank per channel type (as MNE estimates it) and projectors of ``noise_cov``."""
    if not isinstance(noise_cov, mne.Covariance):
        raise TypeError(f"noise_cov must be an mne.Covariance, got {type(noise_cov).__name__}")
    names = [c for c in noise_cov.ch_names if c in set(info["ch_names"])]
    info = mne.pick_info(info, [info["ch_names"].index(c) for c in names])
    cov = noise_cov.copy().pick_channels(names, ordered=True, verbose="error") \
        if names != list(noise_cov.ch_names) else noise_cov
    with log_level(False):
        ranks = mne.compute_rank(cov, info=info, rank=None, on_rank_mismatch="ignore")
    projs = [(p["desc"], bool(p["active"]), int(p["data"]["nrow"])) for p in noise_cov["projs"]]
    return CovFacts(n_channels=len(noise_cov.ch_names), ranks=dict(ranks), projs=projs,
                    nfree=int(noise_cov["nfree"] or 0), diagonal=bool(noise_cov["diag"]),
                    bads=list(noise_cov["bads"]))


def data_rows(inst, ch_names) -> np.ndarray:
    """Rows of an Evoked's data in the order of ``ch_names``: (M, n_times)."""
    index = {c: k for k, c in enumerate(inst.ch_names)}
    missing = [c for c in ch_names if c not in index]
    if missing:
        raise ValueError(f"{len(missing)} channels of the forward solution are not in the "
                         f"data ({checks.name_list(missing)}): use data of the same recording")
    return inst.data[[index[c] for c in ch_names]]



# --------------------------------------------------------------------------
# Data in blocks, for the batched and streaming paths (minnorm.batch, minnorm.labels)


def may_be_complex(inst) -> bool:
    """Whether an Evoked's, Epochs' or Raw's data may be complex (e.g. after ``apply_hilbert``).

    Exact for data in memory and for lazy raw data (the dtype MNE reads them
    in); True for lazy epochs read from a file, whose dtype shows only once read.
    """
    if isinstance(inst, mne.Evoked):
        return np.iscomplexobj(inst.data)
    if getattr(inst, "preload", False):
        return np.iscomplexobj(inst._data)
    if isinstance(inst, mne.io.BaseRaw):
        return np.dtype(inst._dtype).kind == "c"
    raw = getattr(inst, "_raw", None)  # lazy epochs: the raw they are cut from
    return may_be_complex(raw) if isinstance(raw, mne.io.BaseRaw) else True


def epoch_count(epochs) -> int:
    """Number of epochs the iteration will yield (an upper bound for lazy epochs)."""
    return len(epochs) if epochs.preload else len(epochs.events)


def epoch_blocks(epochs, rows, size: int):
    """Blocks of ``size`` epochs, ndarray (n, len(rows), n_times), as MNE iterates them.

    Preloaded epochs are sliced without copying the whole array; lazy ones
    are read (and rejected) epoch by epoch, as ``for e in epochs`` does.
    """
    rows = np.asarray(rows)
    every = np.array_equal(rows, np.arange(len(epochs.ch_names)))
    if epochs.preload:
        data = epochs.get_data(copy=False)
        for k in range(0, len(data), size):
            block = data[k:k + size]
            yield block if every else block[:, rows]
        return
    buffer = []
    for epoch in epochs:
        buffer.append(epoch[rows])
        if len(buffer) == size:
            yield np.stack(buffer)
            buffer = []
    if buffer:
        yield np.stack(buffer)


def raw_segment(raw, rows, start: int, stop: int) -> np.ndarray:
    """Raw data of ``rows`` from sample ``start`` to ``stop`` (relative to first_samp)."""
    return raw[list(rows), start:stop][0]


def raw_span(raw, start, stop) -> tuple[int, int]:
    """``start``/``stop`` (sample indices or None) resolved as ``raw[:, start:stop]`` does."""
    start, stop, _ = slice(start, stop).indices(raw.n_times)
    return start, max(start, stop)


def label_flip(label, src) -> np.ndarray:
    """MNE's sign flip of each source of ``label`` (surface normals of the vertices)."""
    return np.asarray(mne.label_sign_flip(label, src[:2]), dtype=np.float64)


def is_label(label) -> bool:
    """An mne.Label or mne.BiHemiLabel."""
    return isinstance(label, (mne.Label, mne.BiHemiLabel))


def label_name(label) -> str:
    """The label's name (for messages)."""
    return str(getattr(label, "name", label))


def data_kind(inst) -> str | None:
    """"evoked", "epochs" or "raw" (None for anything else)."""
    if isinstance(inst, mne.Evoked):
        return "evoked"
    if isinstance(inst, mne.BaseEpochs):
        return "epochs"
    if isinstance(inst, mne.io.BaseRaw):
        return "raw"
    return None


def make_label(vertices, pos, *, hemi: str, name: str, subject):
    """An mne.Label from vertex numbers and their positions (m)."""
    return mne.Label(vertices=np.asarray(vertices), pos=np.asarray(pos), hemi=hemi, name=name,
                     subject=subject)


def surface_vertices_positions(src):
    """Per hemisphere (lh, rh): used vertex numbers and their positions (m)."""
    return [(s["vertno"], s["rr"][s["vertno"]]) for s in src[:2]]


def subject_of(src):
    """The subject of a source space (None if unknown)."""
    return src[0].get("subject_his_id")
