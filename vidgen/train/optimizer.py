"""The optimizer every trainer uses: AdamW with warm-up and cosine decay, clipping, EMA."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax



@dataclasses.dataclass(frozen=True)
class OptimConfig:
  """The `optim` block: AdamW, its schedule, clipping and the EMA of the weights."""
  lr: float = 1e-3
  warmup_steps: int = 100
  final_lr_fraction: float = 0.1  # the cosine decays to lr * this
  b1: float = 0.9
  b2: float = 0.99
  weight_decay: float = 0.0
  grad_clip: float = 1.0          # global-norm clipping; 0 turns it off
  ema_decay: float = 0.999
  lr_scales: dict[str, float] = dataclasses.field(default_factory=dict)  # e.g. {'text_encoder': 0.1}

  def __post_init__(self):
    if not self.lr > 0:
      raise ValueError(f'optim.lr must be > 0, got {self.lr}.')
    if self.warmup_steps < 0 or self.grad_clip < 0 or self.weight_decay < 0:
      raise ValueError('optim.warmup_steps, grad_clip and weight_decay must be >= 0; got '
                       f'{self.warmup_steps}, {self.grad_clip}, {self.weight_decay}.')
    if not 0 <= self.ema_decay < 1 or not 0 <= self.final_lr_fraction <= 1:
      raise ValueError(f'optim.ema_decay must be in [0, 1) and final_lr_fraction in [0, 1]; got '
                       f'{self.ema_decay}, {self.final_lr_fraction}.')
    if any(s < 0 for s in self.lr_scales.values()):
      raise ValueError(f'optim.lr_scales must be >= 0, got {self.lr_scales}.')


def learning_rate_schedule(optim: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  """Linear warm-up to `optim.lr`, then cosine decay to `optim.lr * optim.final_lr_fraction`."""
  warmup = min(optim.warmup_steps, max(total_steps - 1, 0))
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=optim.lr, warmup_steps=warmup,
      decay_steps=max(total_steps, warmup + 1), end_value=optim.lr * optim.final_lr_fraction)


NO_DECAY = ('rope_freqs',)  # parameter names AdamW never decays, whatever their rank


def make_optimizer(optim: ml_collections.ConfigDict, total_steps: int) -> optax.GradientTransformation:
  """Gradient clipping by global norm, then AdamW on the scheduled learning rate.

  Weight decay skips biases and norm scales (1-D parameters), as is usual for transformers, and
  learned RoPE frequencies (`NO_DECAY`), which decay would pull towards no rotation at all.
  """
  if optim.lr <= 0:
    raise ValueError(f'optim.lr must be > 0, got {optim.lr}.')
  decay_mask = lambda params: jax.tree_util.tree_map_with_path(
      lambda path, p: p.ndim > 1 and not any(getattr(k, 'key', None) in NO_DECAY for k in path), params)
  parts = [
      optax.clip_by_global_norm(optim.grad_clip) if optim.grad_clip > 0 else optax.identity(),
      optax.adamw(learning_rate_schedule(optim, total_steps), b1=optim.b1, b2=optim.b2,
                  weight_decay=optim.weight_decay, mask=decay_mask),
  ]
  scales = dict(optim.lr_scales)
  if scales:  # only then: checkpoints of runs without scales keep their optimizer-state layout
    parts.append(scale_by_module(scales))
  return optax.chain(*parts)


def scale_by_module(scales: dict[str, float]) -> optax.GradientTransformation:
  """Multiplies the updates of top-level parameter modules, e.g. {'text_encoder': 0.1}: their own learning rate.

  A jointly trained text encoder can otherwise drift to whatever the denoiser uses first (colour
  words) and flatten the rest (motion words); a smaller rate keeps its tokens apart.
  """
  if any(s < 0 for s in scales.values()):
    raise ValueError(f'optim.lr_scales must be >= 0, got {scales}.')

  def scale(updates, params=None):
    del params
    missing = sorted(set(scales) - set(updates))
    if missing:
      raise ValueError(f'optim.lr_scales names {missing}, which are not top-level parameter modules; '
                       f'the model has {sorted(updates)}.')
    return {k: jax.tree_util.tree_map(lambda u, s=scales.get(k, 1.0): u * s, v) for k, v in updates.items()}

  return optax.stateless(scale)


def ema_update(ema: Any, params: Any, decay: float, step: jax.Array) -> Any:
  """Exponential moving average with the usual warm-up: decay min(decay, (1 + step) / (10 + step))."""
  d = jnp.minimum(decay, (1.0 + step) / (10.0 + step))
  return jax.tree_util.tree_map(lambda e, p: d * e + (1.0 - d) * p, ema, params)
