"""The filter object (MNE-Python's ``Beamformer`` dict, same keys) and its ``-lcmv.h5`` files.

minnorm's :class:`Beamformer` is a subclass of ``mne.beamformer.Beamformer``:
MNE-Python's ``apply_lcmv*`` accept it, minnorm's accept MNE-Python's, and
:meth:`Beamformer.save` writes the HDF5 layout MNE-Python writes (h5io, title
"mnepython") through minnorm's atomic writer, so the files go both ways.
"""

from __future__ import annotations

import mne
from mne.beamformer import Beamformer as _MneBeamformer

from .. import _mne
from .._log import warn
from ..io.atomic import AtomicOutputs
from ..io.paths import user_path

__all__ = ["Beamformer", "read_beamformer", "as_filter"]


class Beamformer(_MneBeamformer):
    """A computed beamformer: a dict with MNE-Python's keys (``weights``, ``whitener``,
    ``proj``, ``ch_names``, ``vertices``, ``pick_ori``, ``weight_norm`` …).

    ``weights`` (n_sources·n_ori, M) act on data that are whitened (``whitener``),
    or else projected (``proj``).
    """

    def save(self, fname, overwrite=False, verbose=None):
        """Write the filter to ``fname`` (ending in ``-lcmv.h5``), atomically.

        An existing file is kept unless ``overwrite=True``.
        """
        import h5io

        ending = f"-{self['kind'].lower()}.h5"
        if not str(fname).endswith(ending):
            warn(f"{fname} does not end with {ending!r}, the name MNE-Python expects for "
                 f"{self['kind']} filters")
        with _mne.log_level(verbose), AtomicOutputs([fname], overwrite=overwrite) as out:
            state = dict(self)
            if "csd" in state:  # DICS filters read from MNE-Python's files
                state["csd"] = state["csd"].__getstate__()
            h5io.write_hdf5(out.temporary(fname), state, overwrite=True, title="mnepython")


def read_beamformer(fname) -> Beamformer:
    """Read a filter file written by minnorm or MNE-Python (``mne.beamformer.read_beamformer``)."""
    import h5io

    path = user_path(fname)
    if not path.is_file():
        raise FileNotFoundError(f"no beamformer file at {path}: check the name (it ends in "
                                "-lcmv.h5 or -dics.h5)")
    try:
        state = h5io.read_hdf5(str(path), title="mnepython")
    except Exception as err:  # h5py/h5io errors name neither the file nor its kind
        raise ValueError(f"{path} is not a beamformer file written by MNE-Python or minnorm "
                         f"({type(err).__name__}: {err})") from None
    if not isinstance(state, dict) or "weights" not in state:
        raise ValueError(f"{path} holds no beamformer filter (no 'weights'): read it with the "
                         "reader of its own kind")
    if "csd" in state:
        state["csd"] = mne.time_frequency.CrossSpectralDensity(**state["csd"])
    return Beamformer(_mne.beamformer_from_file_dict(state))


def as_filter(filters) -> dict:
    """A filter (minnorm's or MNE-Python's) checked to be an LCMV Beamformer dict."""
    if not isinstance(filters, dict) or "weights" not in filters:
        raise TypeError(f"filters must be a Beamformer from make_lcmv or read_beamformer, got "
                        f"{type(filters).__name__}")
    if filters.get("kind", "LCMV") != "LCMV":
        raise ValueError(f"filters must be an LCMV beamformer, got a {filters['kind']} one: "
                         "apply DICS filters with mne.beamformer.apply_dics")
    return filters
