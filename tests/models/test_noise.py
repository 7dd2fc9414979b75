"""noise.normal draws the values jax.random.normal would, at any rank and threefry mode."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidgen.models import noise


@pytest.mark.parametrize('shape, dtype', [((2, 3, 4, 4, 2), jnp.float32), ((3, 2, 5), jnp.bfloat16),
                                          ((7,), jnp.float32)])
@pytest.mark.parametrize('partitionable', [True, False])
def test_normal_equals_jax_random_normal(shape, dtype, partitionable):
  with jax.threefry_partitionable(partitionable):
    expected = jax.random.normal(jax.random.key(3), shape, dtype)
    drawn = jax.jit(noise.normal, static_argnums=(1, 2))(jax.random.key(3), shape, dtype)
  assert drawn.shape == shape and drawn.dtype == dtype
  np.testing.assert_array_equal(np.asarray(drawn, np.float32), np.asarray(expected, np.float32))


def test_different_keys_differ():
  a, b = (noise.normal(jax.random.key(k), (2, 4, 3)) for k in (0, 1))
  assert not np.allclose(a, b)
