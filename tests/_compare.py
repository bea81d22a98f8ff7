"""Comparing minnorm's results with MNE-Python's: shared by the test files."""

import numpy as np
import pytest


def rel_err(ours, ref):
    """‖ours − ref‖_F / ‖ref‖_F of two arrays or source estimates of the same shape."""
    ours = ours if isinstance(ours, np.ndarray) else ours.data
    ref = ref if isinstance(ref, np.ndarray) else ref.data
    assert ours.shape == ref.shape
    return np.linalg.norm(ours - ref) / np.linalg.norm(ref)


def max_rel_err(ours, ref):
    """max |ours − ref| / max |ref| of two arrays of the same shape (the beamformer files' bar)."""
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape
    return np.abs(ours - ref).max() / np.abs(ref).max()


def assert_same_stc(ours, ref, tol):
    """Same class, vertices, times and subject; data within relative error ``tol``."""
    assert type(ours) is type(ref)
    for v_ours, v_ref in zip(ours.vertices, ref.vertices):
        np.testing.assert_array_equal(v_ours, v_ref)
    assert ours.tmin == pytest.approx(ref.tmin)
    assert ours.tstep == pytest.approx(ref.tstep)
    assert ours.subject == ref.subject
    err = rel_err(ours, ref)
    assert err < tol, f"relative error {err:.2e} ≥ {tol:.0e}"
