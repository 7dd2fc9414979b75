"""A small transformer text encoder over sentencepiece ids, trained with the DiT.

`TextEncoder(config)(ids [B, L], mask [B, L], drop [B]) -> (tokens [B, L, D], pooled [B, D])`:
token + learned position embeddings, pre-norm blocks (bidirectional attention with a
key-padding mask, MLP), a final RMSNorm. Padded positions (mask False; pad id 0) are ignored
as keys and zeroed in the output, so padding never changes the result.

Classifier-free guidance: where `drop` is True the caption is replaced by a learned null
sequence (`null_tokens`, [max_length, D]), and its mask by a single real token (see
`mask_after_drop`): the unconditional branch is a learned embedding, independent of what was
dropped. Callers must pass `mask_after_drop(mask, drop)` to the DiT as its text mask, or call
`TextEncoder.encode` (method=TextEncoder.encode), which returns it with the tokens.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from vidgen import config_blocks

from vidgen.models import layers

Array = jax.Array
PAD_ID = 0


@dataclasses.dataclass(frozen=True)
class TextEncoderConfig:
  """The text encoder; the `text` config block holds all but DERIVED, which come from the tokenizer."""
  DERIVED: ClassVar[tuple[str, ...]] = ('vocab_size', 'max_length')
  vocab_size: int = 512
  width: int = 256
  depth: int = 4
  heads: int = 4
  max_length: int = 32
  mlp_ratio: float = 4.0
  dtype: str = 'float32'  # compute dtype; params are float32

  def __post_init__(self):
    if min(self.vocab_size, self.width, self.depth, self.heads, self.max_length) < 1:
      raise ValueError('text encoder vocab_size, width, depth, heads and max_length must be >= 1; got '
                       f'{self.vocab_size}, {self.width}, {self.depth}, {self.heads}, {self.max_length}.')
    if self.width % self.heads:
      raise ValueError(f'text encoder width {self.width} is not divisible by heads {self.heads}.')
    if self.dtype not in ('float32', 'bfloat16'):
      raise ValueError(f"text encoder dtype must be 'float32' or 'bfloat16', got {self.dtype!r}.")

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict | dict[str, Any]) -> 'TextEncoderConfig':
    """Builds from a ConfigDict with any subset of the fields; an unknown key is an error."""
    return config_blocks.from_config(cls, config, 'text')


def mask_after_drop(mask: Array, drop: Array | None) -> Array:
  """The text mask the DiT must use: dropped captions ([B] True) keep one real token (the first)."""
  if drop is None:
    return mask
  null_mask = jnp.zeros_like(mask).at[:, 0].set(True)
  return jnp.where(drop[:, None], null_mask, mask)


class EncoderBlock(nn.Module):
  config: TextEncoderConfig

  @nn.compact
  def __call__(self, x: Array, mask: Array) -> Array:
    cfg = self.config
    dtype = jnp.dtype(cfg.dtype)
    h = layers.RMSNorm(dtype=dtype, name='norm1')(x)
    x = x + layers.Attention(cfg.heads, cfg.width // cfg.heads, dtype=dtype, name='attn')(h, mask=mask)
    h = layers.RMSNorm(dtype=dtype, name='norm2')(x)
    return x + layers.Mlp(cfg.mlp_ratio, dtype=dtype, name='mlp')(h)


class TextEncoder(nn.Module):
  """ids [B, L] int, mask [B, L] bool, drop [B] bool (or None) → (tokens [B, L, D], pooled [B, D])."""
  config: TextEncoderConfig

  @nn.compact
  def __call__(self, ids: Array, mask: Array, drop: Array | None = None) -> tuple[Array, Array]:
    cfg = self.config
    dtype = jnp.dtype(cfg.dtype)
    if ids.ndim != 2 or mask.shape != ids.shape:
      raise ValueError(f'TextEncoder takes ids and mask [B, L]; got {ids.shape} and {mask.shape}.')
    length = ids.shape[1]
    if length > cfg.max_length:
      raise ValueError(f'Text of {length} tokens is longer than text.max_length={cfg.max_length}; '
                       'raise max_length or tokenize with a shorter budget.')
    mask = mask.astype(bool)
    embed = nn.Embed(cfg.vocab_size, cfg.width, param_dtype=jnp.float32,
                     embedding_init=nn.with_logical_partitioning(nn.initializers.normal(0.02), ('vocab', 'embed')),
                     name='token_embed')
    positions = self.param('position_embed', nn.with_logical_partitioning(nn.initializers.normal(0.02),
                                                                          (None, 'embed')),
                           (cfg.max_length, cfg.width), jnp.float32)
    x = embed(ids) + positions[None, :length]
    x = layers.constrain(x.astype(dtype), (layers.BATCH, layers.LENGTH, layers.EMBED))
    for i in range(cfg.depth):
      x = EncoderBlock(cfg, name=f'block{i}')(x, mask)
    x = layers.RMSNorm(dtype=jnp.float32, name='final_norm')(x)
    null = self.param('null_tokens', nn.with_logical_partitioning(nn.initializers.normal(0.02), (None, 'embed')),
                      (cfg.max_length, cfg.width), jnp.float32)
    if drop is not None:
      x = jnp.where(drop[:, None, None], null[None, :length], x)
    mask = mask_after_drop(mask, drop)
    x = jnp.where(mask[..., None], x, 0.0)
    return x, layers.masked_mean(x, mask)

  def encode(self, ids: Array, mask: Array, drop: Array | None = None) -> tuple[Array, Array, Array]:
    """`__call__` plus the text mask the DiT must use: (tokens [B, L, D], pooled [B, D], mask [B, L])."""
    tokens, pooled = self(ids, mask, drop)
    return tokens, pooled, mask_after_drop(mask.astype(bool), drop)

  def null(self, batch: int, length: int) -> tuple[Array, Array, Array]:
    """The unconditional text for guidance: (tokens [B, L, D], pooled [B, D], mask [B, L])."""
    ids = jnp.zeros((batch, length), jnp.int32)
    mask = jnp.zeros((batch, length), bool)
    drop = jnp.ones((batch,), bool)
    tokens, pooled = self(ids, mask, drop)
    return tokens, pooled, mask_after_drop(mask, drop)
