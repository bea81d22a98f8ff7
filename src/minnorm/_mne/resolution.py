"""Resolution analysis at the edge: the forward's leadfield, source locations, indices.

MNE-Python's rules, kept so that results agree: a free forward is brought
to the inverse's orientation frame (surface-oriented for a loose inverse,
x, y, z for a free one) with MNE's own ``convert_forward_solution`` — its
tangential directions are those of the inverse (``source_normals``) — and
only the inverse's good channels are used, in its order.
"""

from __future__ import annotations

import mne
import numpy as np
from mne.io.constants import FIFF

from .labels import is_label, label_vertices
from .problem import SPACE_KIND

__all__ = ["resolution_leadfield", "source_locations", "function_indices", "is_fixed",
           "fixed_orientation_forward"]


def is_fixed(forward) -> bool:
    """One column per source (fixed orientation)."""
    return forward["source_ori"] != FIFF.FIFFV_MNE_FREE_ORI


def fixed_orientation_forward(forward):
    """One column per source, normal to the cortex: PSFs of dipoles normal to the cortex.

    A free forward becomes ``mne.convert_forward_solution(forward, surf_ori=True,
    force_fixed=True)`` (a copy); a fixed one is returned as it is.
    """
    if is_fixed(forward):
        return forward
    return mne.convert_forward_solution(forward, surf_ori=True, force_fixed=True, copy=True,
                                        verbose="error")


def resolution_leadfield(forward, op) -> np.ndarray:
    """The forward's gain on the operator's channels, in its orientation frame (float64).

    Shape (n_channels, n_sources) for a fixed-orientation forward, else
    (n_channels, 3·n_sources).
    """
    if not isinstance(forward, mne.Forward):
        raise TypeError(f"forward must be an mne.Forward (e.g. from mne.read_forward_solution), "
                        f"got {type(forward).__name__}")
    _check_same_sources(forward, op)
    if op.source_ori == "free" and not is_fixed(forward):
        surf_ori = op.orient_prior is not None and not np.allclose(op.orient_prior, 1.0)
        if surf_ori != bool(forward["surf_ori"]):
            forward = mne.convert_forward_solution(forward, surf_ori=surf_ori, force_fixed=False,
                                                   copy=True, verbose="error")
    missing = [c for c in op.ch_names if c not in forward["sol"]["row_names"]]
    if missing:
        raise ValueError(f"the forward lacks {len(missing)} of the inverse operator's channels "
                         f"({', '.join(missing[:4])}{', …' if len(missing) > 4 else ''}): use the "
                         "forward the operator was made from")
    rows = [forward["sol"]["row_names"].index(c) for c in op.ch_names]
    return np.asarray(forward["sol"]["data"][rows], dtype=np.float64)


def _check_same_sources(forward, op) -> None:
    ours = [np.asarray(s["vertno"]) for s in forward["src"]]
    theirs = [np.asarray(s["vertno"]) for s in op.src]
    if len(ours) != len(theirs) or any(not np.array_equal(a, b) for a, b in zip(ours, theirs)):
        raise ValueError(
            f"the forward's sources ({sum(len(v) for v in ours)}) are not the inverse operator's "
            f"({sum(len(v) for v in theirs)}): use the forward the operator was made from")


def source_locations(src) -> np.ndarray:
    """Positions (m) of the used sources of a surface source space, both hemispheres."""
    if not isinstance(src, mne.SourceSpaces):
        raise TypeError(f"src must be an mne.SourceSpaces (e.g. fwd['src']), got "
                        f"{type(src).__name__}")
    if src.kind != "surface":
        raise ValueError(f"resolution metrics need a surface source space (as in MNE-Python), "
                         f"got a {SPACE_KIND.get(src[0]['type'], src.kind)} one")
    return np.vstack([s["rr"][s["vertno"]] for s in src])


def function_indices(idx, src) -> list:
    """Source indices per PSF/CTF group: labels, a list of ints, or a list of such lists."""
    if not isinstance(idx, (list, tuple)) or not len(idx):
        raise ValueError(f"idx must be a non-empty list of source indices, of lists of them, or "
                         f"of labels, got {idx!r}")
    if is_label(idx[0]):
        return [label_vertices(label, src)[1] for label in idx]
    groups = idx if isinstance(idx[0], (list, tuple, np.ndarray)) else [idx]
    n = sum(len(s["vertno"]) for s in src)
    out = []
    for group in groups:
        group = np.atleast_1d(np.asarray(group))
        if group.dtype.kind not in "iu" or group.size == 0:
            raise ValueError(f"idx must hold source indices (integers), got {list(group)!r}")
        if group.min() < 0 or group.max() >= n:
            raise ValueError(f"source index {int(group.max() if group.max() >= n else group.min())} "
                             f"is out of range: the source space has {n} sources (0 … {n - 1})")
        out.append(group)
    return out
