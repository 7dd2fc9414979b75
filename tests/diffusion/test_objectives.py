"""Objectives: interpolation and targets, the token-count shift, DDPM schedules, the clean-frame loss."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from vidgen import config_blocks, config_lib
from vidgen.diffusion import objectives

SHAPE = (3, 4, 2, 2, 2)


def _data():
  k0, k1 = jax.random.split(jax.random.key(0))
  return jax.random.normal(k0, SHAPE), jax.random.normal(k1, SHAPE)


def test_flow_interpolates_from_data_to_noise():
  flow = objectives.RectifiedFlow()
  x0, noise = _data()
  np.testing.assert_allclose(flow.noisy(x0, noise, jnp.zeros(3)), x0)
  np.testing.assert_allclose(flow.noisy(x0, noise, jnp.ones(3)), noise)
  t = jnp.array([0.2, 0.5, 0.9])
  xt = flow.noisy(x0, noise, t)
  np.testing.assert_allclose(xt, (1 - t[:, None, None, None, None]) * x0 + t[:, None, None, None, None] * noise,
                             rtol=1e-6)
  # The target is the velocity d x_t / dt.
  np.testing.assert_allclose(flow.target(x0, noise, t), (flow.noisy(x0, noise, t + 1e-3) - xt) / 1e-3, atol=2e-3)
  np.testing.assert_allclose(flow.model_time(t), t)


def test_timestep_shift_grows_with_token_count():
  flow = objectives.RectifiedFlow()
  assert flow.mu(256) == pytest.approx(0.5) and flow.mu(4096) == pytest.approx(1.15)
  tokens = [16, 256, 1024, 4096, 16384]
  mus = [flow.mu(n) for n in tokens]
  assert all(a < b for a, b in zip(mus, mus[1:]))
  u = jnp.linspace(0.0, 1.0, 11)
  shifted = [flow.shift(u, n) for n in tokens]
  for lo, hi in zip(shifted, shifted[1:]):
    assert np.all(np.asarray(hi[1:-1]) > np.asarray(lo[1:-1]))  # more tokens → noisier
  for s in shifted:  # maps [0, 1] onto itself, monotone
    assert float(s[0]) == 0.0 and float(s[-1]) == pytest.approx(1.0)
    assert np.all(np.diff(np.asarray(s)) > 0)
  s = np.exp(flow.mu(1024))
  np.testing.assert_allclose(flow.shift(jnp.array(0.3), 1024), s * 0.3 / (1 + (s - 1) * 0.3), rtol=1e-6)
  # Sampled training times follow the shift too.
  means = [float(jnp.mean(flow.sample_time(jax.random.key(1), 4096, n))) for n in (64, 1024, 8192)]
  assert means[0] < means[1] < means[2]
  with pytest.raises(ValueError, match='num_tokens'):
    flow.sample_time(jax.random.key(1), 4, None)


def test_flow_time_sampling_is_logit_normal_and_deterministic():
  flow = objectives.RectifiedFlow(base_shift=0.0, max_shift=0.0)  # no shift: plain logit-normal
  t = flow.sample_time(jax.random.key(3), 20000, 256)
  assert float(t.min()) > 0 and float(t.max()) < 1
  logit = np.log(np.asarray(t) / (1 - np.asarray(t)))
  assert abs(logit.mean()) < 0.03 and abs(logit.std() - 1.0) < 0.03
  np.testing.assert_array_equal(t, flow.sample_time(jax.random.key(3), 20000, 256))
  schedule = objectives.RectifiedFlow().schedule(10, 1024)
  assert schedule.shape == (11,) and schedule[0] == pytest.approx(1.0) and schedule[-1] == 0.0
  assert np.all(np.diff(schedule) < 0)


@pytest.mark.parametrize('schedule', ['linear', 'cosine'])
def test_ddpm_schedule(schedule):
  ddpm = objectives.DDPM(schedule=schedule)
  a = ddpm.alphas_cumprod
  assert a.shape == (1000,) and np.all(np.diff(a) < 0) and 0 < a[-1] < 0.01 and a[0] > 0.99
  t = ddpm.sample_time(jax.random.key(0), 5000)
  assert t.dtype == jnp.int32 and int(t.min()) >= 0 and int(t.max()) == 999
  np.testing.assert_allclose(ddpm.model_time(jnp.array([0, 999])), [0.0, 1.0])


@pytest.mark.parametrize('prediction', ['eps', 'v'])
def test_ddpm_q_sample_targets_and_inversion(prediction):
  ddpm = objectives.DDPM(prediction=prediction)
  x0, noise = _data()
  t = jnp.array([0, 500, 999])
  a = jnp.asarray(ddpm.alphas_cumprod, jnp.float32)[t][:, None, None, None, None]
  xt = ddpm.q_sample(x0, noise, t)
  np.testing.assert_allclose(xt, jnp.sqrt(a) * x0 + jnp.sqrt(1 - a) * noise, rtol=1e-5)
  np.testing.assert_allclose(ddpm.noisy(x0, noise, t), xt)
  target = ddpm.target(x0, noise, t)
  np.testing.assert_allclose(target, noise if prediction == 'eps' else jnp.sqrt(a) * noise - jnp.sqrt(1 - a) * x0,
                             rtol=1e-5)
  # The exact target recovers x0 and eps.
  x0_hat, eps_hat = ddpm.predict_x0_eps(target, xt, a)
  np.testing.assert_allclose(eps_hat, noise, atol=2e-3)
  np.testing.assert_allclose(x0_hat[:2], x0[:2], atol=2e-3)  # at t = 999 x0 is barely in x_t: eps form is ill-posed


def test_loss_ignores_frames_given_clean():
  flow = objectives.RectifiedFlow()
  pred, target = _data()
  mask = jnp.zeros(SHAPE[:2], bool).at[0, :2].set(True).at[2, 3].set(True)
  loss = flow.loss(pred, target, mask)
  # Anything at clean frames changes nothing.
  np.testing.assert_allclose(flow.loss(pred.at[0, :2].set(100.0).at[2, 3].set(-7.0), target, mask), loss)
  # It is the mean squared error over the frames not given clean.
  keep = ~np.asarray(mask)
  expected = np.mean((np.asarray(pred) - np.asarray(target))[keep] ** 2)
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  np.testing.assert_allclose(flow.loss(pred, target), np.mean((np.asarray(pred) - np.asarray(target)) ** 2),
                             rtol=1e-5)
  # Every frame given: 0, not NaN; and gradient-safe.
  all_clean = jnp.ones(SHAPE[:2], bool)
  assert float(flow.loss(pred, target, all_clean)) == 0.0
  grad = jax.grad(lambda p: objectives.DDPM().loss(p, target, all_clean))(pred)
  assert np.all(np.isfinite(grad)) and float(jnp.abs(grad).max()) == 0.0


def test_make_objective():
  flow = objectives.make_objective(ml_collections.ConfigDict({'kind': 'flow', 'base_shift': 0.4}))
  assert isinstance(flow, objectives.RectifiedFlow) and flow.base_shift == 0.4
  ddpm = objectives.make_objective({'kind': 'ddpm', 'prediction': 'v', 'schedule': 'cosine'})
  assert isinstance(ddpm, objectives.DDPM) and ddpm.prediction == 'v'
  nested = objectives.make_objective({'kind': 'ddpm', 'flow': {'base_shift': 0.1}, 'ddpm': {'num_timesteps': 10}})
  assert isinstance(nested, objectives.DDPM) and nested.num_timesteps == 10
  with pytest.raises(ValueError, match='unknown'):
    objectives.make_objective({'kind': 'edm'})
  with pytest.raises(ValueError, match=r"Unknown keys \['shfit'\]"):
    objectives.make_objective({'kind': 'flow', 'shfit': 1.0})
  with pytest.raises(ValueError, match='prediction'):
    objectives.make_objective({'kind': 'ddpm', 'prediction': 'x0'})
  with pytest.raises(ValueError, match=r'diffusion.base_shift=0.1 contradicts diffusion.flow.base_shift=0.5'):
    objectives.make_objective({'kind': 'flow', 'base_shift': 0.1, 'flow': {'base_shift': 0.5}})


def test_diffusion_block_lists_every_field_for_the_command_line():
  config = config_blocks.to_config(objectives.DiffusionConfig())
  assert objectives.make_objective(config) == objectives.RectifiedFlow()
  config_lib.set_value(config, 'flow.base_shift', '1.4')  # as --config.diffusion.flow.base_shift=1.4 does
  config_lib.set_value(config, 'kind', 'ddpm')
  config_lib.set_value(config, 'ddpm.prediction', 'v')
  assert objectives.make_objective(config) == objectives.DDPM(prediction='v')
  config.kind = 'flow'
  assert objectives.make_objective(config).base_shift == 1.4
  with pytest.raises(ValueError, match='unknown'):
    objectives.DiffusionConfig(kind='edm')


def test_frame_correlated_noise_shares_variance_across_frames_only():
  noise = np.asarray(objectives.frame_correlated_noise(jax.random.key(0), (4000, 3, 2, 2, 2), 0.6))
  np.testing.assert_allclose(noise.std(), 1.0, atol=0.02)
  np.testing.assert_allclose(noise.mean(), 0.0, atol=0.02)
  np.testing.assert_allclose(np.corrcoef(noise[:, 0].ravel(), noise[:, 2].ravel())[0, 1], 0.6, atol=0.02)
  assert abs(np.corrcoef(noise[..., 0].ravel(), noise[..., 1].ravel())[0, 1]) < 0.02  # channels stay independent
  assert abs(np.corrcoef(noise[:-1].ravel(), noise[1:].ravel())[0, 1]) < 0.02  # and so do clips
  # Zero correlation is plain N(0, 1) noise from the same key, so earlier runs draw what they drew.
  key = jax.random.key(3)
  np.testing.assert_array_equal(objectives.frame_correlated_noise(key, (2, 3, 4), 0.0),
                                jax.random.normal(key, (2, 3, 4)))
  flow = objectives.RectifiedFlow(frame_noise_correlation=0.6)
  np.testing.assert_array_equal(flow.noise(key, (2, 3, 4)), objectives.frame_correlated_noise(key, (2, 3, 4), 0.6))
  for bad in (-0.1, 1.0):
    with pytest.raises(ValueError, match='frame_noise_correlation'):
      objectives.make_objective({'kind': 'ddpm', 'frame_noise_correlation': bad})
