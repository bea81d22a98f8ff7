"""Source power of a sensor covariance: ``apply_inverse_cov``.

    power_k = diag(K C Kᵀ)_k          (one value per source, one time point)

computed from the low-rank kernel (:mod:`minnorm.engine.power`): C is taken
into the kernel's r ≤ M components once (r × r) and each source row is a
quadratic form there. MNE-Python forms the kernel K (n_rows × M) by applying
the operator to an M × M identity "evoked", then K C (n_rows × M).
"""

from __future__ import annotations

import mne
import numpy as np

from .. import _mne
from ..engine.power import source_power
from .prepared import use_prepared
from .setup import as_operator, prepare

__all__ = ["apply_inverse_cov"]


def apply_inverse_cov(cov, info, inverse_operator, nave=1, lambda2=1 / 9, method="dSPM",
                      pick_ori=None, prepared=False, label=None, method_params=None,
                      use_cps=True, verbose=None):
    """Source power of a covariance, as ``mne.minimum_norm.apply_inverse_cov``.

    Parameters
    ----------
    cov : mne.Covariance
        Sensor covariance of the segment whose source power is wanted (its
        projectors are not applied: the operator's are); may be diagonal.
    info : mne.Info
        The data's: channels, bads, compensation grade and EEG reference are
        checked against the operator's.
    inverse_operator : InverseOperator | mne.minimum_norm.InverseOperator
    nave : float
        Number of averages: the noise covariance is divided by it.
    lambda2 : float
        λ² > 0 (a number: a rule such as "gcv" needs data).
    method : "MNE" | "dSPM" | "sLORETA" | "eLORETA"
        dSPM and sLORETA powers are the noise-normalised estimates' (the
        normalisation squared).
    pick_ori : None | "normal"
        None: for free/loose operators the power of the vector (the sum over
        the three orientations); "normal": the component normal to the cortex.
        "vector" is refused (power has no direction), as in MNE-Python.
    prepared, label, method_params, use_cps, verbose
        As :func:`minnorm.apply_inverse`.

    Returns
    -------
    stc : SourceEstimate | VolSourceEstimate | MixedSourceEstimate
        One time point (tmin 0, tstep 1 / info["sfreq"]).
    """
    with _mne.log_level(verbose):
        if not isinstance(cov, mne.Covariance):
            raise TypeError(f"cov must be an mne.Covariance, got {type(cov).__name__}")
        if not isinstance(info, mne.Info):
            raise TypeError(f"info must be an mne.Info, got {type(info).__name__}")
        if pick_ori not in (None, "normal"):
            raise ValueError(f'pick_ori must be None or "normal" for source power, got '
                             f"{pick_ori!r} (a power has no direction)")
        use = use_prepared(inverse_operator, prepared, lambda2=lambda2, method=method,
                           nave=nave, method_params=method_params)
        use["inverse_operator"] = as_operator(use["inverse_operator"])
        C = _mne.covariance_matrix(cov, use["inverse_operator"])  # before any kernel is made
        s = prepare(info=info, label=label, pick_ori=pick_ori, use_cps=use_cps, **use)
        a, used = s.assembled, np.flatnonzero(s.kernel.reginv != 0)
        power = source_power(a.leads[:, used], a.fields[used], C, group=3 if a.combine else 1,
                             scale=a.noise_norm)
        return _mne.make_stc(power[:, np.newaxis], a.vertices, src=s.op.src, tmin=0.0,
                             tstep=1.0 / info["sfreq"], vector=False, source_nn=a.source_nn)
