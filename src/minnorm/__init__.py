"""minnorm — minimum-norm MEG/EEG source imaging, exact and fast.

A drop-in for ``mne.minimum_norm``: the same function names and results
(MNE, dSPM, sLORETA, eLORETA), computed from one SVD of the whitened,
weighted gain; and for ``mne.beamformer`` (LCMV, DICS, RAP-/TRAP-MUSIC) as
``minnorm.beamformer``.

The public names are imported on first use (PEP 562): ``import minnorm``, and
with it the ``minnorm`` command's ``--help`` and ``--version``, load neither
MNE-Python nor SciPy until a function needs them.
"""

from importlib import import_module
from importlib.util import find_spec

from ._log import MinnormWarning
from ._version import __version__

# module (relative to minnorm) → the public names it defines
_EXPORTS = {
    ".beamformer": ("Beamformer", "apply_dics", "apply_dics_csd", "apply_dics_epochs",
                    "apply_dics_tfr_epochs", "apply_lcmv", "apply_lcmv_cov",
                    "apply_lcmv_epochs", "apply_lcmv_raw", "make_dics", "make_lcmv",
                    "make_lcmv_resolution_matrix", "rap_music", "read_beamformer",
                    "trap_music"),
    ".engine.kernel": ("Kernel", "prepare_kernel"),
    ".inverse.apply": ("apply_inverse", "apply_inverse_epochs", "apply_inverse_raw"),
    ".inverse.covariance": ("apply_inverse_cov",),
    ".inverse.labels": ("extract_label_time_course",),
    ".inverse.lambda2": ("Lambda2Choice", "choose_lambda2"),
    ".inverse.operator": ("InverseOperator", "make_inverse_operator"),
    ".inverse.prepared": ("prepare_inverse_operator",),
    ".inverse.snr": ("compute_rank_inverse", "estimate_snr"),
    ".inverse.stream": ("iter_inverse_epochs", "iter_inverse_raw"),
    ".inverse.tfr": ("apply_inverse_tfr_epochs",),
    ".resolution": ("get_cross_talk", "get_point_spread", "make_inverse_resolution_matrix",
                    "resolution_maps", "resolution_metrics"),
    ".time_frequency": ("compute_source_psd", "compute_source_psd_epochs",
                        "source_band_induced_power", "source_induced_power"),
    ".io": ("read_inverse_operator", "read_source_array", "write_inverse_epochs",
            "write_inverse_operator", "write_inverse_raw"),
}
# public name → (module, its name there), for the names minnorm exports under MNE's spelling
_RENAMED = {"INVERSE_METHODS": (".engine.kernel", "METHODS")}
_SOURCE = {name: (module, name) for module, names in _EXPORTS.items() for name in names}
_SOURCE.update(_RENAMED)

__all__ = ["__version__", "MinnormWarning", *_SOURCE]


def __getattr__(name: str):
    """A public name, imported from its module on first use (then a plain attribute)."""
    try:
        module, attr = _SOURCE[name]
    except KeyError:
        if not name.startswith("_") and find_spec(f"{__name__}.{name}") is not None:
            return import_module(f".{name}", __name__)  # a subpackage: minnorm.beamformer, …
        raise AttributeError(f"module 'minnorm' has no attribute {name!r}") from None
    value = getattr(import_module(module, __name__), attr)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))
