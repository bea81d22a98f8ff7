"""Operators and places in words, for the summaries the command line prints."""

from __future__ import annotations

from mne.io.constants import FIFF

from .._mne.problem import SPACE_KIND

__all__ = ["describe_source", "describe_operator", "channel_counts", "format_counts"]


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
                what = f"{SPACE_KIND[space['type']]} source {vertex}"
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
