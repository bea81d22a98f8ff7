"""The story of the computation, told for a given forward model (and data).

What a lecture on the minimum-norm estimate says, with this data set's own
numbers: the channels, the source space, the leadfield's shape and units, the
dimensions of every term of ŝ = Lᵀ (G + εI)⁻¹ b, why G = L Lᵀ cannot be
inverted without ε, and what the default λ² = 1/SNR² means.
"""

from __future__ import annotations

import mne
import numpy as np

__all__ = ["forward_story"]

_LEADFIELD_UNITS = {"mag": "T/(A·m)", "grad": "T/m/(A·m)", "eeg": "V/(A·m)"}
_NAMES = {"mag": "magnetometers", "grad": "planar gradiometers", "eeg": "EEG electrodes"}


def _channels(info, ch_names) -> list[str]:
    types = mne.pick_info(info, [info["ch_names"].index(c) for c in ch_names]).get_channel_types()
    counts = {t: types.count(t) for t in dict.fromkeys(types)}
    parts = ", ".join(f"{n} {_NAMES.get(t, t)}" for t, n in counts.items())
    lines = [f"Channels: {len(ch_names)} used ({parts})."]
    if info["bads"]:
        lines.append(f"  Bad channels left out: {', '.join(info['bads'])}.")
    return lines


def _sources(fwd) -> list[str]:
    src = fwd["src"]
    lines = [f"Source space: {src.kind}, {len(src)} part(s)."]
    for s in src:
        name = ({101: "left hemisphere", 102: "right hemisphere"}.get(s.get("id"), s["type"])
                if s["type"] == "surf" else s.get("seg_name") or s["type"])  # volumes have ids too
        lines.append(f"  {name:17s}: {s['nuse']:6d} sources used of {s['np']:7d} vertices")
    return lines


def _leadfield(fwd, types) -> list[str]:
    L = fwd["sol"]["data"]
    n_src, n_ori = fwd["nsource"], 3 if fwd["source_ori"] == 2 else 1
    used = [s["nuse"] for s in fwd["src"]]
    lines = [
        f"Leadfield L: {L.shape[0]} channels × {L.shape[1]} columns = {n_ori} orientation(s) × "
        f"{n_src} sources; units {', '.join(_LEADFIELD_UNITS.get(t, '?') + ' (' + t + ')' for t in dict.fromkeys(types))}.",
        f"  Check: {' + '.join(map(str, used))} = {sum(used)} sources = {L.shape[1]} columns / {n_ori}"
        f"  → {'OK' if sum(used) * n_ori == L.shape[1] else 'MISMATCH'}",
    ]
    k = types.index("mag") if "mag" in types else 0
    row = ", ".join(f"{v:.2e}" for v in L[k, :6])
    lines.append(f"  A row of L (channel {fwd['sol']['row_names'][k]}, the field it sees from each "
                 f"unit dipole): [{row}, …] {_LEADFIELD_UNITS.get(types[k], '')}")
    return lines


def _equation(M, N3) -> list[str]:
    return [
        "The minimum-norm estimate  ŝ = Lᵀ (G + εI)⁻¹ b,  G = L Lᵀ:",
        f"  ŝ ({N3} × 1) = Lᵀ ({N3} × {M}) · (G ({M} × {M}) + εI ({M} × {M}))⁻¹ · b ({M} × 1)",
        f"  Only a {M} × {M} system is solved, although there are {N3} unknowns: the",
        "  estimate is a combination of the leadfield's rows (it lives in their span).",
    ]


def _conditioning(gain, n_nonzero, what: str) -> list[str]:
    s = np.linalg.svd(gain, compute_uv=False) ** 2  # eigenvalues of G = L Lᵀ
    s = s[:n_nonzero]
    rank = int(np.sum(s > s[0] * 1e-12))
    return [
        f"G = L Lᵀ ({what}): rank {rank} of {gain.shape[0]}, condition number "
        f"{s[0] / s[-1]:.1e} (largest / smallest eigenvalue).",
        "  Inverting G amplifies the data along its weakest directions by that factor —",
        "  there the sensors see almost nothing but noise. Adding εI (ε = λ²) caps the gain",
        "  at 1/λ²: directions with eigenvalue ≪ λ² are damped instead of blown up.",
    ]


def _noise(noise_cov, info, ch_names) -> list[str]:
    cov = mne.pick_channels_cov(noise_cov, ch_names, ordered=False, verbose=False)
    rank = mne.compute_rank(cov, info=info, verbose=False)
    projs = ", ".join(f"{p['desc']} ({'active' if p['active'] else 'inactive'})"
                      for p in info["projs"]) or "none"
    return [f"Noise covariance: {cov['dim']} channels from {cov['nfree']} samples; rank "
            f"{', '.join(f'{k} {v}' for k, v in rank.items())}.",
            f"  SSP projectors: {projs}."]


def forward_story(forward, *, info=None, noise_cov=None, snr: float = 3.0, inverse=None) -> str:
    """The lecture's story for a forward model (and optionally the noise and operator).

    Parameters
    ----------
    forward : mne.Forward
    info : mne.Info | None
        Measurement info (channel types, bads, projectors); default the forward's.
    noise_cov : mne.Covariance | None
        If given, its rank and projectors are described.
    snr : float
        Assumed amplitude SNR for the default λ² = 1/SNR².
    inverse : minnorm.InverseOperator | None
        If given, G's rank and condition number are computed from its
        whitened gain; else from the magnetometer (or first type's) rows of L.

    Returns
    -------
    text : str
    """
    info = forward["info"] if info is None else info
    ch_names = [c for c in forward["sol"]["row_names"] if c in info["ch_names"] and c not in info["bads"]]
    types = mne.pick_info(info, [info["ch_names"].index(c) for c in ch_names]).get_channel_types()
    lines = _channels(info, ch_names) + _sources(forward) + _leadfield(forward, types)
    lines += _equation(len(ch_names), forward["sol"]["data"].shape[1])
    if inverse is not None:
        G = (inverse.eigen_fields.T * inverse.sing) @ inverse.eigen_leads.T
        lines += _conditioning(G, inverse.n_nonzero, "whitened and depth-weighted")
    else:
        one = [k for k, t in enumerate(types) if t == types[0]]
        L = forward["sol"]["data"][[forward["sol"]["row_names"].index(ch_names[k]) for k in one]]
        lines += _conditioning(L / np.abs(L).max(), len(one), f"{_NAMES.get(types[0], types[0])} only")
    if noise_cov is not None:
        lines += _noise(noise_cov, info, ch_names)
    lines += [f"Regularisation: λ² = 1/SNR² = 1/{snr:g}² = {1 / snr**2:.3g}. With the data whitened",
              "  (noise variance 1 in every direction), a signal SNR times the noise deserves",
              "  λ² = 1/SNR²: components weaker than the noise are shrunk, stronger ones kept."]
    return "\n".join(lines)
