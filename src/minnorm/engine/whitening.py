"""Noise whitening: SSP projection, rank-aware C**-½ per channel group.

The sensor noise n ~ N(0, C) is whitened so that the whitened noise is white
with unit variance in every retained direction::

    W = Λ**-½ Eᵀ P        # (n_channels, n_channels), rank-deficient rows are zero

where P is the SSP projector, and C_p = P C Pᵀ = E Λ Eᵀ is diagonalised block by
block: one block per channel group (MEG — magnetometers and gradiometers
together when both are present —, EEG, ...). Within each block only the
``rank`` largest eigenvalues are kept, exactly as MNE-Python does, so the
whitened data live in a space of dimension ``n_nonzero = Σ rank``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg

__all__ = ["Whitener", "make_projector", "compute_whitener"]


def make_projector(vectors: np.ndarray, n_channels: int) -> np.ndarray:
    """SSP projector P = I − U Uᵀ from projection vectors.

    Parameters
    ----------
    vectors : ndarray of shape (n_vectors, n_channels)
        The projection vectors restricted to the channels in use (rows).
    n_channels : int
        Number of channels (for the identity when there are no vectors).

    Returns
    -------
    proj : ndarray of shape (n_channels, n_channels)

    Notes
    -----
    Each vector is scaled to unit norm; U spans the vectors, and directions
    whose singular value is below 1 % of the largest are treated as linearly
    dependent and dropped (the rule of MNE-Python).
    """
    vectors = np.asarray(vectors, dtype=np.float64).reshape(-1, n_channels)
    norms = np.linalg.norm(vectors, axis=1)
    vectors = vectors[norms > 0] / norms[norms > 0, np.newaxis]
    if len(vectors) == 0:
        return np.eye(n_channels)
    U, S, _ = linalg.svd(vectors.T, full_matrices=False)
    U = U[:, S / S[0] > 1e-2]
    if U.shape[1] >= n_channels:
        raise ValueError(
            f"{U.shape[1]} projectors for {n_channels} channels leave no data: "
            "remove projectors or add channels"
        )
    return np.eye(n_channels) - U @ U.T


@dataclass(frozen=True)
class Whitener:
    """The noise model in its eigenbasis (for one ``nave``).

    Attributes
    ----------
    eig : ndarray of shape (n_channels,)
        Eigenvalues of the projected noise covariance, per channel group, the
        discarded (rank-deficient) ones set to zero.
    eigvec : ndarray of shape (n_channels, n_channels)
        Rows are the eigenvectors (block-diagonal by channel group).
    proj : ndarray of shape (n_channels, n_channels)
        The SSP projector P.
    """

    eig: np.ndarray
    eigvec: np.ndarray
    proj: np.ndarray

    @property
    def n_nonzero(self) -> int:
        """Dimension of the whitened space (the noise covariance's rank)."""
        return int(np.sum(self.eig > 0))

    def scaled(self, nave: float) -> "Whitener":
        """The whitener for an average of ``nave`` trials: C → C / nave."""
        return Whitener(self.eig / nave, self.eigvec, self.proj)

    @property
    def matrix(self) -> np.ndarray:
        """W = Λ**-½ E (rows of zeros where Λ = 0), shape (n_channels, n_channels).

        It does not include P: apply ``matrix @ proj`` to data.
        """
        inv_sqrt = np.zeros_like(self.eig)
        keep = self.eig > 0
        inv_sqrt[keep] = 1.0 / np.sqrt(self.eig[keep])
        return inv_sqrt[:, np.newaxis] * self.eigvec

    @property
    def colorer(self) -> np.ndarray:
        """C**½ = Eᵀ Λ**½, shape (n_channels, n_channels): whitened → sensors."""
        return np.sqrt(np.clip(self.eig, 0, None)) * self.eigvec.T


def compute_whitener(
    cov: np.ndarray,
    /,
    *,
    groups: dict[str, np.ndarray],
    ranks: dict[str, int],
    proj: np.ndarray,
) -> Whitener:
    """Eigen-decompose the projected noise covariance per channel group.

    Parameters
    ----------
    cov : ndarray of shape (n_channels, n_channels)
        Noise covariance C (not projected).
    groups : dict of str → ndarray of int
        Channel indices of each group (e.g. ``{"meg": ..., "eeg": ...}``).
    ranks : dict of str → int
        Number of eigenvalues to keep in each group.
    proj : ndarray of shape (n_channels, n_channels)
        SSP projector P; C is replaced by P C Pᵀ.

    Returns
    -------
    whitener : Whitener
    """
    n_channels = len(cov)
    cov_p = proj @ cov @ proj.T
    eig = np.zeros(n_channels)
    eigvec = np.zeros((n_channels, n_channels))
    for name, picks in groups.items():
        rank = int(ranks[name])
        if not 0 < rank <= len(picks):
            raise ValueError(
                f"rank of the {name} noise covariance must be in [1, {len(picks)}], "
                f"got {rank}"
            )
        e, v = linalg.eigh(cov_p[np.ix_(picks, picks)])  # ascending
        e[:-rank] = 0.0
        eig[picks] = e
        eigvec[np.ix_(picks, picks)] = v.T
    eig[eig < 0] = 0.0  # numerically negative among the kept ones: dropped too
    return Whitener(eig, eigvec, proj)
