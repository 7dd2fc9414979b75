"""The optimizer every trainer uses: AdamW with warm-up and cosine decay, clipping, EMA."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax


def learning_rate_schedule(optim: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  """Linear warm-up to `optim.lr`, then cosine decay to `optim.lr * optim.final_lr_fraction`."""
  warmup = min(optim.warmup_steps, max(total_steps - 1, 0))
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=optim.lr, warmup_steps=warmup,
      decay_steps=max(total_steps, warmup + 1), end_value=optim.lr * optim.final_lr_fraction)


def make_optimizer(optim: ml_collections.ConfigDict, total_steps: int) -> optax.GradientTransformation:
  """Gradient clipping by global norm, then AdamW on the scheduled learning rate.

  Weight decay skips biases and norm scales (1-D parameters), as is usual for transformers.
  """
  if optim.lr <= 0:
    raise ValueError(f'optim.lr must be > 0, got {optim.lr}.')
  decay_mask = lambda params: jax.tree_util.tree_map(lambda p: p.ndim > 1, params)
  return optax.chain(
      optax.clip_by_global_norm(optim.grad_clip) if optim.grad_clip > 0 else optax.identity(),
      optax.adamw(learning_rate_schedule(optim, total_steps), b1=optim.b1, b2=optim.b2,
                  weight_decay=optim.weight_decay, mask=decay_mask),
  )


def ema_update(ema: Any, params: Any, decay: float, step: jax.Array) -> Any:
  """Exponential moving average with the usual warm-up: decay min(decay, (1 + step) / (10 + step))."""
  d = jnp.minimum(decay, (1.0 + step) / (10.0 + step))
  return jax.tree_util.tree_map(lambda e, p: d * e + (1.0 - d) * p, ema, params)


def optim_config(**overrides) -> ml_collections.ConfigDict:
  """Defaults for `config.optim`."""
  config = ml_collections.ConfigDict(dict(
      lr=1e-3, warmup_steps=100, final_lr_fraction=0.1, b1=0.9, b2=0.99, weight_decay=0.0,
      grad_clip=1.0, ema_decay=0.999))
  config.update(overrides)
  return config
