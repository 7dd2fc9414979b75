"""The text encoder: shapes, padding never matters, dropped captions become the learned null."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidgen.models import text as text_lib

CONFIG = text_lib.TextEncoderConfig(vocab_size=50, width=32, depth=2, heads=2, max_length=8)


def _batch():
  ids = jnp.array([[5, 9, 3, 2, 0, 0, 0], [7, 8, 2, 0, 0, 0, 0], [4, 4, 4, 4, 4, 4, 2]], jnp.int32)
  return ids, ids != text_lib.PAD_ID


@pytest.fixture(scope='module')
def encoder():
  model = text_lib.TextEncoder(CONFIG)
  ids, mask = _batch()
  params = jax.jit(lambda: nn.unbox(model.init(jax.random.key(0), ids, mask, jnp.zeros((3,), bool))['params']))()
  return model, params, jax.jit(lambda p, ids, mask, drop: model.apply({'params': p}, ids, mask, drop))


def test_shapes_and_names(encoder):
  model, params, apply = encoder
  ids, mask = _batch()
  tokens, pooled = apply(params, ids, mask, jnp.zeros((3,), bool))
  assert tokens.shape == (3, 7, 32) and pooled.shape == (3, 32)
  boxed = jax.eval_shape(lambda: model.init(jax.random.key(0), ids, mask))['params']
  assert boxed['token_embed']['embedding'].names == ('vocab', 'embed')
  assert boxed['block0']['attn']['query']['kernel'].names == ('embed', 'heads', 'kv')
  # Pooled is the mean of the real tokens; padded positions are zero.
  np.testing.assert_allclose(pooled[0], tokens[0, :4].mean(0), atol=1e-5)
  assert float(jnp.abs(tokens[0, 4:]).max()) == 0.0


def test_changing_padded_ids_does_not_change_the_output(encoder):
  _, params, apply = encoder
  ids, mask = _batch()
  drop = jnp.zeros((3,), bool)
  tokens, pooled = apply(params, ids, mask, drop)
  other_ids = jnp.where(mask, ids, jnp.arange(ids.size).reshape(ids.shape) % 40 + 3)
  tokens2, pooled2 = apply(params, other_ids, mask, drop)
  np.testing.assert_allclose(tokens2, tokens, atol=1e-5)
  np.testing.assert_allclose(pooled2, pooled, atol=1e-5)
  # Real tokens do matter.
  tokens3, _ = apply(params, ids.at[0, 1].set(11), mask, drop)
  assert not np.allclose(tokens3[0], tokens[0], atol=1e-4)


def test_dropped_captions_become_the_learned_null(encoder):
  _, params, apply = encoder
  ids, mask = _batch()
  drop = jnp.array([True, False, True])
  tokens, pooled = apply(params, ids, mask, drop)
  null = params['null_tokens']
  new_mask = text_lib.mask_after_drop(mask, drop)
  np.testing.assert_array_equal(new_mask[0], [True] + [False] * 6)
  np.testing.assert_array_equal(new_mask[1], mask[1])
  # Dropped rows: the null sequence under a one-token mask, whatever the caption was.
  np.testing.assert_allclose(tokens[0, 0], null[0], atol=1e-6)
  np.testing.assert_allclose(tokens[0], tokens[2], atol=1e-6)
  np.testing.assert_allclose(pooled[0], null[0], atol=1e-6)
  # Kept rows are unaffected by the other rows' dropout.
  kept_tokens, kept_pooled = apply(params, ids, mask, jnp.zeros((3,), bool))
  np.testing.assert_allclose(tokens[1], kept_tokens[1], atol=1e-5)
  np.testing.assert_allclose(pooled[1], kept_pooled[1], atol=1e-5)
  # The null branch is learned: it gets gradients through a dropped row.
  grads = jax.grad(lambda p: jnp.sum(apply(p, ids, mask, drop)[1] ** 2))(params)
  assert float(jnp.abs(grads['null_tokens'][0]).max()) > 0


def test_null_method_matches_dropping(encoder):
  model, params, apply = encoder
  tokens, pooled, mask = model.apply({'params': params}, 2, 7, method=text_lib.TextEncoder.null)
  ids, real_mask = _batch()
  dropped_tokens, dropped_pooled = apply(params, ids, real_mask, jnp.ones((3,), bool))
  np.testing.assert_allclose(tokens[0], dropped_tokens[0], atol=1e-6)
  np.testing.assert_allclose(pooled[1], dropped_pooled[1], atol=1e-6)
  np.testing.assert_array_equal(mask, jnp.zeros((2, 7), bool).at[:, 0].set(True))
  drop = jnp.array([True, False, False])
  enc_tokens, _, enc_mask = model.apply({'params': params}, ids, real_mask, drop, method=text_lib.TextEncoder.encode)
  np.testing.assert_array_equal(enc_mask, text_lib.mask_after_drop(real_mask, drop))
  np.testing.assert_allclose(enc_tokens, apply(params, ids, real_mask, drop)[0], atol=1e-5)


def test_config_errors():
  with pytest.raises(ValueError, match='not divisible by heads'):
    text_lib.TextEncoderConfig(width=30, heads=4)
  with pytest.raises(ValueError, match='Unknown config key text.layers'):
    text_lib.TextEncoderConfig.from_config({'width': 32, 'layers': 2})
  assert text_lib.TextEncoderConfig.from_config({'width': 32, 'heads': 2}).width == 32
  model = text_lib.TextEncoder(CONFIG)
  ids = jnp.ones((1, 9), jnp.int32)
  with pytest.raises(ValueError, match='max_length'):
    jax.eval_shape(lambda: model.init(jax.random.key(0), ids, ids > 0))
