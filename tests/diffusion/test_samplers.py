"""Samplers against the exact denoiser of a Gaussian data distribution, determinism, clean frames, and CFG."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidgen.diffusion import guidance
from vidgen.diffusion import objectives
from vidgen.diffusion import samplers
from vidgen.models import dit

# Data: independent N(m_c, s_c²) per channel c; latents [B, T, H, W, 2].
MEAN = jnp.array([1.5, -0.5])
STD = jnp.array([0.5, 2.0])
SHAPE = (1024, 2, 2, 2, 2)
NUM_TOKENS = 1024


def exact_flow_velocity(x, model_t):
  """E[noise − x0 | x_t] for x_t = (1 − t)·x0 + t·noise, x0 ~ N(m, s²): linear in x_t."""
  t = model_t[:, None, None, None, None]
  var = (1 - t) ** 2 * STD ** 2 + t ** 2
  centred = x - (1 - t) * MEAN
  e_x0 = MEAN + (1 - t) * STD ** 2 / var * centred
  e_noise = t / var * centred
  return e_noise - e_x0


def exact_ddpm_output(ddpm):
  """The exact eps (or v) of x0 ~ N(m, s²) under `ddpm`, as a function of (x_t, model_t)."""
  alphas = jnp.asarray(ddpm.alphas_cumprod, jnp.float32)

  def denoise(x, model_t):
    t = jnp.round(model_t * (ddpm.num_timesteps - 1)).astype(jnp.int32)
    a = alphas[t][:, None, None, None, None]
    var = a * STD ** 2 + 1 - a
    centred = x - jnp.sqrt(a) * MEAN
    eps = jnp.sqrt(1 - a) / var * centred
    if ddpm.prediction == 'eps':
      return eps
    e_x0 = MEAN + jnp.sqrt(a) * STD ** 2 / var * centred
    return jnp.sqrt(a) * eps - jnp.sqrt(1 - a) * e_x0
  return denoise


def _check_moments(samples, mean_tol=0.05, std_rtol=0.05):
  flat = np.asarray(samples).reshape(-1, 2)
  np.testing.assert_allclose(flat.mean(0), MEAN, atol=mean_tol)
  np.testing.assert_allclose(flat.std(0), STD, rtol=std_rtol)


@pytest.mark.parametrize('sampler,steps', [('euler', 100), ('heun', 20)])
def test_flow_samplers_match_a_gaussian(sampler, steps):
  samples = samplers.sample(exact_flow_velocity, objectives.RectifiedFlow(), SHAPE, jax.random.key(0),
                            sampler=sampler, steps=steps, num_tokens=NUM_TOKENS)
  _check_moments(samples)


def test_heun_is_more_accurate_than_euler_per_step():
  flow = objectives.RectifiedFlow()
  errors = {}
  for sampler in ('euler', 'heun'):
    out = samplers.sample(exact_flow_velocity, flow, SHAPE, jax.random.key(0), sampler=sampler, steps=8,
                          num_tokens=NUM_TOKENS)
    errors[sampler] = float(np.abs(np.asarray(out).reshape(-1, 2).std(0) - STD).max())
  assert errors['heun'] < errors['euler']


@pytest.mark.parametrize('prediction,schedule,sampler,steps', [
    ('eps', 'linear', 'ddim', 50), ('v', 'cosine', 'ddim', 50), ('eps', 'cosine', 'ddpm', 250),
    ('v', 'linear', 'ddpm', 250)])
def test_ddpm_samplers_match_a_gaussian(prediction, schedule, sampler, steps):
  ddpm = objectives.DDPM(prediction=prediction, schedule=schedule)
  samples = samplers.sample(exact_ddpm_output(ddpm), ddpm, SHAPE, jax.random.key(1), sampler=sampler, steps=steps)
  _check_moments(samples, mean_tol=0.06, std_rtol=0.06)


def exact_flow_velocity_correlated(rho):
  """E[noise − x0 | x_t] for x0 ~ N(m, s²) (independent frames) and noise whose frames correlate by rho.

  Per (clip, h, w, channel) the T frames are jointly Gaussian: Cov(x_t) = (1 − t)² s² I + t² Σ
  with Σ = rho·11ᵀ + (1 − rho)·I, Cov(v, x_t) = t Σ − (1 − t) s² I, so E[v | x_t] is linear in x_t.
  """
  def velocity(x, model_t):
    frames = x.shape[1]
    eye = jnp.eye(frames)
    sigma = rho * jnp.ones((frames, frames)) + (1 - rho) * eye
    t = model_t[:, None, None, None]                                        # [B, 1, 1, 1]
    var = STD[None, :, None, None] ** 2
    cov = (1 - t) ** 2 * var * eye + t ** 2 * sigma                         # [B, C, T, T]
    cross = t * sigma - (1 - t) * var * eye
    gain = cross @ jnp.linalg.inv(cov)                                       # [B, C, T, T]
    centred = x - (1 - model_t[:, None, None, None, None]) * MEAN           # [B, T, H, W, C]
    return -MEAN + jnp.einsum('bcst,bthwc->bshwc', gain, centred)
  return velocity


@pytest.mark.parametrize('sampler,steps', [('euler', 100), ('heun', 20)])
def test_flow_samplers_draw_from_a_frame_correlated_noise_prior(sampler, steps):
  rho = 0.8
  flow = objectives.RectifiedFlow(frame_noise_correlation=rho)
  samples = np.asarray(samplers.sample(exact_flow_velocity_correlated(rho), flow, SHAPE, jax.random.key(0),
                                       sampler=sampler, steps=steps, num_tokens=NUM_TOKENS))
  _check_moments(samples)
  # The data's frames are independent: the sampler must undo the prior's correlation, which it
  # only does when its starting noise is drawn from that same prior.
  for c in range(2):
    corr = np.corrcoef(samples[:, 0, ..., c].ravel(), samples[:, 1, ..., c].ravel())[0, 1]
    assert abs(corr) < 0.05, corr


@pytest.mark.parametrize('kind,sampler', [('flow', 'heun'), ('ddpm', 'ddpm')])
def test_same_rng_same_samples_and_jit_equals_progress_loop(kind, sampler):
  objective = objectives.RectifiedFlow() if kind == 'flow' else objectives.DDPM()
  denoise = exact_flow_velocity if kind == 'flow' else exact_ddpm_output(objective)
  shape = (4, 3, 2, 2, 2)
  run = lambda rng, **kw: samplers.sample(denoise, objective, shape, rng, sampler=sampler, steps=6,
                                          num_tokens=12, **kw)
  a, b = run(jax.random.key(5)), run(jax.random.key(5))
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, run(jax.random.key(6)))
  calls = []
  with_progress = run(jax.random.key(5), progress=lambda i, n: calls.append((i, n)))
  np.testing.assert_allclose(with_progress, a, atol=1e-5)
  assert calls == [(i, 6) for i in range(1, 7)]
  jitted = jax.jit(lambda rng: run(rng))(jax.random.key(5))
  np.testing.assert_allclose(jitted, a, atol=1e-5)


@pytest.mark.parametrize('kind,sampler', [('flow', 'euler'), ('flow', 'heun'), ('ddpm', 'ddim'), ('ddpm', 'ddpm')])
def test_frames_given_clean_are_kept_exactly(kind, sampler):
  objective = objectives.RectifiedFlow() if kind == 'flow' else objectives.DDPM(prediction='v')
  denoise = exact_flow_velocity if kind == 'flow' else exact_ddpm_output(objective)
  shape = (3, 4, 2, 2, 2)
  cond_latents = jax.random.normal(jax.random.key(2), shape) * 3.0
  cond_mask = jnp.array([[True, False, False, False], [False, False, False, True], [True, False, True, False]])
  out = samplers.sample(denoise, objective, shape, jax.random.key(3), sampler=sampler, steps=5,
                        cond_mask=cond_mask, cond_latents=cond_latents, num_tokens=16)
  np.testing.assert_array_equal(np.asarray(out)[np.asarray(cond_mask)], np.asarray(cond_latents)[np.asarray(cond_mask)])
  assert not np.allclose(np.asarray(out)[~np.asarray(cond_mask)], np.asarray(cond_latents)[~np.asarray(cond_mask)])


@pytest.mark.parametrize('strength', [0.3, 0.7])
def test_sdedit_from_data_keeps_the_data_distribution(strength):
  """Noising data to t = s and integrating the exact flow back lands on the same distribution,
  closer to where it started the lower s is."""
  objective = objectives.RectifiedFlow()
  init = MEAN + STD * jax.random.normal(jax.random.key(4), SHAPE)
  out = samplers.sample(exact_flow_velocity, objective, SHAPE, jax.random.key(5), steps=50, num_tokens=NUM_TOKENS,
                        strength=strength, init_latents=init)
  _check_moments(out)
  corr = np.corrcoef(np.asarray(out).ravel(), np.asarray(init).ravel())[0, 1]
  assert corr > (0.9 if strength == 0.3 else 0.4)


def test_sdedit_starts_at_its_noise_level():
  """With zero velocity the sampler returns its starting point: (1 − s)·init + s·noise, the same noise."""
  objective = objectives.RectifiedFlow()
  init = jax.random.normal(jax.random.key(1), SHAPE)
  rng, s = jax.random.key(2), 0.4
  out = samplers.sample(lambda x, t: jnp.zeros_like(x), objective, SHAPE, rng, steps=3, num_tokens=NUM_TOKENS,
                        strength=s, init_latents=init)
  noise = objective.noise(jax.random.split(rng)[0], SHAPE)
  np.testing.assert_allclose(out, (1 - s) * init + s * noise, atol=1e-6)
  times = objective.schedule(4, NUM_TOKENS, start=s)
  assert times[0] == np.float32(s) and times[-1] == 0 and np.all(np.diff(times) < 0)
  np.testing.assert_array_equal(objective.schedule(4, NUM_TOKENS), objective.schedule(4, NUM_TOKENS, start=1.0))
  ddpm = objectives.DDPM(prediction='v')
  ddpm_out = samplers.sample(exact_ddpm_output(ddpm), ddpm, SHAPE, rng, sampler='ddim', steps=20, strength=0.5,
                             init_latents=MEAN + STD * jax.random.normal(jax.random.key(4), SHAPE))
  _check_moments(ddpm_out, mean_tol=0.08, std_rtol=0.08)


def test_sdedit_errors():
  objective = objectives.RectifiedFlow()
  with pytest.raises(ValueError, match=r'strength must be in \(0, 1\]'):
    samplers.sample(exact_flow_velocity, objective, SHAPE, jax.random.key(0), num_tokens=4, strength=0.0)
  with pytest.raises(ValueError, match='starts from init_latents'):
    samplers.sample(exact_flow_velocity, objective, SHAPE, jax.random.key(0), num_tokens=4, strength=0.5)
  with pytest.raises(ValueError, match='exceeds the 11 DDPM timesteps below strength 0.01'):
    samplers.sample(exact_flow_velocity, objectives.DDPM(), SHAPE, jax.random.key(0), steps=20, strength=0.01,
                    init_latents=jnp.zeros(SHAPE))


def test_sampler_errors():
  with pytest.raises(ValueError, match='does not fit rectified flow'):
    samplers.sample(exact_flow_velocity, objectives.RectifiedFlow(), SHAPE, jax.random.key(0), sampler='ddim',
                    num_tokens=4)
  with pytest.raises(ValueError, match='num_tokens'):
    samplers.sample(exact_flow_velocity, objectives.RectifiedFlow(), SHAPE, jax.random.key(0), steps=2)
  with pytest.raises(ValueError, match='cond_latents'):
    samplers.sample(exact_flow_velocity, objectives.RectifiedFlow(), SHAPE, jax.random.key(0), num_tokens=4,
                    cond_mask=jnp.zeros(SHAPE[:2], bool))


# Classifier-free guidance.


def _toy_apply(params, x, t, text, text_mask, cond_mask=None, cond_latents=None):
  """A model whose output depends on the text (masked mean) so cond and uncond differ."""
  pooled = jnp.sum(text * text_mask[..., None], axis=(1, 2)) / jnp.maximum(jnp.sum(text_mask, axis=1), 1)
  out = params * x * pooled[:, None, None, None, None] + t[:, None, None, None, None]
  if cond_mask is not None:
    out = jnp.where(cond_mask[:, :, None, None, None], 0.0, out)
  return out


def _toy_inputs():
  k = jax.random.split(jax.random.key(0), 3)
  text = jax.random.normal(k[0], (2, 5, 3))
  text_mask = jnp.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
  null_text, null_mask = jax.random.normal(k[1], (1, 4, 3)), jnp.array([[1, 0, 0, 0]], bool)
  x, t = jax.random.normal(k[2], (2, 2, 2, 2, 2)), jnp.array([0.3, 0.8])
  return text, text_mask, null_text, null_mask, x, t


def test_cfg_combines_both_branches_from_one_batched_call():
  text, text_mask, null_text, null_mask, x, t = _toy_inputs()
  calls = []

  def counting_apply(*args):
    calls.append(args[1].shape[0])
    return _toy_apply(*args)

  fn = guidance.cfg_denoise_fn(counting_apply, 2.0, text, text_mask, null_text, null_mask, 4.0)
  out = fn(x, t)
  assert calls == [4]  # one call on the doubled batch
  cond = _toy_apply(2.0, x, t, text, text_mask)
  null = jnp.pad(jnp.broadcast_to(null_text, (2, 4, 3)), ((0, 0), (0, 1), (0, 0)))
  uncond = _toy_apply(2.0, x, t, null, jnp.pad(jnp.broadcast_to(null_mask, (2, 4)), ((0, 0), (0, 1))))
  np.testing.assert_allclose(out, uncond + 4.0 * (cond - uncond), rtol=1e-5, atol=1e-5)
  # A negative prompt replaces the null text as the unconditional branch.
  negative = (text[::-1], text_mask[::-1])
  out_neg = guidance.cfg_denoise_fn(_toy_apply, 2.0, text, text_mask, null_text, null_mask, 4.0,
                                    negative=negative)(x, t)
  uncond_neg = _toy_apply(2.0, x, t, *negative)
  np.testing.assert_allclose(out_neg, uncond_neg + 4.0 * (cond - uncond_neg), rtol=1e-5, atol=1e-5)


def test_cfg_scale_one_is_exactly_the_conditional_prediction():
  text, text_mask, null_text, null_mask, x, t = _toy_inputs()
  cond = _toy_apply(2.0, x, t, text, text_mask)
  python_one = guidance.cfg_denoise_fn(_toy_apply, 2.0, text, text_mask, null_text, null_mask, 1)(x, t)
  np.testing.assert_array_equal(python_one, cond)
  # A traced scale cannot skip the unconditional branch: the result is the conditional half of the
  # batched call, exactly (equal to a separate conditional call up to the rounding of another batch).
  traced = jax.jit(lambda s: guidance.cfg_denoise_fn(_toy_apply, 2.0, text, text_mask, null_text, null_mask,
                                                     s)(x, t))
  np.testing.assert_allclose(traced(jnp.float32(1.0)), cond, rtol=1e-6, atol=1e-6)
  both = jax.jit(lambda: jnp.split(_toy_apply(2.0, jnp.concatenate([x, x]), jnp.concatenate([t, t]),
                                              jnp.concatenate([text, text]),
                                              jnp.concatenate([text_mask, text_mask])), 2)[0])()
  np.testing.assert_array_equal(guidance.classifier_free(both, both * 3 - 1, jnp.float32(1.0)), both)
  uncond = cond * 3 - 1
  np.testing.assert_array_equal(guidance.classifier_free(cond, uncond, 1.0), cond)
  np.testing.assert_allclose(guidance.classifier_free(cond, uncond, 0.0), uncond, atol=1e-6)


def test_cfg_with_a_dit_and_clean_frames():
  config = dit.DiTConfig(size='tiny', depth=1, width=32, heads=2, latent_channels=2, text_width=3,
                         scan_layers=False)
  model = dit.DiT(config)
  text, text_mask, null_text, null_mask, x, t = _toy_inputs()
  shapes = jax.eval_shape(lambda: nn.unbox(model.init(jax.random.key(0), x, t, text, text_mask)['params']))
  rng = np.random.default_rng(0)
  params = jax.tree.map(lambda s: jnp.asarray(0.2 * rng.standard_normal(s.shape), jnp.float32), shapes)
  apply = guidance.dit_apply(model)
  cond_mask = jnp.array([[True, False], [False, False]])
  cond_latents = jax.random.normal(jax.random.key(4), x.shape)
  cond = apply(params, x, t, text, text_mask, cond_mask, cond_latents)
  one = guidance.cfg_denoise_fn(apply, params, text, text_mask, null_text, null_mask, 1,
                                cond_mask=cond_mask, cond_latents=cond_latents)(x, t)
  np.testing.assert_array_equal(one, cond)
  guided = guidance.cfg_denoise_fn(apply, params, text, text_mask, null_text, null_mask, 3.0,
                                   cond_mask=cond_mask, cond_latents=cond_latents)(x, t)
  assert guided.shape == x.shape and not np.allclose(guided, cond, atol=1e-4)
  # Sampling with guidance keeps the clean frames.
  fn = guidance.cfg_denoise_fn(apply, params, text, text_mask, null_text, null_mask, 3.0,
                               cond_mask=cond_mask, cond_latents=cond_latents)
  out = samplers.sample(fn, objectives.RectifiedFlow(), x.shape, jax.random.key(5), steps=2,
                        cond_mask=cond_mask, cond_latents=cond_latents,
                        num_tokens=config.num_tokens(*x.shape[1:4]))
  np.testing.assert_array_equal(out[0, 0], cond_latents[0, 0])
