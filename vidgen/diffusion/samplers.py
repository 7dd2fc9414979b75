"""Samplers: noise → latents with a denoiser. Euler/Heun for flow, DDIM/ancestral DDPM for DDPM.

    sample(denoise_fn, objective, shape, rng, *, sampler, steps, cond_mask, cond_latents,
           num_tokens, progress) -> latents [B, T, H, W, C]

`denoise_fn(x_t [B, T, H, W, C], model_t [B]) -> model output` is the DiT with text, guidance
and clean frames closed over (see `guidance.cfg_denoise_fn`); its output is what the
objective trains it to predict (velocity for flow, eps or v for DDPM).

* 'euler' / 'heun' (flow): integrate dx/dt = v from t = 1 to 0 over `objective.schedule`
  (uniform in t, then shifted for `num_tokens` as in training). Heun is the second-order
  trapezoid rule, with an Euler last step (to t = 0), so it costs 2·steps − 1 evaluations.
* 'ddim' (DDPM, eta = 0, deterministic) and 'ddpm' (ancestral: DDIM with eta = 1, which is
  exactly sampling the posterior q(x_prev | x_t, x0̂) of the respaced chain) over `steps`
  evenly spaced timesteps from num_timesteps − 1 to 0.

Frames given clean (`cond_mask` [B, T] True) are set to `cond_latents` in the initial noise and
after every step, so they come out exactly equal. Everything is a pure function of `rng`.

Two execution modes, identical in result: with `progress=None` the loop is a `lax.fori_loop`
(jittable: wrap `sample` in `jax.jit` with the static arguments bound); with a
`progress(step, steps)` callable (the CLI's progress bar) each step is one jitted call from a
Python loop and `progress` runs on the host after each.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vidgen.diffusion import objectives as objectives_lib

Array = jax.Array
DenoiseFn = Callable[[Array, Array], Array]
FLOW_SAMPLERS = ('euler', 'heun')
DDPM_SAMPLERS = ('ddim', 'ddpm')


@dataclasses.dataclass(frozen=True)
class SampleConfig:
  """The `sample` block: how a run's videos are sampled unless the caller says otherwise.

  `factorized`: text → the first latent frame → the rest given it (generation.Settings); it
  needs a run trained with `masking.image` > 0.
  """
  steps: int = 30
  cfg_scale: float = 4.0
  sampler: str = 'euler'    # flow: euler | heun; ddpm: ddim | ddpm
  factorized: bool = False

  def __post_init__(self):
    if self.steps < 1:
      raise ValueError(f'sample.steps must be >= 1, got {self.steps}.')
    if self.cfg_scale < 1:
      raise ValueError(f'sample.cfg_scale must be >= 1 (1: no guidance), got {self.cfg_scale}.')
    if self.sampler not in FLOW_SAMPLERS + DDPM_SAMPLERS:
      raise ValueError(f'sample.sampler={self.sampler!r} is unknown; use one of {FLOW_SAMPLERS + DDPM_SAMPLERS}.')


def _keep_clean(x: Array, cond_mask: Array | None, cond_latents: Array | None) -> Array:
  if cond_mask is None:
    return x
  return jnp.where(cond_mask[:, :, None, None, None], cond_latents.astype(x.dtype), x)


def _flow_step(denoise_fn: DenoiseFn, objective: objectives_lib.RectifiedFlow, sampler: str,
               times: Array) -> Callable[[Array, Array, Array], Array]:
  def step(i, x, key):
    del key
    t_cur, t_next = times[i], times[i + 1]
    batch_t = lambda t: objective.model_time(jnp.full((x.shape[0],), t))
    v = denoise_fn(x, batch_t(t_cur)).astype(x.dtype)
    x_euler = x + (t_next - t_cur) * v
    if sampler == 'euler':
      return x_euler

    def heun():
      v_next = denoise_fn(x_euler, batch_t(t_next)).astype(x.dtype)
      return x + (t_next - t_cur) * 0.5 * (v + v_next)

    return jax.lax.cond(t_next > 0, heun, lambda: x_euler)
  return step


def _ddpm_step(denoise_fn: DenoiseFn, objective: objectives_lib.DDPM, sampler: str, timesteps: Array,
               alphas: Array) -> Callable[[Array, Array, Array], Array]:
  eta = 0.0 if sampler == 'ddim' else 1.0

  def step(i, x, key):
    a_t, a_prev = alphas[i], alphas[i + 1]
    out = denoise_fn(x, objective.model_time(jnp.full((x.shape[0],), timesteps[i]))).astype(x.dtype)
    x0, eps = objective.predict_x0_eps(out, x, a_t)
    sigma = eta * jnp.sqrt((1 - a_prev) / (1 - a_t)) * jnp.sqrt(1 - a_t / a_prev)
    x_prev = jnp.sqrt(a_prev) * x0 + jnp.sqrt(jnp.maximum(1 - a_prev - sigma ** 2, 0.0)) * eps
    if eta:
      x_prev = x_prev + sigma * objective.noise(key, x.shape).astype(x.dtype)
    return x_prev
  return step


def _ddpm_schedule(objective: objectives_lib.DDPM, steps: int,
                   strength: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
  """Timesteps [steps] from strength·(num_timesteps − 1) down to 0, and ᾱ at each plus a final 1 [steps + 1]."""
  n = objective.num_timesteps
  first = int(round(strength * (n - 1)))
  if steps > first + 1:
    raise ValueError(f'steps={steps} exceeds the {first + 1} DDPM timesteps below strength {strength:g} '
                     f'(a chain of {n}); use at most {first + 1} steps.')
  timesteps = np.round(np.linspace(first, 0, steps)).astype(np.int32)
  alphas = np.concatenate([objective.alphas_cumprod[timesteps], [1.0]]).astype(np.float32)
  return timesteps, alphas


def sample(denoise_fn: DenoiseFn, objective: objectives_lib.Objective, shape: Sequence[int], rng: Array, *,
           sampler: str | None = None, steps: int = 50, cond_mask: Array | None = None,
           cond_latents: Array | None = None, num_tokens: int | None = None,
           progress: Callable[[int, int], Any] | None = None, strength: float = 1.0,
           init_latents: Array | None = None) -> Array:
  """Draws latents [B, T, H, W, C] = `shape`.

  Args:
    denoise_fn: (x_t, model_t [B]) → model output (velocity, eps or v per the objective).
    objective: a RectifiedFlow or DDPM.
    shape: (B, T, H, W, C) of the latents.
    rng: the only source of randomness (initial noise; ancestral noise), both drawn from the
      objective's noise prior (`objective.noise`), as in training.
    sampler: 'euler' | 'heun' (flow) or 'ddim' | 'ddpm' (DDPM); default 'euler' / 'ddim'.
    steps: sampler steps (model evaluations: steps, or 2·steps − 1 for Heun).
    cond_mask: [B, T] bool, latent frames given clean; kept equal to cond_latents [B, T, H, W, C].
    num_tokens: the DiT's token count for the latent grid (sets the flow's shift; as in training).
    progress: optional host callback progress(step, steps) after each step (Python loop mode).
    strength: SDEdit (Meng et al. 2022): with strength s < 1 the sampler starts from
      `init_latents` [B, T, H, W, C] noised to noise level s (flow t = s; DDPM timestep
      s·(num_timesteps − 1)) and denoises from there in `steps` steps; 1 starts from pure noise.
  """
  shape = tuple(int(s) for s in shape)
  if len(shape) != 5:
    raise ValueError(f'sample draws latents [B, T, H, W, C]; got shape {shape}.')
  if steps < 1:
    raise ValueError(f'steps must be >= 1, got {steps}.')
  if cond_mask is not None:
    if cond_latents is None or tuple(cond_latents.shape) != shape or tuple(cond_mask.shape) != shape[:2]:
      raise ValueError(f'cond_mask [B, T]={shape[:2]} needs cond_latents of shape {shape}; got '
                       f'{getattr(cond_mask, "shape", None)} and {getattr(cond_latents, "shape", None)}.')
  if not 0.0 < strength <= 1.0:
    raise ValueError(f'strength must be in (0, 1] (1: from pure noise; 0.6: SDEdit from noise level 0.6); '
                     f'got {strength}.')
  if strength < 1.0 and (init_latents is None or tuple(init_latents.shape) != shape):
    raise ValueError(f'strength {strength} < 1 starts from init_latents of shape {shape}; got '
                     f'{getattr(init_latents, "shape", None)}.')
  if isinstance(objective, objectives_lib.RectifiedFlow):
    sampler = sampler or 'euler'
    if sampler not in FLOW_SAMPLERS:
      raise ValueError(f'sampler {sampler!r} does not fit rectified flow; use one of {FLOW_SAMPLERS}.')
    times = jnp.asarray(objective.schedule(steps, num_tokens, start=strength))
    start_time = times[0]
    step = _flow_step(denoise_fn, objective, sampler, times)
  elif isinstance(objective, objectives_lib.DDPM):
    sampler = sampler or 'ddim'
    if sampler not in DDPM_SAMPLERS:
      raise ValueError(f'sampler {sampler!r} does not fit DDPM; use one of {DDPM_SAMPLERS}.')
    timesteps, alphas = _ddpm_schedule(objective, steps, strength)
    start_time = jnp.asarray(timesteps[0])
    step = _ddpm_step(denoise_fn, objective, sampler, jnp.asarray(timesteps), jnp.asarray(alphas))
  else:
    raise TypeError(f'Unknown objective {type(objective).__name__}; use objectives.make_objective.')

  noise_rng, step_rng = jax.random.split(rng)

  def body(i, x):
    x = step(i, x, jax.random.fold_in(step_rng, i))
    return _keep_clean(x, cond_mask, cond_latents)

  x = objective.noise(noise_rng, shape)
  if strength < 1.0:
    x = objective.noisy(jnp.asarray(init_latents, x.dtype), x, jnp.full((shape[0],), start_time))
  x = _keep_clean(x, cond_mask, cond_latents)
  if progress is None:
    return jax.lax.fori_loop(0, steps, body, x)
  jit_body = jax.jit(body)
  for i in range(steps):
    x = jit_body(jnp.int32(i), x)
    progress(i + 1, steps)
  return x
