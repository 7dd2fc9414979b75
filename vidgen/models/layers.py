"""Transformer building blocks shared by the DiT and the text encoder.

* `RMSNorm`, `Mlp` (GELU), multi-head `Attention` with QK-RMSNorm, optional RoPE and key mask,
  self- or cross-attention.
* 3D rotary position embedding: `rope_3d` splits the head dimension over (time, height,
  width); `apply_rope` rotates queries and keys. Relative by construction: the score between
  two tokens depends only on the difference of their positions.
* adaLN: `modulate(x, shift, scale)` and `AdaLNModulation`, which regresses shift/scale/gate
  vectors from a conditioning vector (zero-initialised for adaLN-Zero).

Parameters carry logical axis names (`embed`, `mlp`, `heads`, `kv`, `vocab`) and activations
are constrained with `activation_*` names; both are no-ops until config rules map them to mesh
axes (vidgen/parallel). Model code never names a mesh axis.

Attention is computed with einsums and a float32 softmax (`attend`). On CPU this measured
faster than `jax.nn.dot_product_attention` for the gradient, which is what training runs
(8 × 576 tokens, 6 heads of 64: 0.60 s vs 0.72 s forward+backward; 8 × 80 tokens, 4 heads of
16: 2.0 ms vs 11 ms), and keeps the mask and dtype handling explicit. A fused TPU/GPU kernel
can replace `attend` later without touching the modules.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

# Logical axis names of activations (mapped to mesh axes by config rules, never here).
BATCH, LENGTH, EMBED = 'activation_batch', 'activation_length', 'activation_embed'
KV_LENGTH = 'activation_kv_length'  # keys/values' tokens (gathered under sequence parallelism)
HEADS, KV, MLP = 'activation_heads', 'activation_kv', 'activation_mlp'

_NEG_INF = -1e30  # masked logits: finite, so a row with no valid key gives a uniform softmax, not NaN


def constrain(x: Array, names: Sequence[str | None]) -> Array:
  """`nn.with_logical_constraint` (a no-op without a mesh and rules)."""
  return nn.with_logical_constraint(x, tuple(names))


def dense_init(axes: Sequence[str | None], init: Any = None) -> Any:
  """A kernel initializer (default: xavier uniform, as in DiT) annotated with logical axes."""
  return nn.with_logical_partitioning(init or nn.initializers.xavier_uniform(), tuple(axes))


def zeros_init(axes: Sequence[str | None]) -> Any:
  return nn.with_logical_partitioning(nn.initializers.zeros_init(), tuple(axes))


class RMSNorm(nn.Module):
  """x / rms(x) · scale over the last axis, computed in float32; `axis_name` names the scale."""
  epsilon: float = 1e-6
  dtype: Any = jnp.float32
  axis_name: str | None = 'embed'
  use_scale: bool = True

  @nn.compact
  def __call__(self, x: Array) -> Array:
    x32 = x.astype(jnp.float32)
    y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.epsilon)
    if self.use_scale:
      scale = self.param('scale', nn.with_logical_partitioning(nn.initializers.ones_init(), (self.axis_name,)),
                         (x.shape[-1],), jnp.float32)
      y = y * scale
    return y.astype(self.dtype)


class LayerNorm(nn.Module):
  """LayerNorm in float32 (no affine parameters by default: adaLN supplies them)."""
  epsilon: float = 1e-6
  dtype: Any = jnp.float32
  use_affine: bool = False

  @nn.compact
  def __call__(self, x: Array) -> Array:
    y = nn.LayerNorm(epsilon=self.epsilon, dtype=jnp.float32, use_bias=self.use_affine,
                     use_scale=self.use_affine,
                     scale_init=nn.with_logical_partitioning(nn.initializers.ones_init(), ('embed',)),
                     bias_init=zeros_init(('embed',)), name='norm')(x.astype(jnp.float32))
    return y.astype(self.dtype)


@jax.custom_vjp
def token_matmul(x: Array, kernel: Array) -> Array:
  """x [..., K] @ kernel [K, N]: jnp.matmul, with the weight gradient taken over the flattened
  tokens, one [tokens, K]ᵀ·[tokens, N] dot.

  Autodiff of the same matmul on [B, N, K] contracts batch and length in one dot_general, which
  XLA's CPU backend runs after copying the output gradient into a transposed layout; flattened,
  the dot needs no copy. Same values and shapes; the DiT-B/2 training step ran 6% faster
  (`experiments/benchmarks/dit_step.py`).
  """
  return jnp.matmul(x, kernel)


def _token_matmul_fwd(x: Array, kernel: Array) -> tuple[Array, tuple[Array, Array]]:
  return jnp.matmul(x, kernel), (x, kernel)


def _token_matmul_bwd(residuals: tuple[Array, Array], g: Array) -> tuple[Array, Array]:
  x, kernel = residuals
  tokens = x.reshape(-1, x.shape[-1])
  return jnp.matmul(g, kernel.T), jnp.matmul(tokens.T, g.reshape(-1, g.shape[-1]))


token_matmul.defvjp(_token_matmul_fwd, _token_matmul_bwd)


def dense_dot_general(lhs: Array, rhs: Array, dimension_numbers: Any, precision: Any = None,
                      preferred_element_type: Any = None) -> Array:
  """nn.Dense's dot_general (x's last dim with the kernel's first) through `token_matmul`."""
  if dimension_numbers != (((lhs.ndim - 1,), (0,)), ((), ())) or precision or preferred_element_type:
    return jax.lax.dot_general(lhs, rhs, dimension_numbers, precision, preferred_element_type)
  return token_matmul(lhs, rhs)


