"""The Fréchet distance against a plain numpy/scipy reference, and the feature-file loader."""

import numpy as np
import pytest
import scipy.linalg

from vidgen.eval import frechet


def reference_frechet(a: np.ndarray, b: np.ndarray) -> float:
  """The textbook formula with scipy's general matrix square root (as in the FID/FVD reference code)."""
  mu_a, mu_b = a.mean(0), b.mean(0)
  s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  covmean = scipy.linalg.sqrtm(s_a @ s_b)
  covmean = covmean.real if np.iscomplexobj(covmean) else covmean
  return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * covmean))


@pytest.mark.parametrize('n, d', [(200, 8), (64, 32), (500, 3), (20, 64), (50, 256)])  # both code paths
def test_matches_the_scipy_reference(n, d):
  rng = np.random.default_rng(d)
  a = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
  b = 0.5 + rng.normal(size=(n + 13, d)) @ rng.normal(size=(d, d))
  assert frechet.frechet_distance(a, b) == pytest.approx(reference_frechet(a, b), rel=1e-6, abs=1e-8)
  assert frechet.frechet_distance(a, b) == pytest.approx(frechet.frechet_distance(b, a), rel=1e-9)
  from_stats = frechet.frechet_from_statistics(*frechet.statistics(a), *frechet.statistics(b))
  assert from_stats == pytest.approx(reference_frechet(a, b), rel=1e-6, abs=1e-8)


def test_identical_sets_give_zero_and_a_shift_gives_its_squared_length():
  a = np.random.default_rng(0).normal(size=(100, 16))
  assert frechet.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
  shift = np.full(16, 0.5)
  assert frechet.frechet_distance(a, a + shift) == pytest.approx((shift ** 2).sum(), rel=1e-6)


def test_rank_deficient_covariances_stay_finite():
  a = np.random.default_rng(0).normal(size=(10, 64))  # fewer vectors than dimensions, as with few videos
  b = np.random.default_rng(1).normal(size=(10, 64))
  assert np.isfinite(frechet.frechet_distance(a, b)) and frechet.frechet_distance(a, b) > 0
  est = frechet.frechet_with_interval(a, b)
  assert est.low <= est.value <= est.high and est.n == 10 and est.method == 'jackknife'


def test_interval_contains_the_estimate_and_shrinks_with_more_videos():
  rng = np.random.default_rng(0)
  widths = []
  for n in (40, 160):
    a, b = rng.normal(size=(n, 4)), rng.normal(size=(n, 4)) + 0.5
    est = frechet.frechet_with_interval(a, b)
    assert est.low < est.value < est.high and est.value == pytest.approx(frechet.frechet_distance(a, b))
    widths.append(est.high - est.low)
  assert widths[1] < 0.7 * widths[0]


def test_load_features(tmp_path):
  x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
  np.save(tmp_path / 'a.npy', x)
  np.savez(tmp_path / 'one.npz', features=x)
  np.savez(tmp_path / 'two.npz', real=x, generated=x + 1)
  np.testing.assert_array_equal(frechet.load_features(str(tmp_path / 'a.npy')), x)
  np.testing.assert_array_equal(frechet.load_features(str(tmp_path / 'one.npz')), x)
  np.testing.assert_array_equal(frechet.load_features(str(tmp_path / 'two.npz'), 'generated'), x + 1)
  with pytest.raises(ValueError, match='say which one'):
    frechet.load_features(str(tmp_path / 'two.npz'))
  with pytest.raises(FileNotFoundError):
    frechet.load_features(str(tmp_path / 'missing.npy'))
  np.save(tmp_path / 'flat.npy', x[0])
  with pytest.raises(ValueError, match=r'\[N, D\]'):
    frechet.load_features(str(tmp_path / 'flat.npy'))
  with pytest.raises(ValueError, match='same network'):
    frechet.frechet_distance(x, np.zeros((5, 3)))


def test_cli_prints_the_distance(tmp_path, capsys):
  rng = np.random.default_rng(0)
  np.save(tmp_path / 'a.npy', rng.normal(size=(30, 4)))
  np.save(tmp_path / 'b.npy', rng.normal(size=(30, 4)) + 1)
  frechet.main([str(tmp_path / 'a.npy'), str(tmp_path / 'b.npy')])
  assert 'Fréchet distance' in capsys.readouterr().out
