"""The shared optimizer: per-module learning-rate scales, and the state layout old checkpoints rely on."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vidgen.train import optimizer


def _params():
  return {'denoiser': {'w': jnp.ones((3, 2))}, 'text_encoder': {'w': jnp.ones((4, 2)), 'b': jnp.ones((2,))}}


def _one_update(lr_scales):
  config = optimizer.OptimConfig(lr=1e-2, warmup_steps=0, lr_scales=lr_scales)
  opt = optimizer.make_optimizer(config, total_steps=10)
  params = _params()
  grads = jax.tree.map(lambda p: 0.5 * p, params)
  updates, _ = opt.update(grads, opt.init(params), params)
  return updates


def test_lr_scales_multiply_the_updates_of_a_module():
  plain = _one_update({})
  scaled = _one_update({'text_encoder': 0.1})
  np.testing.assert_allclose(scaled['denoiser']['w'], plain['denoiser']['w'])
  for k in ('w', 'b'):
    np.testing.assert_allclose(scaled['text_encoder'][k], 0.1 * plain['text_encoder'][k], rtol=1e-6)
    assert np.all(np.asarray(plain['text_encoder'][k]) != 0)
  frozen = _one_update({'text_encoder': 0.0})
  assert not np.any(np.asarray(frozen['text_encoder']['w']))


def test_no_scales_keeps_the_optimizer_state_layout_of_earlier_runs():
  config = optimizer.OptimConfig()
  state = optimizer.make_optimizer(config, 10).init(_params())
  decay_mask = lambda params: jax.tree.map(lambda p: p.ndim > 1, params)
  reference = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(lambda step: 1e-3, mask=decay_mask)).init(_params())
  assert jax.tree.structure(state) == jax.tree.structure(reference)


def test_bad_lr_scales_are_clear_errors():
  with pytest.raises(ValueError, match='not top-level parameter modules'):
    _one_update({'text': 0.1})
  with pytest.raises(ValueError, match='must be >= 0'):
    _one_update({'text_encoder': -1.0})


def test_weight_decay_skips_vectors_and_learned_rope_frequencies():
  config = optimizer.OptimConfig(lr=1e-2, warmup_steps=0, weight_decay=0.5)
  opt = optimizer.make_optimizer(config, total_steps=10)
  params = {'denoiser': {'w': jnp.ones((3, 2)), 'b': jnp.ones((2,)), 'rope_freqs': jnp.ones((2, 4, 3))}}
  zero_grads = jax.tree.map(jnp.zeros_like, params)
  updates, _ = opt.update(zero_grads, opt.init(params), params)  # with no gradient, only decay moves a weight
  assert np.all(np.asarray(updates['denoiser']['w']) < 0)
  assert not np.any(np.asarray(updates['denoiser']['b']))
  assert not np.any(np.asarray(updates['denoiser']['rope_freqs']))
