"""Reading Epochs and Raw data in blocks, for the streams and label time courses; a
covariance's matrix in an operator's channels."""

from __future__ import annotations

import numpy as np

from ..engine import checks


def iter_epochs(epochs):
    """Each epoch's data (n_channels, n_times), as MNE-Python iterates them."""
    yield from epochs


def epoch_count(epochs) -> int:
    """Number of epochs the iteration will yield (an upper bound for lazy epochs)."""
    return len(epochs) if epochs.preload else len(epochs.events)


def epoch_blocks(epochs, rows, size: int):
    """Blocks of ``size`` epochs, ndarray (n, len(rows), n_times), as MNE iterates them.

    Preloaded epochs are sliced without copying the whole array; lazy ones
    are read (and rejected) epoch by epoch, as ``for e in epochs`` does.
    """
    rows = np.asarray(rows)
    every = np.array_equal(rows, np.arange(len(epochs.ch_names)))
    if epochs.preload:
        data = epochs.get_data(copy=False)
        for k in range(0, len(data), size):
            block = data[k:k + size]
            yield block if every else block[:, rows]
        return
    buffer = []
    for epoch in epochs:
        buffer.append(epoch[rows])
        if len(buffer) == size:
            yield np.stack(buffer)
            buffer = []
    if buffer:
        yield np.stack(buffer)


def raw_segment(raw, rows, start: int, stop: int) -> np.ndarray:
    """Raw data of ``rows`` from sample ``start`` to ``stop`` (relative to first_samp)."""
    return raw[list(rows), start:stop][0]


def raw_span(raw, start, stop) -> tuple[int, int]:
    """``start``/``stop`` (sample indices or None) resolved as ``raw[:, start:stop]`` does."""
    start, stop, _ = slice(start, stop).indices(raw.n_times)
    return start, max(start, stop)


def covariance_matrix(cov, op) -> np.ndarray:
    """The matrix of an ``mne.Covariance`` on the operator's channels, in its order, (M, M).

    A diagonal covariance (``cov.as_diag()``) gives a diagonal matrix.
    """
    index = {c: k for k, c in enumerate(cov.ch_names)}
    missing = [c for c in op.ch_names if c not in index]
    if missing:
        raise ValueError(
            f"{len(missing)} channels of the inverse operator are not in the covariance "
            f"({checks.name_list(missing)}): compute it on the data's channels")
    rows = [index[c] for c in op.ch_names]
    data = np.asarray(cov.data)
    matrix = np.diag(data[rows]) if data.ndim == 1 else data[np.ix_(rows, rows)]
    checks.check_finite(matrix, "covariance", row_names=op.ch_names)
    return matrix
