"""``rap_music`` and ``trap_music``: dipoles from the signal subspace (``mne.beamformer``'s).

MNE objects become arrays at the edge (:mod:`minnorm._mne.music`); the scan of every
source for its subspace correlation runs in :mod:`minnorm.engine.music` as a few stacked
products per dipole, where MNE-Python computes two SVDs per source in a Python loop.
"""

from __future__ import annotations

import operator

from .._mne import music as edge
from ..engine.linalg import one_blas_thread
from ..engine.music import music

__all__ = ["rap_music", "trap_music"]


def rap_music(evoked, forward, noise_cov, n_dipoles=5, return_residual=False, *,
              verbose=None):
    """RAP-MUSIC source localisation, as ``mne.beamformer.rap_music``.

    Recursively Applied and Projected MUltiple SIgnal Classification (Mosher & Leahy
    1996, 1999) on evoked data: ``n_dipoles`` dipoles, each the source whose gain best
    matches the data's signal subspace once the dipoles found before are projected out.

    Parameters
    ----------
    evoked : mne.Evoked
    forward : mne.Forward
        Free or fixed orientation (a surface-oriented free forward is used in x, y, z).
    noise_cov : mne.Covariance | None
        Whitens data and gain (its rank is estimated, as MNE-Python does here). None:
        σ = 1 for every channel, allowed for one channel type only (MNE-Python would mix
        teslas and volts unscaled).
    n_dipoles : int
        Dipoles to find, also the signal subspace's dimension (default 5).
    return_residual : bool
        Also return the data the dipoles leave unexplained, as an Evoked.
    verbose : bool | str | int | None

    Returns
    -------
    dipoles : list of mne.Dipole
        One per dipole, in the order found; every GOF shares the fit of all of them.
    residual : mne.Evoked
        With ``return_residual`` only.
    """
    return _music(evoked, forward, noise_cov, n_dipoles, return_residual, trap=False)


def trap_music(evoked, forward, noise_cov, n_dipoles=5, return_residual=False, *,
               verbose=None):
    """TRAP-MUSIC source localisation, as ``mne.beamformer.trap_music``.

    RAP-MUSIC whose signal subspace loses its weakest remaining direction at each
    step (Mäkelä et al. 2018), which keeps dipoles already found from being found
    again when the number asked for is too large. Parameters and returns as
    :func:`rap_music`.
    """
    return _music(evoked, forward, noise_cov, n_dipoles, return_residual, trap=True)


def _music(evoked, forward, noise_cov, n_dipoles, return_residual, *, trap):
    try:
        n_dipoles = operator.index(n_dipoles)
    except TypeError:
        raise TypeError(f"n_dipoles must be an int, got {n_dipoles!r}") from None
    with one_blas_thread():  # M × M decompositions: BLAS threads only spin at this size
        inputs, forward, data_w = edge.read_music_inputs(evoked, forward, noise_cov)
    fit = music(inputs.gain, data_w, n_dipoles, n_ori=inputs.n_ori, trap=trap)
    explained = edge.explained_data(fit, inputs, forward)
    edge.log_explained(data_w, inputs.whitener @ explained)
    dipoles = edge.music_dipoles(fit, inputs, forward, data_w, evoked.times)
    if return_residual:
        return dipoles, edge.music_residual(evoked, inputs, explained)
    return dipoles
