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

from .whitening import Whitener, make_projector

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


def read_problem(info, forward, noise_cov, *, rank) -> Problem:
    """Extract aligned arrays from (info, forward, noise_cov)."""
    _check_types(info, forward, noise_cov)
    ch_names = select_channels(info, forward, noise_cov)
    info_picked = mne.pick_info(info, [info["ch_names"].index(c) for c in ch_names])
    ch_types = info_picked.get_channel_types()
    cov = _square_cov(noise_cov, ch_names)
    _check_finite(cov, "noise covariance")
    projs = info_picked["projs"]
    n = len(ch_names)
    proj = make_projector(projector_vectors(projs, ch_names), n)
    cov_proj = make_projector(projector_vectors(projs + noise_cov["projs"], ch_names), n)
    groups = channel_groups(ch_types)
    ranks = _ranks(cov_proj @ cov @ cov_proj.T, ch_names, info_picked,
                   projs + noise_cov["projs"], rank, groups)

    rows = [forward["sol"]["row_names"].index(c) for c in ch_names]
    gain = forward["sol"]["data"][rows]
    _check_finite(gain, "forward solution")
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


def _check_finite(array, what):
    if not np.all(np.isfinite(array)):
        raise ValueError(f"the {what} contains NaN or Inf values: fix or recompute it")


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


def check_reference(info, ch_names):
    """EEG needs an average-reference projector (and no custom reference)."""
    picks = [k for k, c in enumerate(info["ch_names"]) if c in set(ch_names)]
    types = [info.get_channel_types()[k] for k in picks]
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
    """The operator's channels must all be in the data."""
    missing = sorted(set(op.ch_names) - set(info["ch_names"]))
    if missing:
        raise ValueError(
            f"{len(missing)} channels of the inverse operator are not in the data "
            f"({missing}): make the inverse operator from this data's info"
        )
    check_reference(info, op.ch_names)


def pick_rows(data_ch_names, op) -> list:
    """Indices of the operator's channels in the data, in the operator's order."""
    index = {c: k for k, c in enumerate(data_ch_names)}
    return [index[c] for c in op.ch_names]


def label_vertices(label, src):
    """Vertices and source indices of a surface source space inside ``label``."""
    if src[0]["type"] != "surf":
        raise ValueError(
            f"labels need a surface source space, got a {_KIND[src[0]['type']]} one: "
            "pass label=None"
        )
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
    return out_vert, np.concatenate(out_sel)


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
