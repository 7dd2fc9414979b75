"""Confidence intervals, so two runs' numbers can be compared honestly.

Two methods, each where it behaves best:

* `wilson`: the Wilson score interval of a proportion (hits out of n). Unlike the normal
  approximation or a percentile bootstrap it does not collapse to a zero-width interval at
  0% or 100%, which are exactly the values the probe's accuracies often take.
* `bootstrap`: the percentile bootstrap over videos, for means of continuous scores.
  Resampling whole videos keeps the things scored inside one video together. (Fréchet
  distances use a jackknife instead: see vidgen/eval/frechet.py.)
* `mean_of`: the average of several accuracies' Wilson bounds: the interval of their mean
  if they moved together. Prompt adherence uses it where the bootstrap has nothing to
  resample (every video scored alike), so that it too does not collapse at 0% or 100%.

Both are 95% intervals by default, and deterministic (the bootstrap has a fixed seed).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Sequence

import numpy as np

LEVEL = 0.95
NUM_RESAMPLES = 1000


@dataclasses.dataclass(frozen=True)
class Estimate:
  """A measured value with its confidence interval and what it was measured on."""
  value: float | None  # None: nothing to measure (e.g. no occluder in any video)
  low: float | None
  high: float | None
  n: int  # how many things it was measured on (objects, videos, bounces, ...)
  method: str  # 'wilson' | 'bootstrap' | 'none'

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> 'Estimate':
    return cls(**{f.name: d.get(f.name) for f in dataclasses.fields(cls)})

  @classmethod
  def missing(cls) -> 'Estimate':
    return cls(None, None, None, 0, 'none')


def z_value(level: float) -> float:
  """The two-sided standard normal quantile for `level` (1.96 for 95%)."""
  from scipy.stats import norm  # pylint: disable=g-import-not-at-top
  return float(norm.ppf(0.5 + level / 2))


def wilson(hits: float, n: int, level: float = LEVEL) -> Estimate:
  """The proportion hits / n with its Wilson score interval."""
  if n <= 0:
    return Estimate.missing()
  p = float(hits) / n
  z = z_value(level)
  denom = 1 + z * z / n
  centre = (p + z * z / (2 * n)) / denom
  half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
  return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), int(n), 'wilson')


def bootstrap(statistic: Callable[[np.ndarray], float], num_items: int, *, level: float = LEVEL,
              num_resamples: int = NUM_RESAMPLES, seed: int = 0) -> tuple[float, float] | tuple[None, None]:
  """Percentile interval of `statistic(indices)` over resamples of 0..num_items-1 with replacement.

  Resamples whose statistic is undefined (None or nan) are dropped.
  """
  if num_items <= 0:
    return None, None
  rng = np.random.default_rng(seed)
  values = []
  for _ in range(num_resamples):
    v = statistic(rng.integers(0, num_items, num_items))
    if v is not None and np.isfinite(v):
      values.append(v)
  if not values:
    return None, None
  alpha = (1 - level) / 2
  low, high = np.quantile(values, [alpha, 1 - alpha])
  return float(low), float(high)


def bootstrap_mean(values: Sequence[float | None], *, level: float = LEVEL, num_resamples: int = NUM_RESAMPLES,
                   seed: int = 0) -> Estimate:
  """The mean of the defined values, with a bootstrap interval over them."""
  x = np.array([v for v in values if v is not None and np.isfinite(v)], np.float64)
  if not len(x):
    return Estimate.missing()
  rng = np.random.default_rng(seed)
  means = x[rng.integers(0, len(x), (num_resamples, len(x)))].mean(1)
  alpha = (1 - level) / 2
  low, high = np.quantile(means, [alpha, 1 - alpha])
  return Estimate(float(x.mean()), float(low), float(high), len(x), 'bootstrap')


def mean_of(estimates: Sequence[Estimate], n: int) -> Estimate:
  """The mean of the measured estimates, with the mean of their bounds; `n`: what it was measured on."""
  measured = [e for e in estimates if e.value is not None]
  if not measured:
    return Estimate.missing()
  mean = lambda xs: float(np.mean(xs))
  return Estimate(mean([e.value for e in measured]), mean([e.low for e in measured]), mean([e.high for e in measured]),
                  n, 'wilson-mean')


def overlap(a: Estimate, b: Estimate) -> bool | None:
  """Whether two intervals overlap (None if either is missing): no overlap means a clear difference."""
  if None in (a.low, a.high, b.low, b.high):
    return None
  return a.low <= b.high and b.low <= a.high
