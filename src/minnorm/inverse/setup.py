"""The one setup every entry point uses: operator, channels, kernel, label, orientation.

::

    inverse operator (minnorm's or MNE-Python's) ── as_operator ──▶ InverseOperator
        │ check_channels: names, bads and compensation grade against the data's Info
        ▼
    resolve_lambda2(λ², data)                  a rule name ("gcv", …) → a number, from the
        ▼                                      data (inverse.lambda2), once
    prepare_kernel(λ², method, nave)           the low-rank kernel, cached on the operator
        ▼
    assemble(label, pick_ori)                  rows of the label, normal component or
        ▼                                      x, y, z, the norm over orientations
    Setup(op, kernel, assembled, rows)         rows: the data's channels in operator order
        ▼
    engine.expand.make_expander(...)           batched application (streams, labels,
                                               decoding)

apply_*, iter_*/write_inverse_*, extract_label_time_course, SourceTransformer
and the resolution, time-frequency and beamformer capabilities to come all
start from :func:`prepare`; none repeats these steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .. import _mne
from ..engine.expand import Assembled, source_rows
from ..engine.kernel import Kernel, prepare_kernel
from ..engine.priors import surface_frames
from .lambda2 import resolve_lambda2
from .operator import InverseOperator, as_operator

__all__ = ["Setup", "prepare", "as_operator", "assemble", "check_pick_ori", "PickOri"]

PickOri = Literal[None, "normal", "vector"]


@dataclass(frozen=True, eq=False)
class Setup:
    """Everything an entry point needs before it touches the data.

    Attributes
    ----------
    op : InverseOperator
    kernel : Kernel
        For (λ², method, nave, method_params).
    assembled : Assembled
        The kernel restricted to the label, in the orientation asked for.
    rows : list of int or None
        Index of each of the operator's channels in the data (None: no data
        channels were given).
    """

    op: InverseOperator
    kernel: Kernel
    assembled: Assembled
    rows: list | None


def prepare(inverse_operator, info=None, *, ch_names=None, lambda2, method="dSPM", nave=1,
            method_params=None, label=None, pick_ori: PickOri = None,
            use_cps: bool = True, data=None, span=None) -> Setup:
    """Operator, channel checks, kernel and assembly, in that order.

    Parameters
    ----------
    inverse_operator : InverseOperator | mne.minimum_norm.InverseOperator
    info : mne.Info | None
        The data's: channels, bads and compensation grade are checked
        against the operator's (None: not checked, e.g. arrays).
    ch_names : list of str | None
        The data's channel names, for :attr:`Setup.rows`.
    lambda2, method, nave, method_params
        As :func:`minnorm.prepare_kernel`.
    label, pick_ori, use_cps
        As :func:`minnorm.apply_inverse`.
    data, span
        What a rule given as ``lambda2`` (e.g. "gcv") chooses λ² from: an
        Evoked, Epochs (their average), Raw (samples ``span`` = (start, stop))
        or an array in the operator's channel order; see
        :func:`minnorm.inverse.lambda2.resolve_lambda2`. The kernel's λ² is
        the one chosen (``Setup.kernel.lambda2``).
    """
    op = as_operator(inverse_operator)
    if info is not None:
        _mne.check_channels(op, info)
    lambda2 = resolve_lambda2(lambda2, op, data, nave=nave, span=span)
    kernel = prepare_kernel(op, lambda2=lambda2, method=method, nave=nave,
                            method_params=method_params)
    assembled = assemble(op, kernel, label=label, pick_ori=pick_ori, use_cps=use_cps)
    rows = None if ch_names is None else _mne.pick_rows(ch_names, op)
    return Setup(op, kernel, assembled, rows)


def check_pick_ori(pick_ori, op: InverseOperator):
    """None, "normal" (free/loose surface operators) or "vector"."""
    if pick_ori not in (None, "normal", "vector"):
        raise ValueError(f'pick_ori must be None, "normal" or "vector", got {pick_ori!r}')
    if pick_ori == "normal" and op.src.kind not in ("surface", "discrete"):
        raise ValueError(
            f'pick_ori="normal" needs surface normals, but the source space is '
            f"{op.src.kind}: use pick_ori=None or \"vector\""
        )


def assemble(op: InverseOperator, kernel: Kernel, *, label=None, pick_ori: PickOri = None,
             use_cps: bool = True) -> Assembled:
    """Restrict ``kernel`` to ``label`` and apply the orientation choice."""
    check_pick_ori(pick_ori, op)
    leads, noise_norm, nn = kernel.leads, kernel.noise_norm, op.source_nn
    vertno = _mne.vertices(op.src)
    if label is not None:
        vertno, sel = _mne.label_vertices(label, op.src, op.mne.mri_head_t)
        if noise_norm is not None:
            noise_norm = noise_norm[sel]
        rows = source_rows(sel, op.n_orient)
        leads, nn = leads[rows], nn[rows]
    if pick_ori == "normal":
        if op.source_ori != "free" or not op.is_loose:
            raise ValueError(
                'pick_ori="normal" needs a free or loose orientation operator; this '
                "one is fixed: its estimates are already normal (use pick_ori=None)"
            )
        if op.src.kind == "surface" and _is_cartesian(op):
            leads, nn = _rotate_to_surface(op, leads, vertno, use_cps)
        leads, nn = leads[2::3], nn[2::3]
    free = op.source_ori == "free" and pick_ori != "normal"
    return Assembled(
        leads=leads, fields=kernel.fields, noise_norm=noise_norm, vertices=vertno,
        source_nn=nn, combine=free and pick_ori != "vector", vector=pick_ori == "vector",
    )


def _is_cartesian(op) -> bool:
    frames = op.source_nn.reshape(op.n_sources, 3, 3)
    return bool(np.allclose(frames, np.eye(3), atol=1e-6))


def _rotate_to_surface(op, leads, vertno, use_cps):
    """Rotate x, y, z rows of a cartesian operator into (t₁, t₂, n) frames."""
    normals = []
    for s, v, nn in zip(op.src, vertno, _mne.source_normals(op.src, use_cps)):
        normals.append(nn[np.searchsorted(s["vertno"], v)])
    frames = surface_frames(np.concatenate(normals))  # (n, 3, 3)
    rotated = np.matmul(frames, leads.reshape(-1, 3, leads.shape[1]))
    return rotated.reshape(leads.shape), frames.reshape(-1, 3)
