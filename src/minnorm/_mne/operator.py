"""MNE-Python's InverseOperator dict ⇄ minnorm's InverseOperator."""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass

import mne
import numpy as np
from mne.io.constants import FIFF

from ..engine.whitening import Whitener, make_projector
from .problem import MneContext, fiff_methods, projector_vectors

_ORI_TO_FIFF = {"free": FIFF.FIFFV_MNE_FREE_ORI, "fixed": FIFF.FIFFV_MNE_FIXED_ORI}


_FIFF_TO_ORI = {v: k for k, v in _ORI_TO_FIFF.items()}


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


def inverse_from_mne(inv, cls, *, eloreta_prepared=False):
    """A minnorm operator from MNE's InverseOperator.

    One that MNE-Python prepared for eLORETA (its eigen leads weighted by the
    fitted source covariance, which it sets to NaN) is refused, unless
    ``eloreta_prepared``: then it is the plain operator of those weighted
    leads (R = I), whose MNE kernel is MNE-Python's prepared eLORETA kernel.
    """
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
            if not eloreta_prepared:
                raise ValueError(
                    "this inverse operator was prepared for eLORETA and cannot be reused: "
                    "apply it with prepared=True, or pass the operator as made or read "
                    "from file")
            source_cov = np.full(len(leads), nave)  # the weights are in the leads: R = I
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
        methods=inv.get("methods", fiff_methods(ch_types)),
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


@dataclass(frozen=True, eq=False)
class MnePreparation:
    """What ``mne.minimum_norm.prepare_inverse_operator`` left in MNE's operator.

    Attributes
    ----------
    nave : float
    lambda2 : float
        Read back from the regularised inverse s / (s² + λ²) it stored.
    eloreta : bool
        Prepared for eLORETA (the eigen leads carry the fitted weights).
    noise_norm : ndarray of shape (n_sources,) or None
        1 / noise standard deviation per source (prepared for dSPM or
        sLORETA), None (MNE or eLORETA).
    """

    nave: float
    lambda2: float
    eloreta: bool
    noise_norm: np.ndarray | None


def mne_preparation(inv) -> MnePreparation | None:
    """How MNE-Python prepared ``inv`` (None: not prepared, or not MNE's operator)."""
    if not isinstance(inv, dict) or "colorer" not in inv:
        return None
    sing, reginv = np.asarray(inv["sing"], np.float64), np.asarray(inv["reginv"], np.float64)
    # reginv = s / (s² + λ²), so λ² = s / reginv − s²; the smallest s cancels least
    k = np.flatnonzero((reginv > 0) & (sing > 0))
    k = k[np.argmin(sing[k])]
    lambda2 = float(sing[k] / reginv[k] - sing[k] ** 2)
    norm = np.asarray(inv["noisenorm"], np.float64)
    eloreta = bool(inv["eigen_leads_weighted"]) and \
        not np.all(np.isfinite(inv["source_cov"]["data"]))
    return MnePreparation(nave=float(inv["nave"]), lambda2=lambda2, eloreta=eloreta,
                          noise_norm=norm if norm.size else None)


def write_inverse(fname, mne_inv, *, overwrite):
    """Write MNE's InverseOperator to a -inv.fif file."""
    mne.minimum_norm.write_inverse_operator(fname, mne_inv, overwrite=overwrite, verbose=False)
