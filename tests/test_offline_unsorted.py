"""Unsorted values through a piecewise-linear map whose knots are unevenly spaced (issue 19: an hour-long map of
random sync points, two of them 1.5 ms apart, sent every unsorted value through a binary search)."""

from __future__ import annotations

import numpy as np
import pytest

from hwlink.sync.offline import PiecewiseLinearMap
from tests.test_offline import reference_map


def _knots(kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "random hour":  # sync points anywhere in an hour-long recording (µs), some very close
        return np.concatenate([[0.0], np.sort(rng.uniform(0, 3.6e9, 400)), [3.6e9]])
    if kind == "close pair":
        return np.array([0.0, 1e6, 1e6 + 1.5e3, 2e9, 3.6e9])
    return np.concatenate([[0.0], 1e6 + np.arange(8) * 1e-3, [5e9]])  # "cluster": 8 knots within 7 ns


@pytest.mark.parametrize("kind", ["random hour", "close pair", "cluster"])
@pytest.mark.parametrize("seed", range(3))
def test_unsorted_values_map_like_the_reference(kind: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    knots_x = _knots(kind, rng)
    jitter = 1e-4 if kind == "cluster" else 100.0  # well-conditioned slopes for knots nanoseconds apart
    knots_y = knots_x * (1 + 40e-6) + rng.normal(0, jitter, knots_x.size)
    mapping = PiecewiseLinearMap(knots_x, knots_y)
    span = knots_x[-1] - knots_x[0]
    values = np.concatenate([rng.uniform(knots_x[0] - 0.1 * span, knots_x[-1] + 0.1 * span, 4000), knots_x,
                             np.nextafter(knots_x, -np.inf), np.nextafter(knots_x, np.inf)])
    values = rng.permutation(values)
    assert np.allclose(mapping(values), reference_map(knots_x, knots_y, values), rtol=1e-12, atol=1e-6)
    if kind != "cluster":  # a few knots per bin at most: the bounded table, not a binary search per value
        assert mapping._bins.table is not None and mapping._bins.table.size <= 1 << 16
