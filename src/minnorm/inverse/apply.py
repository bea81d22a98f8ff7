"""Applying a kernel to data: evoked, epochs, raw and plain arrays.

    ŝ(t) = leads @ (fields @ b(t))          # low rank: r ≤ M components in between

then, for free orientations, the norm over the three components (pick_ori
None), and the noise normalisation (dSPM, sLORETA).
"""

from __future__ import annotations

import logging

import numpy as np

from .. import _log, _mne
from ..engine.expand import apply_assembled
from . import stream
from .prepared import use_prepared
from .setup import prepare

__all__ = ["apply_inverse", "apply_inverse_epochs", "apply_inverse_raw"]

logger = logging.getLogger("minnorm")


def apply_inverse(evoked, inverse_operator, lambda2=1.0 / 9.0, method="dSPM",
                  pick_ori=None, prepared=False, label=None, method_params=None,
                  return_residual=False, use_cps=True, verbose=None):
    """Source estimate of an Evoked, as ``mne.minimum_norm.apply_inverse``.

    Parameters
    ----------
    evoked : mne.Evoked
        The noise covariance is divided by ``evoked.nave``.
    inverse_operator : InverseOperator | mne.minimum_norm.InverseOperator
    lambda2 : float | str
        Regularisation λ² > 0 (1/SNR²; default 1/9 for SNR = 3), or a rule that
        chooses it from the data ("gcv", "lcurve", "discrepancy", "evidence",
        "cv"; see :func:`minnorm.choose_lambda2`): from the Evoked here, the
        average of the epochs, or the raw window, once, logged at INFO.
    method : "MNE" | "dSPM" | "sLORETA" | "eLORETA"
    pick_ori : None | "normal" | "vector"
        None: norm over orientations (free/loose); "normal": the component
        normal to the cortex; "vector": all three, as x, y, z.
    prepared : bool
        Use the λ², method and nave the operator was prepared for by
        :func:`minnorm.prepare_inverse_operator` or MNE-Python's (see
        :mod:`minnorm.inverse.prepared`); minnorm caches kernels by itself, so
        this is only for code written for MNE-Python.
    label : mne.Label | mne.BiHemiLabel | None
        Restrict the output to the label's sources.
    method_params : dict | None
        eLORETA options ``eps`` (1e-6), ``max_iter`` (20), ``force_equal`` (False).
    return_residual : bool
        Also return evoked minus the data the estimate explains.
    use_cps : bool
        Patch-statistics normals when rotating a cartesian operator (pick_ori "normal").
    verbose : bool | str | int | None

    Returns
    -------
    stc : SourceEstimate | VectorSourceEstimate | VolSourceEstimate | ...
    residual : mne.Evoked
        Only if ``return_residual``.
    """
    with _mne.log_level(verbose):
        _mne.check_instance(evoked, "evoked")
        use = use_prepared(inverse_operator, prepared, lambda2=lambda2, method=method,
                           nave=evoked.nave, method_params=method_params)
        s = prepare(info=evoked.info, ch_names=evoked.ch_names, label=label, pick_ori=pick_ori,
                    use_cps=use_cps, data=evoked, **use)
        data = evoked.data[s.rows]
        _mne.check_data(data, s.op, evoked.info, nave=use["nave"])
        stc = _stc(s, apply_assembled(s.assembled, data), evoked.times[0], evoked.info)
        estimate = s.kernel.estimate_data(data)
        _log_explained(s.kernel, data, estimate)
        if return_residual:
            return stc, _mne.residual_evoked(evoked, s.rows, estimate)
        return stc


def _stc(s, sol, tmin, info):
    """The MNE source estimate of ``sol`` (rows of ``s.assembled``), sampled as ``info``."""
    a = s.assembled
    return _mne.make_stc(sol, a.vertices, src=s.op.src, tmin=float(tmin),
                         tstep=1.0 / info["sfreq"], vector=a.vector, source_nn=a.source_nn)


def _log_explained(kernel, data, estimate):
    if logger.isEnabledFor(logging.INFO):
        white = kernel.whitener.matrix @ kernel.whitener.proj
        data_w, res_w = white @ data, white @ (data - estimate)
        explained = 1 - np.vdot(res_w, res_w).real / np.vdot(data_w, data_w).real  # |x|²
        logger.info("Explained %5.1f%% variance", 100 * explained)


