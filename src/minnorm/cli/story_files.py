"""``minnorm story``'s work: the story of the user's forward, covariance and evoked files."""

from __future__ import annotations

import textwrap

import numpy as np

from .. import _log, _mne
from ..engine.checks import check_finite
from ..inverse.lambda2 import RULES, choose_lambda2, rules_paragraph
from ..inverse.operator import make_inverse_operator
from ..io import fif as _fif
from ..teaching.story import forward_story

__all__ = ["tell_story_from_files", "effective_components"]


def tell_story_from_files(fwd, *, cov=None, evoked=None, condition=None,
                          lambda2: float = 1.0 / 9.0) -> str:
    """The story (:func:`minnorm.teaching.story.forward_story`) of the user's files.

    With ``cov`` the inverse operator is made (as ``minnorm apply`` would) so
    that G is the whitened, depth-weighted Gram matrix; with ``evoked`` too,
    the story ends with the data's signal-to-noise ratio and what λ² keeps.
    """
    with _log.progress(total=3, desc="reading files", unit="step") as bar:
        forward = _fif.read_forward(fwd)
        noise_cov = None if cov is None else _fif.read_cov(cov)
        data = None if evoked is None else _fif.read_evoked(evoked, condition)
        info = _mne.info_from_forward(forward, noise_cov) if data is None else data.info
        bar.update()
        bar.set_description_str("inverse operator")
        inverse = None
        if noise_cov is not None:
            inverse = make_inverse_operator(info, forward, noise_cov, on_mismatch="warn")
        bar.update()
        bar.set_description_str("spectrum of G")
        text = forward_story(forward, info=info, noise_cov=noise_cov,
                             snr=1 / np.sqrt(lambda2), inverse=inverse)
        bar.update()
    extra = []
    if inverse is not None:
        extra.append(_components_kept(inverse, lambda2))
    if data is not None and inverse is not None:
        extra.append(_data_snr(data, inverse))
        extra.append(_rule_choices(data, inverse, lambda2))
    return "\n".join([text, *extra])


def effective_components(sing: np.ndarray, lambda2: float) -> float:
    """Σ s²/(s² + λ²) over the singular values s of the whitened gain.

    Each whitened data component passes into the estimate with the weight
    s²/(s² + λ²): the sum is how many components the estimate really uses.
    """
    power = np.asarray(sing, np.float64) ** 2
    return float(np.sum(power / (power + lambda2)))


def _components_kept(inv, lambda2) -> str:
    sing = inv.sing[: inv.n_nonzero]
    above = int(np.sum(sing**2 > lambda2))
    return (f"At λ² = {lambda2:.3g}: {above} of the {len(sing)} whitened components have "
            f"eigenvalue above λ² (signal above the noise), and the estimate uses about "
            f"{effective_components(sing, lambda2):.1f} effective components "
            "(Σ eig/(eig + λ²)).")


def _data_snr(evoked, inv) -> str:
    """The whitened data's RMS: 1 for noise alone, so √(RMS² − 1) is the SNR."""
    rows = _mne.pick_rows(evoked.ch_names, inv)
    check_finite(evoked.data[rows], f"evoked response {evoked.comment!r}",
                 row_names=[evoked.ch_names[r] for r in rows])
    whitener = inv.whitener.scaled(evoked.nave)
    white = whitener.matrix @ (whitener.proj @ evoked.data[rows])  # (M, n_times)
    rms = np.sqrt(np.sum(white**2, axis=0) / inv.n_nonzero)
    t = int(np.argmax(rms))
    snr = float(np.sqrt(max(rms[t] ** 2 - 1.0, 0.0)))
    fit = f"1/SNR² = {1 / snr**2:.3g}" if snr > 0 else "no finite value"
    return (f"Data b: evoked {evoked.comment!r} (nave {evoked.nave}), b(t) of shape "
            f"({len(rows)},) at {len(evoked.times)} times. Whitened with C/nave, noise alone "
            f"has RMS 1 per component; the data's RMS peaks at {rms[t]:.3g} at t = "
            f"{evoked.times[t]:.3f} s, an amplitude SNR of about {snr:.3g} there ({fit}).")


def _rule_choices(evoked, inv, lambda2) -> str:
    """The λ² each rule chooses from the evoked's post-stimulus samples (all of them if
    none is before 0), next to the λ² used, and what each rule optimises."""
    tmin = 0.0 if evoked.times[0] < 0 <= evoked.times[-1] else None
    choices = {rule: choose_lambda2(evoked, inv, rule, tmin=tmin) for rule in RULES}
    window = "t ≥ 0 s" if tmin is not None else "all samples"
    first = next(iter(choices.values()))
    values = ", ".join(f"{rule} {c.lambda2:.3g} (SNR {c.snr:.3g}"
                       f"{'' if c.inside else ', at the grid edge'})" for rule, c in choices.items())
    edge = ("" if all(c.inside for c in choices.values()) else
            " At the grid edge, a rule is not determined by the data.")
    if tmin is not None and evoked.baseline is None:
        edge += (" This evoked response has no baseline correction: its offsets look like "
                 "signal to every rule (evoked.apply_baseline((None, 0)) before choosing).")
    text = (f"λ² chosen from these data ({window}, {first.n_times} samples, nave "
            f"{first.nave:g}) by each rule: {values}; used here: {lambda2:.3g} (SNR "
            f"{1 / np.sqrt(lambda2):.3g}); minnorm apply --lambda2 RULE applies a rule's "
            f"choice.{edge} {rules_paragraph(lambda2)}")
    return textwrap.fill(text, width=100, subsequent_indent="  ")
