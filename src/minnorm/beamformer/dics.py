"""DICS, the frequency-domain beamformer, as ``mne.beamformer``'s ``make_dics`` and ``apply_dics*``.

A DICS filter is an LCMV filter per frequency (Gross et al. 2001) whose data covariance
is that frequency's cross-spectral density C(f) (its real part with ``real_filter``, MNE's
default; complex weights otherwise)::

    W_k(f) = (L_kᵀ C(f)⁻¹ L_k)⁻¹ L_kᵀ C(f)⁻¹, normalised as LCMV's

so :func:`make_dics` is :mod:`minnorm.engine.beamformer`'s batched filter once per
frequency on inputs read once. Applying it: source power diag(W C Wᴴ) per frequency
(:func:`apply_dics_csd`), or W(f) times data — evoked, epochs or complex time-frequency
epochs, in blocks of epochs on LCMV's tiled expansion (real filters).
"""

from __future__ import annotations

import logging

import numpy as np

from .. import _mne
from .._log import warn
from .._mne import dics as edge
from ..engine import beamformer as bf
from ..engine.expand import apply_array, to_xyz
from ..engine.linalg import chunks
from ..engine.memory import DEFAULT_MAX_MEMORY
from ..engine.power import source_power
from .apply import filter_expander, vector_frames
from .filter import Beamformer
from .lcmv import _check_psd, _check_reg

__all__ = ["make_dics", "apply_dics", "apply_dics_epochs", "apply_dics_tfr_epochs",
           "apply_dics_csd"]

logger = logging.getLogger("minnorm")


