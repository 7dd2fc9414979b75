"""The Fréchet distance between two sets of feature vectors (FVD when the features are a video network's).

  python -m vidgen.eval.frechet generated.npz real.npz [--key features]

The function takes feature arrays, whatever network made them: the world feature network
(vidgen/world/features.py) in `vidgen.evaluate`, or I3D features computed elsewhere
(`load_features` reads .npy and .npz files), which gives the standard FVD of Unterthiner et
al. 2018. Distances are only comparable between sets embedded by the same network and of
similar size: the estimate is biased upwards for small sets, so the report also gives the
distance between two disjoint sets of real videos (its floor at that size).

d² = |mu_a − mu_b|² + tr(S_a + S_b − 2 (S_a S_b)^½). The trace of the square root is computed
without a general matrix square root (which can return complex noise):
  * from feature sets with fewer vectors than dimensions (the usual case for videos), in sample
    space: with A, B the centred features, S_a S_b = AᵀA BᵀB / ((n_a−1)(n_b−1)) has the nonzero
    eigenvalues of (ABᵀ)(ABᵀ)ᵀ / (...), so tr((S_a S_b)^½) = ‖ABᵀ‖_* / √((n_a−1)(n_b−1)), the
    nuclear norm of an n_a × n_b matrix: exact, and fast (one small SVD);
  * otherwise, and from statistics, as the sum of square roots of the eigenvalues of the
    symmetric S_a^½ S_b S_a^½.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from vidgen import paths
from vidgen.eval import intervals


def statistics(features: Any) -> tuple[np.ndarray, np.ndarray]:
  """(mean [D], covariance [D, D]) of features [N, D], in float64 (N >= 2)."""
  x = np.asarray(features, np.float64)
  if x.ndim != 2 or x.shape[0] < 2:
    raise ValueError(f'Features must be [N >= 2, D], got shape {x.shape}.')
  if not np.all(np.isfinite(x)):
    raise ValueError('Features contain nan or inf.')
  return x.mean(0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
  w, v = np.linalg.eigh(s)
  return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_from_statistics(mu_a: np.ndarray, sigma_a: np.ndarray, mu_b: np.ndarray, sigma_b: np.ndarray) -> float:
  """The Fréchet distance between the Gaussians N(mu_a, sigma_a) and N(mu_b, sigma_b)."""
  mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
  sigma_a, sigma_b = np.asarray(sigma_a, np.float64), np.asarray(sigma_b, np.float64)
  if mu_a.shape != mu_b.shape or sigma_a.shape != sigma_b.shape:
    raise ValueError(f'Feature dimensions differ: {mu_a.shape} vs {mu_b.shape}; embed both sets with the same network.')
  root = _sqrt_psd(sigma_a)
  eig = np.linalg.eigvalsh(root @ sigma_b @ root)
  trace_sqrt = np.sqrt(np.clip(eig, 0, None)).sum()
  d2 = float(((mu_a - mu_b) ** 2).sum() + np.trace(sigma_a) + np.trace(sigma_b) - 2 * trace_sqrt)
  return max(d2, 0.0)


def frechet_distance(features_a: Any, features_b: Any) -> float:
  """The Fréchet distance between feature sets [N_a, D] and [N_b, D] (identical sets give ≈ 0)."""
  mu_a, sigma_a = statistics(features_a)
  mu_b, sigma_b = statistics(features_b)
  a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
  if mu_a.shape != mu_b.shape or max(len(a), len(b)) > a.shape[1]:
    return frechet_from_statistics(mu_a, sigma_a, mu_b, sigma_b)
  ca, cb = a - mu_a, b - mu_b
  scale_a, scale_b = len(a) - 1, len(b) - 1
  trace_sqrt = np.linalg.svd(ca @ cb.T, compute_uv=False).sum() / np.sqrt(scale_a * scale_b)
  d2 = float(((mu_a - mu_b) ** 2).sum() + (ca ** 2).sum() / scale_a + (cb ** 2).sum() / scale_b - 2 * trace_sqrt)
  return max(d2, 0.0)


def frechet_with_interval(features_a: Any, features_b: Any, *, level: float = intervals.LEVEL) -> intervals.Estimate:
  """The distance, with a jackknife interval: estimate ± z · (two-sample jackknife standard error).

  The interval says how much the number moves with the particular videos drawn. Not a
  bootstrap: a resample with repeated vectors has a narrower spread, so bootstrap distances
  are biased upwards and their percentiles can miss the estimate altogether. The jackknife
  leaves one video out at a time instead. Neither removes the small-sample bias of the
  distance itself (compare with the real-vs-real floor).
  """
  a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
  value = frechet_distance(a, b)
  if min(len(a), len(b)) < 3:
    return intervals.Estimate(value, None, None, min(len(a), len(b)), 'jackknife')
  variance = 0.0
  for x, leave_out in ((a, lambda i: frechet_distance(np.delete(a, i, 0), b)),
                       (b, lambda i: frechet_distance(a, np.delete(b, i, 0)))):
    loo = np.array([leave_out(i) for i in range(len(x))])
    variance += (len(x) - 1) / len(x) * ((loo - loo.mean()) ** 2).sum()
  half = intervals.z_value(level) * float(np.sqrt(variance))
  return intervals.Estimate(value, max(0.0, value - half), value + half, min(len(a), len(b)), 'jackknife')


def load_features(path: str, key: str | None = None) -> np.ndarray:
  """Features [N, D] from a .npy file, or from a .npz file (its `key`, or its only array)."""
  if not paths.exists(path):
    raise FileNotFoundError(f'Feature file {path} does not exist.')
  if path.endswith('.npy'):
    with paths.open_file(path, 'rb') as f:
      x = np.load(f)
  elif path.endswith('.npz'):
    with paths.open_file(path, 'rb') as f, np.load(f) as z:
      names = list(z.keys())
      if key is None:
        if len(names) != 1:
          raise ValueError(f'{path} holds arrays {names}; say which one with key= (--key).')
        key = names[0]
      if key not in names:
        raise ValueError(f'{path} has no array {key!r}; it holds {names}.')
      x = z[key]
  else:
    raise ValueError(f'{path}: feature files must be .npy or .npz.')
  x = np.asarray(x)
  if x.ndim != 2:
    raise ValueError(f'{path}: features must be a 2-D array [N, D], got shape {x.shape}.')
  return x


def main(argv: list[str]) -> None:
  import argparse  # pylint: disable=g-import-not-at-top
  parser = argparse.ArgumentParser(description='Fréchet distance between two feature files (.npy/.npz, [N, D]).')
  parser.add_argument('a')
  parser.add_argument('b')
  parser.add_argument('--key', default=None, help='array name inside .npz files')
  args = parser.parse_args(argv)
  a, b = load_features(args.a, args.key), load_features(args.b, args.key)
  est = frechet_with_interval(a, b)
  interval = (f'95% jackknife interval {est.low:.4g} to {est.high:.4g}' if est.low is not None
              else 'too few vectors for an interval')
  print(f'Fréchet distance {est.value:.4g} ({interval}; {len(a)} vs {len(b)} vectors of dimension {a.shape[1]})')


if __name__ == '__main__':
  main(sys.argv[1:])
