"""Gaussian noise drawn flat, then shaped: the same values, compiled in a fraction of the time.

`jax.random.normal(rng, shape)` with a rank-4 or rank-5 `shape` whose last dimension is small
(a latent's [B, T, H, W, C]) takes XLA's CPU backend 10–30 s to compile: it fuses the
threefry hash over the whole nest of loops into one kernel. Drawn over the flat size and
reshaped, the same values (threefry counts run row-major over the shape either way) compile in
under a second. `experiments/benchmarks/rng_compile.py` measures both.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def normal(rng: jax.Array, shape: tuple[int, ...], dtype: jnp.dtype = jnp.float32) -> jax.Array:
  """N(0, 1) of `shape`, equal bit for bit to `jax.random.normal(rng, shape, dtype)`."""
  shape = tuple(shape)
  return jax.random.normal(rng, (math.prod(shape),), dtype).reshape(shape)
