"""Source power spectra of epochs and of continuous data, by linearity.

MNE-Python applies the kernel to every taper's spectrum of every epoch, at
every frequency up to Nyquist, in complex arithmetic, and only then keeps
fmin … fmax. Here (:mod:`minnorm.engine.spectra`)::

    X_t(f) = rfft(taper_t · Y)          Y = fields @ b: the r whitened components
    P_k(f) = Σ_t w_t² |ℓ_k · X_t(f)|² · 2 / Σ w²      (w_t = √λ_t)

only at the frequencies kept, with the real and imaginary parts of a block
of epochs in one real GEMM per taper (epochs × frequencies as columns).
With pick_ori None on a free or loose operator, MNE-Python combines the
three components' spectra as √(Σ P²) in the operator's frames, and so does
minnorm (its frames are MNE-Python's). dSPM and sLORETA spectra are scaled
by the squared noise norms.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import fft as sp_fft
from scipy.integrate import trapezoid

from .. import _log, _mne
from .._mne import spectra as mne_spectra
from ..engine import spectra
from ..engine.linalg import real_matmul
from .common import checked_real, spectral_rows

__all__ = ["compute_source_psd_epochs", "compute_source_psd"]

logger = logging.getLogger("minnorm")


def compute_source_psd_epochs(epochs, inverse_operator, lambda2=1.0 / 9.0, method="dSPM",
                              fmin=0.0, fmax=200.0, pick_ori=None, label=None, nave=1,
                              pca=True, inv_split=None, bandwidth=4.0, adaptive=False,
                              low_bias=True, return_generator=False, n_jobs=None,
                              prepared=False, method_params=None, return_sensor=False,
                              use_cps=True, verbose=None, *, dtype="float64",
                              max_memory=None, route="auto"):
    """Multitaper source power spectra, one per epoch, as ``mne.minimum_norm.compute_source_psd_epochs``.

    Returns a list (or generator) of SourceEstimates whose "times" are the
    frequencies fmin … fmax (with ``return_sensor``, (stc, EvokedArray of the
    sensors' spectra) pairs). ``pca``, ``inv_split``, ``n_jobs`` and
    ``prepared`` are accepted for compatibility: the kernel is low rank and
    tiled by itself. minnorm's own: ``dtype="float32"`` (GEMMs in single
    precision), ``max_memory`` (working memory), ``route`` ("auto", "direct",
    "cross"; see :mod:`minnorm.engine.spectra`).
    """
    with _mne.log_level(verbose):
        _mne.check_instance(epochs, "epochs")
        job = _PsdJob(epochs, inverse_operator, lambda2=lambda2, method=method, fmin=fmin,
                      fmax=fmax, pick_ori=pick_ori, label=label, nave=nave, pca=pca,
                      bandwidth=bandwidth, adaptive=adaptive, low_bias=low_bias,
                      method_params=method_params, use_cps=use_cps, dtype=dtype,
                      max_memory=max_memory, route=route)

    def generate():
        for k, (src_psd, sensor_psd) in enumerate(job.iter_epochs(epochs, return_sensor)):
            stc = job.stc(src_psd)
            yield (stc, job.evoked(sensor_psd, f"Epoch {k} PSD", nave)) if return_sensor \
                else stc

    return generate() if return_generator else list(generate())


def compute_source_psd(raw, inverse_operator, lambda2=1.0 / 9.0, method="dSPM", tmin=0.0,
                       tmax=None, fmin=0.0, fmax=200.0, n_fft=2048, overlap=0.5,
                       pick_ori=None, label=None, nave=1, pca=True, prepared=False,
                       method_params=None, inv_split=None, bandwidth="hann", adaptive=False,
                       low_bias=False, n_jobs=None, return_sensor=False, dB=False, *,
                       verbose=None, dtype="float64", max_memory=None, route="auto"):
    """Welch/multitaper source power spectrum of raw data, as ``mne.minimum_norm.compute_source_psd``.

    The average over windows of ``n_fft`` samples (``overlap`` between them)
    from ``tmin`` to ``tmax`` (s) of the windows' spectra, Hann-windowed by
    default; ``dB`` returns 10·log10. Returns a SourceEstimate (and the
    sensors' EvokedArray with ``return_sensor``). Other parameters as
    :func:`compute_source_psd_epochs`.
    """
    with _mne.log_level(verbose):
        _mne.check_instance(raw, "raw")
        epochs = mne_spectra.fixed_length_epochs(raw, tmin, tmax, int(n_fft), overlap)
        job = _PsdJob(epochs, inverse_operator, lambda2=lambda2, method=method, fmin=fmin,
                      fmax=fmax, pick_ori=pick_ori, label=label, nave=nave, pca=pca,
                      bandwidth=bandwidth, adaptive=adaptive, low_bias=low_bias,
                      method_params=method_params, use_cps=True, dtype=dtype,
                      max_memory=max_memory, route=route)
        src_sum, sensor_sum, count = job.average(epochs, return_sensor)
        if dB:
            src_sum = 10 * np.log10(src_sum)
            sensor_sum = None if sensor_sum is None else 10 * np.log10(sensor_sum)
        stc = job.stc(src_sum)
        if return_sensor:
            return stc, job.evoked(sensor_sum, "Epoch 0 PSD", count)  # MNE's comment
        return stc


class _PsdJob:
    """One spectral computation: rows, tapers, frequencies; epochs in blocks."""

    def __init__(self, epochs, inverse_operator, *, lambda2, method, fmin, fmax, pick_ori,
                 label, nave, pca, bandwidth, adaptive, low_bias, method_params, use_cps,
                 dtype, max_memory, route):
        if label is not None and not _mne.is_label(label):
            raise TypeError(f"label must be an mne.Label or mne.BiHemiLabel (or None) for "
                            f"source spectra, got {type(label).__name__}")
        logger.info("Considering frequencies %s ... %s Hz", fmin, fmax)
        self.rows = spectral_rows(epochs, inverse_operator, lambda2=lambda2, method=method,
                                  nave=nave, label=label, pick_ori=pick_ori,
                                  method_params=method_params, use_cps=use_cps, pca=pca,
                                  dtype=dtype, max_memory=max_memory)
        self.info = epochs.info
        n_times, sfreq = len(epochs.times), epochs.info["sfreq"]
        self.tapers, self.eigvals, self.adaptive = mne_spectra.multitaper_windows(
            n_times, sfreq, bandwidth, low_bias, adaptive)
        all_freqs = sp_fft.rfftfreq(n_times, 1.0 / sfreq)
        self.fstep = float(np.mean(np.diff(all_freqs)))
        self.all_idx = np.arange(len(all_freqs))
        self.freq_idx = np.flatnonzero((all_freqs >= fmin) & (all_freqs <= fmax))
        self.freqs = all_freqs[self.freq_idx]
        w = np.sqrt(self.eigvals)
        self.taper_scale = w * np.sqrt(2.0 / np.sum(w * w))  # folds Σ w² |X|² · 2/Σ w²
        r = self.rows.leads.shape[1]
        self.route = spectra.choose_route(len(self.tapers), r, route)
        self.combine = "rss"
        logger.info("Using %d taper(s), %s route, %d frequencies", len(self.tapers), self.route,
                    len(self.freqs))

    # ------------------------------------------------------------------ blocks

    def block_size(self, n_epochs) -> int:
        """Epochs per block: the block's spectra and powers within the budget."""
        n_f, r, n_tap = len(self.freq_idx), self.rows.leads.shape[1], len(self.tapers)
        M = len(self.rows.rows)
        per_epoch = 16 * n_tap * r * n_f * 2 + 8 * self.rows.n_out * n_f + 8 * M * \
            self.tapers.shape[1] * 2 + (8 * n_f * r * r if self.route == "cross" else 0)
        return int(max(1, min(n_epochs, self.rows.budget // max(per_epoch, 1))))

    def iter_epochs(self, epochs, sensors: bool):
        """(source psd (n_out, n_freqs), sensor psd or None) per epoch, computed in blocks."""
        size = self.block_size(_mne.epoch_count(epochs))
        blocks = _mne.epoch_blocks(epochs, self.rows.rows, size)
        for k, data in enumerate(_log.progress(blocks, desc="source spectra", unit="block")):
            data = checked_real(data, self.rows, epochs.info, k == 0)
            src = self.source_psd(data)
            sens = self.sensor_psd(data) if sensors else [None] * len(data)
            yield from zip(np.moveaxis(src, 1, 0), sens)

    def average(self, epochs, sensors: bool):
        src_sum, sensor_sum, count = 0.0, 0.0 if sensors else None, 0
        for src, sens in self.iter_epochs(epochs, sensors):
            src_sum = src_sum + src
            if sensors:
                sensor_sum = sensor_sum + sens
            count += 1
        if not count:
            raise ValueError("no window of the raw data is left (all were rejected by "
                             "annotations, or tmin/tmax select less than n_fft samples)")
        return src_sum / count, None if sensor_sum is None else sensor_sum / count, count

    # ------------------------------------------------------------------ maths

    def source_psd(self, data) -> np.ndarray:
        """(n_out, n_epochs, n_freqs) for a block of data (n_epochs, M, n_times)."""
        rows = self.rows
        Y = real_matmul(rows.fields, data)  # (n, r, T): the whitened components
        if self.adaptive:
            return np.stack([self._adaptive(Y[e]) for e in range(len(Y))], axis=1)
        X = spectra.tapered_spectra(Y, self.tapers, self.freq_idx)  # (n, tap, r, f)
        X *= self.taper_scale[:, np.newaxis, np.newaxis]
        n, n_tap, r, n_f = X.shape
        Z = X.transpose(1, 2, 0, 3).reshape(n_tap, r, n * n_f)  # draws: tapers
        out = np.zeros((rows.n_out, n * n_f))
        if self.route == "cross":
            spectra.cross_power_rows(rows.leads, spectra.cross_spectrum(Z), out,
                                     group=rows.group, combine=self.combine)
        else:
            spectra.power_rows(rows.leads, Z, out, group=rows.group, combine=self.combine)
        return out.reshape(rows.n_out, n, n_f)

    def _adaptive(self, Y) -> np.ndarray:
        """Adaptive weights per source row (one epoch): each row iterates on its own spectrum."""
        rows = self.rows
        X_all = spectra.tapered_spectra(Y[np.newaxis], self.tapers, self.all_idx)[0]
        # each row's variance: the trapezoid integral of its fixed-weight spectrum, ℓᵀ A ℓ
        c = np.full(len(self.all_idx), np.pi / len(self.all_idx))
        c[[0, -1]] /= 2
        Xw = X_all * (self.taper_scale[:, np.newaxis, np.newaxis] * np.sqrt(c / (2 * np.pi)))
        Zm = np.moveaxis(Xw, 1, 0).reshape(Xw.shape[1], -1)  # (r, tapers · frequencies)
        A = Zm.real @ Zm.real.T + Zm.imag @ Zm.imag.T
        X = X_all[..., self.freq_idx]  # (tap, r, f)
        leads = rows.leads.astype(np.float64)
        variance = np.einsum("kr,rs,ks->k", leads, A, leads)
        spec = np.einsum("kr,trf->ktf", leads, X)
        psd = spectra.adaptive_psd(spec, self.eigvals, variance)
        return spectra.combine_rows(psd, rows.group, self.combine)

    def sensor_psd(self, data) -> list:
        """Each epoch's sensor spectra, of the data in the kernel's row space (MNE's pca)."""
        basis = self.rows.kept
        if basis is not None:
            data = np.matmul(basis, np.matmul(basis.T, data))
        X = spectra.tapered_spectra(data, self.tapers, self.all_idx if self.adaptive
                                    else self.freq_idx)  # (n, tap, M, f)
        out = []
        for Xe in X:
            if self.adaptive:
                var = trapezoid(_fixed(Xe, self.taper_scale), dx=np.pi / len(self.all_idx)) \
                    / (2 * np.pi)
                psd = spectra.adaptive_psd(np.moveaxis(Xe[..., self.freq_idx], 0, 1),
                                           self.eigvals, var)
            else:
                psd = _fixed(Xe, self.taper_scale)
            out.append(psd)
        return out

    # ------------------------------------------------------------------ outputs

    def stc(self, psd):
        s = self.rows.setup
        return _mne.stc_from_arrays(psd, self.rows.vertices, tmin=float(self.freqs[0]),
                                    tstep=self.fstep, subject=s.op.src[0].get("subject_his_id"),
                                    kind=s.op.src.kind, vector=False)

    def evoked(self, psd, comment, nave):
        return mne_spectra.psd_evoked(self.info, self.rows.rows, psd, self.freqs, self.fstep,
                                      comment, nave)


def _fixed(X, taper_scale):
    """Σ_t (scale_t |X_t|)² over tapers: X (tap, M, f) → (M, f)."""
    Xs = X * taper_scale[:, np.newaxis, np.newaxis]
    return np.sum(Xs.real**2 + Xs.imag**2, axis=0)
