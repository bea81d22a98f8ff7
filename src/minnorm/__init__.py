"""minnorm — minimum-norm MEG/EEG source imaging, exact and fast.

A drop-in for ``mne.minimum_norm``: the same function names and results
(MNE, dSPM, sLORETA, eLORETA), computed from one SVD of the whitened,
weighted gain; and for LCMV of ``mne.beamformer`` (``minnorm.beamformer``).
"""

from ._log import MinnormWarning
from ._version import __version__
from .beamformer import (
    Beamformer,
    apply_lcmv,
    apply_lcmv_cov,
    apply_lcmv_epochs,
    apply_lcmv_raw,
    make_lcmv,
    make_lcmv_resolution_matrix,
    read_beamformer,
)
from .engine.kernel import METHODS as INVERSE_METHODS
from .engine.kernel import Kernel, prepare_kernel
from .inverse.apply import apply_inverse, apply_inverse_epochs, apply_inverse_raw
from .inverse.covariance import apply_inverse_cov
from .inverse.labels import extract_label_time_course
from .inverse.lambda2 import Lambda2Choice, choose_lambda2
from .inverse.operator import InverseOperator, make_inverse_operator
from .inverse.prepared import prepare_inverse_operator
from .inverse.snr import compute_rank_inverse, estimate_snr
from .inverse.stream import iter_inverse_epochs, iter_inverse_raw
from .inverse.tfr import apply_inverse_tfr_epochs
from .resolution import (
    get_cross_talk,
    get_point_spread,
    make_inverse_resolution_matrix,
    resolution_maps,
    resolution_metrics,
)
from .time_frequency import (
    compute_source_psd,
    compute_source_psd_epochs,
    source_band_induced_power,
    source_induced_power,
)
from .io import (
    read_inverse_operator,
    read_source_array,
    write_inverse_epochs,
    write_inverse_operator,
    write_inverse_raw,
)

__all__ = [
    "__version__",
    "INVERSE_METHODS",
    "InverseOperator",
    "Kernel",
    "make_inverse_operator",
    "prepare_inverse_operator",
    "prepare_kernel",
    "compute_rank_inverse",
    "estimate_snr",
    "apply_inverse",
    "apply_inverse_epochs",
    "apply_inverse_raw",
    "apply_inverse_cov",
    "apply_inverse_tfr_epochs",
    "iter_inverse_epochs",
    "iter_inverse_raw",
    "write_inverse_epochs",
    "write_inverse_raw",
    "read_source_array",
    "extract_label_time_course",
    "choose_lambda2",
    "Lambda2Choice",
    "make_inverse_resolution_matrix",
    "get_point_spread",
    "get_cross_talk",
    "resolution_metrics",
    "resolution_maps",
    "compute_source_psd",
    "compute_source_psd_epochs",
    "source_induced_power",
    "source_band_induced_power",
    "read_inverse_operator",
    "write_inverse_operator",
    "Beamformer",
    "make_lcmv",
    "apply_lcmv",
    "apply_lcmv_epochs",
    "apply_lcmv_raw",
    "apply_lcmv_cov",
    "make_lcmv_resolution_matrix",
    "read_beamformer",
    "MinnormWarning",
]
