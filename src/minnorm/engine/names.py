"""The engine's choices by name: the methods, the λ² rules and the resolution functions and
metrics.

A module that imports nothing, so that the command line can offer them in its parser
(``minnorm --help``) without loading NumPy's and SciPy's linear algebra; the modules that
implement them (``kernel``, ``regularisation``, ``resolution``) re-export them.
"""

__all__ = ["METHODS", "RULES", "FUNCTIONS", "METRICS"]

METHODS = ("MNE", "dSPM", "sLORETA", "eLORETA")  # MNE-Python's INVERSE_METHODS
RULES = ("gcv", "lcurve", "discrepancy", "evidence", "cv")  # that choose λ² from the data
FUNCTIONS = ("psf", "ctf")  # point-spread, cross-talk
METRICS = ("peak_err", "cog_err", "sd_ext", "maxrad_ext", "peak_amp", "sum_amp")
