"""MNE Labels on a source space: vertices, hemisphere and subject checks, sign flips."""

from __future__ import annotations


import mne
import numpy as np
from mne.io.constants import FIFF

from .._log import warn
from .problem import SPACE_KIND

def label_vertices(label, src, mri_head_t=None):
    """Vertices and source indices of a surface source space inside ``label``.

    ``mri_head_t`` (MRI → head) lets the label's positions (MRI frame) be
    compared with a source space in head coordinates (see :func:`check_label`).
    """
    if src[0]["type"] != "surf":
        raise ValueError(
            f"labels need a surface source space, got a {SPACE_KIND[src[0]['type']]} one: "
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


def label_flip(label, src) -> np.ndarray:
    """MNE's sign flip of each source of ``label`` (surface normals of the vertices)."""
    return np.asarray(mne.label_sign_flip(label, src[:2]), dtype=np.float64)


def is_label(label) -> bool:
    """An mne.Label or mne.BiHemiLabel."""
    return isinstance(label, (mne.Label, mne.BiHemiLabel))


def label_name(label) -> str:
    """The label's name (for messages)."""
    return str(getattr(label, "name", label))


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