class Dense(nn.Module):
  """nn.Dense with logical axes on its kernel (in, out) and bias (out); params float32."""
  features: int
  axes: tuple[str | None, str | None] = ('embed', 'mlp')
  dtype: Any = jnp.float32
  use_bias: bool = True
  zero_init: bool = False
  kernel_init: Any = None

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kernel_init = (zeros_init(self.axes) if self.zero_init else dense_init(self.axes, self.kernel_init))
    return nn.Dense(self.features, use_bias=self.use_bias, dtype=self.dtype, param_dtype=jnp.float32,
                    kernel_init=kernel_init, bias_init=zeros_init((self.axes[1],)), dot_general=dense_dot_general,
                    name='dense')(x)


class Mlp(nn.Module):
  """Dense(width → mlp_ratio·width) → GELU (tanh) → Dense(→ width)."""
  mlp_ratio: float = 4.0
  dtype: Any = jnp.float32
  zero_init_out: bool = False

  @nn.compact
  def __call__(self, x: Array) -> Array:
    width = x.shape[-1]
    h = Dense(int(self.mlp_ratio * width), ('embed', 'mlp'), self.dtype, name='fc1')(x)
    h = constrain(nn.gelu(h, approximate=True), (BATCH, LENGTH, MLP))
    return Dense(width, ('mlp', 'embed'), self.dtype, zero_init=self.zero_init_out, name='fc2')(h)


def modulate(x: Array, shift: Array, scale: Array) -> Array:
  """adaLN: x · (1 + scale) + shift; shift/scale [B, D] or [B, 1, D] broadcast over tokens."""
  if shift.ndim == x.ndim - 1:
    shift, scale = shift[:, None], scale[:, None]
  return x * (1 + scale.astype(x.dtype)) + shift.astype(x.dtype)


class AdaLNModulation(nn.Module):
  """c [B, Dc] → `num_chunks` vectors [B, 1, width] (SiLU → Dense), e.g. shift/scale/gate.

  `zero_init` zero-initialises the regression (adaLN-Zero): shifts, scales and gates start at 0,
  so a gated residual branch starts switched off.
  """
  num_chunks: int
  width: int
  zero_init: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, c: Array) -> list[Array]:
    out = Dense(self.num_chunks * self.width, ('embed', 'mlp'), self.dtype, zero_init=self.zero_init,
                name='proj')(nn.silu(c))
    return [o[:, None, :] for o in jnp.split(out, self.num_chunks, axis=-1)]


# ---------------------------------------------------------------------------------------------
# Rotary position embedding over (t, h, w).


def rope_axes_split(head_dim: int, num_axes: int = 3) -> tuple[int, ...]:
  """Splits `head_dim` into `num_axes` even parts, as evenly as possible.

  The rotated pairs (head_dim / 2 of them) are dealt out evenly; the remainder goes to the last
  axes (height and width before time), e.g. 64 → (20, 22, 22), 72 → (24, 24, 24), 16 → (4, 6, 6).
  Raises if head_dim is odd or too small to give every axis a pair.
  """
  if head_dim % 2 or head_dim < 2 * num_axes:
    raise ValueError(f'3D RoPE needs an even head_dim >= {2 * num_axes} (one rotated pair per axis); '
                     f'got head_dim={head_dim}. Choose width / heads even and >= {2 * num_axes}.')
  pairs = head_dim // 2
  base, extra = divmod(pairs, num_axes)
  return tuple(2 * (base + (1 if i >= num_axes - extra else 0)) for i in range(num_axes))


