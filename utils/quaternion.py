"""Quaternion and rotation helpers shared by the motion pipeline.

Conventions (see docs/data-format.md §1, §8.2):
quaternions are ``(w, x, y, z)``, products are Hamilton products and every
function works on numpy arrays *and* torch tensors with arbitrary leading
batch dimensions, returning the same array type it was given.
"""
from __future__ import annotations

import numpy as np

try:  # torch is a hard requirement of the project, but keep numpy-only use cheap
    import torch
except ImportError:  # pragma: no cover
    torch = None


def _is_torch(x) -> bool:
    return torch is not None and isinstance(x, torch.Tensor)


def _stack(xs, axis=-1):
    if _is_torch(xs[0]):
        return torch.stack(xs, dim=axis)
    return np.stack(xs, axis=axis)


def _cross(a, b):
    if _is_torch(a):
        return torch.cross(a, b, dim=-1)
    return np.cross(a, b)


def _norm(x, keepdims=True):
    if _is_torch(x):
        return torch.linalg.norm(x, dim=-1, keepdim=keepdims)
    return np.linalg.norm(x, axis=-1, keepdims=keepdims)


def _as_array_like(value, like):
    if _is_torch(like):
        return torch.as_tensor(value, dtype=like.dtype, device=like.device)
    return np.asarray(value, dtype=like.dtype if np.issubdtype(like.dtype, np.floating) else np.float64)


def normalize(v, eps: float = 1e-12):
    """Normalise the last axis to unit length (zero vectors stay zero)."""
    n = _norm(v)
    if _is_torch(v):
        return v / n.clamp_min(eps)
    return v / np.maximum(n, eps)


def qnormalize(q):
    return normalize(q)


def qinv(q):
    """Inverse of a unit quaternion: negate x, y, z."""
    sign = _as_array_like([1.0, -1.0, -1.0, -1.0], q)
    return q * sign


def qmul(q, r):
    """Hamilton product ``q * r`` (broadcasting over leading dims)."""
    w1, x1, y1, z1 = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    w2, x2, y2, z2 = r[..., 0], r[..., 1], r[..., 2], r[..., 3]
    return _stack([
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
    ])


def qrot(q, v):
    """Rotate vectors ``v`` (..., 3) by unit quaternions ``q`` (..., 4).

    v' = v + 2 (w (u x v) + u x (u x v)) with q = (w, u).
    """
    w = q[..., :1]
    u = q[..., 1:]
    uv = _cross(_broadcast_like(u, v), _broadcast_like(v, u))
    uuv = _cross(_broadcast_like(u, uv), uv)
    return v + 2 * (w * uv + uuv)


def _broadcast_like(a, b):
    """Broadcast ``a`` against ``b`` over all but the last axis."""
    shape = np.broadcast_shapes(tuple(a.shape[:-1]), tuple(b.shape[:-1])) + (a.shape[-1],)
    if tuple(a.shape) == shape:
        return a
    if _is_torch(a):
        return a.expand(*shape)
    return np.broadcast_to(a, shape)


def qbetween(a, b):
    """Quaternion rotating direction ``a`` onto direction ``b``.

    w = |a||b| + a.b, xyz = a x b, then normalised (H3D common/quaternion.py).
    """
    a_b = _broadcast_like(a, b)
    b_a = _broadcast_like(b, a)
    v = _cross(a_b, b_a)
    if _is_torch(a):
        w = torch.sqrt((a_b ** 2).sum(-1, keepdim=True) * (b_a ** 2).sum(-1, keepdim=True)) + (a_b * b_a).sum(-1, keepdim=True)
        return qnormalize(torch.cat([w, v], dim=-1))
    w = np.sqrt((a_b ** 2).sum(-1, keepdims=True) * (b_a ** 2).sum(-1, keepdims=True)) + (a_b * b_a).sum(-1, keepdims=True)
    return qnormalize(np.concatenate([w, v], axis=-1))


def qfix(q):
    """Flip signs along time (axis 0) so consecutive quaternions have a non-negative dot product."""
    q = q.copy() if not _is_torch(q) else q.clone()
    dots = (q[1:] * q[:-1]).sum(-1)
    mask = dots < 0
    if _is_torch(q):
        flip = (torch.cumsum(mask.long(), dim=0) % 2).bool()
        q[1:][flip] *= -1
    else:
        flip = (np.cumsum(mask, axis=0) % 2).astype(bool)
        q[1:][flip] *= -1
    return q


def quaternion_to_matrix(q):
    """Rotation matrices (..., 3, 3) from quaternions (..., 4), s = 2/|q|^2."""
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    s = 2.0 / (q * q).sum(-1)
    rows = [
        1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w),
        s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w),
        s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y),
    ]
    m = _stack(rows)
    return m.reshape(*q.shape[:-1], 3, 3)


def matrix_to_cont6d(m):
    """Continuous 6D: first two *columns* of the matrix, [m00, m10, m20, m01, m11, m21]."""
    col0 = m[..., :, 0]
    col1 = m[..., :, 1]
    if _is_torch(m):
        return torch.cat([col0, col1], dim=-1)
    return np.concatenate([col0, col1], axis=-1)


def quaternion_to_cont6d(q):
    return matrix_to_cont6d(quaternion_to_matrix(q))


def cont6d_to_matrix(c6):
    """Inverse of :func:`matrix_to_cont6d`: Gram-Schmidt, columns [x, y, z]."""
    x = normalize(c6[..., 0:3])
    z = normalize(_cross(x, c6[..., 3:6]))
    y = _cross(z, x)
    return _stack([x, y, z], axis=-1)


def yaw_quaternion(angle):
    """Quaternions (cos a, 0, sin a, 0) for an array of angles (a rotation of 2a about +Y)."""
    if _is_torch(angle):
        zero = torch.zeros_like(angle)
        return torch.stack([torch.cos(angle), zero, torch.sin(angle), zero], dim=-1)
    zero = np.zeros_like(angle)
    return np.stack([np.cos(angle), zero, np.sin(angle), zero], axis=-1)


def axis_angle_to_quaternion(axis, angle):
    """Quaternion for a rotation of ``angle`` radians about unit ``axis`` (broadcasting)."""
    axis = np.asarray(axis, dtype=np.float64)
    angle = np.asarray(angle, dtype=np.float64)[..., None]
    axis = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    return np.concatenate([np.cos(angle / 2), np.sin(angle / 2) * axis], axis=-1)
