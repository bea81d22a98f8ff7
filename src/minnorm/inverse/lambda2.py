"""λ² from the data: :func:`choose_lambda2`, and the rule names accepted as ``lambda2``.

::

    Evoked (window tmin…tmax)  ─┐
    Epochs → their average      ├─▶ whitened with C / nave ─▶ y = Uᵀ z per component
    Raw (start…stop)            ─┘        ─▶ engine.regularisation: the rule's curve over a
                                             λ² grid, refined between grid points

``nave``: the Evoked's, the number of epochs for their average (times the ``nave``
an entry point is given for single epochs), 1 for raw data, unless given. The rules
are described in :mod:`minnorm.engine.regularisation` and the README.
:func:`resolve_lambda2` is what :func:`minnorm.inverse.setup.prepare` calls, so every
entry point accepts ``lambda2="gcv"`` (or any rule) and chooses once, from the data
it is given.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .. import _mne
from ..engine import regularisation as reg
from ..engine.kernel import check_nave
from ..engine.linalg import one_blas_thread
from .operator import InverseOperator, as_operator

__all__ = ["Lambda2Choice", "choose_lambda2", "choose_all", "resolve_lambda2", "RULES",
           "RULE_GOALS", "rules_paragraph"]

logger = logging.getLogger("minnorm")
RULES = reg.RULES
_GOAL_WORDS = {"min": "minimum", "max": "maximum", "root": "zero"}
_LABELS = {"gcv": "GCV function", "lcurve": "L-curve curvature κ",
           "discrepancy": "log(residual / expected noise)", "evidence": "log evidence",
           "cv": "cross-validated error per sample"}
# what each rule optimises, in one sentence (the demo's report, `minnorm story`)
RULE_GOALS = {
    "gcv": "generalised cross-validation minimises ‖(I − A)y‖² / tr(I − A)², the error of "
           "predicting each whitened measurement from the others; it needs no noise level",
    "lcurve": "the L-curve's corner maximises the curvature of log misfit against log source "
              "norm, where a better fit starts to cost much more current; it ignores the "
              "noise level",
    "discrepancy": "the discrepancy principle makes the whitened residual as large as the "
                   "noise alone (n components × samples): fit down to the noise, no further",
    "evidence": "the evidence maximises the probability of the whitened data under the "
                "model the operator implies (sources with covariance R/λ², unit noise), "
                "scaled for nave",
    "cv": "cross-validation minimises the error of predicting each of 5 folds of whitened "
          "channels from a fit to the other four",
}


@dataclass(frozen=True, eq=False)
class Lambda2Choice:
    """The λ² a rule chose, with the rule's curve.

    Attributes
    ----------
    rule : str
    lambda2 : float
        The optimum (between grid points, refined on log λ²).
    grid, curve : ndarray of shape (n_grid,)
        λ² values and the rule's criterion at each.
    nave : float
        The number of averages the whitener was scaled for.
    n_times : int
        Samples of the window.
    inside : bool
        False when the optimum is at an edge of the grid (the edge is returned).
    """

    rule: str
    lambda2: float
    grid: np.ndarray
    curve: np.ndarray
    nave: float
    n_times: int
    inside: bool

    @property
    def snr(self) -> float:
        """The equivalent amplitude SNR, 1/√λ²."""
        return float(1.0 / np.sqrt(self.lambda2))

    def __repr__(self) -> str:
        return (f"<Lambda2Choice {self.rule}: λ² = {self.lambda2:.4g} (SNR {self.snr:.3g}), "
                f"nave {self.nave:g}, {self.n_times} samples>")

    def plot(self, ax=None):
        """The rule's curve against λ² (log axis) with the chosen λ² marked; the figure."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
        else:
            fig = ax.figure
        ax.plot(self.grid, self.curve, color="k", lw=1.5)
        ax.axvline(self.lambda2, color="C3", ls="--",
                   label=f"λ² = {self.lambda2:.3g} (SNR {self.snr:.3g})")
        if reg.GOAL[self.rule] == "root":
            ax.axhline(0.0, color="0.6", lw=0.8)
        ax.set(xscale="log", xlabel="λ²", ylabel=_LABELS[self.rule],
               title=f"{self.rule}: the {_GOAL_WORDS[reg.GOAL[self.rule]]} chooses λ²")
        if self.rule in ("gcv", "cv"):
            ax.set_yscale("log")
        ax.legend(loc="best", fontsize="small")
        return fig


def choose_lambda2(evoked_or_epochs, inverse_operator, rule, *, tmin=None, tmax=None,
                   nave=None) -> Lambda2Choice:
    """Choose λ² from the data by ``rule``.

    Parameters
    ----------
    evoked_or_epochs : mne.Evoked | mne.Epochs | mne.io.Raw
        Epochs are averaged (their average is what λ² is chosen for).
    inverse_operator : InverseOperator | mne.minimum_norm.InverseOperator
    rule : "gcv" | "lcurve" | "discrepancy" | "evidence" | "cv"
    tmin, tmax : float | None
        The time window (s, inclusive; None: from the start / to the end).
    nave : float | None
        Averages in the data: ``evoked.nave``, the number of epochs, or 1 for
        raw data unless given (the whitener is for C / nave).

    Returns
    -------
    choice : Lambda2Choice
        ``.lambda2``, ``.snr``, ``.grid``, ``.curve``, ``.plot()``.
    """
    rule = _check_rule(rule)
    op = as_operator(inverse_operator)
    kind = _mne.data_kind(evoked_or_epochs)
    if kind is None:
        raise TypeError(f"choose_lambda2 needs an mne Evoked, Epochs or Raw, got "
                        f"{type(evoked_or_epochs).__name__}")
    data, default_nave = _window_data(evoked_or_epochs, kind, op, None)
    times = evoked_or_epochs.times
    keep = np.ones(len(times), bool)
    if tmin is not None:
        keep &= times >= tmin - 1e-12
    if tmax is not None:
        keep &= times <= tmax + 1e-12
    if not keep.any():
        raise ValueError(f"tmin={tmin}, tmax={tmax} select no sample of the data "
                         f"({times[0]:g} … {times[-1]:g} s): widen the window")
    return choose_from_array(op, data[:, keep], rule,
                             default_nave if nave is None else check_nave(nave))


