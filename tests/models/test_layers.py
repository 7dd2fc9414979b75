"""Transformer layers: norms, attention masks, 3D RoPE (relative by construction), adaLN, logical axes."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidgen.models import layers


def _scores(q, k, positions, head_dim):
  cos, sin = layers.rope_3d(positions, head_dim)
  q, k = layers.apply_rope(q, cos, sin), layers.apply_rope(k, cos, sin)
  return jnp.einsum('bqhd,bkhd->bhqk', q, k)


def test_rms_norm_normalizes_and_scale_is_named():
  x = 3.0 * jax.random.normal(jax.random.key(0), (2, 5, 16))
  variables = layers.RMSNorm().init(jax.random.key(1), x)
  y = layers.RMSNorm().apply(variables, x)
  np.testing.assert_allclose(jnp.sqrt(jnp.mean(y ** 2, axis=-1)), 1.0, rtol=1e-4)
  assert variables['params']['scale'].names == ('embed',)


@pytest.mark.parametrize('head_dim,split', [(64, (20, 22, 22)), (72, (24, 24, 24)), (16, (4, 6, 6)), (6, (2, 2, 2))])
def test_rope_axes_split(head_dim, split):
  assert layers.rope_axes_split(head_dim) == split


@pytest.mark.parametrize('head_dim', [4, 15])
def test_rope_axes_split_rejects_bad_head_dim(head_dim):
  with pytest.raises(ValueError, match='head_dim'):
    layers.rope_axes_split(head_dim)


@pytest.mark.parametrize('shift', [(3, 0, 0), (0, 5, -2), (7, 11, 13), (0.5, 1.25, -3.75)])
def test_rope_scores_invariant_to_shared_shift(shift):
  b, n, h, d = 2, 12, 3, 16
  kq, kk, kp = jax.random.split(jax.random.key(0), 3)
  q, k = jax.random.normal(kq, (b, n, h, d)), jax.random.normal(kk, (b, n, h, d))
  positions = jax.random.randint(kp, (b, n, 3), 0, 20).astype(jnp.float32)
  base = _scores(q, k, positions, d)
  shifted = _scores(q, k, positions + jnp.asarray(shift, jnp.float32), d)
  np.testing.assert_allclose(shifted, base, atol=1e-4)
  # Not invariant to moving one token alone: positions really enter the scores.
  moved = _scores(q, k, positions.at[:, 0].add(1.0), d)
  assert not np.allclose(moved, base, atol=1e-3)


def test_per_head_mixed_frequencies_stay_relative_and_axial_ones_are_rope_3d():
  b, n, h, d = 2, 10, 3, 12
  kq, kk, kp, kf = jax.random.split(jax.random.key(1), 4)
  q, k = jax.random.normal(kq, (b, n, h, d)), jax.random.normal(kk, (b, n, h, d))
  positions = jax.random.uniform(kp, (b, n, 3), maxval=9.0)
  freqs = jax.random.normal(kf, (h, d // 2, 3))  # every head its own (t, h, w) frequency vectors

  def scores(pos):
    cos, sin = layers.rope_from_frequencies(pos, freqs)
    assert cos.shape == (b, n, h, d // 2)
    return jnp.einsum('bqhd,bkhd->bhqk', layers.apply_rope(q, cos, sin), layers.apply_rope(k, cos, sin))

  np.testing.assert_allclose(scores(positions + jnp.asarray([2.0, -1.5, 4.0])), scores(positions), atol=1e-4)
  axial = layers.rope_3d_frequencies(d)
  np.testing.assert_allclose(layers.rope_from_frequencies(positions, axial)[0], layers.rope_3d(positions, d)[0])


def test_a_mixed_frequency_follows_a_diagonal_that_axial_rope_cannot():
  """A pair turning with t − w scores a key at (s, 0, s) as one at (0, 0, 0): attention can track
  an object moving one cell per frame. Axial pairs (t alone, w alone) cannot: their score is
  f(Δt) + g(Δw), which is not constant along the diagonal."""
  d = 6
  q = jax.random.normal(jax.random.key(0), (1, 1, 1, d))
  k = jnp.broadcast_to(jax.random.normal(jax.random.key(1), (1, 1, 1, d)), (1, 5, 1, d))
  keys_at = jnp.asarray([[[s, 0.0, s] for s in range(5)]], jnp.float32)  # the diagonal t = w

  def scores(freqs):
    cq, sq = layers.rope_from_frequencies(jnp.zeros((1, 1, 3)), freqs)
    ck, sk = layers.rope_from_frequencies(keys_at, freqs)
    return jnp.einsum('bqhd,bkhd->bk', layers.apply_rope(q, cq, sq), layers.apply_rope(k, ck, sk))[0]

  diagonal = jnp.asarray([[0.7, 0.0, -0.7], [0.3, 0.0, -0.3], [1.1, 0.0, -1.1]])
  np.testing.assert_allclose(scores(diagonal), jnp.full((5,), scores(diagonal)[0]), atol=1e-5)
  assert np.ptp(np.asarray(scores(layers.rope_3d_frequencies(d, theta=10.0)))) > 0.1


def test_rope_preserves_norm_and_identity_rope_is_identity():
  x = jax.random.normal(jax.random.key(0), (2, 6, 2, 12))
  positions = jax.random.uniform(jax.random.key(1), (2, 6, 3), maxval=30.0)
  cos, sin = layers.rope_3d(positions, 12)
  assert cos.shape == (2, 6, 6)
  np.testing.assert_allclose(jnp.linalg.norm(layers.apply_rope(x, cos, sin), axis=-1),
                             jnp.linalg.norm(x, axis=-1), rtol=1e-5)
  np.testing.assert_allclose(layers.apply_rope(x, *layers.identity_rope(2, 6, 12)), x, atol=1e-6)


def test_rope_axis_blocks_rotate_by_their_own_axis():
  """Moving along time only rotates the time block of pairs; h and w blocks stay put."""
  d = 16  # split (4, 6, 6): pairs 0-1 time, 2-4 height, 5-7 width
  pos = jnp.zeros((1, 1, 3))
  cos0, _ = layers.rope_3d(pos, d)
  cos_t, _ = layers.rope_3d(pos.at[..., 0].set(1.0), d)
  changed = np.abs(np.asarray(cos_t - cos0))[0, 0] > 1e-6
  np.testing.assert_array_equal(changed, [True, True, False, False, False, False, False, False])


def _attention(**kw):
  return layers.Attention(num_heads=2, head_dim=8, **kw)


def test_attention_self_and_cross_shapes_and_axis_names():
  x = jax.random.normal(jax.random.key(0), (2, 7, 16))
  ctx = jax.random.normal(jax.random.key(1), (2, 5, 24))
  variables = _attention().init(jax.random.key(2), x, ctx)
  assert _attention().apply(variables, x, ctx).shape == (2, 7, 16)
  p = variables['params']
  assert p['query']['kernel'].names == ('embed', 'heads', 'kv')
  assert p['key']['kernel'].value.shape == (24, 2, 8)
  assert p['out']['kernel'].names == ('heads', 'kv', 'embed')
  assert p['query_norm']['scale'].names == ('kv',)
  rope = layers.rope_3d(jnp.zeros((2, 7, 3)), 8)
  self_vars = _attention().init(jax.random.key(3), x, rope=rope)
  assert _attention().apply(self_vars, x, rope=rope).shape == x.shape


def test_attend_matches_numpy_softmax_attention_with_a_key_mask():
  """softmax(q·kᵀ / √d, masked keys excluded) · v per head, against a plain NumPy loop."""
  rng = np.random.default_rng(0)
  q, k, v = rng.normal(size=(2, 5, 3, 4)), rng.normal(size=(2, 6, 3, 4)), rng.normal(size=(2, 6, 3, 4))
  mask = np.array([[1, 1, 0, 1, 0, 1], [1, 1, 1, 1, 1, 1]], bool)
  expected = np.zeros_like(q)
  for b in range(2):
    for h in range(3):
      logits = q[b, :, h] @ k[b, :, h].T / 2.0
      logits = np.where(mask[b], logits, -np.inf)
      weights = np.exp(logits - logits.max(-1, keepdims=True))
      expected[b, :, h] = (weights / weights.sum(-1, keepdims=True)) @ v[b, :, h]
  out = layers.attend(*(jnp.asarray(a, jnp.float32) for a in (q, k, v)), jnp.asarray(mask))
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_attention_key_mask_ignores_masked_keys():
  x = jax.random.normal(jax.random.key(0), (2, 4, 16))
  ctx = jax.random.normal(jax.random.key(1), (2, 6, 16))
  mask = jnp.array([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0]], bool)
  variables = _attention().init(jax.random.key(2), x, ctx, mask=mask)
  out = _attention().apply(variables, x, ctx, mask=mask)
  changed = jnp.where(mask[..., None], ctx, 100.0 * jax.random.normal(jax.random.key(3), ctx.shape))
  np.testing.assert_allclose(_attention().apply(variables, x, changed, mask=mask), out, atol=1e-5)
  # A query with no valid key gives a finite result (uniform attention), not NaN.
  empty = _attention().apply(variables, x, ctx, mask=jnp.zeros_like(mask))
  assert np.all(np.isfinite(empty))


def test_qk_norm_bounds_logits():
  """With QK-RMSNorm, scaling the input up does not scale the attention logits up."""
  x = jax.random.normal(jax.random.key(0), (1, 5, 16))
  variables = _attention().init(jax.random.key(1), x)
  np.testing.assert_allclose(_attention().apply(variables, 1000.0 * x), _attention().apply(variables, x) * 1000.0,
                             rtol=1e-3, atol=1e-2)


def test_mlp_shape_and_names():
  x = jnp.ones((2, 3, 8))
  variables = layers.Mlp(mlp_ratio=4.0).init(jax.random.key(0), x)
  assert variables['params']['fc1']['dense']['kernel'].value.shape == (8, 32)
  assert variables['params']['fc1']['dense']['kernel'].names == ('embed', 'mlp')
  assert variables['params']['fc2']['dense']['kernel'].names == ('mlp', 'embed')
  assert layers.Mlp().apply(variables, x).shape == x.shape


def test_modulate_and_zero_init_adaln():
  x = jax.random.normal(jax.random.key(0), (2, 3, 4))
  shift, scale = jnp.ones((2, 4)), 2 * jnp.ones((2, 4))
  np.testing.assert_allclose(layers.modulate(x, shift, scale), 3 * x + 1, rtol=1e-6)
  c = jax.random.normal(jax.random.key(1), (2, 8))
  mod = layers.AdaLNModulation(num_chunks=3, width=4, zero_init=True)
  chunks = mod.apply(mod.init(jax.random.key(2), c), c)
  assert len(chunks) == 3 and chunks[0].shape == (2, 1, 4)
  assert all(float(jnp.abs(ch).max()) == 0.0 for ch in chunks)
  mod = layers.AdaLNModulation(num_chunks=2, width=4, zero_init=False)
  assert float(jnp.abs(mod.apply(mod.init(jax.random.key(2), c), c)[0]).max()) > 0


def test_logical_constraints_are_noops_without_rules_and_apply_under_a_mesh():
  x = jax.random.normal(jax.random.key(0), (2, 7, 16))
  variables = _attention().init(jax.random.key(1), x)
  plain = _attention().apply(variables, x)
  mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ('data',))
  rules = (('activation_batch', 'data'), ('embed', None), ('heads', None), ('kv', None))
  with mesh, nn.logical_axis_rules(rules):
    sharded = jax.jit(lambda v, x: _attention().apply(v, x))(variables, x)
  np.testing.assert_allclose(sharded, plain, atol=1e-5)


def test_timestep_embedding_and_masked_mean():
  emb = layers.timestep_embedding(jnp.array([0.0, 500.0]), 256)
  assert emb.shape == (2, 256)
  np.testing.assert_allclose(emb[0, :128], 1.0)
  x = jnp.arange(12.0).reshape(1, 4, 3)
  np.testing.assert_allclose(layers.masked_mean(x, jnp.array([[1, 1, 0, 0]], bool)), [[1.5, 2.5, 3.5]])
  np.testing.assert_allclose(layers.masked_mean(x, jnp.zeros((1, 4), bool)), [[0, 0, 0]])


def test_token_matmul_values_and_gradients_match_numpy():
  """The custom weight gradient is the matmul's: x [B, N, K] @ w [K, M] and both gradients."""
  rng = np.random.default_rng(0)
  x, w, g = rng.normal(size=(3, 5, 4)), rng.normal(size=(4, 6)), rng.normal(size=(3, 5, 6))
  y, vjp = jax.vjp(layers.token_matmul, jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32))
  dx, dw = vjp(jnp.asarray(g, jnp.float32))
  np.testing.assert_allclose(y, x @ w, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(dx, g @ w.T, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(dw, np.einsum('bnk,bnm->km', x, g), rtol=1e-5, atol=1e-5)


def test_dense_uses_token_matmul_with_flax_dense_parameters_and_values():
  x = jax.random.normal(jax.random.key(0), (2, 3, 8))
  ours, ref = layers.Dense(5), nn.Dense(5)
  params = ours.init(jax.random.key(1), x)['params']['dense']
  params = nn.unbox(params)
  loss = lambda module, p: jnp.sum(jnp.sin(module.apply({'params': p}, x)))
  ours_value, ours_grad = jax.value_and_grad(lambda p: loss(ours, {'dense': p}))(params)
  ref_value, ref_grad = jax.value_and_grad(lambda p: loss(ref, p))(params)
  np.testing.assert_allclose(ours_value, ref_value, rtol=1e-5)
  for name in ('kernel', 'bias'):
    np.testing.assert_allclose(ours_grad[name], ref_grad[name], rtol=1e-5, atol=1e-6)