def make_dics(info, forward, csd, reg=0.05, noise_csd=None, label=None, pick_ori=None,
              rank=None, weight_norm=None, reduce_rank=False, depth=1.0, real_filter=True,
              inversion="matrix", verbose=None) -> Beamformer:
    """Compute DICS spatial filters, one per frequency of ``csd``, as ``mne.beamformer.make_dics``.

    Parameters
    ----------
    info : mne.Info
        Channels to use; ``info["bads"]`` are left out.
    forward : mne.Forward
    csd : mne.time_frequency.CrossSpectralDensity
        The data's cross-spectral density: one filter per frequency (or bin).
    reg : float
        Diagonal loading, as a fraction of the whitened CSD's mean eigenvalue.
    noise_csd : mne.time_frequency.CrossSpectralDensity | None
        Whitens data and gain (its mean over frequencies); needed for several channel types.
    label, pick_ori, rank, weight_norm, reduce_rank, inversion
        As :func:`minnorm.beamformer.make_lcmv` (``weight_norm`` default None here).
    depth : None | float | dict
        Depth weighting of the gain (default exponent 1, MNE's for DICS).
    real_filter : bool
        Use the CSDs' real parts (real weights, MNE's default) or the complex CSDs.
    verbose : bool | str | int | None

    Returns
    -------
    filters : minnorm.beamformer.Beamformer
        MNE-Python's DICS dict: ``weights`` (n_freqs, n_rows, M), ``csd``, ``whitener`` …
    """
    with _mne.log_level(verbose):
        inputs = edge.read_dics_inputs(info, forward, csd, noise_csd, label=label,
                                       pick_ori=pick_ori, rank=rank, depth=depth,
                                       inversion=inversion, real_filter=bool(real_filter))
        _check_reg(reg)
        lcmv = inputs.lcmv
        logger.info("Computing DICS spatial filters for %d sources at %d frequencies",
                    lcmv.gain.shape[1] // lcmv.n_ori, len(inputs.matrices))
        weights, oris = [], []
        for matrix, rank_f in zip(inputs.matrices, inputs.ranks):
            _check_psd(matrix, lcmv.whitener, what="cross-spectral density")
            result = bf.make_filter(lcmv.gain, matrix, lcmv.whitener, reg=reg, rank=rank_f,
                                    n_ori=lcmv.n_ori, weight_norm=weight_norm,
                                    pick_ori=pick_ori, reduce_rank=reduce_rank,
                                    inversion=inversion, nn=lcmv.nn)
            weights.append(result.weights)
            oris.append(result.max_power_ori)
        return Beamformer(edge.dics_filter_dict(
            inputs, forward, np.array(weights),
            np.array(oris) if pick_ori == "max-power" else None, weight_norm=weight_norm,
            pick_ori=pick_ori, inversion=inversion))


def _as_dics(filters) -> dict:
    if not isinstance(filters, dict) or "weights" not in filters:
        raise TypeError(f"filters must be a Beamformer from make_dics or read_beamformer, got "
                        f"{type(filters).__name__}")
    if filters.get("kind") != "DICS":
        raise ValueError(f"filters must be a DICS beamformer, got a {filters.get('kind')} one: "
                         "apply LCMV filters with apply_lcmv")
    return filters


def _apply(filters, fields: np.ndarray, W: np.ndarray, data: np.ndarray) -> np.ndarray:
    """One frequency's filter on epochs (n, M, T) → (n, n_loc[, 3], T): the norm over a free
    filter's orientations (√Σ|·|², real), x, y, z for vectors, complex where data or filter is.

    Real weights run on LCMV's tiled expansion (every core, the norm fused, no
    rows-sized temporaries); complex ones (``real_filter=False``) epoch by epoch.
    """
    if not np.iscomplexobj(W):
        return apply_array(filter_expander({**filters, "weights": W}, fields), data)
    n_loc = sum(len(v) for v in filters["vertices"])
    out = []
    for epoch in data:
        sol = W @ (fields @ epoch)
        if filters["is_free_ori"] and filters["pick_ori"] == "vector":
            sol = to_xyz(sol, vector_frames(filters, len(W)), n_loc)
        elif filters["is_free_ori"]:
            sol = sol.reshape(n_loc, 3, -1)
            sol = np.sqrt((sol.real**2 + sol.imag**2).sum(axis=1))
        out.append(sol)
    return np.stack(out)


def _stc(data, filters, tmin, tstep):
    kind = filters.get("src_type") or "surface"
    return _mne.stc_from_arrays(data, filters["vertices"], tmin=tmin, tstep=tstep,
                                subject=filters["subject"], kind=kind, vector=data.ndim == 3)


def _setup(inst, filters, name):
    """The filter checked, the data's rows in its channel order, its projector/whitener."""
    if name != "epochs_tfr":  # checked by check_epochs_tfr
        _mne.check_instance(inst, name)
    filters = _as_dics(filters)
    rows = _mne.filter_channels(inst.ch_names, filters)
    return filters, rows, _mne.filter_fields(filters, inst.info["projs"], inst.info)


def apply_dics(evoked, filters, verbose=None):
    """Apply DICS filters to an Evoked, as ``mne.beamformer.apply_dics``.

    Returns one source estimate for a one-frequency filter, else a list, one per frequency.
    """
    with _mne.log_level(verbose):
        filters, rows, fields = _setup(evoked, filters, "evoked")
        tmin, tstep = evoked.times[0], 1.0 / evoked.info["sfreq"]
        stcs = [_stc(_apply(filters, fields, W, evoked.data[rows][np.newaxis])[0], filters,
                     tmin, tstep) for W in filters["weights"]]
        return stcs[0] if len(stcs) == 1 else stcs


def _one_frequency(filters):
    if len(filters["weights"]) > 1:
        raise ValueError("This function only works on DICS beamformer weights that have been "
                         "computed for a single frequency: make the filter from a CSD with one "
                         "frequency (or bin), e.g. csd.mean() or csd.pick_frequency(f)")


def _block_size(filters, n_times: int) -> int:
    """Epochs per block: their filter outputs (every row, complex at worst) fit in the default
    working memory (1 GiB), one product per frequency and block."""
    return max(1, DEFAULT_MAX_MEMORY // (len(filters["weights"][0]) * n_times * 16))


def apply_dics_epochs(epochs, filters, return_generator=False, verbose=None):
    """Apply a one-frequency DICS filter to every epoch, as ``mne.beamformer.apply_dics_epochs``.

    A list (generator with ``return_generator``) of source estimates; blocks of epochs go
    through the filter in one product each (MNE-Python: epoch by epoch).
    """
    with _mne.log_level(verbose):
        filters, rows, fields = _setup(epochs, filters, "epochs")
        _one_frequency(filters)
        W = filters["weights"][0]
        tmin, tstep = epochs.times[0], 1.0 / epochs.info["sfreq"]
        size = _block_size(filters, len(epochs.times))

    def items():
        for block in _mne.epoch_blocks(epochs, rows, size):
            for est in _apply(filters, fields, W, block):
                yield _stc(est, filters, tmin, tstep)

    return items() if return_generator else list(items())


def apply_dics_tfr_epochs(epochs_tfr, filters, return_generator=False, verbose=None):
    """Apply DICS filters to complex time-frequency epochs, as
    ``mne.beamformer.apply_dics_tfr_epochs``: frequency j of the filters to frequency j of
    the coefficients.

    A list over epochs of lists over frequencies of (complex, or real norms for a free
    filter) source estimates; with ``return_generator``, one item per epoch as
    MNE-Python's (a source estimate itself for a one-frequency filter). Each frequency's
    filter runs on blocks of epochs in one product.
    """
    with _mne.log_level(verbose):
        _mne.check_epochs_tfr(epochs_tfr)
        filters, rows, fields = _setup(epochs_tfr, filters, "epochs_tfr")
        n_freqs = len(filters["weights"])
        if epochs_tfr.data.shape[2] != n_freqs:
            raise ValueError(f"the time-frequency data have {epochs_tfr.data.shape[2]} "
                             f"frequencies and the filters {n_freqs}: make the filters from a "
                             "CSD at the data's frequencies")
        if filters["pick_ori"] == "vector":
            warn("Using a vector solution to compute power will lead to inaccurate directions "
                 "(only in the first quadrant) because power is a strictly positive (squared) "
                 "metric: use pick_ori=None or 'max-power' for power")
        tmin, tstep = epochs_tfr.times[0], 1.0 / epochs_tfr.info["sfreq"]
        blocks = chunks(len(epochs_tfr.data), _block_size(filters, len(epochs_tfr.times)))

    def items():
        for a, b in blocks:
            data = epochs_tfr.data[a:b][:, rows]  # (n, M, n_freqs, n_times)
            per_freq = [_apply(filters, fields, W, data[:, :, j])
                        for j, W in enumerate(filters["weights"])]
            for k in range(b - a):
                stcs = [_stc(est[k], filters, tmin, tstep) for est in per_freq]
                yield stcs[0] if return_generator and n_freqs == 1 else stcs

    return items() if return_generator else list(items())


def apply_dics_csd(csd, filters, verbose=None):
    """Source power of a cross-spectral density, as ``mne.beamformer.apply_dics_csd``.

    Returns
    -------
    stc : SourceEstimate | VolSourceEstimate
        Power trace(W_k(f) C(f) W_k(f)ᴴ) per source (summed over a free filter's
        orientations, vector filters included) with the frequencies in place of times.
    frequencies : list of float
        The CSD's frequencies (the mean of each bin).
    """
    with _mne.log_level(verbose):
        edge.check_csd(csd)
        filters = _as_dics(filters)
        matrices = edge.csd_matrices(csd, filters["ch_names"])
        weights = filters["weights"]
        if len(matrices) != len(weights):
            raise ValueError(f"the CSD has {len(matrices)} frequencies and the filters "
                             f"{len(weights)}: apply filters made at the CSD's frequencies")
        whitener = np.asarray(filters["whitener"], np.float64)
        group = 3 if filters["is_free_ori"] else 1
        power = np.stack([source_power(W, whitener, C, group=group)  # real W: Re C only
                          for C, W in zip(matrices, weights)], axis=1)
        return _stc(power, filters, 0.0, 1.0), [float(np.mean(f)) for f in csd.frequencies]
