"""Confidence intervals: Wilson against known values, the bootstrap deterministic and sensible."""

import numpy as np
import pytest

from vidgen.eval import intervals


@pytest.mark.parametrize('hits, n, low, high', [
    (0, 10, 0.0, 0.2775),     # Wilson 95% intervals (e.g. Newcombe 1998, Table I)
    (5, 10, 0.2366, 0.7634),
    (10, 10, 0.7225, 1.0),
    (81, 263, 0.2553, 0.3662),
])
def test_wilson_matches_published_values(hits, n, low, high):
  est = intervals.wilson(hits, n)
  assert est.value == pytest.approx(hits / n)
  assert est.low == pytest.approx(low, abs=1e-4) and est.high == pytest.approx(high, abs=1e-4)
  assert est.n == n and est.method == 'wilson'


def test_nothing_scored_is_missing_not_zero():
  assert intervals.wilson(0, 0) == intervals.Estimate.missing()
  assert intervals.bootstrap_mean([None, float('nan')]).value is None


def test_bootstrap_mean_is_deterministic_and_covers_the_mean():
  x = np.random.default_rng(1).normal(2.0, 1.0, 200)
  a, b = intervals.bootstrap_mean(list(x)), intervals.bootstrap_mean(list(x))
  assert a == b and a.low < a.value < a.high and a.n == 200
  half = 1.96 * x.std() / np.sqrt(len(x))  # the normal-theory interval, which the bootstrap approximates
  assert a.high - a.low == pytest.approx(2 * half, rel=0.15)


def test_mean_of_averages_values_and_bounds_of_what_was_measured():
  a, b = intervals.wilson(10, 10), intervals.wilson(0, 10)
  m = intervals.mean_of([a, b, intervals.Estimate.missing()], n=10)
  assert m.value == 0.5 and m.low == pytest.approx((a.low + b.low) / 2)
  assert m.high == pytest.approx((a.high + b.high) / 2)
  assert m.low < m.value < m.high and m.n == 10 and m.method == 'wilson-mean'
  assert intervals.mean_of([intervals.Estimate.missing()], n=3).value is None


def test_bootstrap_of_a_statistic_and_overlap():
  values = np.arange(10, dtype=float)
  low, high = intervals.bootstrap(lambda idx: values[idx].max(), len(values))
  assert low <= 9 and high == 9
  assert intervals.overlap(intervals.wilson(1, 10), intervals.wilson(9, 10)) is False
  assert intervals.overlap(intervals.wilson(5, 10), intervals.wilson(6, 10)) is True
  assert intervals.overlap(intervals.wilson(5, 10), intervals.Estimate.missing()) is None
