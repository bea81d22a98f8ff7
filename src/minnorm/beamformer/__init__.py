"""The LCMV and DICS beamformers and RAP-/TRAP-MUSIC, as ``mne.beamformer``: the same names,
arguments, filters, files and dipoles.

lcmv     make_lcmv: every source's filter at once from stacked 3 × 3 blocks
apply    apply_lcmv, apply_lcmv_epochs (batched), apply_lcmv_raw, apply_lcmv_cov,
         make_lcmv_resolution_matrix
filter   the Beamformer dict (MNE-Python's class), read_beamformer and save (-lcmv.h5)
music    rap_music, trap_music: dipoles from the signal subspace, every source scanned at once
dics     make_dics (LCMV's filter per frequency of a CSD), apply_dics, _epochs, _tfr_epochs, _csd
"""

from .apply import (
    apply_lcmv,
    apply_lcmv_cov,
    apply_lcmv_epochs,
    apply_lcmv_raw,
    make_lcmv_resolution_matrix,
)
from .dics import (
    apply_dics,
    apply_dics_csd,
    apply_dics_epochs,
    apply_dics_tfr_epochs,
    make_dics,
)
from .filter import Beamformer, read_beamformer
from .lcmv import make_lcmv
from .music import rap_music, trap_music

__all__ = [
    "Beamformer",
    "make_lcmv",
    "apply_lcmv",
    "apply_lcmv_epochs",
    "apply_lcmv_raw",
    "apply_lcmv_cov",
    "make_lcmv_resolution_matrix",
    "read_beamformer",
    "rap_music",
    "trap_music",
    "make_dics",
    "apply_dics",
    "apply_dics_epochs",
    "apply_dics_tfr_epochs",
    "apply_dics_csd",
]
