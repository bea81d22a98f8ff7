"""The one edge with MNE-Python: MNE objects in, plain arrays out, and back.

The inverse problem's MNE objects — Info, Forward, Covariance, SourceSpaces,
Label, Evoked/Epochs/Raw, SourceEstimate and MNE's own InverseOperator dict —
are turned into arrays (and back) here, for every floor above: the engine
below works on arrays only. Floors above read MNE objects only for their own
jobs: io/ reads and writes MNE's files, teaching/ builds the template head and
its simulations with MNE-Python, cli/ describes sources in its summaries.

problem   forward, covariance and Info → the arrays of one inverse problem
operator  MNE's InverseOperator ⇄ minnorm's
checks    data against an operator: channels, bads, compensation grade, values
labels    labels on a source space
resolution  the leadfield, locations and indices of resolution analysis
stc       source estimates from arrays
data      epochs and raw data in blocks, a covariance's matrix
beamformer  LCMV inputs as arrays, MNE's filter dict, a filter's channels and projector
music     RAP-/TRAP-MUSIC inputs as arrays; Dipoles and the residual Evoked back
"""

from .beamformer import (
    LcmvInputs,
    beamformer_from_file_dict,
    filter_channels,
    filter_dict,
    filter_fields,
    filter_n_ori,
    read_lcmv_inputs,
)
from .checks import (
    CompensationGradeError,
    NotComplexError,
    check_channels,
    check_compensation_grade,
    check_data,
    check_epochs_tfr,
    check_instance,
    check_reference,
    compensation_grade,
    data_kind,
    log_level,
    may_be_complex,
    pick_rows,
)
from .data import (
    covariance_matrix,
    epoch_blocks,
    epoch_count,
    iter_epochs,
    raw_segment,
    raw_span,
)
from .labels import (
    check_label,
    is_label,
    label_flip,
    label_name,
    label_vertices,
    make_label,
    subject_of,
    surface_vertices_positions,
)
from .operator import (
    MnePreparation,
    inverse_from_mne,
    inverse_to_mne,
    mne_preparation,
    write_inverse,
)
from .problem import (
    MISMATCH_CHOICES,
    MneContext,
    Problem,
    info_from_forward,
    read_problem,
    source_normals,
)
from .resolution import (
    fixed_orientation_forward,
    function_indices,
    is_fixed,
    resolution_leadfield,
    source_locations,
)
from .stc import (
    make_stc,
    residual_evoked,
    save_stc,
    stc_from_arrays,
    stc_kind,
    stc_space_kind,
    vertices,
)

__all__ = [
    "LcmvInputs",
    "beamformer_from_file_dict",
    "filter_channels",
    "filter_dict",
    "filter_fields",
    "filter_n_ori",
    "read_lcmv_inputs",
    "CompensationGradeError",
    "NotComplexError",
    "check_channels",
    "check_compensation_grade",
    "check_data",
    "check_epochs_tfr",
    "check_instance",
    "check_reference",
    "compensation_grade",
    "data_kind",
    "log_level",
    "may_be_complex",
    "pick_rows",
    "check_label",
    "is_label",
    "label_flip",
    "label_name",
    "label_vertices",
    "make_label",
    "subject_of",
    "surface_vertices_positions",
    "MISMATCH_CHOICES",
    "MneContext",
    "Problem",
    "info_from_forward",
    "read_problem",
    "source_normals",
    "make_stc",
    "residual_evoked",
    "save_stc",
    "stc_from_arrays",
    "stc_kind",
    "stc_space_kind",
    "vertices",
    "covariance_matrix",
    "epoch_blocks",
    "epoch_count",
    "iter_epochs",
    "raw_segment",
    "raw_span",
    "MnePreparation",
    "mne_preparation",
    "inverse_from_mne",
    "inverse_to_mne",
    "write_inverse",
    "function_indices",
    "is_fixed",
    "resolution_leadfield",
    "fixed_orientation_forward",
    "source_locations",
]