def rope_3d_frequencies(head_dim: int, axes_split: Sequence[int] | None = None, theta: float = 10000.0,
                        num_axes: int = 3) -> Array:
  """Axial RoPE frequencies [head_dim / 2, num_axes]: pair i turns by freqs[i] · (t, h, w).

  Axis a gets `axes_split[a]` dims of the head (default `rope_axes_split(head_dim)`), i.e.
  axes_split[a] / 2 rotated pairs with frequencies theta^(-2j / axes_split[a]) on that axis and
  0 on the others. Pairs are (x[i], x[i + head_dim/2]) (the "rotate half" layout); pair i belongs
  to the axis whose block of pairs contains i, in the order t, h, w.
  """
  split = tuple(axes_split) if axes_split is not None else rope_axes_split(head_dim, num_axes)
  if len(split) != num_axes or sum(split) != head_dim or any(s % 2 for s in split):
    raise ValueError(f'RoPE axes_split {split} must have one even entry per position axis '
                     f'({num_axes}) summing to head_dim={head_dim}.')
  rows = []
  for axis, dim in enumerate(split):
    freqs = theta ** (-jnp.arange(0, dim, 2, dtype=jnp.float32) / dim)  # [dim / 2]
    rows.append(jnp.zeros((dim // 2, num_axes), jnp.float32).at[:, axis].set(freqs))
  return jnp.concatenate(rows, axis=0)


def rope_from_frequencies(positions: Array, freqs: Array) -> tuple[Array, Array]:
  """cos and sin of the angles positions [B, N, A] · freqs [..., P, A]: [B, N, ..., P].

  With freqs [P, A] every head shares the rotation; with [heads, P, A] each head has its own.
  """
  angles = jnp.einsum('bna,...pa->bn...p', positions.astype(jnp.float32), freqs.astype(jnp.float32))
  return jnp.cos(angles), jnp.sin(angles)


def rope_3d(positions: Array, head_dim: int, axes_split: Sequence[int] | None = None,
            theta: float = 10000.0) -> tuple[Array, Array]:
  """cos and sin [B, N, head_dim / 2] of axial RoPE (`rope_3d_frequencies`) for tokens at
  `positions` [B, N, 3] (t, h, w). Positions may be fractional."""
  return rope_from_frequencies(positions, rope_3d_frequencies(head_dim, axes_split, theta, positions.shape[-1]))


def apply_rope(x: Array, cos: Array, sin: Array) -> Array:
  """Rotates x [B, N, heads, head_dim] by cos/sin [B, N, head_dim / 2] (shared by the heads) or
  [B, N, heads, head_dim / 2] (one rotation per head)."""
  half = x.shape[-1] // 2
  x32 = x.astype(jnp.float32)
  x1, x2 = x32[..., :half], x32[..., half:]
  if cos.ndim == x.ndim - 1:
    cos, sin = cos[..., None, :], sin[..., None, :]
  return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x.dtype)


def identity_rope(batch: int, length: int, head_dim: int) -> tuple[Array, Array]:
  """cos = 1, sin = 0: tokens with no position (e.g. text tokens in a joint sequence)."""
  shape = (batch, length, head_dim // 2)
  return jnp.ones(shape, jnp.float32), jnp.zeros(shape, jnp.float32)


# ---------------------------------------------------------------------------------------------
# Attention.


def attend(q: Array, k: Array, v: Array, mask: Array | None = None) -> Array:
  """Softmax attention. q [B, Nq, H, Dh], k/v [B, Nk, H, Dh], mask [B, Nk] bool (True = attend).

  Logits and softmax in float32; a query with no valid key attends uniformly (never NaN).
  The heads move in front of the tokens first ([B, H, N, Dh], one transpose each, fused into
  whatever made q, k and v) so both batched matmuls read contiguous [N, Dh] rows: the same
  values, and forward+backward ran 15-20% faster on a CPU than einsums on the [B, N, H, Dh]
  layout (8 × 256 tokens, 12 heads of 64).
  """
  scale = q.shape[-1] ** -0.5
  q, k, v = (jnp.swapaxes(a, 1, 2) for a in (q, k, v))
  logits = jnp.einsum('bhqd,bhkd->bhqk', q, k, preferred_element_type=jnp.float32) * scale
  if mask is not None:
    logits = jnp.where(mask[:, None, None, :], logits, _NEG_INF)
  weights = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
  return jnp.swapaxes(jnp.einsum('bhqk,bhkd->bhqd', weights, v), 1, 2)


class HeadsDense(nn.Module):
  """`nn.DenseGeneral` over the last `contract` dims to `features` (same parameters, same init),
  with logical axes on the kernel's real shape: flax's DenseGeneral boxes the flattened kernel,
  which a mesh in context rejects. Used for the attention projections into and out of heads."""
  features: tuple[int, ...]
  contract: int
  axes: tuple[str | None, ...]
  dtype: Any = jnp.float32
  zero_init: bool = False

  @nn.compact
  def __call__(self, x: Array) -> Array:
    in_shape = x.shape[-self.contract:]
    shape = in_shape + tuple(self.features)

    def flat_init(rng, shape, dtype=jnp.float32):  # initialise as the [in, out] matrix, as flax does
      base = nn.initializers.zeros_init() if self.zero_init else nn.initializers.xavier_uniform()
      flat = (int(np.prod(shape[:self.contract])), int(np.prod(shape[self.contract:])))
      return base(rng, flat, dtype).reshape(shape)

    kernel = self.param('kernel', nn.with_logical_partitioning(flat_init, self.axes), shape, jnp.float32)
    bias = self.param('bias', zeros_init(self.axes[self.contract:]), tuple(self.features), jnp.float32)
    contract = tuple(range(x.ndim - self.contract, x.ndim))
    y = jax.lax.dot_general(x.astype(self.dtype), kernel.astype(self.dtype),
                            ((contract, tuple(range(self.contract))), ((), ())))
    return y + bias.astype(self.dtype)


class Attention(nn.Module):
  """Multi-head attention with QK-RMSNorm: x [B, N, D] (queries), context [B, M, Dc] (keys/values).

  Self-attention when `context` is None. `rope` = (cos, sin) [B, N, head_dim / 2] (or
  [B, N, heads, head_dim / 2]) rotates queries and keys (self-attention only). `mask` [B, M]
  (or [B, N] for self) masks keys.
  `zero_init_out` zero-initialises the output projection (the branch starts switched off).
  """
  num_heads: int
  head_dim: int
  dtype: Any = jnp.float32
  qk_norm: bool = True
  zero_init_out: bool = False

  @nn.compact
  def __call__(self, x: Array, context: Array | None = None, *, mask: Array | None = None,
               rope: tuple[Array, Array] | None = None) -> Array:
    if rope is not None and context is not None:
      raise ValueError('Attention: RoPE is applied in self-attention only (no positions for a context).')
    kv_in = x if context is None else context
    heads_shape = (self.num_heads, self.head_dim)

    def project(name, inp, length):
      y = HeadsDense(heads_shape, 1, ('embed', 'heads', 'kv'), self.dtype, name=name)(inp)
      return constrain(y, (BATCH, length, HEADS, KV))

    q = project('query', x, LENGTH)
    k, v = project('key', kv_in, KV_LENGTH), project('value', kv_in, KV_LENGTH)
    if self.qk_norm:
      q = RMSNorm(dtype=self.dtype, axis_name='kv', name='query_norm')(q)
      k = RMSNorm(dtype=self.dtype, axis_name='kv', name='key_norm')(k)
    if rope is not None:
      q, k = apply_rope(q, *rope), apply_rope(k, *rope)
    y = attend(q, k, v, mask)
    y = HeadsDense((x.shape[-1],), 2, ('heads', 'kv', 'embed'), self.dtype, zero_init=self.zero_init_out,
                   name='out')(y)
    return constrain(y, (BATCH, LENGTH, EMBED))


def timestep_embedding(t: Array, dim: int, max_period: float = 10000.0) -> Array:
  """Sinusoidal embedding [B, dim] of (possibly fractional) timesteps t [B] (cos half, sin half)."""
  half = dim // 2
  freqs = jnp.exp(-jnp.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
  args = t.astype(jnp.float32)[:, None] * freqs[None]
  emb = jnp.concatenate([jnp.cos(args), jnp.sin(args)], axis=-1)
  return jnp.pad(emb, ((0, 0), (0, dim % 2)))


def masked_mean(x: Array, mask: Array) -> Array:
  """Mean of x [B, L, D] over the tokens where mask [B, L] is True (0 for an empty mask)."""
  m = mask.astype(jnp.float32)[..., None]
  return jnp.sum(x.astype(jnp.float32) * m, axis=1) / jnp.maximum(jnp.sum(m, axis=1), 1.0)
