"""2-D map coordinates of the catalog (PCA) for the app's explore view."""

from __future__ import annotations

import numpy as np


def pca_2d(features: np.ndarray) -> np.ndarray:
    """Project rows onto their first two principal components, scaled into [-1, 1].

    Signs are fixed (largest loading positive) so the same input gives the same map.
    """
    x = np.asarray(features, dtype=np.float64)
    n = len(x)
    if n < 3:
        return np.zeros((n, 2))
    x = x - x.mean(axis=0)
    if x.shape[1] <= n:  # eigenvectors of the d x d covariance: cheap for many rows
        vals, vecs = np.linalg.eigh(x.T @ x)
        comps = vecs[:, np.argsort(vals)[::-1][:2]]
    else:  # fewer rows than dimensions: SVD of the data itself
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        comps = vt[:2].T
    for j in range(comps.shape[1]):
        if comps[np.argmax(np.abs(comps[:, j])), j] < 0:
            comps[:, j] = -comps[:, j]
    xy = x @ comps
    if xy.shape[1] < 2:
        xy = np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))
    scale = np.abs(xy).max(axis=0)
    return xy / np.where(scale == 0, 1, scale)
