"""The mathematics of the minimum norm, checked on real forward models.

(a) the MNE estimate minimises F(v) = ‖y − G v‖² + λ²‖v‖² in the whitened,
    weighted problem (y = W P b, G = W P L R**½, ŝ = R**½ v);
(b) as λ² → 0 it tends to the generalised inverse Gᵀ(G Gᵀ)⁺ y and reproduces y;
(c) with fixed orientation and no noise, sLORETA's and eLORETA's point-spread
    functions peak at the true source for every source; plain MNE's do not.
"""

import mne
import numpy as np
import pytest

import minnorm
from minnorm.engine.expand import apply_assembled
from minnorm.inverse.setup import assemble
from minnorm.engine.kernel import prepare_kernel


@pytest.fixture(scope="module")
def fixed_problem(fwd_surf_meg, evoked_meeg, noise_cov):
    """A fixed-orientation operator and the matching gain L (M × N)."""
    op = minnorm.make_inverse_operator(evoked_meeg.info, fwd_surf_meg, noise_cov, fixed=True)
    fwd = mne.convert_forward_solution(fwd_surf_meg, surf_ori=True, force_fixed=True,
                                       use_cps=True, verbose=False)
    fwd = mne.pick_channels_forward(fwd, list(op.ch_names), ordered=True, verbose=False)
    return op, np.asarray(fwd["sol"]["data"], np.float64)


def _weighted_problem(op, L, b, nave):
    """y = W P b and G = W P L R**½ for the noise model of ``nave`` averages."""
    white = op.whitener.scaled(nave)
    WP = white.matrix @ white.proj
    R_sqrt = np.sqrt(op.source_cov / nave)
    return WP @ b, (WP @ L) * R_sqrt, R_sqrt


def _cost(G, y, v, lambda2):
    return np.sum((y - G @ v) ** 2) + lambda2 * np.sum(v**2)


def test_svd_reconstructs_the_whitened_weighted_gain(fixed_problem):
    op, L = fixed_problem
    _, G, _ = _weighted_problem(op, L, np.zeros((len(L), 1)), nave=1)
    G_svd = (op.eigen_fields.T * op.sing) @ op.eigen_leads.T
    assert np.linalg.norm(G_svd - G) / np.linalg.norm(G) < 1e-6
    # trace normalisation: trace(G Gᵀ) equals the rank of the whitened data
    assert np.isclose(np.sum(op.sing**2), op.n_nonzero, rtol=1e-10)


@pytest.mark.parametrize("lambda2", [1.0 / 9.0, 1e-2, 1.0])
def test_mne_estimate_minimises_the_cost(fixed_problem, evoked_meeg, lambda2):
    op, L = fixed_problem
    rows = [evoked_meeg.ch_names.index(c) for c in op.ch_names]
    b = evoked_meeg.data[rows][:, 150:160]
    nave = evoked_meeg.nave
    kernel = prepare_kernel(op, lambda2=lambda2, method="MNE", nave=nave)
    s_hat = apply_assembled(assemble(op, kernel), b)
    y, G, R_sqrt = _weighted_problem(op, L, b, nave)
    v = s_hat / R_sqrt[:, np.newaxis]

    grad = G.T @ (G @ v - y) + lambda2 * v
    assert np.linalg.norm(grad) < 1e-8 * np.linalg.norm(G.T @ y)

    rng = np.random.default_rng(0)
    F0 = _cost(G, y, v, lambda2)
    for scale in (1e-3, 1e-1, 1.0):
        for _ in range(5):
            delta = rng.standard_normal(v.shape) * scale * np.abs(v).max()
            assert _cost(G, y, v + delta, lambda2) > F0


def test_small_lambda_gives_the_generalised_inverse(fixed_problem, evoked_meeg):
    op, L = fixed_problem
    rows = [evoked_meeg.ch_names.index(c) for c in op.ch_names]
    b = evoked_meeg.data[rows][:, 200:205]
    kernel = prepare_kernel(op, lambda2=1e-14, method="MNE", nave=1)
    s_hat = apply_assembled(assemble(op, kernel), b)
    y, G, R_sqrt = _weighted_problem(op, L, b, nave=1)
    v = s_hat / R_sqrt[:, np.newaxis]

    v_pinv = np.linalg.pinv(G, rcond=1e-10) @ y  # Gᵀ (G Gᵀ)⁺ y
    assert np.linalg.norm(v - v_pinv) / np.linalg.norm(v_pinv) < 1e-4
    # the data are reproduced (within the whitened space the noise model keeps)
    keep = op.whitener.eig > 0
    y_model = G @ v
    assert np.linalg.norm(y_model[keep] - y[keep]) / np.linalg.norm(y[keep]) < 1e-6
    # whereas with regularisation they are not
    reg = prepare_kernel(op, lambda2=1.0 / 9.0, method="MNE", nave=1)
    v_reg = apply_assembled(assemble(op, reg), b) / R_sqrt[:, np.newaxis]
    assert np.linalg.norm(G @ v_reg - y) / np.linalg.norm(y) > 1e-3


