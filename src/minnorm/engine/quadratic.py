"""Powers of a low-rank kernel's rows: Σ_i |ℓ_k · z_i|², by three routes, tile by tile.

The power of source row k over "draws" z_i (tapers, epochs, real and
imaginary parts; r components each) at output column j is a quadratic form::

    P_k(j) = Σ_i |ℓ_k · z_i(j)|²  =  ℓ_kᵀ S(j) ℓ_k,        S(j) = Σ_i Re(z_i(j) z_i(j)ᴴ)  (r, r)

direct  expand every draw and square (real and imaginary parts as one real
        GEMM): 2·r·(2·n_draws) flops per row and column;
cross   a location's rows enter only through M_k = Σ_rows ℓ ℓᵀ, so its power
        is ⟨M_k, S(j)⟩ = vech'(M_k) · vech(S(j)) — one GEMM of the
        locations' r(r+1)/2 lifted leads with the cross-spectra: r(r+1) flops
        per *location* and column, whatever the draws (cheaper when the draws
        outnumber r/(4·group));
time    (spectra of epochs) expand each epoch's r components to the source's
        time course once (2·r·n_times per row), then Fourier-transform it per
        taper: cheaper than the direct route when n_times < 2·n_tapers·n_freqs.

Each tile's values stay in the core's cache; tiles run on every core.
"""

from __future__ import annotations

import threading

import numpy as np
from scipy import fft as sp_fft

from .linalg import chunks, run_parallel

__all__ = ["ROUTES", "power_rows", "lifted_power", "lifted_cross_spectrum", "time_power_rows",
           "cross_spectrum", "combine_rows", "route_costs", "choose_route"]

ROUTES = ("auto", "direct", "cross", "time")
LOC_TILE = 384  # kernel rows per tile
COL_TILE = 128  # output columns per tile (float64; float32 tiles have twice the columns, the
# same bytes: 91 → 104 GFLOP/s at ico4, 3 tapers × 2,010 columns, two threads)
LIFT_TILE = 256  # locations per tile of lifted leads (256 × r(r+1)/2 × 8 bytes ≈ 90 MB at r = 300)
OUTER_CHUNK = 32  # locations whose r × r outer products are made at once (~23 MB at r = 300)
_buffers = threading.local()


def route_costs(*, r: int, group: int, n_draws: int, n_locations: int,
                n_times: int | None = None, n_tapers: int = 1, n_freqs: int = 1,
                phase: bool = False, additive: bool = True) -> dict:
    """Time per location and output value of each route that applies, in GEMM flops.

    The cross route also forms each column's cross-spectrum (2·r²·2·n_draws
    flops, shared by the ``n_locations``, in small products that run at a third
    of the GEMM's speed); its lifted GEMM runs at about 3/4 of it.

    ``cross`` applies when the powers of a location's rows add up over the
    draws (``additive``: not MNE's √ΣP² of a multitaper spectrum, which needs
    each row's power); ``time`` to spectra of epochs (``n_times`` given): a
    column is a frequency, the cost spread over the n_freqs kept, the FFTs
    counted as ten GEMM flops each (their speed here is a tenth of the GEMM's).
    """
    costs = {"direct": 2.0 * group * r * 2 * n_draws}
    if additive or group == 1:
        forming = 3 * 2.0 * r * r * 2 * n_draws / max(n_locations, 1)
        costs["cross"] = 1.3 * r * (r + 1.0) + forming + (2.0 * r * 2 * n_draws if phase else 0.0)
    if n_times is not None:
        fft = 10 * 2.5 * n_times * np.log2(max(n_times, 2)) * n_tapers
        costs["time"] = group * (2.0 * r * n_times + fft) / max(n_freqs, 1)
    return costs


def choose_route(route: str, costs: dict) -> str:
    """The route asked for, or with "auto" the cheapest of ``costs``; one that applies."""
    if route not in ROUTES:
        raise ValueError(f"route must be one of {list(ROUTES)}, got {route!r}")
    if route == "auto":
        return min(costs, key=costs.get)
    if route not in costs:
        raise ValueError(f"route {route!r} does not apply here: use one of {sorted(costs)}")
    return route


def combine_rows(P: np.ndarray, group: int, how: str) -> np.ndarray:
    """Per-row powers (n_rows, …) → per location: "sum" or "rss" (√ΣP²) over ``group`` rows."""
    if group == 1:
        return P
    P = P.reshape(-1, group, *P.shape[1:])
    return P.sum(axis=1) if how == "sum" else np.sqrt(np.einsum("kg...,kg...->k...", P, P))