def choose_from_array(op: InverseOperator, data: np.ndarray, rule: str,
                      nave: float) -> Lambda2Choice:
    """The rule on ``data`` (n_channels of the operator, in its order, × n_times)."""
    _mne.check_data(data, op, None, nave=nave, units=False)
    whitener = op.whitener.scaled(nave)
    rows = whitener.eig > 0
    n = whitener.n_nonzero
    with one_blas_thread():  # matrices of a few hundred rows: threads gain nothing, and
        white = (whitener.matrix @ (whitener.proj @ data))[rows]  # crawl on a busy CPU
        problem = reg.make_problem(op.sing[:n], op.eigen_fields[:n][:, rows], white, n,
                                   with_cv=rule == "cv")
        grid = reg.lambda2_grid(problem.sing)
        lambda2, curve, inside = reg.choose(problem, rule, grid)
    if not inside:
        logger.warning("λ² by %s is at the edge of the grid (%.3g): the data do not "
                       "determine it; consider another rule or a fixed λ²", rule, lambda2)
    return Lambda2Choice(rule, lambda2, grid, curve, float(nave), data.shape[1], inside)


def choose_all(op: InverseOperator, data: np.ndarray, nave: float,
               rules=RULES) -> dict:
    """rule → :class:`Lambda2Choice` for each of ``rules`` on the same data (see
    :func:`choose_from_array`)."""
    return {rule: choose_from_array(op, data, _check_rule(rule), nave) for rule in rules}


def rules_paragraph(fixed_lambda2: float = 1.0 / 9.0) -> str:
    """One paragraph on what each rule optimises, against a fixed λ² (the default 1/9)."""
    goals = "; ".join(f"{rule}: {goal}" for rule, goal in RULE_GOALS.items())
    return (f"What each rule optimises — {goals}. A fixed λ² (here {fixed_lambda2:.3g}, SNR "
            f"{1 / np.sqrt(fixed_lambda2):.3g}) optimises nothing: it assumes the same amplitude "
            "SNR whatever the data and the number of averages.")


def resolve_lambda2(lambda2, op: InverseOperator, data=None, *, nave=1.0, span=None):
    """λ² as a number: a number is returned as it is; a rule is applied to ``data``.

    ``data``: an Evoked (whole), Epochs (their average, with ``nave`` × the
    number of epochs), Raw (samples ``span`` = (start, stop)), or an array
    (n_channels, n_times) or (n_epochs, n_channels, n_times) in the operator's
    channel order. The choice is logged at INFO level.
    """
    if not isinstance(lambda2, str):
        return lambda2
    rule = _check_rule(lambda2)
    if data is None:
        raise ValueError(f"lambda2={lambda2!r} chooses λ² from the data, and none are given "
                         "here: pass a number, e.g. minnorm.choose_lambda2(evoked, inv, "
                         f"{rule!r}).lambda2")
    kind = _mne.data_kind(data)
    if kind is None:
        window, nave = _array_window(np.asarray(data), op, nave)
    else:
        window, nave = _window_data(data, kind, op, nave, span=span)
    choice = choose_from_array(op, window, rule, nave)
    logger.info("λ² chosen by %s from %d samples (nave %g): %.4g (SNR %.3g)", rule,
                choice.n_times, choice.nave, choice.lambda2, choice.snr)
    return choice.lambda2


def _check_rule(rule) -> str:
    checked = rule.strip().lower() if isinstance(rule, str) else None
    if checked not in RULES:
        raise ValueError(f"rule must be one of {', '.join(repr(r) for r in RULES)}, "
                         f"got {rule!r}")
    return checked


def _window_data(inst, kind, op, nave, span=None):
    """(data in the operator's channels, nave of that data) for an MNE instance.

    ``nave`` (None: the Evoked's, else 1) is that of the Evoked or raw data, or
    of each epoch (their average has ``nave`` × the number of epochs).
    """
    _mne.check_channels(op, inst.info)
    rows = _mne.pick_rows(inst.ch_names, op)
    if kind == "evoked":
        return inst.data[rows], float(inst.nave if nave is None else nave)
    if kind == "raw":
        start, stop = _mne.raw_span(inst, *(span or (None, None)))
        return _mne.raw_segment(inst, rows, start, stop), float(1 if nave is None else nave)
    total, count = 0.0, 0
    for block in _mne.epoch_blocks(inst, rows, 64):
        total = total + block.sum(axis=0)
        count += len(block)
    if not count:
        raise ValueError("the Epochs are empty (every epoch was dropped): no data to choose "
                         "λ² from")
    return total / count, float(1 if nave is None else nave) * count


def _array_window(data, op, nave):
    if data.ndim == 3:
        return data.mean(axis=0), float(nave) * len(data)
    if data.ndim != 2 or data.shape[0] != len(op.ch_names):
        raise ValueError(f"data to choose λ² from must be (n_channels={len(op.ch_names)}, "
                         f"n_times) or (n_epochs, n_channels, n_times), got {data.shape}")
    return data, float(nave)
