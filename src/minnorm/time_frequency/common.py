"""What every spectral entry point shares: the kernel's rows, labels and data blocks.

::

    inverse.setup.prepare(...)          operator, channel checks, kernel, label, orientation
        ▼
    engine.expand.make_expander         leads with the noise norms folded in (their squares
        ▼                               scale the powers, as MNE's noise_norm²), in ``dtype``
    Rows(leads, fields, group, …)       + the label list's rows and averaging (induced power)

Powers are per row, combined over a location's 3 rows (free/loose operator,
pick_ori None) as the calling function says (:mod:`minnorm.engine.spectra`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _log, _mne
from ..engine import expand as batch
from ..engine import spectra
from ..engine.expand import source_rows
from ..engine.memory import check_dtype, parse_memory
from ..inverse.prepared import use_prepared
from ..inverse.setup import prepare
from ..inverse.stream import checked_block

__all__ = ["Rows", "spectral_rows", "check_spectral_ori", "label_list", "checked_real"]


@dataclass(frozen=True, eq=False)
class Rows:
    """The kernel rows a spectral computation expands.

    Attributes
    ----------
    leads : ndarray of shape (n_rows, r)
        diag(noise_norm) R**½ V Γ of the sources (and orientation) asked for.
    fields : ndarray of shape (r, M)
        Data (operator's channel order) → whitened components.
    group : 1 or 3
        Rows per location (3: pick_ori None on a free/loose operator).
    vertices : list of ndarray
        Vertex numbers of the output.
    rows : list of int
        The data's channels in the operator's order.
    setup : minnorm.inverse.setup.Setup
    labels : list of ndarray or None
        For a list of labels: each label's output locations (into ``vertices``).
    budget : int
        Working memory (bytes).
    kept : ndarray of shape (M, k) or None
        With ``pca``: the basis of the data MNE-Python's pca keeps.
    """

    leads: np.ndarray
    fields: np.ndarray
    group: int
    vertices: list
    rows: list
    setup: object
    labels: list | None
    budget: int
    kept: np.ndarray | None = None

    @property
    def n_out(self) -> int:
        return len(self.leads) // self.group


def check_spectral_ori(pick_ori) -> None:
    """Power spectra are of None (norm over orientations) or the "normal" component."""
    if pick_ori not in (None, "normal"):
        raise ValueError(f'pick_ori must be None or "normal" for source power, got '
                         f"{pick_ori!r} (the vector's power is pick_ori=None)")


def spectral_rows(inst, inverse_operator, *, lambda2, method, nave, label, pick_ori,
                  method_params, use_cps, pca=True, prepared=False, dtype="float64",
                  max_memory=None, allow_label_list=False) -> Rows:
    """The shared setup for spectra and time-frequency power of ``inst`` (Epochs/Raw).

    With ``pca`` (MNE-Python's default), the data are first projected on the
    kernel's right singular vectors above 1e-8 of the largest, as MNE-Python
    does (:func:`minnorm.engine.spectra.kept_subspace`): ``fields`` then
    includes that projection, and ``kept`` is its basis.
    """
    check_spectral_ori(pick_ori)
    dtype = check_dtype(dtype)
    budget = parse_memory(max_memory)
    labels = label_list(label) if allow_label_list else None
    use = use_prepared(inverse_operator, prepared, lambda2=lambda2, method=method, nave=nave,
                       method_params=method_params)
    s = prepare(info=inst.info, ch_names=inst.ch_names,
                label=None if labels is not None else label, pick_ori=pick_ori,
                use_cps=use_cps, data=inst, **use)
    ex = batch.make_expander(s.kernel, s.assembled, dtype=dtype)
    used = np.flatnonzero(s.kernel.reginv != 0)
    leads, bare, vertices, members = ex.leads, s.assembled.leads[:, used], ex.vertices, None
    if labels is not None:
        sel, vertices, members = _restrict_to_labels(s.op, ex, labels)
        leads, bare = leads[sel], bare[sel]
    fields, kept = ex.fields, None
    if pca:  # K = bare @ fields without the noise norms, as MNE-Python decomposes it
        kept, dropped = spectra.kept_subspace(bare, fields)
        fields = (fields @ kept) @ kept.T
        if dropped:
            _log.warn(f"pca=True drops {dropped} of the kernel's {kept.shape[1] + dropped} "
                      "directions (singular values below 1e-8 of the largest: with MEG and EEG "
                      "together, EEG directions), as MNE-Python does; pass pca=False to keep them")
    return Rows(leads=leads, fields=fields, group=ex.group, vertices=vertices, rows=s.rows,
                setup=s, labels=members, budget=budget, kept=kept)


def checked_real(block, rows, info, first: bool) -> np.ndarray:
    """A block of data (n, M, T) checked as every apply path checks it, and real."""
    if np.iscomplexobj(block):
        raise ValueError("source power needs real data (the transforms here are of real "
                         "signals): compute it before apply_hilbert, or use "
                         "apply_inverse_epochs on the complex data")
    return checked_block(block, rows.setup.op, info, rows.setup.kernel.nave, first)


def label_list(label):
    """A list/tuple of labels as a list (None otherwise); a single label stays with prepare."""
    if isinstance(label, (list, tuple)):
        if not label:
            raise ValueError("label is an empty list: give at least one mne.Label, or None")
        for item in label:
            if not _mne.is_label(item):
                raise TypeError(f"label must be an mne.Label, a BiHemiLabel or a list of "
                                f"them, got a list holding {type(item).__name__}")
        return list(label)
    return None


def _restrict_to_labels(op, ex, labels):
    """Kernel rows of the labels' sources (lh then rh, each label's in turn), and their groups.

    As MNE-Python: a vertex may belong to one label only.
    """
    per_hemi = [[], []]
    for lab in labels:
        vertno, sel = _mne.label_vertices(lab, op.src, op.mne.mri_head_t)
        offset = 0
        for h, v in enumerate(vertno):
            per_hemi[h].append(sel[offset:offset + len(v)])
            offset += len(v)
    sources = [np.concatenate(h) if h else np.array([], int) for h in per_hemi]
    if any(len(np.unique(h)) != len(h) for h in sources):
        raise RuntimeError("Labels cannot have overlapping vertices: give labels whose "
                           "vertices are unique (e.g. one parcellation)")
    order = np.concatenate(sources)
    all_vertno = np.concatenate(_mne.vertices(op.src))
    vertices = [all_vertno[h] for h in sources]
    position = {int(k): i for i, k in enumerate(order)}
    members = [np.array([position[int(c)] for h in range(2) for c in per_hemi[h][k]], int)
               for k in range(len(labels))]
    per_loc = len(ex.leads) // sum(len(v) for v in ex.vertices)
    return source_rows(order, per_loc), vertices, members
