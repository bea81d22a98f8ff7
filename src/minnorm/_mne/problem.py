"""Forward, covariance and Info → the arrays of one inverse problem (channels, gain, noise, projectors, ranks)."""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass, field

import mne
import numpy as np
from mne.io.constants import FIFF

from .._log import warn
from ..engine import checks
from ..engine.whitening import make_projector
from .checks import check_compensation_grade

SPACE_KIND = {"surf": "surface", "vol": "volume", "discrete": "discrete"}


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
    return group_ranks(found, groups, rank)


def group_ranks(found: dict, groups: dict, rank) -> dict:
    """The rank of each whitening group from ``mne.compute_rank``'s dict (per channel type)."""
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


def source_normals(src, use_cps: bool) -> list:
    """Per source space, the normals of the used vertices (patch-averaged if asked)."""
    out = []
    for s in src:
        vertno = s["vertno"]
        if use_cps and s.get("patch_inds") is not None:
            nn = _patch_sums(s["nn"], [s["pinfo"][i] for i in s["patch_inds"]])
            nn /= np.linalg.norm(nn, axis=-1, keepdims=True)
        else:
            nn = s["nn"][vertno]
        out.append(np.asarray(nn, dtype=np.float64))
    return out


def _patch_sums(nn: np.ndarray, patches: list) -> np.ndarray:
    """Σ nn[patch] for every patch, to the last bit as MNE-Python's np.sum per patch.

    The bits matter: the tangential pair of a loose/free operator is the
    degenerate eigenbasis of I − n nᵀ, which a last-bit difference in n turns
    arbitrarily. numpy adds fewer than 8 rows one after the other, so patches
    of equal size up to 7 are summed together in that order; larger ones (rare)
    keep one np.sum each.
    """
    out = np.empty((len(patches), 3))
    sizes = np.array([len(p) for p in patches])
    for size in np.unique(sizes):
        which = np.flatnonzero(sizes == size)
        if size >= 8:
            out[which] = [np.sum(nn[patches[i]], axis=0) for i in which]
            continue
        rows = nn[np.concatenate([patches[i] for i in which])].reshape(len(which), size, 3)
        acc = rows[:, 0].copy()
        for j in range(1, size):
            acc += rows[:, j]
        out[which] = acc
    return out


def _square_cov(noise_cov, ch_names) -> np.ndarray:
    data = noise_cov.data
    data = np.diag(data) if data.ndim == 1 else data
    idx = [noise_cov.ch_names.index(c) for c in ch_names]
    return np.array(data[np.ix_(idx, idx)], dtype=np.float64)


def fiff_methods(ch_types) -> int:
    has_meg = any(t in ("mag", "grad") for t in ch_types)
    has_eeg = "eeg" in ch_types
    if has_meg and has_eeg:
        return FIFF.FIFFV_MNE_MEG_EEG
    return FIFF.FIFFV_MNE_MEG if has_meg else FIFF.FIFFV_MNE_EEG


_REGULARIZED = ("shrunk", "shrinkage", "ledoit_wolf", "oas", "factor_analysis", "pca",
                "diagonal_fixed", "ad-hoc")


def check_covariance(noise_cov, ch_names, cov: np.ndarray) -> None:
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
    check_covariance(noise_cov, ch_names, cov)
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
        methods=fiff_methods(ch_types),
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
        kinds=[SPACE_KIND[s["type"]] for s in src], n_used=[int(s["nuse"]) for s in src],
        depth_rows=_depth_rows(ch_types),
        has_patch_info=any(s.get("patch_inds") is not None for s in src),
        normals_plain=source_normals(src, False), normals_cps=source_normals(src, True),
        context=context,
    )


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
