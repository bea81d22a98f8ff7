"""Plain-array building blocks: projector, whitener, frames, priors, kernel options."""

import subprocess
import sys

import numpy as np
import pytest

import minnorm
from minnorm.engine.kernel import check_lambda2, check_method, regularized_inverse
from minnorm.engine.priors import (DepthOptions, depth_prior, orient_prior, surface_frames,
                            to_surface_orientation, triage_loose)
from minnorm.engine.whitening import compute_whitener, make_projector


def test_projector_is_an_orthogonal_projection_removing_its_vectors():
    rng = np.random.default_rng(1)
    vecs = rng.standard_normal((3, 20))
    vecs[2] = vecs[0] * 2.0  # linearly dependent: must not count twice
    P = make_projector(vecs, 20)
    np.testing.assert_allclose(P, P.T, atol=1e-12)
    np.testing.assert_allclose(P @ P, P, atol=1e-12)
    np.testing.assert_allclose(P @ vecs.T, 0, atol=1e-12)
    assert round(np.trace(P)) == 18
    np.testing.assert_array_equal(make_projector(np.zeros((0, 5)), 5), np.eye(5))


def test_projector_with_too_many_vectors_is_an_error():
    with pytest.raises(ValueError, match="leave no data"):
        make_projector(np.eye(4), 4)


def test_whitener_whitens_on_the_kept_subspace():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((12, 40))
    C = A @ A.T / 40
    groups = {"meg": np.arange(8), "eeg": np.arange(8, 12)}
    avg = np.zeros((1, 12))
    avg[0, 8:] = 1  # an average reference on the "EEG" block
    P = make_projector(avg, 12)
    w = compute_whitener(C, groups=groups, ranks={"meg": 8, "eeg": 3}, proj=P)
    assert w.n_nonzero == 11
    W = w.matrix
    white_cov = W @ (P @ C @ P.T) @ W.T
    # each group is whitened on its own (cross-group covariance is ignored, as in MNE)
    for picks in groups.values():
        block = white_cov[np.ix_(picks, picks)]
        keep = w.eig[picks] > 0
        np.testing.assert_allclose(block[np.ix_(keep, keep)], np.eye(keep.sum()), atol=1e-10)
        np.testing.assert_allclose(block[~keep], 0, atol=1e-12)
    Cp = P @ C @ P.T
    block_diag = np.zeros_like(Cp)
    for picks in groups.values():
        block_diag[np.ix_(picks, picks)] = Cp[np.ix_(picks, picks)]
    np.testing.assert_allclose(w.colorer @ w.colorer.T, block_diag, atol=1e-10)
    # C / nave: the whitener grows by √nave
    np.testing.assert_allclose(w.scaled(4).matrix, 2 * W)
    with pytest.raises(ValueError, match="rank of the eeg"):
        compute_whitener(C, groups=groups, ranks={"meg": 8, "eeg": 5}, proj=P)


def test_surface_frames_are_orthonormal_with_the_normal_last():
    rng = np.random.default_rng(3)
    nn = rng.standard_normal((50, 3))
    nn /= np.linalg.norm(nn, axis=1, keepdims=True)
    F = surface_frames(nn)
    np.testing.assert_allclose(F @ F.transpose(0, 2, 1), np.broadcast_to(np.eye(3), F.shape),
                               atol=1e-12)
    np.testing.assert_allclose(F[:, 2], nn, atol=1e-12)
    # rotating the gain is a change of basis: the norm of each source block is kept
    G = rng.standard_normal((7, 150))
    R = to_surface_orientation(G, F)
    np.testing.assert_allclose(np.linalg.norm(R.reshape(7, 50, 3), axis=(0, 2)),
                               np.linalg.norm(G.reshape(7, 50, 3), axis=(0, 2)))
    np.testing.assert_allclose(R[:, 2::3], np.einsum("cki,ki->ck", G.reshape(7, 50, 3), nn))


def test_depth_prior_weights_weak_sources_more_and_respects_the_limit():
    gain = np.diag([1.0, 2.0, 100.0])  # source sensitivities 1, 4, 10⁴ (fixed orientation)
    prior = depth_prior(gain, n_orient=1, exp=1.0, limit=None)
    np.testing.assert_allclose(prior, [1.0, 0.25, 1e-4])
    # MNE-C's limit: weights are capped at the first weight above limit² × the
    # smallest one (here 0.25 > 100 × 1e-4), then divided by it
    limited = depth_prior(gain, n_orient=1, exp=1.0, limit=10.0)
    np.testing.assert_allclose(limited, [1.0, 1.0, 4e-4])
    assert np.all(np.diff(limited) <= 0)


def test_orient_prior_scales_the_tangential_components():
    prior = orient_prior(["surface", "volume"], [2, 1], {"surface": 0.2, "volume": 1.0})
    np.testing.assert_allclose(prior, [0.2, 0.2, 1, 0.2, 0.2, 1, 1, 1, 1])


@pytest.mark.parametrize("kwargs, match", [
    (dict(loose=1.5), "between 0 and 1"),
    (dict(loose=-0.1), "between 0 and 1"),
    (dict(loose="tight"), "loose must be"),
    (dict(loose=0.2, fixed=True), "fixed=True"),
    (dict(loose=0.0, fixed=False), "fixed=True"),
    (dict(loose={"volume": 1.0}), "must have keys"),
])
def test_triage_loose_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        triage_loose(["surface", "surface"], kwargs.pop("loose"), **kwargs)


