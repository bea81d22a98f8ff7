"""RAP-MUSIC and TRAP-MUSIC: dipoles one at a time from the signal subspace (plain arrays).

Mosher & Leahy (1996, 1999); TRAP-MUSIC, Mäkelä et al. (2018). With the whitened data
M (channels × times) and its signal subspace Φ (the eigenvectors of M Mᵀ with the
n_dipoles largest eigenvalues), each step scans every source k for the subspace
correlation between its gain G_k (channels × 3, or × 1) and Φ, both projected away from
the fields of the dipoles found so far::

    G_k = U S Vᵀ (the components above 1e-6 of the largest, at least two),
    subcorr_k = σ_max(Uᵀ Φ),  orientation ∝ V S⁻¹ u_max

and keeps the best; TRAP-MUSIC drops one more of Φ's weakest columns at each step.
Amplitudes are the least-squares fit of the found fields to M.

Every source is scanned at once: each found field's direction (orthogonal to those before)
is taken out of the gain in place (a rank-1 update), and each source's SVD comes from its 3 × 3
Gram matrix (one stacked eigen-decomposition); Uᵀ Φ = S⁻¹ Vᵀ (G_kᵀ Φ) needs no U. This is
MNE-Python's scan (one SVD pair per source in a Python loop) as a few stacked products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg
from scipy.linalg import blas

from .linalg import stacked_matmul

__all__ = ["MusicFit", "music", "split_gof"]

RANK_TOL = 1e-6  # gain components below this fraction of the largest are left out
MIN_RANK = 2  # ... but at least two are kept (MNE-Python's rule)


@dataclass(frozen=True)
class MusicFit:
    """The dipoles found, in order."""

    index: np.ndarray  # (n_dipoles,) source indices
    orient: np.ndarray  # (n_dipoles, n_ori) unit orientations in the gain's columns
    subcorr: np.ndarray  # (n_dipoles,) subspace correlation when each was found
    fields: np.ndarray  # (M, n_dipoles) whitened gain of each dipole, G_k · orientation
    amplitude: np.ndarray  # (n_dipoles, n_times) least-squares fit of fields to the data


def music(gain: np.ndarray, data: np.ndarray, n_dipoles: int, *, n_ori: int,
          trap: bool = False) -> MusicFit:
    """RAP-MUSIC (or TRAP-MUSIC) on whitened arrays.

    Parameters
    ----------
    gain : ndarray of shape (M, n_ori·n_sources)
        Whitened gain, each source's ``n_ori`` columns together.
    data : ndarray of shape (M, n_times)
        Whitened data.
    n_dipoles : int
        Dipoles to find (and the signal subspace's dimension).
    n_ori : 1 or 3
    trap : bool
        TRAP-MUSIC: the search for the k-th dipole (k ≥ 2) uses the n_dipoles − k + 2
        strongest columns of the projected signal subspace (MNE-Python's truncation,
        which starts one search later than Mäkelä et al.'s n_dipoles − k + 1).

    Each orientation is signed so that its last component (z for x, y, z columns) is
    not negative, as MNE-Python signs them; a single column's orientation is +1.
    """
    n_chan = gain.shape[0]
    if not 1 <= n_dipoles <= n_chan:
        raise ValueError(f"n_dipoles must be between 1 and the number of channels ({n_chan}), "
                         f"got {n_dipoles}")
    _, vecs = linalg.eigh(data @ data.T)
    phi = vecs[:, -n_dipoles:]
    projected = np.array(gain.T, order="C")  # a copy, source-major, projected in place below
    basis = np.zeros((n_chan, 0))  # orthonormal, spanning the fields found so far
    found, orients, corrs = [], [], []
    fields = np.empty((n_chan, n_dipoles))
    for k in range(n_dipoles):
        phi_k = phi - basis @ (basis.T @ phi)
        if trap and k:
            phi_k = phi_k[:, -(n_dipoles - k + 1):]
        subcorr, orient = _scan(projected, phi_k, n_ori)
        best = int(np.argmax(subcorr))  # the first of equals, as MNE-Python's strict ">"
        ori = orient[best] * (-1.0 if orient[best][-1] < 0 else 1.0)
        found.append(best)
        orients.append(ori)
        corrs.append(subcorr[best])
        fields[:, k] = gain[:, best * n_ori:(best + 1) * n_ori] @ ori
        q = fields[:, k] - basis @ (basis.T @ fields[:, k])  # its new direction
        q -= basis @ (basis.T @ q)  # twice is enough (Kahan–Parlett)
        norm = np.linalg.norm(q)
        if norm > 0:
            basis = np.column_stack([basis, q / norm])
            if k + 1 < n_dipoles:  # out of the gain in place, without a gain-sized temporary:
                blas.dger(-1.0, basis[:, -1], projected @ basis[:, -1], a=projected.T,
                          overwrite_a=True)  # Gᵀ ← Gᵀ − (Gᵀ q) qᵀ
    amplitude = linalg.lstsq(fields, data)[0]
    return MusicFit(np.array(found), np.array(orients), np.array(corrs), fields, amplitude)


def _scan(gain_t: np.ndarray, phi: np.ndarray, n_ori: int) -> tuple[np.ndarray, np.ndarray]:
    """Subspace correlation of every source with ``phi``, and the orientation reaching it."""
    n_src = len(gain_t) // n_ori
    G3 = gain_t.reshape(n_src, n_ori, -1)
    gram = stacked_matmul(G3, G3.transpose(0, 2, 1))  # G_kᵀ G_k
    lam, V = np.linalg.eigh(gram)  # ascending: the last component is the strongest
    s = np.sqrt(np.maximum(lam, 0.0))
    keep = s > s[:, -1:] * RANK_TOL
    keep[:, -min(MIN_RANK, n_ori):] = True
    keep &= s > 0  # a source no sensor sees has correlation 0
    inv_s = np.divide(1.0, s, out=np.zeros_like(s), where=keep)
    # Uᵀ Φ = S⁻¹ Vᵀ (G_kᵀ Φ), the left-out components' rows zero
    T = inv_s[:, :, np.newaxis] * stacked_matmul(V.transpose(0, 2, 1),
                                                 (gain_t @ phi).reshape(n_src, n_ori, -1))
    power, left = np.linalg.eigh(stacked_matmul(T, T.transpose(0, 2, 1)))
    subcorr = np.sqrt(np.maximum(power[:, -1], 0.0))
    x = np.einsum("kij,kj->ki", V, inv_s * left[:, :, -1])  # V S⁻¹ u_max
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    orient = np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)
    return subcorr, orient


def split_gof(data: np.ndarray, amplitude: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Goodness of fit (%) of each column of ``gain`` per time, summing to the whole fit's.

    The data's and the residual's parts in an orthonormal basis of the gain's range are
    shared among the columns in proportion to each column's part there, as MNE-Python's
    sparse solvers do (so that dipoles from one fit can be compared).
    """
    norm = np.sum(data * data, axis=0, keepdims=True)
    norm[norm == 0] = np.inf
    residual = data - gain @ amplitude
    U, s, _ = np.linalg.svd(gain, full_matrices=False)
    if U.shape[1] > 0:
        U = U[:, s >= s[0] * RANK_TOL]
    share = (U.T @ gain)[:, :, np.newaxis] * amplitude  # (n_basis, n_cols, n_times)
    size = np.linalg.norm(share, axis=1, keepdims=True)
    size[size == 0] = 1.0
    share /= size
    fit = np.linalg.norm((U.T @ data)[:, np.newaxis] * share, axis=0) ** 2
    lost = np.linalg.norm((U.T @ residual)[:, np.newaxis] * share, axis=0) ** 2
    return 100.0 * (fit - lost) / norm
