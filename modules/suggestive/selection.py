"""The math of Suggestive Annotation (Yang et al. 2017): uncertainty, representativeness, bootstrap.

Pure functions on numpy arrays, so each choice the driver makes can be recomputed and audited:

- uncertainty of an item = mean over its pixels of the standard deviation (across the K suggestive
  FCNs) of the foreground probability; zero exactly when every FCN predicts the same map;
- candidates = the U most uncertain unannotated items;
- representativeness: from the candidates, S items are picked greedily to maximise the max-cover
  F(A) = sum over the unannotated pool x of max over a in A of cos(d_x, d_a), with d the mean of
  the FCNs' image descriptors. F is monotone submodular when all cosines are >= 0 (descriptors are
  means of ReLU outputs), so greedy is within (1 - 1/e) of the best subset;
- each FCN trains on a bootstrap sample (with replacement) of the annotated set.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pixel_std(probs: np.ndarray) -> np.ndarray:
    """Per-pixel standard deviation across FCNs: (K, ...) -> (...). Population std (ddof 0)."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim < 2 or probs.shape[0] < 1:
        raise ValueError(f"expected (K, H, W) probabilities with K >= 1, got shape {probs.shape}")
    return probs.std(axis=0)


def uncertainty(probs: np.ndarray) -> float:
    """An item's uncertainty: mean over pixels of the std across the K FCNs' foreground probabilities."""
    return float(pixel_std(probs).mean())


def top_uncertain(scores: dict[str, float], count: int) -> list[str]:
    """The ``count`` ids of highest uncertainty, most uncertain first; ties go to the smaller id
    (so the choice never depends on dict order)."""
    if count < 1:
        raise ValueError(f"count must be >= 1 (got {count})")
    return sorted(scores, key=lambda item: (-scores[item], item))[:count]


def cosine_matrix(rows: np.ndarray, cols: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Cosine similarity of every row of ``rows`` (N, D) with every row of ``cols`` (M, D): (N, M).
    A zero vector has similarity 0 with everything."""
    a = np.asarray(rows, dtype=np.float64)
    b = np.asarray(cols, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"descriptor shapes {a.shape} and {b.shape} do not match (expected (N, D) and (M, D))")
    na = np.linalg.norm(a, axis=1, keepdims=True)
    nb = np.linalg.norm(b, axis=1, keepdims=True)
    return (a / np.maximum(na, eps)) @ (b / np.maximum(nb, eps)).T


def coverage(similarity: np.ndarray, chosen: Sequence[int]) -> float:
    """F(A) = sum over the pool (rows) of the max similarity to a chosen column; F(empty) = 0."""
    if len(chosen) == 0:
        return 0.0
    return float(np.asarray(similarity)[:, list(chosen)].max(axis=1).sum())


def greedy_max_cover(similarity: np.ndarray, count: int) -> list[int]:
    """Greedy maximisation of F: ``count`` column indices of ``similarity`` (pool x candidates), in
    pick order. Each step adds the candidate with the largest F(A + c); ties go to the lower index
    (the more uncertain candidate when columns are ordered by uncertainty)."""
    sim = np.asarray(similarity, dtype=np.float64)
    if sim.ndim != 2:
        raise ValueError(f"similarity must be (pool, candidates), got shape {sim.shape}")
    n_pool, n_cand = sim.shape
    if not 1 <= count <= n_cand:
        raise ValueError(f"cannot pick {count} of {n_cand} candidates")
    if n_pool == 0:
        raise ValueError("the pool is empty")
    best = np.full(n_pool, -np.inf)  # max similarity of each pool item to the picked set so far
    picked: list[int] = []
    available = np.ones(n_cand, dtype=bool)
    for _ in range(count):
        totals = np.maximum(best[:, None], sim).sum(axis=0)  # F(A + c) for every c
        totals[~available] = -np.inf
        choice = int(np.argmax(totals))  # first maximum: the lower index wins ties
        picked.append(choice)
        available[choice] = False
        best = np.maximum(best, sim[:, choice])
    return picked


def select_representative(pool_descriptors: np.ndarray, candidate_rows: Sequence[int], count: int) -> list[int]:
    """Rows (of the pool) of the ``count`` candidates greedy max-cover picks, in pick order.

    ``pool_descriptors`` (N, D) holds every unannotated item; ``candidate_rows`` says which of
    them are the candidates (ordered, most uncertain first).
    """
    rows = list(candidate_rows)
    sim = cosine_matrix(pool_descriptors, np.asarray(pool_descriptors)[rows])
    return [rows[i] for i in greedy_max_cover(sim, count)]


def bootstrap_sample(ids: Sequence[str], seed: int | Sequence[int], size: int | None = None) -> list[str]:
    """``size`` (default len(ids)) ids drawn uniformly with replacement, reproducibly from ``seed``."""
    if len(ids) == 0:
        raise ValueError("cannot bootstrap an empty set")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(ids), size=len(ids) if size is None else size)
    return [ids[int(i)] for i in picks]


def mean_pairwise_distance(probs: np.ndarray) -> float:
    """Diversity of K prediction maps (K, ...): the mean over FCN pairs of the mean absolute
    per-pixel difference (an L1 distance per pixel). 0 for a single FCN or identical maps."""
    p = np.asarray(probs, dtype=np.float64).reshape(len(probs), -1)
    k = p.shape[0]
    if k < 2:
        return 0.0
    total = sum(float(np.abs(p[i] - p[j]).mean()) for i in range(k) for j in range(i + 1, k))
    return total / (k * (k - 1) / 2)
