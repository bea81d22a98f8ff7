"""Resolution analysis: point-spread and cross-talk functions and their metrics.

matrix    the resolution matrix R = K L, and its low-rank factors
spread    PSFs and CTFs of chosen sources or labels (MNE-Python's names)
metrics   localisation error, spatial extent and amplitude of every PSF/CTF:
          from a matrix in memory (``resolution_metrics``) or tile by tile from
          the factors, without it (``resolution_maps``)
"""

from .matrix import make_inverse_resolution_matrix, resolution_factors
from .metrics import resolution_maps, resolution_metrics
from .spread import get_cross_talk, get_point_spread

__all__ = ["make_inverse_resolution_matrix", "resolution_factors", "get_point_spread",
           "get_cross_talk", "resolution_metrics", "resolution_maps"]
