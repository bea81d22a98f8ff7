"""Files: the user's FIF files, source estimates, source arrays, inverse operators.

Every file minnorm writes goes through :class:`~minnorm.io.atomic.AtomicOutputs`:
first into a private temporary folder next to its destination, then moved
into place (``os.replace``, atomic on one file system) only once complete. An
interrupted run — Ctrl-C, a crash, a full disk — leaves each destination
either as it was or complete, and an existing file is replaced only with
``overwrite=True``.

``fif`` reads (and names the kind of) FIF files; ``stc`` writes source
estimates in MNE's formats; ``arrays`` is the one HDF5 layout of source
time courses (epochs and raw); ``operator`` reads and writes ``-inv.fif``;
``paths`` expands ``~`` and checks output folders.
"""

from .arrays import (
    EpochsArrayWriter,
    EstimatesArray,
    SourceArray,
    SourceArrayFile,
    read_estimates_array,
    read_source_array,
    write_inverse_epochs,
    write_inverse_raw,
)
from .atomic import AtomicOutputs, check_new_outputs, write_text_output
from .operator import read_inverse_operator, write_inverse_operator
from .stc import stc_paths, write_source_estimate

__all__ = [
    "read_inverse_operator",
    "write_inverse_operator",
    "AtomicOutputs",
    "check_new_outputs",
    "write_text_output",
    "stc_paths",
    "write_source_estimate",
    "EpochsArrayWriter",
    "SourceArray",
    "EstimatesArray",
    "read_estimates_array",
    "SourceArrayFile",
    "read_source_array",
    "write_inverse_epochs",
    "write_inverse_raw",
]
