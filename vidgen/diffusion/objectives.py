"""Diffusion objectives: rectified flow (the default) and DDPM with eps or v prediction.

Both share one interface, which is all the trainer and the samplers use:

* `sample_time(rng, batch, num_tokens) -> t [B]`: the objective's own time (float in [0, 1]
  for flow, int in [0, num_timesteps) for DDPM); `num_tokens` is the DiT's token count
  (`DiTConfig.num_tokens(T, H, W)`), which sets the flow's timestep shift.
* `noisy(x0, noise, t) -> x_t` and `target(x0, noise, t)`: what the model sees and must predict.
* `model_time(t) -> [B] float in [0, 1]`: the time fed to the DiT.
* `loss(prediction, target, frame_mask) -> scalar`: mean squared error over the latent frames
  not given clean (`frame_mask` [B, T] True marks clean frames, which are ignored).
* `noise(rng, shape) -> [B, T, ...]`: the noise prior, for training and the samplers alike:
  N(0, 1) per value, with `frame_noise_correlation` of its variance shared across latent frames.

Shapes: x0, noise, x_t, target and prediction are [B, T, H, W, C]; t is [B].
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Union

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vidgen.models import noise as noise_lib

Array = jax.Array


def _bcast(t: Array, x: Array) -> Array:
  """t [B] → [B, 1, ..., 1] to broadcast against x."""
  return jnp.reshape(t, t.shape + (1,) * (x.ndim - t.ndim)).astype(x.dtype)


def frame_loss(prediction: Array, target: Array, frame_mask: Array | None = None) -> Array:
  """Mean squared error over latent frames NOT given clean; 0 (not NaN) if every frame is given.

  prediction/target [B, T, ...]; frame_mask [B, T] bool, True on frames given clean (ignored).
  """
  err = jnp.square(prediction.astype(jnp.float32) - target.astype(jnp.float32))
  per_frame = jnp.mean(err.reshape(err.shape[:2] + (-1,)), axis=-1)  # [B, T]
  if frame_mask is None:
    return jnp.mean(per_frame)
  weight = 1.0 - frame_mask.astype(jnp.float32)
  return jnp.sum(per_frame * weight) / jnp.maximum(jnp.sum(weight), 1.0)


def frame_correlated_noise(rng: Array, shape: tuple[int, ...], correlation: float) -> Array:
  """N(0, 1) noise [B, T, ...] whose latent frames are correlated by `correlation` (PYoCo's mixed noise).

  noise = sqrt(ρ)·shared + sqrt(1 − ρ)·own, with one `shared` draw per clip broadcast over T and
  an `own` draw per frame: every value is still N(0, 1), and two frames of a clip correlate by ρ.
  The difference between frames then carries less noise (variance 2(1 − ρ) instead of 2), so
  motion stays readable at higher noise levels. ρ = 0 is independent noise.
  """
  if correlation == 0:
    return noise_lib.normal(rng, shape)
  own_rng, shared_rng = jax.random.split(rng)
  own = noise_lib.normal(own_rng, shape)
  shared = noise_lib.normal(shared_rng, (shape[0], 1) + tuple(shape[2:]))
  return math.sqrt(correlation) * shared + math.sqrt(1.0 - correlation) * own


@dataclasses.dataclass(frozen=True)
class _NoisePrior:
  """The noise both objectives draw: `frame_noise_correlation` ρ in [0, 1) shared across frames."""
  frame_noise_correlation: float = dataclasses.field(default=0.0, kw_only=True)  # after each objective's own fields

  def __post_init__(self):
    if not 0.0 <= self.frame_noise_correlation < 1.0:
      raise ValueError(f'frame_noise_correlation must be in [0, 1), got {self.frame_noise_correlation}: 0 is '
                       'independent noise per latent frame, values towards 1 share more of it across frames.')

  def noise(self, rng: Array, shape: tuple[int, ...]) -> Array:
    """Noise [B, T, ...] from the prior (see `frame_correlated_noise`)."""
    return frame_correlated_noise(rng, tuple(int(s) for s in shape), self.frame_noise_correlation)


@dataclasses.dataclass(frozen=True)
class RectifiedFlow(_NoisePrior):
  """x_t = (1 − t)·x0 + t·noise (t = 1 is pure noise); the model predicts v = noise − x0.

  Training t is logit-normal (sigmoid of N(logit_mean, logit_std²)), then shifted towards noise
  by an amount that grows with the number of latent tokens (SD3 / Flux / Open-Sora): more tokens
  carry more redundant signal, so the same noise level destroys less of it.
    mu(n) = base_shift + (max_shift − base_shift) · (n − base_tokens) / (max_tokens − base_tokens)
    t' = e^mu · t / (1 + (e^mu − 1) · t)
  with base_tokens, max_tokens = shift_base_tokens, shift_max_tokens. mu is linear in n and
  extrapolates outside [base_tokens, max_tokens] (as Flux does). Sampling integrates over the
  same shifted schedule.
  """
  shift_base_tokens: int = 256
  shift_max_tokens: int = 4096
  base_shift: float = 0.5
  max_shift: float = 1.15
  logit_mean: float = 0.0
  logit_std: float = 1.0

  kind = 'flow'

  def __post_init__(self):
    super().__post_init__()
    if self.shift_max_tokens <= self.shift_base_tokens:
      raise ValueError(f'flow.shift_max_tokens ({self.shift_max_tokens}) must exceed flow.shift_base_tokens '
                       f'({self.shift_base_tokens}).')
    if self.logit_std <= 0:
      raise ValueError(f'flow.logit_std must be > 0, got {self.logit_std}.')

  def mu(self, num_tokens: Any) -> Any:
    """The log shift for `num_tokens` latent tokens."""
    if num_tokens is None:
      raise ValueError('RectifiedFlow needs num_tokens (the DiT token count, DiTConfig.num_tokens(T, H, W)) '
                       'to set its timestep shift.')
    slope = (self.max_shift - self.base_shift) / (self.shift_max_tokens - self.shift_base_tokens)
    return self.base_shift + slope * (num_tokens - self.shift_base_tokens)

  def shift(self, t: Array, num_tokens: Any) -> Array:
    """t' = e^mu t / (1 + (e^mu − 1) t): maps [0, 1] onto itself, moving mass towards noise."""
    s = jnp.exp(jnp.asarray(self.mu(num_tokens), jnp.float32))
    return s * t / (1 + (s - 1) * t)

  def sample_time(self, rng: Array, batch: int, num_tokens: Any) -> Array:
    """Logit-normal t [B] in (0, 1), shifted for `num_tokens`."""
    u = jax.nn.sigmoid(self.logit_mean + self.logit_std * jax.random.normal(rng, (batch,), jnp.float32))
    return self.shift(u, num_tokens)

  def noisy(self, x0: Array, noise: Array, t: Array) -> Array:
    tb = _bcast(t, x0)
    return (1 - tb) * x0 + tb * noise

  def target(self, x0: Array, noise: Array, t: Array) -> Array:
    del t
    return noise - x0

  def model_time(self, t: Array) -> Array:
    return jnp.asarray(t, jnp.float32)

  def loss(self, prediction: Array, target: Array, frame_mask: Array | None = None) -> Array:
    return frame_loss(prediction, target, frame_mask)

  def schedule(self, steps: int, num_tokens: Any, start: float = 1.0) -> np.ndarray:
    """Sampling times [steps + 1] from `start` (1: pure noise) to 0 (data): uniform, then shifted.

    A `start` below 1 (SDEdit's strength) begins at that noise level itself, t[0] == start,
    and keeps the shifted spacing: the uniform grid runs from the unshifted time of `start`.
    """
    s = float(np.exp(self.mu(num_tokens)))
    u_start = start / (s - (s - 1) * start)  # the inverse of the shift
    t = np.linspace(u_start, 0.0, steps + 1)
    times = s * t / (1 + (s - 1) * t)
    if start < 1.0:
      times[0] = start  # exactly, not through the shift and back
    return times.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class DDPM(_NoisePrior):
  """x_t = sqrt(ᾱ_t)·x0 + sqrt(1 − ᾱ_t)·eps, t ∈ {0, …, num_timesteps − 1} uniform.

  `prediction`: 'eps' (target eps) or 'v' (target v = sqrt(ᾱ)·eps − sqrt(1 − ᾱ)·x0).
  `schedule`: 'linear' (β from beta_start to beta_end, DDPM) or 'cosine' (improved DDPM, β ≤ 0.999).
  The model sees t / (num_timesteps − 1) ∈ [0, 1].
  """
  prediction: str = 'eps'
  schedule: str = 'linear'
  num_timesteps: int = 1000
  beta_start: float = 1e-4
  beta_end: float = 0.02

  kind = 'ddpm'

  def __post_init__(self):
    super().__post_init__()
    if self.prediction not in ('eps', 'v'):
      raise ValueError(f"ddpm.prediction must be 'eps' or 'v', got {self.prediction!r}.")
    if self.schedule not in ('linear', 'cosine'):
      raise ValueError(f"ddpm.schedule must be 'linear' or 'cosine', got {self.schedule!r}.")
    if self.num_timesteps < 2:
      raise ValueError(f'ddpm.num_timesteps must be >= 2, got {self.num_timesteps}.')

  @functools.cached_property
  def alphas_cumprod(self) -> np.ndarray:
    """ᾱ_t for t = 0 … num_timesteps − 1 (float64, host)."""
    n = self.num_timesteps
    if self.schedule == 'linear':
      betas = np.linspace(self.beta_start, self.beta_end, n, dtype=np.float64)
    else:
      s = 0.008
      f = np.cos((np.arange(n + 1, dtype=np.float64) / n + s) / (1 + s) * np.pi / 2) ** 2
      betas = np.clip(1 - f[1:] / f[:-1], 0.0, 0.999)
    return np.cumprod(1.0 - betas)

  def _alpha(self, t: Array, x: Array) -> Array:
    return _bcast(jnp.asarray(self.alphas_cumprod, jnp.float32)[t], x)

  def sample_time(self, rng: Array, batch: int, num_tokens: Any = None) -> Array:
    """Uniform integer t [B] in [0, num_timesteps)."""
    del num_tokens
    return jax.random.randint(rng, (batch,), 0, self.num_timesteps, jnp.int32)

  def q_sample(self, x0: Array, noise: Array, t: Array) -> Array:
    a = self._alpha(t, x0)
    return jnp.sqrt(a) * x0 + jnp.sqrt(1 - a) * noise

  def noisy(self, x0: Array, noise: Array, t: Array) -> Array:
    return self.q_sample(x0, noise, t)

  def target(self, x0: Array, noise: Array, t: Array) -> Array:
    if self.prediction == 'eps':
      return noise
    a = self._alpha(t, x0)
    return jnp.sqrt(a) * noise - jnp.sqrt(1 - a) * x0

  def model_time(self, t: Array) -> Array:
    return jnp.asarray(t, jnp.float32) / (self.num_timesteps - 1)

  def loss(self, prediction: Array, target: Array, frame_mask: Array | None = None) -> Array:
    return frame_loss(prediction, target, frame_mask)

  def predict_x0_eps(self, output: Array, x_t: Array, alpha: Array) -> tuple[Array, Array]:
    """(x0, eps) from the model output at x_t whose ᾱ is `alpha` (broadcastable to x_t)."""
    if self.prediction == 'eps':
      eps = output
      x0 = (x_t - jnp.sqrt(1 - alpha) * eps) / jnp.sqrt(alpha)
    else:
      x0 = jnp.sqrt(alpha) * x_t - jnp.sqrt(1 - alpha) * output
      eps = jnp.sqrt(1 - alpha) * x_t + jnp.sqrt(alpha) * output
    return x0, eps


Objective = Union[RectifiedFlow, DDPM]
KINDS = {'flow': RectifiedFlow, 'ddpm': DDPM}


def make_objective(config: ml_collections.ConfigDict | dict[str, Any]) -> Objective:
  """From {'kind': 'flow' | 'ddpm', **fields of that objective}.

  The fields may also sit in a sub-dict named after the kind ({'kind': 'flow', 'flow': {...},
  'ddpm': {...}}, as the `diffusion` block, DiffusionConfig, lays them out), so one config holds both objectives'
  settings. Unknown keys, and a field set both beside and inside the sub-dict to different
  values, are an error.
  """
  values = dict(config.items()) if hasattr(config, 'items') else dict(config)
  kind = values.pop('kind', 'flow')
  if kind not in KINDS:
    raise ValueError(f'diffusion kind {kind!r} is unknown; use one of {list(KINDS)}.')
  cls = KINDS[kind]
  nested = {k: values.pop(k) for k in list(values) if k in KINDS}
  if kind in nested:
    sub = nested[kind]
    sub = dict(sub.items()) if hasattr(sub, 'items') else dict(sub)
    clashes = sorted(k for k in set(sub) & set(values) if sub[k] != values[k])
    if clashes:
      raise ValueError(f'diffusion.{clashes[0]}={values[clashes[0]]!r} contradicts diffusion.{kind}.{clashes[0]}='
                       f'{sub[clashes[0]]!r}: set the {kind} objective\'s fields under diffusion.{kind}.')
    values.update(sub)
  fields = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(values) - fields)
  if unknown:
    raise ValueError(f'Unknown keys {unknown} for the {kind!r} objective; it takes {sorted(fields)}.')
  return cls(**values)


@dataclasses.dataclass(frozen=True)
class DiffusionConfig:
  """The `diffusion` block: which objective trains (`kind`), and each objective's fields under
  its own name, so either can be overridden from the command line
  (--config.diffusion.flow.base_shift=1.4, --config.diffusion.kind=ddpm)."""
  kind: str = 'flow'
  flow: RectifiedFlow = dataclasses.field(default_factory=RectifiedFlow)
  ddpm: DDPM = dataclasses.field(default_factory=DDPM)

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f'diffusion.kind={self.kind!r} is unknown; use one of {list(KINDS)}.')
