"""Gaussian noise drawn flat, then shaped: the same values, compiled in a fraction of the time.

`jax.random.normal(rng, shape)` with a rank-4 or rank-5 `shape` whose last dimension is small
(a latent's [B, T, H, W, C]) takes XLA's CPU backend 10–30 s to compile: it fuses the
threefry hash over the whole nest of loops into one kernel. Drawn over the flat size and
reshaped, the same values (threefry counts run row-major over the shape either way) compile in
under a second. A 3D conv's kernel initializer is drawn as a matrix for the same reason
(`drawn_as_matrix`). `experiments/benchmarks/rng_compile.py` measures both.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp


def normal(rng: jax.Array, shape: tuple[int, ...], dtype: jnp.dtype = jnp.float32) -> jax.Array:
  """N(0, 1) of `shape`, equal bit for bit to `jax.random.normal(rng, shape, dtype)`."""
  shape = tuple(shape)
  return jax.random.normal(rng, (math.prod(shape),), dtype).reshape(shape)


def drawn_as_matrix(init: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
  """A fan-in initializer (lecun_normal, he_normal) for [..., in, out] kernels, drawn as a matrix.

  The kernel is drawn as [prod(shape[:-1]), out], which has the same fan-in and the same
  row-major counters, and then reshaped: the same values as `init(key, shape)`, without a rank-5
  draw to compile (a 3D conv's [kt, kh, kw, in, out] kernel). Not for fan-out or fan-average
  initializers (xavier), whose fan-out the matrix would change.
  """
  def matrix_init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
    shape = tuple(shape)
    return init(key, (math.prod(shape[:-1]), shape[-1]), dtype).reshape(shape)
  return matrix_init
