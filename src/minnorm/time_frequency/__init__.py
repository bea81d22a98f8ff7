"""Source power: spectra and time-frequency power of MNE-Python's names, by linearity.

psd      compute_source_psd, compute_source_psd_epochs (multitaper, Welch)
induced  source_induced_power, source_band_induced_power (Morlet)
common   the shared rows: kernel, labels, orientation, memory
"""

from .induced import source_band_induced_power, source_induced_power
from .psd import compute_source_psd, compute_source_psd_epochs

__all__ = ["compute_source_psd", "compute_source_psd_epochs", "source_induced_power",
           "source_band_induced_power"]
