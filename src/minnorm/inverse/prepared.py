"""Prepared operators: ``prepare_inverse_operator`` and ``apply_*(..., prepared=True)``.

MNE-Python prepares an operator for one (λ², method, nave) — the noise
covariance scaled to nave, the regularised inverse s/(s²+λ²), the noise
normalisation or eLORETA's weights — and ``prepared=True`` then applies that
state as it is. minnorm's operators cache their kernels by themselves, so
preparing is only needed by code written for MNE-Python:
:func:`prepare_inverse_operator` returns a minnorm operator whose kernel for
(λ², method, nave) is already computed and cached, marked with its
:class:`~minnorm.inverse.operator.Preparation`.

``prepared=True``, for minnorm's prepared operators and MNE-Python's alike:

* an operator that was not prepared is refused (as MNE-Python refuses it);
* nave: the prepared one is used, as MNE-Python does (its ``apply_inverse``
  ignores ``evoked.nave``, the other functions their ``nave``); a different
  one is named in a :class:`~minnorm.MinnormWarning`;
* λ² must be the prepared one: MNE-Python ignores the argument and uses the
  prepared λ² silently; minnorm refuses a different one;
* method must be the prepared one, or "MNE" on an operator prepared for dSPM
  or sLORETA (the kernel without its noise normalisation: MNE-Python gives the
  MNE estimate too). Every other pair is refused: MNE-Python fails on dSPM or
  sLORETA with an operator prepared for MNE or eLORETA, and silently returns
  the prepared method's numbers under another name for sLORETA on dSPM (and
  back), MNE on eLORETA and eLORETA on MNE;
* method_params: the preparation's (MNE-Python ignores the argument as well).

An operator MNE-Python prepared for eLORETA cannot be read back as a plain one
(its SVD was replaced by eLORETA's and its source covariance set to NaN); with
``prepared=True`` it is taken for what MNE-Python applies: the plain operator
of its weighted eigen leads (R = I), whose MNE kernel is its eLORETA kernel.
With ``prepared=False`` every operator is used as made (a minnorm operator's
preparation, or MNE-Python's, is ignored: MNE-Python prepares it again).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import _mne
from .._log import warn
from ..engine.kernel import check_lambda2, check_method, check_nave, prepare_kernel
from .operator import InverseOperator, Preparation, as_operator

__all__ = ["prepare_inverse_operator", "use_prepared", "as_applied_operator"]

NOISE_NORMALISED = ("dSPM", "sLORETA")


def prepare_inverse_operator(orig, nave, lambda2, method="dSPM", method_params=None,
                             copy=True, verbose=None) -> InverseOperator:
    """An operator ready for (λ², method, nave), as ``mne.minimum_norm.prepare_inverse_operator``.

    Parameters
    ----------
    orig : InverseOperator | mne.minimum_norm.InverseOperator
    nave : float
        Number of averages (the noise covariance is divided by it).
    lambda2 : float
        λ² > 0 (a number: a rule such as "gcv" needs data).
    method : "MNE" | "dSPM" | "sLORETA" | "eLORETA"
    method_params : dict | None
        eLORETA options, as :func:`minnorm.apply_inverse`.
    copy : bool | "non-src"
        Accepted for compatibility: ``orig`` is never changed (minnorm's
        operators are immutable; MNE-Python's is converted).
    verbose : bool | str | int | None

    Returns
    -------
    inv : InverseOperator
        minnorm's operator with the kernel computed and cached (``inv.prepared``
        says for what); ``apply_*(..., prepared=True)`` uses it as it is.
    """
    _check_copy(copy)
    with _mne.log_level(verbose):
        op = as_operator(orig)
        kernel = prepare_kernel(op, lambda2=lambda2, method=method, nave=nave,
                                method_params=method_params)
        params = None if method_params is None else dict(method_params)
        ready = Preparation(kernel.method, kernel.lambda2, kernel.nave, params)
        return dataclasses.replace(op, prepared=ready)  # the same maths: it shares the cache


def _check_copy(copy):
    if not isinstance(copy, (bool, np.bool_, str)):
        raise TypeError(f'copy must be True, False or "non-src", got {copy!r}')
    if isinstance(copy, str) and copy != "non-src":
        raise ValueError(f'copy must be True, False or "non-src", got {copy!r}')


def use_prepared(inverse_operator, prepared, *, lambda2, method, nave,
                 method_params=None) -> dict:
    """The operator and kernel options that ``setup.prepare`` gets from an apply_* call.

    With ``prepared`` false, the arguments as given. With ``prepared`` true,
    those of the operator's preparation (see the module's notes), checked
    against the arguments.

    Returns
    -------
    options : dict
        ``inverse_operator``, ``lambda2``, ``method``, ``nave``, ``method_params``.
    """
    if not prepared:
        return dict(inverse_operator=inverse_operator, lambda2=lambda2, method=method,
                    nave=nave, method_params=method_params)
    method = check_method(method)
    if isinstance(inverse_operator, InverseOperator):
        return _use_minnorm(inverse_operator, lambda2, method, nave)
    state = _mne.mne_preparation(inverse_operator)
    if state is None:
        as_operator(inverse_operator)  # a TypeError for what is no operator at all
        raise _not_prepared()
    return _use_mne(inverse_operator, state, lambda2, method, nave)


def as_applied_operator(inverse_operator) -> InverseOperator:
    """:func:`~minnorm.inverse.operator.as_operator`, and an operator MNE-Python prepared for
    eLORETA as MNE-Python applies it: the plain operator of its weighted eigen leads, with
    the whitener and the SVD (eLORETA's) that MNE-Python uses."""
    state = _mne.mne_preparation(inverse_operator)
    if state is not None and state.eloreta:
        return _mne.inverse_from_mne(inverse_operator, InverseOperator, eloreta_prepared=True)
    return as_operator(inverse_operator)


def _not_prepared():
    return ValueError("the inverse operator has not been prepared, but prepared=True: pass "
                      "prepared=False, or prepare it with prepare_inverse_operator")


def _use_minnorm(op, lambda2, method, nave) -> dict:
    p = op.prepared
    if p is None:
        raise _not_prepared()
    _check_prepared_for(p.method, p.lambda2, p.nave, method, lambda2, nave)
    return dict(inverse_operator=op, lambda2=p.lambda2, method=method, nave=p.nave,
                method_params=p.method_params)


def _use_mne(inv, state, lambda2, method, nave) -> dict:
    op = as_applied_operator(inv)
    if state.eloreta:
        done = "eLORETA"
    elif state.noise_norm is None:
        done = "MNE"
    else:
        done = _noise_normalisation(op, state, first=method)
    _check_prepared_for(done, state.lambda2, state.nave, method, lambda2, nave)
    # eLORETA: the MNE kernel of the weighted leads (see the module's notes)
    return dict(inverse_operator=op, lambda2=float(lambda2), nave=state.nave,
                method="MNE" if state.eloreta else method, method_params=None)


def _noise_normalisation(op, state, *, first) -> str:
    """"dSPM" or "sLORETA": whose noise norms MNE-Python's preparation stored."""
    order = sorted(NOISE_NORMALISED, key=lambda m: m != first)
    for method in order:
        kernel = prepare_kernel(op, lambda2=state.lambda2, method=method, nave=state.nave)
        if np.allclose(kernel.noise_norm, state.noise_norm, rtol=1e-6, atol=0):
            return method
    raise ValueError(
        f"the operator's noise normalisation is neither dSPM's nor sLORETA's for its "
        f"lambda2={state.lambda2:.4g} and nave={state.nave:g}: prepare it again or pass "
        "prepared=False")


def _check_prepared_for(done, done_lambda2, done_nave, method, lambda2, nave) -> None:
    """method and λ² must be the prepared ones; another nave is warned about (not used)."""
    if method != done and not (method == "MNE" and done in NOISE_NORMALISED):
        raise ValueError(
            f"method={method!r}, but the inverse operator was prepared for {done!r}: pass "
            f"method={done!r}, or prepared=False, or prepare it for {method!r}")
    value = None if isinstance(lambda2, str) else check_lambda2(lambda2)
    if value is None or not np.isclose(value, done_lambda2, rtol=1e-6, atol=0):
        raise ValueError(
            f"lambda2={lambda2!r}, but the inverse operator was prepared for "
            f"lambda2={done_lambda2:.6g}, which prepared=True would use: pass that value, or "
            "prepared=False, or prepare it for this one")
    nave = check_nave(nave)
    if not np.isclose(nave, done_nave, rtol=1e-9, atol=0):
        warn(f"nave={nave:g} is not used: the inverse operator was prepared for "
             f"nave={done_nave:g}, which prepared=True uses (as MNE-Python); prepare it for "
             f"nave={nave:g} or pass prepared=False", stacklevel=6)
