"""Induced power and phase locking in source space, by linearity.

MNE-Python transforms the data of every epoch with every wavelet, applies
the kernel to the real and to the imaginary part, and squares. The kernel
is linear and low rank, so the wavelet transform is taken of the r
whitened components instead (one FFT per epoch, one inverse FFT per
wavelet), and the power of a source is (:mod:`minnorm.engine.spectra`)::

    P_k(f, t) = (1/E) Σ_e Σ_{rows of k} |ℓ · z_e,f(t)|²      z_e,f = w_f * (fields @ b_e)

expanded for a block of epochs at a time in real GEMMs (real and imaginary
parts as one), squared and summed in the tile ("direct" route); or, when
the epochs outnumber half the components and no phase locking is asked
for, from the components' cross-spectra S_f(t) = Σ_e Re(z zᴴ) ("cross"
route). The phase-locking value is |Σ_e z/|z|| / E of the normal component
(pick_ori None: the third row of each source, as MNE-Python), taken from
the same tiles.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import fft as sp_fft

from .. import _log, _mne
from .._mne import spectra as mne_spectra
from ..engine import quadratic, spectra
from .common import checked_real, label_list, spectral_rows

__all__ = ["source_induced_power", "source_band_induced_power"]

logger = logging.getLogger("minnorm")


def source_induced_power(epochs, inverse_operator, freqs, label=None, lambda2=1.0 / 9.0,
                         method="dSPM", nave=1, n_cycles=5, decim=1, use_fft=False,
                         pick_ori=None, baseline=None, baseline_mode="logratio", pca=True,
                         n_jobs=None, *, return_plv=True, zero_mean=False, prepared=False,
                         method_params=None, use_cps=True, verbose=None, dtype="float64",
                         max_memory=None, route="auto"):
    """Induced power and phase locking, as ``mne.minimum_norm.source_induced_power``.

    Returns ``power`` of shape (n_sources, n_freqs, n_times) — (n_labels, …)
    for a list of labels, averaged over each label's sources — and, with
    ``return_plv``, ``plv`` (n_sources, n_freqs, n_times). Baseline
    correction as MNE-Python's ``rescale``. ``pca`` and ``prepared`` as
    :func:`minnorm.compute_source_psd_epochs`; ``use_fft`` and ``n_jobs`` are
    accepted for compatibility (the wavelet transforms are FFTs, on every
    core; ``use_fft=False`` keeps MNE's refusal of wavelets longer than the
    epochs). minnorm's own: ``dtype="float32"``, ``max_memory`` and
    ``route`` ("auto", "direct", "cross"; see :mod:`minnorm.engine.quadratic`).
    """
    with _mne.log_level(verbose):
        power, plv, rows = _induced(epochs, inverse_operator, freqs, label=label,
                                    lambda2=lambda2, method=method, nave=nave,
                                    n_cycles=n_cycles, decim=decim, use_fft=use_fft,
                                    pick_ori=pick_ori, with_plv=return_plv,
                                    zero_mean=zero_mean, method_params=method_params,
                                    use_cps=use_cps, pca=pca, prepared=prepared, dtype=dtype,
                                    max_memory=max_memory,
                                    route=route, baseline=baseline,
                                    baseline_mode=baseline_mode)
        times = epochs.times[mne_spectra.check_decim(decim)]
        power = mne_spectra.rescale(power, times, baseline, baseline_mode)
        return (power, plv) if return_plv else power


def source_band_induced_power(epochs, inverse_operator, bands, label=None, lambda2=1.0 / 9.0,
                              method="dSPM", nave=1, n_cycles=5, df=1, use_fft=False,
                              decim=1, baseline=None, baseline_mode="logratio", pca=True,
                              n_jobs=None, prepared=False, method_params=None, use_cps=True,
                              *, verbose=None, dtype="float64", max_memory=None,
                              route="auto"):
    """Induced power in frequency bands as source estimates, as MNE-Python's.

    ``bands`` maps a name to (fmin, fmax); each band's power is the mean over
    its frequencies fmin, fmin + df, … fmax of the normal component's power
    (as MNE-Python: pick_ori "normal", so a free or loose operator), baseline
    corrected. Returns a dict name → SourceEstimate.
    """
    if label_list(label) is not None:
        raise ValueError("source_band_induced_power makes source estimates, which a list of "
                         "labels does not give: pass one label, or use "
                         "source_induced_power(..., label=[...]) for label time courses")
    with _mne.log_level(verbose):
        freqs = np.concatenate([np.arange(band[0], band[1] + df / 2.0, df)
                                for band in bands.values()])
        powers, _, rows = _induced(epochs, inverse_operator, freqs, label=label,
                                   lambda2=lambda2, method=method, nave=nave,
                                   n_cycles=n_cycles, decim=decim, use_fft=use_fft,
                                   pick_ori="normal", with_plv=False, zero_mean=False,
                                   method_params=method_params, use_cps=use_cps, pca=pca,
                                   prepared=prepared,
                                   dtype=dtype, max_memory=max_memory, route=route,
                                   baseline=baseline,
                                   baseline_mode=baseline_mode)
        step = mne_spectra.check_decim(decim)
        times = epochs.times[step]
        tstep = (step.step or 1) / epochs.info["sfreq"]
        op = rows.setup.op
        stcs = {}
        for name, band in bands.items():
            idx = [k for k, f in enumerate(freqs) if band[0] <= f <= band[1]]
            power = mne_spectra.rescale(np.mean(powers[:, idx, :], axis=1), times, baseline,
                                        baseline_mode)
            stcs[name] = _mne.stc_from_arrays(power, rows.vertices, tmin=float(epochs.times[0]),
                                              tstep=tstep,
                                              subject=op.src[0].get("subject_his_id"),
                                              kind=op.src.kind, vector=False)
        return stcs


def _induced(epochs, inverse_operator, freqs, *, label, lambda2, method, nave, n_cycles,
             decim, use_fft, pick_ori, with_plv, zero_mean, method_params, use_cps, pca,
             prepared, dtype, max_memory, route, baseline, baseline_mode):
    """(power, plv or None, rows): the work of both entry points."""
    _mne.check_instance(epochs, "epochs")
    labels = label_list(label)
    if labels is not None and len(labels) > 1 and with_plv:
        raise RuntimeError("Phase-locking value cannot be calculated when averaging induced "
                           "power within labels. Please set `with_plv` to False, pass a "
                           "single `label=label`, or set `label=None`.")
    mne_spectra.check_baseline_mode(baseline, baseline_mode)
    step = mne_spectra.check_decim(decim)
    rows = spectral_rows(epochs, inverse_operator, lambda2=lambda2, method=method, nave=nave,
                         label=label, pick_ori=pick_ori, method_params=method_params,
                         use_cps=use_cps, pca=pca, prepared=prepared, dtype=dtype,
                         max_memory=max_memory,
                         allow_label_list=True)
    wavelets = mne_spectra.morlet_wavelets(epochs.info["sfreq"], freqs, n_cycles, zero_mean)
    n_times = len(epochs.times)
    longest = max(len(w) for w in wavelets)
    if longest > n_times:
        message = (f"At least one of the wavelets ({longest}) is longer than the signal "
                   f"({n_times}). Consider using a longer signal or shorter wavelets.")
        if not use_fft:
            raise ValueError(message)
        _log.warn(message)
    Y = _components(epochs, rows)  # (E, r, T)
    n_fft = sp_fft.next_fast_len(n_times + longest - 1)
    n_out_times = len(np.arange(n_times)[step])
    E, r = Y.shape[:2]
    costs = quadratic.route_costs(r=r, group=rows.group, n_draws=E, n_locations=rows.n_out,
                                  phase=with_plv)
    chosen = quadratic.choose_route(route, costs)
    logger.info("Induced power of %d epochs at %d frequencies: %s route", E, len(freqs), chosen)
    power = np.zeros((rows.n_out, len(freqs), n_out_times))
    plv = np.zeros(power.shape, np.complex128) if with_plv else None
    block = _epoch_block(rows, E, r, n_fft, n_out_times, chosen)
    cached = _spectra(Y, n_fft, rows.leads.dtype) if block >= E else None
    for f, wavelet in enumerate(_log.progress(wavelets, desc="induced power", unit="freq")):
        lifted = 0.0
        for e0 in range(0, E, block):
            Y_hat = cached if cached is not None else \
                _spectra(Y[e0:e0 + block], n_fft, rows.leads.dtype)
            Z = spectra.wavelet_transform(Y_hat, wavelet, n_times=n_times, n_fft=n_fft,
                                          decim=step)  # (block, r, T')
            phase = None if plv is None else plv[:, f]
            if chosen == "cross":
                lifted = lifted + quadratic.lifted_cross_spectrum(Z)
                if phase is not None:  # the phases of the normal rows, from their own tiles
                    quadratic.power_rows(rows.leads, Z, None, group=rows.group, phase=phase,
                                         phase_row=rows.group - 1)
            else:
                quadratic.power_rows(rows.leads, Z, power[:, f], group=rows.group,
                                     phase=phase, phase_row=rows.group - 1)
        if chosen == "cross":
            quadratic.lifted_power(rows.leads, lifted, power[:, f], group=rows.group)
    power /= E
    if plv is not None:
        plv = np.abs(plv) / E
    if rows.labels is not None:
        power = np.stack([power[m].mean(axis=0) for m in rows.labels])
    return power, plv, rows


def _components(epochs, rows) -> np.ndarray:
    """The whitened components of every epoch, (n_epochs, r, n_times), read in blocks."""
    out = []
    for data in _mne.epoch_blocks(epochs, rows.rows, 64):
        data = checked_real(data, rows, epochs.info, not out)
        out.append(np.matmul(rows.fields, data))
    if not out:
        raise ValueError("the epochs are empty: nothing to transform")
    return np.concatenate(out)


def _spectra(Y, n_fft, dtype) -> np.ndarray:
    """rfft of the components, complex64 for float32 work."""
    Y_hat = sp_fft.rfft(Y, n_fft, axis=-1, workers=-1)
    return Y_hat.astype(np.result_type(dtype, np.complex64), copy=False)


def _epoch_block(rows, E, r, n_fft, n_times, route) -> int:
    """Epochs per block: their spectra (n_fft/2 + 1) and transforms within the budget; the
    cross route also holds a frequency's lifted cross-spectra (r(r+1)/2 per sample)."""
    size = 2 * rows.leads.dtype.itemsize
    per_epoch = size * r * (n_fft // 2 + 1) + 2 * size * r * n_times + 8 * r * n_fft
    fixed = 2 * 8 * n_times * r * (r + 1) // 2 if route == "cross" else 0
    return int(max(1, min(E, (rows.budget - fixed) // per_epoch)))
