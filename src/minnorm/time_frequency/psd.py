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

from .. import _log, _mne
from .._mne import spectra as mne_spectra
from ..engine import quadratic, spectra
from .common import checked_real, spectral_rows

__all__ = ["compute_source_psd_epochs", "compute_source_psd"]

logger = logging.getLogger("minnorm")

SPECTRA_MAX_MEMORY = 256 * 2**20  # default working memory: blocks of a few epochs keep the
# GEMMs as fast as larger ones, and the peak below MNE-Python's


def compute_source_psd_epochs(epochs, inverse_operator, lambda2=1.0 / 9.0, method="dSPM",
                              fmin=0.0, fmax=200.0, pick_ori=None, label=None, nave=1,
                              pca=True, inv_split=None, bandwidth=4.0, adaptive=False,
                              low_bias=True, return_generator=False, n_jobs=None,
                              prepared=False, method_params=None, return_sensor=False,
                              use_cps=True, verbose=None, *, return_array=False,
                              dtype="float64", max_memory=None, route="auto"):
    """Multitaper source power spectra, one per epoch, as ``mne.minimum_norm.compute_source_psd_epochs``.

    Returns a list (or generator) of SourceEstimates whose "times" are the
    frequencies fmin … fmax (with ``return_sensor``, (stc, EvokedArray of the
    sensors' spectra) pairs). ``pca`` as MNE-Python (the data are first
    projected on the kernel's principal directions, see
    :func:`minnorm.engine.spectra.kept_subspace`); ``prepared`` as
    :func:`minnorm.apply_inverse`; ``inv_split`` and ``n_jobs`` are accepted
    for compatibility (the kernel is tiled, on every core, by itself).
    minnorm's own: ``return_array=True`` gives one ndarray (n_epochs,
    n_sources, n_freqs) (with ``return_sensor``, and (n_epochs, n_channels,
    n_freqs) of the sensors), ``dtype="float32"`` (GEMMs in single
    precision), ``max_memory`` (working memory; default 256 MB, as larger
    blocks gain nothing), ``route`` ("auto", "direct", "cross", "time"; see
    :mod:`minnorm.engine.quadratic`).
    """
    with _mne.log_level(verbose):
        _mne.check_instance(epochs, "epochs")
        job = _PsdJob(epochs, inverse_operator, lambda2=lambda2, method=method, fmin=fmin,
                      fmax=fmax, pick_ori=pick_ori, label=label, nave=nave, pca=pca,
                      bandwidth=bandwidth, adaptive=adaptive, low_bias=low_bias,
                      method_params=method_params, use_cps=use_cps, dtype=dtype,
                      max_memory=max_memory, route=route, prepared=prepared)

    if return_array:
        pairs = list(job.iter_epochs(epochs, return_sensor))
        src = np.stack([p[0] for p in pairs]) if pairs else np.empty((0, job.rows.n_out, 0))
        return (src, np.stack([p[1] for p in pairs])) if return_sensor else src

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
    :func:`compute_source_psd_epochs`; with the "cross" route (fixed or
    normal rows), the windows' cross-spectra are summed first and the
    sources expanded once.
    """
    with _mne.log_level(verbose):
        _mne.check_instance(raw, "raw")
        epochs = mne_spectra.fixed_length_epochs(raw, tmin, tmax, int(n_fft), overlap)
        job = _PsdJob(epochs, inverse_operator, lambda2=lambda2, method=method, fmin=fmin,
                      fmax=fmax, pick_ori=pick_ori, label=label, nave=nave, pca=pca,
                      bandwidth=bandwidth, adaptive=adaptive, low_bias=low_bias,
                      method_params=method_params, use_cps=True, dtype=dtype,
                      max_memory=max_memory, route=route, prepared=prepared,
                      n_average=len(epochs.events))
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
                 dtype, max_memory, route, prepared=False, n_average=None):
        if label is not None and not _mne.is_label(label):
            raise TypeError(f"label must be an mne.Label or mne.BiHemiLabel (or None) for "
                            f"source spectra, got {type(label).__name__}")
        logger.info("Considering frequencies %s ... %s Hz", fmin, fmax)
        self.rows = spectral_rows(epochs, inverse_operator, lambda2=lambda2, method=method,
                                  nave=nave, label=label, pick_ori=pick_ori,
                                  method_params=method_params, use_cps=use_cps, pca=pca,
                                  prepared=prepared,
                                  dtype=dtype, max_memory=max_memory)
        self.info = epochs.info
        self.budget = SPECTRA_MAX_MEMORY if max_memory is None else self.rows.budget
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
        n_tap, r, group = len(self.tapers), self.rows.leads.shape[1], self.rows.group
        costs = quadratic.route_costs(r=r, group=group, n_draws=n_tap * (n_average or 1),
                                      n_locations=self.rows.n_out, n_times=n_times,
                                      n_tapers=n_tap, n_freqs=len(self.freqs), additive=False)
        if n_average and "time" in costs:  # totals over the windows: the cross route expands
            costs["time"] *= n_average   # once, the others once per window
        if self.adaptive:  # each row iterates on its own tapered spectra
            costs = {"direct": costs["direct"]}
        self.route = quadratic.choose_route(route, costs)
        self.combine = "rss"
        logger.info("Using %d taper(s), %s route, %d frequencies", len(self.tapers), self.route,
                    len(self.freqs))

    # ------------------------------------------------------------------ blocks

    def block_size(self, n_epochs) -> int:
        """Epochs per block: what a block allocates stays within the budget.

        Per epoch: its data and components, three copies of its tapered spectra
        (made, reordered, made contiguous for the GEMMs), its powers, and with
        the cross route its lifted cross-spectra (r(r+1)/2 per frequency).
        """
        n_f, r, n_tap = len(self.freq_idx), self.rows.leads.shape[1], len(self.tapers)
        M, T = len(self.rows.rows), self.tapers.shape[1]
        per_epoch = 3 * 16 * n_tap * r * n_f + 8 * self.rows.n_out * n_f + 8 * (M + 3 * r) * T
        fixed = 8 * self.rows.n_out * n_f
        if self.route == "cross":
            per_epoch += 8 * n_f * r * (r + 1) // 2
            fixed += 8 * n_f * r * (r + 1) // 2
        return int(max(1, min(n_epochs, (self.budget - fixed) // max(per_epoch, 1))))

    def blocks(self, epochs):
        """Blocks of epochs (n, M, T) in the operator's channel order, checked."""
        size = self.block_size(_mne.epoch_count(epochs))
        blocks = _mne.epoch_blocks(epochs, self.rows.rows, size)
        for k, data in enumerate(_log.progress(blocks, desc="source spectra", unit="block")):
            yield checked_real(data, self.rows, epochs.info, k == 0)

    def iter_epochs(self, epochs, sensors: bool):
        """(source psd (n_out, n_freqs), sensor psd or None) per epoch, computed in blocks."""
        for data in self.blocks(epochs):
            src = self.source_psd(data)
            sens = self.sensor_psd(data) if sensors else [None] * len(data)
            yield from zip(np.moveaxis(src, 1, 0), sens)

    def average(self, epochs, sensors: bool):
        """(mean source psd, mean sensor psd or None, windows): the windows' average.

        With the cross route the windows' cross-spectra add up first and the
        sources are expanded once (powers of fixed or normal rows add up).
        """
        src_sum, sensor_sum, count, lifted = 0.0, 0.0 if sensors else None, 0, 0.0
        for k, data in enumerate(self.blocks(epochs)):
            if self.route == "cross":
                lifted = lifted + quadratic.lifted_cross_spectrum(self._draws(data, pooled=True))
            else:
                src_sum = src_sum + self.source_psd(data).sum(axis=1)
            if sensors:
                sensor_sum = sensor_sum + np.sum(self.sensor_psd(data), axis=0)
            count += len(data)
        if not count:
            raise ValueError("no window of the raw data is left (all were rejected by "
                             "annotations, or tmin/tmax select less than n_fft samples)")
        if self.route == "cross":
            src_sum = np.zeros((self.rows.n_out, len(self.freqs)))
            quadratic.lifted_power(self.rows.leads, lifted, src_sum, group=self.rows.group)
        return src_sum / count, None if sensor_sum is None else sensor_sum / count, count

    # ------------------------------------------------------------------ maths

    def source_psd(self, data) -> np.ndarray:
        """(n_out, n_epochs, n_freqs) for a block of data (n_epochs, M, n_times)."""
        rows = self.rows
        out = np.zeros((rows.n_out, len(data), len(self.freqs)))
        if self.adaptive:
            Y = np.matmul(rows.fields, data)
            for e in range(len(Y)):
                out[:, e] = self._adaptive(Y[e])
        elif self.route == "time":
            Y = np.matmul(rows.fields, data)
            Y -= Y.mean(axis=-1, keepdims=True)
            quadratic.time_power_rows(rows.leads, Y, self.tapers, self.taper_scale,
                                      self.freq_idx, out, group=rows.group, combine=self.combine)
        else:
            Z = self._draws(data)  # (tapers, r, epochs · freqs)
            flat = out.reshape(rows.n_out, -1)
            if self.route == "cross":
                quadratic.lifted_power(rows.leads, quadratic.lifted_cross_spectrum(Z), flat,
                                       group=rows.group)
            else:
                quadratic.power_rows(rows.leads, Z, flat, group=rows.group,
                                     combine=self.combine)
        return out

    def _draws(self, data, pooled=False) -> np.ndarray:
        """Scaled tapered spectra of the components: (n_tapers, r, n_epochs · n_freqs), or
        with ``pooled`` the epochs as draws too: (n_epochs · n_tapers, r, n_freqs)."""
        Y = np.matmul(self.rows.fields, data)  # (n, r, T): the whitened components
        X = spectra.tapered_spectra(Y, self.tapers, self.freq_idx)  # (n, tap, r, f)
        X *= self.taper_scale[:, np.newaxis, np.newaxis]
        n, n_tap, r, n_f = X.shape
        if pooled:
            return X.reshape(n * n_tap, r, n_f)
        return X.transpose(1, 2, 0, 3).reshape(n_tap, r, n * n_f)

    def _adaptive(self, Y) -> np.ndarray:
        """Adaptive weights per source row (one epoch): each row iterates on its own spectrum."""
        rows = self.rows
        X_all = spectra.tapered_spectra(Y[np.newaxis], self.tapers, self.all_idx)[0]
        # each row's variance: the trapezoid integral of its fixed-weight spectrum, ℓᵀ A ℓ
        c = spectra.variance_weights(len(self.all_idx))
        Xw = X_all * (self.taper_scale[:, np.newaxis, np.newaxis] * np.sqrt(c))
        Zm = np.moveaxis(Xw, 1, 0).reshape(Xw.shape[1], -1)  # (r, tapers · frequencies)
        A = Zm.real @ Zm.real.T + Zm.imag @ Zm.imag.T
        X = X_all[..., self.freq_idx]  # (tap, r, f)
        leads = rows.leads.astype(np.float64)
        variance = np.einsum("kr,rs,ks->k", leads, A, leads)
        spec = np.einsum("kr,trf->ktf", leads, X)
        psd = spectra.adaptive_psd(spec, self.eigvals, variance)
        return quadratic.combine_rows(psd, rows.group, self.combine)

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
                var = _fixed(Xe, self.taper_scale) @ spectra.variance_weights(len(self.all_idx))
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
