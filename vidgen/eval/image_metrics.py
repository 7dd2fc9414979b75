"""Reconstruction metrics on videos in [-1, 1]: PSNR and SSIM, averaged over frames."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def psnr(x: jax.Array, y: jax.Array) -> jax.Array:
  """PSNR in dB per video of [..., T, H, W, C] arrays in [-1, 1] (data range 2, i.e. 1 on [0, 1])."""
  mse = jnp.mean((jnp.clip(x, -1, 1) - jnp.clip(y, -1, 1)) ** 2, axis=(-4, -3, -2, -1))
  return psnr_from_mse(mse)


def psnr_from_mse(mse: jax.Array | float) -> jax.Array:
  """PSNR in dB of a mean squared error on [-1, 1] values (data range 2)."""
  return 10.0 * jnp.log10(4.0 / jnp.maximum(mse, 1e-10))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
  g = np.exp(-0.5 * ((np.arange(size) - (size - 1) / 2) / sigma) ** 2)
  return (g / g.sum()).astype(np.float32)


def ssim(x: jax.Array, y: jax.Array, window: int = 11, sigma: float = 1.5) -> jax.Array:
  """SSIM (Wang et al. 2004: 11×11 Gaussian window, σ = 1.5, valid positions) per video.

  Computed on each frame and colour channel of [..., T, H, W, C] arrays in [-1, 1], mapped to
  [0, 1], then averaged. Frames smaller than the window use a window of the frame's size.
  """
  x = (jnp.clip(x, -1, 1) + 1) / 2
  y = (jnp.clip(y, -1, 1) + 1) / 2
  size = min(window, x.shape[-3], x.shape[-2])
  g = jnp.asarray(_gaussian_window(size, sigma))
  lead = x.shape[:-3]

  def blur(a):  # separable valid Gaussian over H and W: [N, H, W, C] → [N, H', W', C]
    a = jnp.moveaxis(a.reshape((-1,) + a.shape[-3:]), -1, 1)  # [N, C, H, W]
    n, c, h, w = a.shape
    a = a.reshape(n * c, 1, h, w)
    a = jax.lax.conv_general_dilated(a, g.reshape(1, 1, size, 1), (1, 1), 'VALID')
    a = jax.lax.conv_general_dilated(a, g.reshape(1, 1, 1, size), (1, 1), 'VALID')
    return a.reshape(n, c, a.shape[-2], a.shape[-1])

  c1, c2 = 0.01 ** 2, 0.03 ** 2
  mu_x, mu_y = blur(x), blur(y)
  sxx = blur(x * x) - mu_x ** 2
  syy = blur(y * y) - mu_y ** 2
  sxy = blur(x * y) - mu_x * mu_y
  s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2))
  per_frame = s.mean(axis=(1, 2, 3)).reshape(lead)  # lead = [..., T]
  return per_frame.mean(axis=-1)
