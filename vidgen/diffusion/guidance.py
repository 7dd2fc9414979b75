"""Classifier-free guidance: uncond + scale·(cond − uncond), both branches in one batched call.

The unconditional branch is the text encoder's learned null caption (`TextEncoder.null`, which
training learns through caption dropout) or a negative prompt. The combination is written as
cond + (scale − 1)·(cond − uncond), so scale 1 returns the conditional prediction exactly:
a Python scale of 1 skips the unconditional branch and is exactly the conditional model call;
a traced scale of 1 returns exactly the conditional half of the batched call.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

Array = jax.Array
# model_apply(params, x [B,T,H,W,C], t [B], text [B,L,D], text_mask [B,L], cond_mask [B,T] | None,
#             cond_latents [B,T,H,W,C] | None) -> prediction [B,T,H,W,C]
ModelApply = Callable[[Any, Array, Array, Array, Array, Array | None, Array | None], Array]


def classifier_free(cond: Array, uncond: Array, scale: float | Array) -> Array:
  """uncond + scale·(cond − uncond), computed as cond + (scale − 1)·(cond − uncond) (exact at 1)."""
  return cond + (scale - 1) * (cond - uncond)


def dit_apply(model: Any) -> ModelApply:
  """A `ModelApply` for a flax module taking (x, t, text, text_mask, cond_mask, cond_latents), e.g. the DiT."""
  def apply(params, x, t, text, text_mask, cond_mask=None, cond_latents=None):
    return model.apply({'params': params}, x, t, text, text_mask, cond_mask, cond_latents)
  return apply


def _fit(tokens: Array, mask: Array, batch: int, length: int) -> tuple[Array, Array]:
  """Broadcasts [1 or B, L', D] tokens to the batch and pads/truncates to `length` (padding masked)."""
  tokens = jnp.broadcast_to(tokens, (batch,) + tokens.shape[1:])
  mask = jnp.broadcast_to(mask.astype(bool), (batch,) + mask.shape[1:])
  if tokens.shape[1] < length:
    pad = length - tokens.shape[1]
    tokens = jnp.pad(tokens, ((0, 0), (0, pad), (0, 0)))
    mask = jnp.pad(mask, ((0, 0), (0, pad)))
  elif tokens.shape[1] > length:
    if not isinstance(mask, jax.core.Tracer) and bool(jnp.any(mask[:, length:])):
      raise ValueError(f'The unconditional/negative text has real tokens beyond the prompt length {length}.')
    tokens, mask = tokens[:, :length], mask[:, :length]
  return tokens, mask


def cfg_denoise_fn(model_apply: ModelApply, params: Any, text: Array, text_mask: Array, null_text: Array,
                   null_mask: Array, scale: float | Array, *, negative: tuple[Array, Array] | None = None,
                   cond_mask: Array | None = None,
                   cond_latents: Array | None = None) -> Callable[[Array, Array], Array]:
  """A sampler `denoise_fn(x_t, model_t)` with classifier-free guidance.

  Args:
    model_apply: see `ModelApply` (`dit_apply(model)` for the DiT).
    params: the model's (EMA) params.
    text, text_mask: the prompts [B, L, D], [B, L].
    null_text, null_mask: the unconditional text ([1 or B, L', D], [1 or B, L']), e.g. from
      `TextEncoder.null`.
    scale: guidance scale (1 = conditional only; > 1 guides).
    negative: optional (tokens, mask) of a negative prompt, used instead of the null text.
    cond_mask, cond_latents: frames given clean ([B, T], [B, T, H, W, C]), passed to the model.
  """
  batch, length = text.shape[:2]
  if isinstance(scale, (int, float)) and scale == 1:
    return lambda x, t: model_apply(params, x, t, text, text_mask, cond_mask, cond_latents)
  un_text, un_mask = negative if negative is not None else (null_text, null_mask)
  un_text, un_mask = _fit(un_text.astype(text.dtype), un_mask, batch, length)
  both_text = jnp.concatenate([text, un_text], axis=0)
  both_mask = jnp.concatenate([text_mask.astype(bool), un_mask], axis=0)
  twice = lambda a: None if a is None else jnp.concatenate([a, a], axis=0)
  both_cond_mask, both_cond_latents = twice(cond_mask), twice(cond_latents)

  def denoise(x, t):
    out = model_apply(params, twice(x), twice(t), both_text, both_mask, both_cond_mask, both_cond_latents)
    cond, uncond = jnp.split(out, 2, axis=0)
    return classifier_free(cond, uncond, scale)
  return denoise
