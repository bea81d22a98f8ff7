"""A parcellation of a surface source space by k-means (no atlas ships offline).

Used by the benchmarks and tests as a stand-in for an anatomical atlas: it
gives labels of similar size that tile the cortex.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans

from .. import _mne

__all__ = ["parcellate"]


def parcellate(src, n_labels: int = 68, *, seed: int = 0) -> list:
    """A stand-in cortical parcellation: k-means on source positions, half per hemisphere.

    For benchmarks and tests where no atlas is available offline (the
    Desikan-Killiany "aparc" atlas of fsaverage is not shipped with MNE or
    nilearn): ``n_labels`` // 2 contiguous-ish patches per hemisphere of
    roughly equal size, named ``"parcel-NN-lh"``. Deterministic for a seed.
    """
    if n_labels < 2 or n_labels % 2:
        raise ValueError(f"n_labels must be an even number >= 2, got {n_labels}")
    labels = []
    for h, (hemi, (vertno, pos)) in enumerate(zip(("lh", "rh"),
                                                  _mne.surface_vertices_positions(src))):
        k = n_labels // 2
        if len(vertno) < k:
            raise ValueError(f"{len(vertno)} sources in {hemi} cannot make {k} labels")
        assign = KMeans(k, n_init=4, random_state=seed + h).fit_predict(pos)
        for j in range(k):
            members = np.flatnonzero(assign == j)
            labels.append(_mne.make_label(vertno[members], pos[members], hemi=hemi,
                                          name=f"parcel-{j:02d}-{hemi}",
                                          subject=_mne.subject_of(src)))
    return labels
