"""PSNR and SSIM against plain numpy references."""

import numpy as np

from vidgen.eval import image_metrics


def _ssim_reference(a, b, size=11, sigma=1.5):
  """Direct windowed SSIM of two [H, W] images in [0, 1] (no separable tricks)."""
  g = np.exp(-0.5 * ((np.arange(size) - (size - 1) / 2) / sigma) ** 2)
  w = np.outer(g, g) / np.outer(g, g).sum()
  c1, c2 = 0.01 ** 2, 0.03 ** 2
  out = []
  for i in range(a.shape[0] - size + 1):
    for j in range(a.shape[1] - size + 1):
      pa, pb = a[i:i + size, j:j + size], b[i:i + size, j:j + size]
      ma, mb = (w * pa).sum(), (w * pb).sum()
      va, vb = (w * pa * pa).sum() - ma ** 2, (w * pb * pb).sum() - mb ** 2
      cov = (w * pa * pb).sum() - ma * mb
      out.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2)))
  return np.mean(out)


def test_psnr_matches_definition():
  rng = np.random.default_rng(0)
  x = rng.uniform(-1, 1, (2, 3, 8, 8, 3)).astype(np.float32)
  y = np.clip(x + rng.normal(0, 0.05, x.shape), -1, 1).astype(np.float32)
  mse01 = (((x + 1) / 2 - (y + 1) / 2) ** 2).mean(axis=(1, 2, 3, 4))
  np.testing.assert_allclose(image_metrics.psnr(x, y), 10 * np.log10(1 / mse01), rtol=1e-5)


def test_ssim_matches_direct_reference():
  rng = np.random.default_rng(1)
  x = rng.uniform(-1, 1, (1, 2, 16, 16, 3)).astype(np.float32)
  y = np.clip(x + rng.normal(0, 0.2, x.shape), -1, 1).astype(np.float32)
  expected = np.mean([_ssim_reference((x[0, t, :, :, c] + 1) / 2, (y[0, t, :, :, c] + 1) / 2)
                      for t in range(2) for c in range(3)])
  np.testing.assert_allclose(image_metrics.ssim(x, y)[0], expected, rtol=1e-4)


def test_identical_videos_are_perfect():
  x = np.random.default_rng(2).uniform(-1, 1, (1, 2, 16, 16, 3)).astype(np.float32)
  np.testing.assert_allclose(image_metrics.ssim(x, x), 1.0, rtol=1e-5)
  assert float(image_metrics.psnr(x, x)[0]) > 90