def _peak_errors(op, L, method, **params):
    """For every source j: is the peak of |PSF_j| at j? (no noise, b = L[:, j])."""
    kernel = prepare_kernel(op, lambda2=1.0 / 9.0, method=method, nave=1,
                            method_params=params or None)
    psf = np.abs(apply_assembled(assemble(op, kernel), L))  # column j: estimate of source j
    own = np.diag(psf)
    return own < psf.max(axis=0) * (1 - 1e-9)  # True where another source beats j


def test_sloreta_has_zero_localisation_error(fixed_problem):
    op, L = fixed_problem
    wrong = _peak_errors(op, L, "sLORETA")
    assert not wrong.any(), f"{wrong.sum()} of {len(wrong)} sources mislocalised"


def test_eloreta_has_zero_localisation_error(fixed_problem):
    op, L = fixed_problem
    wrong = _peak_errors(op, L, "eLORETA", eps=1e-12, max_iter=500)
    assert not wrong.any(), f"{wrong.sum()} of {len(wrong)} sources mislocalised"


def test_plain_mne_does_not_localise_exactly(fixed_problem):
    op, L = fixed_problem
    wrong = _peak_errors(op, L, "MNE")
    assert wrong.mean() > 0.2, "plain MNE should mislocalise many sources"


def test_patch_normals_have_mnes_bits(template_src):
    """Patch normals summed together equal MNE-Python's one np.sum per patch to the last
    bit (single-threaded by construction, so compared bitwise): the tangential frames of
    a loose operator depend on those bits. Random patches cover sizes beyond the real ones."""
    from minnorm._mne.problem import _patch_sums

    s = template_src[0]
    patches = [s["pinfo"][i] for i in s["patch_inds"]]
    rng = np.random.default_rng(0)
    patches += [rng.choice(len(s["nn"]), k, replace=False) for k in range(1, 13) for _ in range(20)]
    reference = np.array([np.sum(s["nn"][p], axis=0) for p in patches])
    assert np.array_equal(_patch_sums(s["nn"], patches), reference)
    assert len({len(p) for p in patches}) >= 12


def _eloreta_both_ways(monkeypatch, G, orient_std):
    """eLORETA weights fitted float32-first (when it may) and float64 throughout."""
    from minnorm.engine import eloreta

    kw = dict(orient_std=orient_std, n_orient=3, lambda2=1 / 9, n_nonzero=len(G), eps=1e-8,
              max_iter=60, force_equal=False)
    monkeypatch.setattr(eloreta, "FLOAT32_MIN_RATIO", -np.inf)  # float32 first, whatever
    mixed = eloreta.eloreta_weights(G, **kw)
    monkeypatch.setattr(eloreta, "FLOAT32_MIN_RATIO", np.inf)  # never float32
    return mixed, eloreta.eloreta_weights(G, **kw)


def test_eloreta_float32_start_reaches_the_float64_fixed_point(monkeypatch):
    """The float32 iterations only choose where float64 starts: same weights to eps, with
    well-conditioned blocks, and with blocks float32 cannot resolve (a silent direction per
    source, as a radial dipole in a sphere), where it falls back to float64."""
    rng = np.random.default_rng(1)
    G = rng.standard_normal((30, 3 * 200))
    orient_std = np.tile([np.sqrt(0.2), np.sqrt(0.2), 1.0], 200)
    mixed, plain = _eloreta_both_ways(monkeypatch, G, orient_std)
    assert np.linalg.norm(mixed - plain) / np.linalg.norm(plain) < 1e-7
    silent = G.reshape(30, 200, 3).copy()
    silent[:, :, 2] = silent[:, :, 0] + silent[:, :, 1]  # each block of rank 2: float32's
    # noise makes some blocks indefinite, and the fit goes on in float64 (seen in its log)
    mixed, plain = _eloreta_both_ways(monkeypatch, silent.reshape(30, -1), np.ones(600))
    assert np.linalg.norm(mixed - plain) / np.linalg.norm(plain) < 1e-7


def test_eloreta_mixed_factor_reproduces_the_weights():
    """C = Go R Goᵀ needs any B with B Bᵀ = R: Cholesky for definite blocks, the symmetric
    root when a block is singular, none (g is taken as it is) when one is indefinite."""
    from minnorm.engine.eloreta import _mixed_factor

    rng = np.random.default_rng(3)
    A = rng.standard_normal((50, 3, 3))
    R = A @ A.transpose(0, 2, 1) + 0.1 * np.eye(3)
    for blocks in (R, np.concatenate([R, [np.diag([2.0, 1.0, 0.0])]])):
        B = _mixed_factor(blocks, diagonal=False)
        assert np.allclose(B @ B.transpose(0, 2, 1), blocks, rtol=0, atol=1e-12)
    assert _mixed_factor(np.concatenate([R, [np.diag([1.0, 1.0, -0.5])]]), False) is None
    assert _mixed_factor(np.array([1.0, 0.0, 4.0]), True) is not None
    assert _mixed_factor(np.array([1.0, -1.0]), True) is None