def apply_inverse_epochs(epochs, inverse_operator, lambda2, method="dSPM", label=None,
                         nave=1, pick_ori=None, return_generator=False, prepared=False,
                         method_params=None, use_cps=True, verbose=None, *,
                         return_array=False, dtype="float64", max_memory=None):
    """Source estimates of every epoch, as ``mne.minimum_norm.apply_inverse_epochs``.

    Returns a list of source estimates (or a generator with
    ``return_generator=True``). ``nave`` scales the noise covariance (default 1).
    Other parameters as :func:`apply_inverse`.

    With ``return_array=True``, one ndarray of shape (n_epochs, n_sources,
    n_times) — (n_epochs, n_sources, 3, n_times) for ``pick_ori="vector"`` —
    computed in a few large matrix products (:mod:`minnorm.inverse.stream`); with
    ``return_generator=True`` as well, a generator of :class:`minnorm.engine.expand.Block`
    whose size ``max_memory`` bounds. ``dtype="float32"`` halves memory and
    time (relative error ~1e-6); complex epochs give complex64/complex128
    (real norms with pick_ori None on a free/loose operator). ``max_memory``
    (bytes or '2GiB', default 1 GiB) bounds the working memory beyond the
    returned array.
    """
    with _mne.log_level(verbose):
        use = use_prepared(inverse_operator, prepared, lambda2=lambda2, method=method,
                           nave=nave, method_params=method_params)
    nave = use["nave"]
    if return_array:
        run = stream.iter_inverse_epochs if return_generator else \
            stream.apply_inverse_epochs_array
        return run(epochs, use.pop("inverse_operator"), label=label, pick_ori=pick_ori,
                   use_cps=use_cps, dtype=dtype, max_memory=max_memory, verbose=verbose,
                   **use)
    if dtype not in ("float64", np.float64) or max_memory is not None:
        raise ValueError("dtype and max_memory apply to return_array=True only: source "
                         "estimates are float64, one per epoch")
    with _mne.log_level(verbose):
        _mne.check_instance(epochs, "epochs")
        s = prepare(info=epochs.info, ch_names=epochs.ch_names, label=label, pick_ori=pick_ori,
                    use_cps=use_cps, data=epochs, **use)

    def generate():
        epochs_iter = _log.progress(_mne.iter_epochs(epochs), total=len(epochs.events),
                                    desc=f"{s.kernel.method} on epochs", unit="epoch")
        for k, data in enumerate(epochs_iter):
            data = data[s.rows]
            _mne.check_data(data, s.op, epochs.info, nave=nave, units=k == 0)
            yield _stc(s, apply_assembled(s.assembled, data), epochs.times[0], epochs.info)

    return generate() if return_generator else list(generate())


def apply_inverse_raw(raw, inverse_operator, lambda2, method="dSPM", label=None,
                      start=None, stop=None, nave=1, time_func=None, pick_ori=None,
                      buffer_size=None, prepared=False, method_params=None,
                      use_cps=True, verbose=None):
    """Source estimate of continuous data, as ``mne.minimum_norm.apply_inverse_raw``.

    ``start``/``stop`` are sample indices; ``time_func`` is applied to the
    sensor data first; ``buffer_size`` (samples) bounds the memory used while
    combining orientations. Other parameters as :func:`apply_inverse`.
    """
    with _mne.log_level(verbose):
        _mne.check_instance(raw, "raw")
        use = use_prepared(inverse_operator, prepared, lambda2=lambda2, method=method,
                           nave=nave, method_params=method_params)
        nave = use["nave"]
        s = prepare(info=raw.info, ch_names=raw.ch_names, label=label, pick_ori=pick_ori,
                    use_cps=use_cps, data=raw, span=(start, stop), **use)
        data, times = raw[s.rows, start:stop]
        if not data.shape[1]:
            raise ValueError(f"start={start}, stop={stop} select no sample of the "
                             f"{raw.n_times} samples of the raw data")
        if time_func is not None:
            data = time_func(data)
        _mne.check_data(data, s.op, raw.info, nave=nave)
        step = data.shape[1] if buffer_size is None else max(int(buffer_size), 1)
        chunks = _log.progress(range(0, data.shape[1], step), desc=f"{s.kernel.method} on raw",
                               unit="chunk")
        sol = np.concatenate([apply_assembled(s.assembled, data[:, k:k + step])
                              for k in chunks], axis=1)
        return _stc(s, sol, times[0], raw.info)