def _scratch(name: str, shape, dtype) -> np.ndarray:
    """A per-thread buffer reused across tiles (no allocation, no page faults per tile)."""
    size = int(np.prod(shape))
    buf = getattr(_buffers, name, None)
    if buf is None or buf.size < size or buf.dtype != dtype:
        buf = np.empty(size, dtype)
        setattr(_buffers, name, buf)
    return buf[:size].reshape(shape)


# --------------------------------------------------------------------------- direct


def power_rows(leads: np.ndarray, Z: np.ndarray, out: np.ndarray | None, /, *, group: int = 1,
               combine: str = "sum", phase: np.ndarray | None = None,
               phase_row: int = 0) -> None:
    """out[k, j] += Σ_i |ℓ_k · Z[i, :, j]|², combined over each location's ``group`` rows.

    Parameters
    ----------
    leads : ndarray of shape (n_rows, r)
        Real (float64 or float32: the GEMMs run in this dtype).
    Z : ndarray of shape (n_draws, r, n_cols)
        Complex or real draws (complex: real and imaginary parts are summed).
    out : ndarray of shape (n_rows // group, n_cols) or None
        Accumulated into (float64); None: phases only.
    group, combine
        Rows per location and how their powers combine ("sum" or "rss"; "rss"
        needs one call with every draw, as it is not additive).
    phase : ndarray of shape (n_rows // group, n_cols), complex, optional
        Accumulates Σ_i z/|z| of each location's row ``phase_row`` (phase locking).
    """
    n_out = len(leads) // group
    dtype = leads.dtype
    is_complex = np.iscomplexobj(Z)
    Zr = np.ascontiguousarray(Z, dtype=np.result_type(dtype, np.complex64) if is_complex
                              else dtype)
    if is_complex:
        Zr = Zr.view(dtype)  # (n_draws, r, 2·n_cols): real and imaginary parts interleaved
    width = 2 if is_complex else 1
    n_cols = Zr.shape[-1] // width
    if out is None:
        leads, group, phase_row = leads[phase_row::group], 1, 0  # only the phase rows

    def work(tile):
        (k0, k1), (j0, j1) = tile
        lead = leads[group * k0:group * k1]
        val = _scratch("val", (len(lead), width * (j1 - j0)), dtype)
        acc = _scratch("acc", (len(lead), j1 - j0), np.float64)
        acc[...] = 0
        for Zi in Zr:
            np.matmul(lead, Zi[:, width * j0:width * j1], out=val)
            if phase is not None:
                _add_phase(val[phase_row::group], phase[k0:k1, j0:j1], is_complex)
            if out is not None:
                np.multiply(val, val, out=val)
                if is_complex:  # |z|² = re² + im², interleaved
                    np.add(val[:, 0::2], val[:, 1::2], out=val[:, 0::2])
                    acc += val[:, 0::2]
                else:
                    acc += val
        if out is not None:
            out[k0:k1, j0:j1] += combine_rows(acc, group, combine)

    tiles = [(k, j) for k in chunks(n_out, max(1, LOC_TILE // group))
             for j in chunks(n_cols, COL_TILE * 8 // dtype.itemsize)]
    run_parallel(work, tiles)


def _add_phase(val, phase, is_complex) -> None:
    """phase += z / |z| for the values z of a tile (interleaved real, imaginary for complex)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if not is_complex:
            phase += val / np.abs(val)
            return
        re, im = val[:, 0::2], val[:, 1::2]
        inv = 1.0 / np.sqrt(re * re + im * im)
    phase.real += re * inv
    phase.imag += im * inv


# --------------------------------------------------------------------------- lifted


def cross_spectrum(Z: np.ndarray, /) -> np.ndarray:
    """S(j) = Σ_i Re(Z_i(j) Z_i(j)ᴴ) for draws Z (n_draws, r, n_cols) → (n_cols, r, r)."""
    Zj = np.moveaxis(Z, -1, 0)  # (n_cols, n_draws, r)
    if np.iscomplexobj(Zj):
        Zj = np.concatenate([Zj.real, Zj.imag], axis=1)
    return np.matmul(Zj.transpose(0, 2, 1), Zj)


def lifted_cross_spectrum(Z: np.ndarray, /, *, chunk: int = 32) -> np.ndarray:
    """vech(S(j)) for every column: (n_cols, r(r+1)/2), the upper triangles of the cross-spectra.

    Made ``chunk`` columns at a time on every core, so the full (n_cols, r, r)
    array never is.
    """
    r, n_cols = Z.shape[1], Z.shape[2]
    iu, ju = np.triu_indices(r)
    flat = iu * r + ju
    out = np.empty((n_cols, len(iu)))

    def work(cols):
        j0, j1 = cols
        out[j0:j1] = cross_spectrum(Z[..., j0:j1]).reshape(j1 - j0, r * r)[:, flat]

    run_parallel(work, chunks(n_cols, chunk))
    return out


def lifted_power(leads: np.ndarray, S_lift: np.ndarray, out: np.ndarray, /, *,
                 group: int = 1) -> None:
    """out[k, j] += Σ_rows ℓᵀ S(j) ℓ over each location's ``group`` rows.

    ⟨M_k, S(j)⟩ over the upper triangle, off-diagonal terms doubled, with
    M_k = Σ_rows ℓ ℓᵀ; ``S_lift`` (n_cols, r(r+1)/2) from :func:`lifted_cross_spectrum`.
    """
    r = leads.shape[1]
    iu, ju = np.triu_indices(r)
    flat = iu * r + ju
    dtype = leads.dtype
    S_lift = np.ascontiguousarray(S_lift, dtype=dtype)
    twice = np.where(iu == ju, 1.0, 2.0).astype(dtype)

    def work(tile):
        k0, k1 = tile
        lead = leads[group * k0:group * k1].reshape(k1 - k0, group, r)
        M = _scratch("lift", (k1 - k0, len(iu)), dtype)
        for s0, s1 in chunks(k1 - k0, OUTER_CHUNK):  # M_k = Σ_rows ℓ ℓᵀ, upper triangle
            outer = np.matmul(lead[s0:s1].transpose(0, 2, 1), lead[s0:s1])  # (n, r, r)
            np.multiply(outer.reshape(s1 - s0, r * r)[:, flat], twice, out=M[s0:s1])
        out[k0:k1] += M @ S_lift.T

    run_parallel(work, chunks(len(leads) // group, LIFT_TILE))


# --------------------------------------------------------------------------- time


def time_power_rows(leads: np.ndarray, Y: np.ndarray, tapers: np.ndarray,
                    taper_scale: np.ndarray, freq_idx: np.ndarray, out: np.ndarray, /, *,
                    group: int = 1, combine: str = "rss") -> None:
    """Tapered spectra of expanded time courses: out[k, e, f] = Σ_t (c_t |rfft(h_t ŝ_ke)(f)|)².

    Parameters
    ----------
    leads : ndarray of shape (n_rows, r)
    Y : ndarray of shape (n_epochs, r, n_times)
        Demeaned components (ŝ_ke = ℓ_k Y_e).
    tapers : ndarray of shape (n_tapers, n_times)
    taper_scale : ndarray of shape (n_tapers,)
    freq_idx : ndarray of int
        Frequencies kept; DC and (even n_times) Nyquist are halved, as MNE-Python's.
    out : ndarray of shape (n_rows // group, n_epochs, n_freqs)
    """
    n_times = Y.shape[-1]
    half = np.ones(len(freq_idx))
    half[freq_idx == 0] = 0.5
    if n_times % 2 == 0:
        half[freq_idx == n_times // 2] = 0.5
    weights = (taper_scale**2)[:, np.newaxis] * half  # (tapers, freqs)
    dtype = leads.dtype
    Yc = np.ascontiguousarray(Y, dtype=dtype)

    def work(tile):
        k0, k1 = tile
        lead = leads[group * k0:group * k1]
        course = _scratch("course", (len(lead), n_times), dtype)
        for e, Ye in enumerate(Yc):
            np.matmul(lead, Ye, out=course)
            power = np.zeros((len(lead), len(freq_idx)))
            for h, w in zip(tapers.astype(dtype, copy=False), weights):
                X = sp_fft.rfft(course * h, axis=-1, workers=1)[:, freq_idx]
                power += w * (X.real**2 + X.imag**2)
            out[k0:k1, e] = combine_rows(power, group, combine)

    run_parallel(work, chunks(len(leads) // group, max(1, LOC_TILE // group)))
