"""The DiT: every variant's shapes, adaLN-Zero identity at init, clean frames, scan/remat, FLOPs, overfitting."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from vidgen.diffusion import objectives
from vidgen.models import dit
from vidgen.models import flops
from vidgen.models import layers

TEXT_WIDTH = 16


def _config(**kw):
  kw = {'size': 'tiny', 'depth': 1, 'width': 32, 'heads': 2, 'latent_channels': 4, 'text_width': TEXT_WIDTH,
        'scan_layers': False, **kw}
  return dit.DiTConfig(**kw)


def _inputs(config, b=2, t=3, h=8, w=8, length=5, seed=0):
  """Model inputs drawn with numpy (no XLA compile per shape); frame 0 of example 0 given clean."""
  rng = np.random.default_rng(seed)
  shape = (b, t, h, w, config.latent_channels)
  normal = lambda *s: jnp.asarray(rng.standard_normal(s), jnp.float32)
  text_mask = np.arange(length)[None] < np.array([3, length])[:b, None]
  cond_mask = np.zeros((b, t), bool)
  cond_mask[0, 0] = True
  return dict(x=normal(*shape), t=jnp.asarray(rng.uniform(size=b), jnp.float32),
              text=normal(b, length, config.text_width), text_mask=jnp.asarray(text_mask),
              cond_mask=jnp.asarray(cond_mask), cond_latents=normal(*shape))


def _init(config, inputs):
  """The model and its initial params (jitted init: one compile instead of many eager ops)."""
  model = dit.DiT(config)
  params = jax.jit(lambda i: nn.unbox(model.init(jax.random.key(1), **i)['params']))(inputs)
  return model, params


def _random_model(config, inputs, seed=7, scale=0.2):
  """The model and random values in every parameter (so zero-initialised layers hide nothing).

  Drawn with numpy from the shapes of `init` (eval_shape): no XLA compile, which keeps these
  tests fast; the model then runs eagerly.
  """
  model = dit.DiT(config)
  shapes = jax.eval_shape(lambda: nn.unbox(model.init(jax.random.key(1), **inputs)['params']))
  return model, _randomize(shapes, seed, scale)


def _randomize(params, seed=7, scale=0.2):
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda leaf: jnp.asarray(scale * rng.standard_normal(leaf.shape), jnp.float32), params)


def _apply(model):
  return lambda p, i: model.apply({'params': p}, **i)


@pytest.mark.parametrize('attention', dit.ATTENTIONS)
@pytest.mark.parametrize('conditioning', dit.CONDITIONINGS)
def test_every_variant_gives_the_right_shape(conditioning, attention):
  # Traced, not run (shapes are decided at trace time; numerics are run in the tests below).
  config = _config(conditioning=conditioning, attention=attention)
  inputs = _inputs(config)
  model = dit.DiT(config)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), **inputs))
  out = jax.eval_shape(lambda v: model.apply(v, **inputs), variables)
  assert out.shape == inputs['x'].shape and out.dtype == jnp.float32


@pytest.mark.parametrize('patch,grid,attention', [
    ((1, 1, 1), (1, 4, 4), 'full'), ((1, 2, 2), (1, 8, 8), 'factorized'), ((2, 2, 2), (4, 8, 8), 'factorized'),
    ((1, 4, 2), (3, 8, 12), 'full'), ((2, 1, 1), (2, 2, 6), 'full')])
def test_patch_sizes_images_and_aspect_ratios(patch, grid, attention):
  config = _config(patch=patch, attention=attention, conditioning='in_context')
  t, h, w = grid
  inputs = _inputs(config, t=t, h=h, w=w)
  model = dit.DiT(config)
  params = jax.eval_shape(lambda: model.init(jax.random.key(0), **inputs))
  out = jax.eval_shape(lambda p: model.apply(p, **inputs), params)
  assert out.shape == inputs['x'].shape
  assert config.num_tokens(t, h, w) == (t // patch[0]) * (h // patch[1]) * (w // patch[2])


def test_image_input_runs_in_bfloat16():
  config = _config(dtype='bfloat16')
  inputs = _inputs(config, t=1)
  model, params = _random_model(config, inputs)
  boxed = jax.eval_shape(lambda: model.init(jax.random.key(1), **inputs))
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(boxed))  # params stay float32
  out = jax.jit(_apply(model))(params, inputs)  # one compile: cheaper than eager bfloat16 ops
  assert out.shape == (2, 1, 8, 8, 4) and out.dtype == jnp.float32 and np.all(np.isfinite(out))


@pytest.mark.parametrize('conditioning,attention', [
    ('adaln_zero', 'full'), ('adaln_zero', 'factorized'), ('cross_attention', 'full'),
    ('cross_attention', 'factorized'), ('in_context', 'full'), ('in_context', 'factorized'), ('adaln', 'full')])
def test_adaln_zero_blocks_are_the_identity_at_init(conditioning, attention):
  config = _config(conditioning=conditioning, attention=attention)
  b, grid, d, length = 2, (3, 2, 2), config.hidden_size, 4
  rng = np.random.default_rng(0)
  normal = lambda *s: jnp.asarray(rng.standard_normal(s), jnp.float32)
  x, c = normal(b, 12, d), normal(b, d)
  x_text = normal(b, length, d) if conditioning == 'in_context' else None
  context = None if conditioning == 'in_context' else normal(b, length, d)
  mask = jnp.ones((b, length), bool)
  rope = layers.rope_3d(dit.token_positions(b, grid), config.head_dim)
  block = dit.DiTBlock(config, grid)

  @jax.jit
  def init_and_apply(x, x_text, c, context, rope):
    variables = block.init(jax.random.key(1), (x, x_text), c, context, mask, rope)
    return block.apply(variables, (x, x_text), c, context, mask, rope)[0]

  y, y_text = init_and_apply(x, x_text, c, context, rope)
  if conditioning == 'adaln':  # plain adaLN has no zero gates: not the identity
    assert not np.allclose(y, x, atol=1e-3)
    return
  np.testing.assert_array_equal(y, x)
  if x_text is not None:
    np.testing.assert_array_equal(y_text, x_text)


def test_frames_given_clean_replace_the_noisy_input_and_are_flagged():
  config = _config()
  inputs = _inputs(config)
  model, params = _random_model(config, inputs)
  apply = _apply(model)
  out = apply(params, inputs)
  # Whatever noisy values sit at a clean frame, the clean latents are what the model reads.
  changed = dict(inputs, x=inputs['x'].at[0, 0].set(5.0))
  np.testing.assert_allclose(apply(params, changed), out, atol=1e-5)
  # Giving the same values clean vs noisy changes the output (the flag embedding is seen).
  same_values = dict(inputs, cond_latents=inputs['x'])
  unflagged = dict(same_values, cond_mask=jnp.zeros_like(inputs['cond_mask']))
  assert not np.allclose(apply(params, same_values), apply(params, unflagged), atol=1e-4)


@pytest.mark.parametrize('conditioning,attention', [('adaln_zero', 'full'), ('cross_attention', 'factorized'),
                                                    ('in_context', 'full'), ('in_context', 'factorized')])
def test_padded_text_tokens_do_not_matter(conditioning, attention):
  config = _config(conditioning=conditioning, attention=attention)
  inputs = _inputs(config)
  model, params = _random_model(config, inputs)
  apply = _apply(model)
  noise = 50.0 * _inputs(config, seed=9)['text']
  changed = dict(inputs, text=jnp.where(inputs['text_mask'][..., None], inputs['text'], noise))
  np.testing.assert_allclose(apply(params, changed), apply(params, inputs), atol=1e-4)
  other = dict(inputs, text=inputs['text'] + 1.0)
  assert not np.allclose(apply(params, other), apply(params, inputs), atol=1e-4)


def test_scan_equals_loop_and_remat_keeps_values():
  depth = 2
  loop_cfg = _config(depth=depth, attention='factorized', conditioning='in_context')
  inputs = _inputs(loop_cfg)
  loop_model, loop_params = _random_model(loop_cfg, inputs)
  stacked = {k: v for k, v in loop_params.items() if not k.startswith('block')}
  stacked['blocks'] = jax.tree.map(lambda *a: jnp.stack(a), *[loop_params[f'block{i}'] for i in range(depth)])
  expected = _apply(loop_model)(loop_params, inputs)
  scan_model = dit.DiT(dataclasses.replace(loop_cfg, scan_layers=True, remat='dots_no_batch'))
  np.testing.assert_allclose(_apply(scan_model)(stacked, inputs), expected, atol=2e-5)


@pytest.mark.parametrize('remat', list(dit.REMAT_POLICIES))
@pytest.mark.parametrize('scan_layers', [True, False])
def test_every_remat_policy_traces_forward_and_backward(remat, scan_layers):
  config = _config(depth=2, remat=remat, scan_layers=scan_layers)
  inputs = _inputs(config)
  model = dit.DiT(config)
  params = jax.eval_shape(lambda: nn.unbox(model.init(jax.random.key(1), **inputs)['params']))
  grads = jax.eval_shape(jax.grad(lambda p: jnp.sum(model.apply({'params': p}, **inputs) ** 2)), params)
  assert jax.tree.map(lambda g: g.shape, grads) == jax.tree.map(lambda p: p.shape, params)


def test_scanned_params_carry_a_layers_axis_and_logical_names():
  config = _config(depth=3, scan_layers=True)
  inputs = _inputs(config)
  model = dit.DiT(config)
  boxed = jax.eval_shape(lambda: model.init(jax.random.key(0), **inputs))['params']
  q = boxed['blocks']['attn']['query']['kernel']
  assert q.names == ('layers', 'embed', 'heads', 'kv') and q.value.shape == (3, 32, 2, 16)
  assert boxed['blocks']['mlp']['fc1']['dense']['kernel'].names == ('layers', 'embed', 'mlp')
  specs = nn.get_partition_spec(boxed)
  assert specs['patch_embed']['dense']['kernel'] == jax.sharding.PartitionSpec(None, 'embed')
  assert dit.count_params(config) == dit.count_params(boxed) == dit.count_params(nn.unbox(boxed))


def test_mixed_rope_starts_as_axial_rope_and_learns_its_frequencies():
  config = _config(depth=2, rope_mixed=True)
  inputs = _inputs(config)
  model, params = _init(config, inputs)
  assert params['rope_freqs'].shape == (2, config.head_dim // 2, 3)
  plain = {k: v for k, v in params.items() if k != 'rope_freqs'}
  plain_model = dit.DiT(dataclasses.replace(config, rope_mixed=False))
  randomized = _randomize(plain)  # every other weight non-zero, so attention really mixes tokens
  out = _apply(model)({**randomized, 'rope_freqs': params['rope_freqs']}, inputs)
  np.testing.assert_allclose(out, _apply(plain_model)(randomized, inputs), atol=1e-5)
  grads = jax.grad(lambda f: jnp.sum(_apply(model)({**randomized, 'rope_freqs': f}, inputs) ** 2))(
      params['rope_freqs'])
  assert np.all(np.isfinite(grads)) and np.abs(grads).max() > 1e-6


def test_sizes_and_config_errors():
  assert dit.DiTConfig(size='XL').dims == (28, 1152, 16)
  assert dit.DiTConfig(size='B', depth=4).dims == (4, 768, 12)
  assert dit.DiTConfig(size='tiny').head_dim == 16
  with pytest.raises(ValueError, match='not a DiT size'):
    dit.DiTConfig(size='M')
  with pytest.raises(ValueError, match='conditioning'):
    dit.DiTConfig(conditioning='film')
  with pytest.raises(ValueError, match='attention'):
    dit.DiTConfig(attention='axial')
  with pytest.raises(ValueError, match='not divisible by heads'):
    dit.DiTConfig(size='tiny', heads=3)
  with pytest.raises(ValueError, match='RoPE'):
    dit.DiTConfig(size='tiny', width=64, heads=16)  # head_dim 4
  with pytest.raises(ValueError, match='remat'):
    dit.DiTConfig(remat='some')
  with pytest.raises(ValueError, match="rope_mixed needs dit.attention='full'"):
    dit.DiTConfig(rope_mixed=True, attention='factorized')
  cfg = dit.DiTConfig.from_config(ml_collections.ConfigDict(
      {'size': 'S', 'patch': [1, 2, 2], 'conditioning': 'adaln', 'remat': 'dots'}))
  assert cfg.patch == (1, 2, 2) and cfg.conditioning == 'adaln'
  with pytest.raises(ValueError, match="Unknown config key dit.widht.*Did you mean 'width'"):
    dit.DiTConfig.from_config({'size': 'S', 'widht': 3})


def test_latent_shape_errors_say_what_works():
  config = dit.DiTConfig(size='tiny', patch=(2, 2, 2))
  with pytest.raises(ValueError, match=r'latent frames 5 is not a multiple of 2 \(try 4 or 6\)'):
    config.check_latent_shape(5, 8, 8)
  with pytest.raises(ValueError, match='latent width 7'):
    config.check_latent_shape(4, 8, 7)
  model = dit.DiT(config)
  inputs = _inputs(config, t=3)
  with pytest.raises(ValueError, match='does not fit the DiT patch'):
    jax.eval_shape(lambda: model.init(jax.random.key(0), **inputs))
  with pytest.raises(ValueError, match='text_width'):
    jax.eval_shape(lambda: model.init(jax.random.key(0), **dict(_inputs(config, t=4), text=jnp.zeros((2, 5, 3)))))
  assert config.num_tokens(4, 8, 8) == 32


@pytest.mark.parametrize('conditioning,attention', [('adaln_zero', 'full'), ('cross_attention', 'factorized'),
                                                    ('in_context', 'factorized'), ('in_context', 'full')])
def test_flops_match_xla_cost_analysis(conditioning, attention):
  config = dit.DiTConfig(size='tiny', depth=2, width=128, heads=4, text_width=32, conditioning=conditioning,
                         attention=attention, scan_layers=False)
  model = dit.DiT(config)
  inputs = dit.example_inputs(config, batch=2, num_frames=3, height=8, width=8, text_len=8)
  params = jax.eval_shape(lambda: nn.unbox(model.init(jax.random.key(0), **inputs)['params']))
  cost = jax.jit(lambda p, i: model.apply({'params': p}, **i)).lower(params, inputs).cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  ours = flops.forward_flops(config, 2, 3, 8, 8, 8)
  assert 0.9 < ours / cost['flops'] < 1.02  # XLA also counts elementwise work
  assert flops.flops_per_step(config, 2, 3, 8, 8, 8) == 3 * ours


@pytest.mark.parametrize('conditioning,attention', [('adaln_zero', 'full'), ('cross_attention', 'factorized'),
                                                    ('in_context', 'factorized'), ('adaln', 'full')])
@pytest.mark.parametrize('scan', [False, True])
def test_flops_match_the_traced_matmuls(conditioning, attention, scan):
  """The analytic count against every dot_general the forward and the training step trace to. It
  leaves out only RoPE's angle einsum (positions × frequencies: 0.01% here) and, in the step, the
  input gradients of layers whose input is data: hence 2e-4, not 0."""
  config = dit.DiTConfig(size='tiny', depth=2, width=128, heads=4, text_width=32, conditioning=conditioning,
                         attention=attention, scan_layers=scan)
  model = dit.DiT(config)
  inputs = dit.example_inputs(config, batch=2, num_frames=3, height=8, width=8, text_len=8)
  params = jax.eval_shape(lambda: nn.unbox(model.init(jax.random.key(0), **inputs)['params']))
  forward = flops.traced_flops(lambda p: model.apply({'params': p}, **inputs), params)
  step = flops.traced_flops(jax.grad(lambda p: jnp.sum(model.apply({'params': p}, **inputs))), params)
  assert forward == pytest.approx(flops.forward_flops(config, 2, 3, 8, 8, 8), rel=2e-4)
  assert step == pytest.approx(flops.flops_per_step(config, 2, 3, 8, 8, 8), rel=2e-4)


def test_tiny_dit_overfits_a_fixed_batch():
  config = _config(depth=2, width=32, heads=2)
  flow = objectives.RectifiedFlow()
  inputs = _inputs(config, b=2, t=2, h=8, w=8)
  x0, noise = inputs['x'], _inputs(config, b=2, t=2, h=8, w=8, seed=42)['x']
  t = jnp.array([0.3, 0.7])
  cond_mask = inputs['cond_mask']
  batch = dict(inputs, x=flow.noisy(x0, noise, t), t=flow.model_time(t), cond_latents=x0, cond_mask=cond_mask)
  target = flow.target(x0, noise, t)
  model, params = _init(config, batch)
  optimizer = optax.adam(3e-3)

  def loss_fn(p):
    return flow.loss(model.apply({'params': p}, **batch), target, cond_mask)

  @jax.jit
  def train(params):
    def step(carry, _):
      params, opt_state = carry
      loss, grads = jax.value_and_grad(loss_fn)(params)
      updates, opt_state = optimizer.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), loss
    (params, _), losses = jax.lax.scan(step, (params, optimizer.init(params)), None, length=100)
    return losses, loss_fn(params)

  losses, final = train(params)
  # The output is 0 at init (adaLN-Zero blocks, zero final layer): the first loss is E[target²].
  np.testing.assert_allclose(losses[0], flow.loss(jnp.zeros_like(target), target, cond_mask), rtol=1e-6)
  assert final < 0.2 * losses[0], (float(losses[0]), float(final))
