"""Geometry of the template head: surfaces, spheres, hulls, point-to-surface distances."""

from __future__ import annotations

from dataclasses import dataclass

import mne
import numpy as np
from scipy.spatial import ConvexHull


@dataclass(frozen=True)
class Surface:
    """A closed triangulated surface.

    Attributes
    ----------
    rr : ndarray of shape (n_vertices, 3)
        Vertex positions in metres (MRI frame unless said otherwise).
    tris : ndarray of shape (n_triangles, 3)
        Vertex indices of each triangle, counter-clockwise seen from outside.
    """

    rr: np.ndarray
    tris: np.ndarray


def transform_points(matrix: np.ndarray, rr: np.ndarray) -> np.ndarray:
    """Apply a 4×4 affine to points of shape (n, 3)."""
    return rr @ matrix[:3, :3].T + matrix[:3, 3]


def fit_sphere(rr: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares sphere through points (n, 3): |r − c|² = ρ² is linear in (c, ρ² − |c|²)."""
    A = np.column_stack([2 * rr, np.ones(len(rr))])
    sol = np.linalg.lstsq(A, np.sum(rr**2, axis=1), rcond=None)[0]
    centre = sol[:3]
    return centre, float(np.sqrt(sol[3] + centre @ centre))


def in_convex_hull(points: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Whether points (n, 3) lie inside the convex hull of vertices (m, 3), shape (n,)."""
    hull = ConvexHull(np.unique(vertices, axis=0))
    normals, offsets = hull.equations[:, :3], hull.equations[:, 3]  # outward: n·x + d ≤ 0 inside
    return np.all(points @ normals.T + offsets <= 1e-12, axis=1)


def inside_surface(points: np.ndarray, surface: Surface, *, chunk: int = 512) -> np.ndarray:
    """Whether points (n, 3) lie inside a closed surface: the solid angles sum to ±4π.

    Van Oosterom & Strackee (1983): the solid angle of triangle (a, b, c) seen
    from the origin is 2·atan2(a·(b×c), |a||b||c| + (a·b)|c| + (b·c)|a| + (c·a)|b|).
    """
    corners = surface.rr[surface.tris]  # (n_tris, 3 corners, 3)
    total = np.empty(len(points))
    for start in range(0, len(points), chunk):
        v = corners[None] - points[start:start + chunk, None, None, :]
        a, b, c = v[:, :, 0], v[:, :, 1], v[:, :, 2]
        la, lb, lc = (np.linalg.norm(x, axis=-1) for x in (a, b, c))
        num = np.einsum("ptk,ptk->pt", a, np.cross(b, c))
        den = (la * lb * lc + np.einsum("ptk,ptk->pt", a, b) * lc
               + np.einsum("ptk,ptk->pt", b, c) * la + np.einsum("ptk,ptk->pt", c, a) * lb)
        total[start:start + chunk] = 2 * np.arctan2(num, den).sum(axis=1)
    return np.abs(total) > 2 * np.pi  # ±4π inside (sign: orientation), 0 outside


def surface_distance(points: np.ndarray, surface: Surface, *, chunk: int = 256) -> np.ndarray:
    """Exact distance from points (n, 3) to a triangle mesh, shape (n,)."""
    a, b, c = (surface.rr[surface.tris[:, k]] for k in range(3))  # (n_tris, 3) each
    normal = np.cross(b - a, c - a)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    out = np.empty(len(points))
    for start in range(0, len(points), chunk):
        p = points[start:start + chunk, None, :]  # (n, 1, 3)
        height = np.einsum("ntk,tk->nt", p - a, normal)
        foot = p - height[..., None] * normal  # projection on each triangle's plane
        inside = np.ones(height.shape, bool)
        for u, v in ((a, b), (b, c), (c, a)):
            inside &= np.einsum("ntk,tk->nt", np.cross(v - u, foot - u), normal) >= 0
        edges = np.minimum(np.minimum(_segment_distance(p, a, b), _segment_distance(p, b, c)),
                           _segment_distance(p, c, a))
        out[start:start + chunk] = np.where(inside, np.abs(height), edges).min(axis=1)
    return out


def _segment_distance(p: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Distance from points p (n, 1, 3) to segments [u, v] (t, 3), shape (n, t)."""
    d = v - u
    s = np.einsum("ntk,tk->nt", p - u, d) / np.einsum("tk,tk->t", d, d)
    closest = u + np.clip(s, 0.0, 1.0)[..., None] * d
    return np.linalg.norm(p - closest, axis=-1)


def meg_positions(info: mne.Info) -> np.ndarray:
    """MEG sensor centres (n_meg, 3), device frame."""
    picks = mne.pick_types(info, meg=True, eeg=False)
    return np.array([info["chs"][k]["loc"][:3] for k in picks])
