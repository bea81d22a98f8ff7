"""The simulated sources: where (a place on the template cortex), when and how strong."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .template import TemplateHead, source_depth

__all__ = ["NAM", "Source", "default_sources", "TrueSources", "source_waveforms", "locate",
           "true_sources"]


NAM = 1e-9  # A·m per nA·m


@dataclass(frozen=True)
class Source:
    """One dipolar source on the template cortex, along the outward normal.

    Give its place either as ``position`` (x, y, z) in mm in fsaverage =
    MNI305 space (the nearest source of the template is used) or as
    ``vertex`` = (hemi, vertex number in the fsaverage5 mesh), a vertex the
    template's source space uses (at ico4: 0 … 2561).

    Attributes
    ----------
    name : str
    position : tuple of 3 float or None
        mm, MRI = MNI305 frame.
    vertex : tuple (hemi, int) or None
        hemi is "lh" or "rh".
    amplitude : float
        Peak dipole moment in nA·m; the sign gives the direction along the
        outward normal.
    latency : float
        Time of the peak, s.
    width : float
        Standard deviation σ of the Gaussian window, s (FWHM = 2.355 σ).
    frequency : float
        Oscillation frequency under the window, Hz; 0 for a single peak.
    """

    name: str
    position: tuple | None = None
    vertex: tuple | None = None
    amplitude: float = 20.0
    latency: float = 0.1
    width: float = 0.02
    frequency: float = 0.0

    def __post_init__(self):
        if (self.position is None) == (self.vertex is None):
            raise ValueError(f"source {self.name!r}: give exactly one of position=(x, y, z) mm "
                             f"or vertex=(hemi, number), got position={self.position!r}, "
                             f"vertex={self.vertex!r}")
        if self.position is not None:
            position = tuple(float(x) for x in self.position)
            if len(position) != 3:
                raise ValueError(f"source {self.name!r}: position must be (x, y, z) in mm, "
                                 f"got {self.position!r}")
            object.__setattr__(self, "position", position)
        else:
            hemi, number = self.vertex
            if hemi not in ("lh", "rh") or int(number) != number or number < 0:
                raise ValueError(f"source {self.name!r}: vertex must be ('lh' or 'rh', "
                                 f"a vertex number ≥ 0), got {self.vertex!r}")
            object.__setattr__(self, "vertex", (hemi, int(number)))
        if not self.width > 0:
            raise ValueError(f"source {self.name!r}: width must be > 0 s, got {self.width!r}")
        if not self.frequency >= 0:
            raise ValueError(f"source {self.name!r}: frequency must be ≥ 0 Hz, "
                             f"got {self.frequency!r}")


def default_sources() -> tuple[Source, ...]:
    """Bilateral auditory N100m at 100 ms, then a non-dipolar right temporal field at 300 ms.

    The auditory sources sit near Heschl's gyrus (±50, −20, 8) mm; at 300 ms
    two right temporal sources 8 cm apart (anterior temporal near the pole;
    posterior fusiform gyrus, deeper and facing down) are active together, so
    no single dipole per hemisphere explains the late field.
    """
    return (
        Source("auditory-lh", position=(-50.0, -20.0, 8.0), amplitude=30.0, latency=0.100, width=0.015),
        Source("auditory-rh", position=(50.0, -20.0, 8.0), amplitude=30.0, latency=0.100, width=0.015),
        Source("temporal-rh", position=(52.0, 8.0, -30.0), amplitude=20.0, latency=0.300, width=0.040),
        Source("fusiform-rh", position=(36.0, -66.0, -14.0), amplitude=20.0, latency=0.300, width=0.040),
    )


@dataclass(frozen=True, eq=False)
class TrueSources:
    """Where the simulated sources really are.

    Attributes
    ----------
    sources : tuple of Source
        As requested.
    hemis : tuple of str
        "lh" or "rh" per source.
    vertices : ndarray of shape (n_sources,)
        Vertex numbers in each hemisphere's fsaverage5 mesh.
    indices : ndarray of shape (n_sources,)
        Rows of ``stc_true.data`` (and sources of the forward model).
    positions_mm : ndarray of shape (n_sources, 3)
        Positions of those vertices, MRI = MNI305 mm.
    normals : ndarray of shape (n_sources, 3)
        Outward cortical normals, MRI frame.
    depths_mm : ndarray of shape (n_sources,)
        Distance to the inner skull (see :func:`minnorm.teaching.template.source_depth`).
    waveforms : ndarray of shape (n_sources, n_times)
        q_k(t) in A·m (before any per-epoch scaling).
    """

    sources: tuple
    hemis: tuple
    vertices: np.ndarray
    indices: np.ndarray
    positions_mm: np.ndarray
    normals: np.ndarray
    depths_mm: np.ndarray
    waveforms: np.ndarray

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sources)

    @property
    def latencies(self) -> np.ndarray:
        """Peak latencies, s, shape (n_sources,)."""
        return np.array([s.latency for s in self.sources])


def source_waveforms(sources: tuple[Source, ...], times: np.ndarray, /) -> np.ndarray:
    """q_k(t) = A_k · exp(−(t − τ_k)²/(2σ_k²)) · cos(2π f_k (t − τ_k)) in A·m, shape (n_sources, n_times)."""
    def column(attr):
        return np.array([getattr(s, attr) for s in sources], float)[:, None]

    lag = np.asarray(times, float)[None, :] - column("latency")
    window = np.exp(-(lag**2) / (2 * column("width") ** 2))
    return NAM * column("amplitude") * window * np.cos(2 * np.pi * column("frequency") * lag)


def locate(head: TemplateHead, source: Source) -> int:
    """Index of a source among the template's sources (lh then rh)."""
    if source.position is not None:
        distance = np.linalg.norm(head.source_positions_mm - source.position, axis=1)
        return int(distance.argmin())
    hemi, number = source.vertex
    h = ("lh", "rh").index(hemi)
    vertno = head.src[h]["vertno"]
    k = int(np.searchsorted(vertno, number))
    if k == len(vertno) or vertno[k] != number:
        raise ValueError(f"source {source.name!r}: vertex {number} of {hemi} is not a source of "
                         f"the {head.spacing} template (it uses {len(vertno)} vertices, "
                         f"{vertno[0]}…{vertno[-1]}); give a used vertex or position=(x, y, z)")
    return k + (head.hemi_sizes[0] if h else 0)


def true_sources(head: TemplateHead, sources, times: np.ndarray) -> TrueSources:
    sources = tuple(sources)
    if not sources or not all(isinstance(s, Source) for s in sources):
        raise TypeError(f"sources must be a non-empty sequence of Source, got {sources!r}")
    indices = np.array([locate(head, s) for s in sources])
    n_lh = head.hemi_sizes[0]
    hemis = tuple("lh" if i < n_lh else "rh" for i in indices)
    vertices = np.concatenate(head.vertices)[indices]
    positions = head.source_positions_mm[indices]
    return TrueSources(sources=sources, hemis=hemis, vertices=vertices, indices=indices,
                       positions_mm=positions, normals=head.source_normals[indices],
                       depths_mm=source_depth(head, positions),
                       waveforms=source_waveforms(sources, times))
