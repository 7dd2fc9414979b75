"""noise.normal and noise.drawn_as_matrix draw the values jax.random and flax would, at any rank."""

import flax.linen as nn
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


@pytest.mark.parametrize('init', [nn.initializers.lecun_normal(), nn.initializers.he_normal()])
def test_drawn_as_matrix_equals_the_initializer(init):
  shape = (3, 2, 2, 4, 5)  # a 3D conv's [kt, kh, kw, in, out]
  expected = init(jax.random.key(7), shape)
  drawn = noise.drawn_as_matrix(init)(jax.random.key(7), shape)
  assert drawn.shape == shape
  np.testing.assert_array_equal(np.asarray(drawn), np.asarray(expected))