def test_triage_loose_volume_needs_free_orientation():
    with pytest.raises(ValueError, match="volume source spaces"):
        triage_loose(["volume"], 0.2)
    assert triage_loose(["surface", "surface"], "auto") == {"surface": 0.2}
    assert triage_loose(["surface", "surface", "volume"], "auto") == {"surface": 1.0, "volume": 1.0}


def test_depth_options():
    assert DepthOptions.from_arg(0).exp is None
    assert DepthOptions.from_arg(None).exp is None
    assert DepthOptions.from_arg(dict(exp=2, limit=None)).limit is None
    with pytest.raises(ValueError, match=">= 0"):
        DepthOptions.from_arg(-1)
    with pytest.raises(ValueError, match="unknown depth option"):
        DepthOptions.from_arg(dict(exponent=0.8))


@pytest.mark.parametrize("bad", [0, -1.0, np.inf, np.nan])
def test_lambda2_must_be_positive(bad):
    with pytest.raises(ValueError, match="lambda2 must be > 0"):
        check_lambda2(bad)


def test_unknown_method():
    with pytest.raises(ValueError, match="method must be one of"):
        check_method("LORETA")


def test_regularized_inverse_filter():
    s = np.array([3.0, 1.0, 0.5, 0.1])
    np.testing.assert_allclose(regularized_inverse(s, 0.25, 3), [3 / 9.25, 1 / 1.25, 0.5 / 0.5, 0])


def test_command_line_version_and_help():
    out = subprocess.run([sys.executable, "-m", "minnorm.cli", "--version"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"minnorm {minnorm.__version__}"
    out = subprocess.run([sys.executable, "-m", "minnorm.cli", "--help"],
                         capture_output=True, text=True, check=True)
    assert "minimum-norm" in out.stdout and "examples:" in out.stdout


def test_command_line_parser_loads_no_heavy_library():
    """Every call builds the whole parser, so --version, --help and usage errors load no
    SciPy, MNE-Python, matplotlib or scikit-learn (~0.3 s rather than ~3 s): the commands
    import them when they run."""
    script = (
        "import sys\n"
        "from minnorm.cli import main\n"
        "argvs = [['--version'], ['--help'], ['apply', '--help'], ['story', '--help'],\n"
        "         ['resolution', '--help'], ['demo', '--help'], ['decode-demo', '--help'],\n"
        "         ['apply', '--no-such-option'], ['resolution', '--fwd', 'f', '--out', 'o',\n"
        "                                        '--method', 'LORETA']]\n"
        "codes = [main(argv) for argv in argvs]\n"
        "heavy = {'scipy', 'mne', 'matplotlib', 'sklearn', 'nilearn', 'h5py'}\n"
        "print(codes, sorted(heavy & {name.split('.')[0] for name in sys.modules}))\n")
    assert _printed_by_fresh_python(script) == "[0, 0, 0, 0, 0, 0, 0, 2, 2] []"


def test_subpackages_are_attributes_of_a_fresh_import():
    """'import minnorm' loads its public names lazily, yet minnorm.beamformer, .resolution,
    .time_frequency, .io and .engine are there on a fresh import, as before; unknown names
    are still an AttributeError."""
    script = (
        "import minnorm\n"
        "names = ['beamformer', 'resolution', 'time_frequency', 'io', 'engine', 'inverse']\n"
        "print([getattr(minnorm, n).__name__ for n in names],\n"
        "      minnorm.beamformer.make_lcmv is minnorm.make_lcmv, hasattr(minnorm, 'nosuch'))\n")
    assert _printed_by_fresh_python(script) == (
        "['minnorm.beamformer', 'minnorm.resolution', 'minnorm.time_frequency', 'minnorm.io', "
        "'minnorm.engine', 'minnorm.inverse'] True False")


def _printed_by_fresh_python(script: str) -> str:
    """The last line ``script`` prints in a new interpreter (no module of this one loaded)."""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)
    return out.stdout.splitlines()[-1]


@pytest.mark.parametrize("n_times, freqs, n_tapers", [(601, 201, 3), (97, 49, 2), (600, 201, 3),
                                                      (2048, 683, 1), (600, 301, 2)])
def test_tapered_spectra_equal_the_fft_by_either_route(monkeypatch, n_times, freqs, n_tapers):
    """The kept frequencies by one GEMM with the tapered DFT matrix (slow FFT lengths: primes)
    or by FFTs: the same spectra (DC and Nyquist ÷ √2), whichever route is taken."""
    from scipy import fft as sp_fft
    from scipy.signal.windows import dpss

    from minnorm.engine import spectra

    rng = np.random.default_rng(0)
    Y = rng.standard_normal((3, 7, n_times)) + 4.0  # an offset the demeaning removes
    tapers = np.atleast_2d(dpss(n_times, 2, n_tapers))
    idx = np.r_[0, np.arange(5, freqs)]  # DC, then from the 5th (as fmin > 0 leaves them)
    Yd = Y - Y.mean(axis=-1, keepdims=True)
    ref = np.stack([sp_fft.rfft(Yd * taper, axis=-1)[..., idx] for taper in tapers], axis=1)
    ref[..., idx == 0] /= np.sqrt(2.0)
    if n_times % 2 == 0:
        ref[..., idx == n_times // 2] /= np.sqrt(2.0)
    by_dft = n_times % 2 == 1  # the odd lengths here are slow for an FFT, the even ones fast
    assert spectra.dft_is_cheaper(n_times, freqs * n_tapers, n_tapers) == by_dft
    for dft in (True, False):
        monkeypatch.setattr(spectra, "dft_is_cheaper", lambda *args, dft=dft: dft)
        X = spectra.tapered_spectra(Y, tapers, idx)
        assert X.shape == (3, n_tapers, 7, len(idx))
        np.testing.assert_allclose(X, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
