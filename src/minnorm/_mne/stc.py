"""Source estimates: the MNE class for each kind, built from arrays and saved."""

from __future__ import annotations


import mne

from ..engine.expand import to_xyz

def vertices(src):
    """Vertex numbers used in each source space."""
    return [s["vertno"] for s in src]


def make_stc(data, vertno, *, src, tmin, tstep, vector, source_nn):
    """The SourceEstimate class MNE would return, vectors rotated to x, y, z."""
    if vector:
        data = to_xyz(data, source_nn, sum(len(v) for v in vertno))
    return stc_from_arrays(data, vertno, tmin=tmin, tstep=tstep,
                           subject=src[0].get("subject_his_id"), kind=src.kind, vector=vector)


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


def residual_evoked(evoked, rows, estimate):
    """A copy of ``evoked`` minus the estimate on the operator's channels."""
    residual = evoked.copy()
    residual.data[rows] -= estimate
    return residual
