"""Suggestive annotation math: uncertainty, greedy max-cover against brute force, bootstrap, diversity."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from inqnet.modules.suggestive.selection import (bootstrap_sample, cosine_matrix, coverage, greedy_max_cover,
                                          mean_pairwise_distance, pixel_std, select_representative, top_uncertain,
                                          uncertainty)


def brute_force_greedy(descriptors: np.ndarray, candidates: list[int], count: int) -> list[int]:
    """Greedy max-cover evaluated literally: F(A) = sum_x max_{a in A} cos(x, a), recomputed per try."""

    def cos(u: np.ndarray, v: np.ndarray) -> float:
        return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))

    def F(chosen: list[int]) -> float:
        return sum(max(cos(x, descriptors[a]) for a in chosen) for x in descriptors)

    picked: list[int] = []
    for _ in range(count):
        best, best_value = None, -np.inf
        for c in candidates:
            if c in picked:
                continue
            value = F(picked + [c])
            if value > best_value + 1e-12:
                best, best_value = c, value
        picked.append(best)
    return picked


@pytest.mark.parametrize("seed", range(6))
def test_selection_equals_brute_force_greedy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pool = rng.normal(size=(12, 5))  # signed: cosines of both signs
    candidates = [int(i) for i in rng.permutation(12)[:6]]
    assert select_representative(pool, candidates, 3) == brute_force_greedy(pool, candidates, 3)


def test_greedy_is_near_optimal_on_nonnegative_descriptors() -> None:
    rng = np.random.default_rng(7)
    pool = rng.random((10, 4)) ** 3  # ReLU-like: nonnegative, so F is monotone submodular
    sim = cosine_matrix(pool, pool[:7])
    picked = greedy_max_cover(sim, 3)
    best = max(coverage(sim, list(s)) for s in itertools.combinations(range(7), 3))
    assert coverage(sim, picked) >= (1 - 1 / np.e) * best - 1e-9
    assert len(set(picked)) == 3


def test_greedy_picks_one_per_cluster() -> None:
    """Two tight clusters: after the first pick the second must come from the other cluster."""
    a = np.array([[1.0, 0.0, 0.0]] * 5) + 0.01 * np.arange(5)[:, None]
    b = np.array([[0.0, 1.0, 0.0]] * 3) + 0.01 * np.arange(3)[:, None]
    pool = np.vstack([a, b])
    rows = select_representative(pool, list(range(8)), 2)
    assert {r < 5 for r in rows} == {True, False}
    assert rows[0] < 5  # the larger cluster covers more of the pool


def test_ties_go_to_the_earlier_candidate() -> None:
    sim = np.ones((4, 3))
    assert greedy_max_cover(sim, 2) == [0, 1]


def test_uncertainty_is_zero_when_all_fcns_agree() -> None:
    rng = np.random.default_rng(0)
    same = np.repeat(rng.random((1, 8, 8)), 4, axis=0)
    assert uncertainty(same) == 0.0
    other = same.copy()
    other[0, 0, 0] += 0.5
    assert uncertainty(other) > 0.0


def test_uncertainty_is_the_mean_pixel_std() -> None:
    probs = np.array([[[0.0, 1.0]], [[1.0, 1.0]]])  # 2 FCNs, 1x2 pixels
    np.testing.assert_allclose(pixel_std(probs), [[0.5, 0.0]])
    assert uncertainty(probs) == pytest.approx(0.25)


def test_top_uncertain_orders_and_breaks_ties_by_id() -> None:
    scores = {"b": 0.2, "a": 0.2, "c": 0.9, "d": 0.1}
    assert top_uncertain(scores, 3) == ["c", "a", "b"]
    assert top_uncertain(scores, 10) == ["c", "a", "b", "d"]


def test_bootstrap_draws_with_replacement_reproducibly() -> None:
    ids = [f"train_{i}" for i in range(20)]
    first = bootstrap_sample(ids, (3, 1))
    assert first == bootstrap_sample(ids, (3, 1))
    assert len(first) == 20 and set(first) <= set(ids)
    assert len(set(first)) < 20  # with replacement: 20 draws from 20 almost surely repeat
    assert first != bootstrap_sample(ids, (3, 2))
    with pytest.raises(ValueError):
        bootstrap_sample([], 0)


def test_mean_pairwise_distance() -> None:
    maps = np.stack([np.zeros((2, 2)), np.ones((2, 2)), np.full((2, 2), 0.5)])
    assert mean_pairwise_distance(maps) == pytest.approx((1.0 + 0.5 + 0.5) / 3)
    assert mean_pairwise_distance(maps[:1]) == 0.0


def test_bad_shapes_and_counts_are_refused() -> None:
    with pytest.raises(ValueError):
        greedy_max_cover(np.ones((3, 2)), 3)
    with pytest.raises(ValueError):
        cosine_matrix(np.ones((3, 2)), np.ones((3, 4)))
