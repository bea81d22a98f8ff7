"""Quick start: minnorm next to MNE-Python on a simulated source, no data needed.

A spherical head, the real Neuromag VectorView sensor layout (shipped with
MNE-Python), a 10 mm grid of sources, one dipole with a 10 Hz burst and
white sensor noise. Both libraries build the inverse operator and apply
MNE, dSPM, sLORETA and eLORETA; the script prints how far apart they are and
how far each peak is from the true source.

Run:  python examples/quickstart.py
"""

import time

import mne
import numpy as np

import minnorm

mne.set_log_level("WARNING")
rng = np.random.default_rng(0)

# --- forward model: b = L s + n ---------------------------------------------
info = mne.channels.read_meg_canonical_info("neuromag")
info = mne.pick_info(info, mne.pick_types(info, meg=True))
with info._unlock():
    info["sfreq"] = 600.0
sphere = mne.make_sphere_model(r0=(0.0, 0.0, 0.04), head_radius=None)
src = mne.setup_volume_source_space(pos=10.0, sphere=(0.0, 0.0, 0.04, 0.07),
                                     mindist=10.0, exclude=20.0)  # MEG is blind at the centre
fwd = mne.make_forward_solution(info, None, src, sphere, meg=True, eeg=False)
L = fwd["sol"]["data"]  # (n_channels, 3 · n_sources), T/(A·m)
print(f"leadfield L: {L.shape[0]} channels × {L.shape[1]} columns "
      f"(3 orientations × {fwd['nsource']} sources)")

# --- simulated data: one dipole, 20 nA·m, plus noise --------------------------
times = np.arange(-0.1, 0.3, 1 / info["sfreq"])
true = int(np.argmin(np.linalg.norm(fwd["source_rr"] - [0.03, 0.02, 0.07], axis=1)))
moment = 20e-9 * np.array([0.0, 1.0, 0.0])
wave = np.sin(2 * np.pi * 10 * times) * np.exp(-((times - 0.1) / 0.05) ** 2)
signal = (L[:, 3 * true:3 * true + 3] @ moment)[:, None] * wave
noise_cov = mne.make_ad_hoc_cov(info)
noise = rng.standard_normal(signal.shape) * np.sqrt(noise_cov.data)[:, None]
evoked = mne.EvokedArray(signal + noise / 10, info, tmin=times[0], nave=100)

# --- the inverse: same call, two libraries -----------------------------------
t0 = time.perf_counter()
inv_mne = mne.minimum_norm.make_inverse_operator(info, fwd, noise_cov)
t1 = time.perf_counter()
inv = minnorm.make_inverse_operator(info, fwd, noise_cov)
t2 = time.perf_counter()
print(f"make_inverse_operator: MNE-Python {t1 - t0:.2f} s, minnorm {t2 - t1:.2f} s  ({inv})")

peak_time = int(np.argmax(np.abs(wave)))
print(f"{'method':8} {'rel. diff':>10} {'peak error (mm)':>16}")
for method in ("MNE", "dSPM", "sLORETA", "eLORETA"):
    ref = mne.minimum_norm.apply_inverse(evoked, inv_mne, 1 / 9, method)
    stc = minnorm.apply_inverse(evoked, inv, 1 / 9, method)
    diff = np.linalg.norm(stc.data - ref.data) / np.linalg.norm(ref.data)
    peak = int(np.argmax(stc.data[:, peak_time]))
    error = 1e3 * np.linalg.norm(fwd["source_rr"][peak] - fwd["source_rr"][true])
    print(f"{method:8} {diff:10.1e} {error:16.1f}")
