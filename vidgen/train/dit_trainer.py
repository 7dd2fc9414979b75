"""Training the text-to-video DiT on latents of a frozen VAE (encoded on the fly or cached).

Its evaluation (every `train.eval_every` steps, logged as eval/...) gives the eval loss
with random timesteps as in training ('loss'), the loss at fixed timesteps, one per bucket
of noise level ('loss_t0.05' ... 'loss_t0.95', as MaxDiffusion reports it), and, when
`eval.num_videos` > 0, the world probe's scores of videos sampled for eval prompts
('probe/adherence', 'probe/color', ...), so a run's prompt adherence can be plotted over steps."""

from __future__ import annotations

import functools
import os
from typing import Any, Mapping

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from vidgen import config_blocks, runs
from vidgen.data import pipeline, sources
from vidgen.data.tokenizer import Tokenizer
from vidgen.diffusion import masking, objectives
from vidgen.world import metrics as world_metrics
from vidgen.eval.contact_sheet import save_contact_sheet
from vidgen.generation import Settings, VideoGenerator
from vidgen.models import flops
from vidgen.models import vae as vae_lib
from vidgen.models.text_to_video import TextToVideo
from vidgen.train import optimizer as optimizer_lib
from vidgen.train import trainer_blocks
from vidgen.train.loop import model_inputs
from vidgen.train.state import TrainState

LATENT_STATS_BATCHES = 8  # batches whose latents set the normalisation (per-channel shift and scale)
PROBE_BATCH = 16  # prompts sampled together in the periodic probe evaluation


def bucket_times(objective: objectives.Objective, num_buckets: int) -> list[tuple[str, float]]:
  """(metric name, objective time) at the centre of each of `num_buckets` equal buckets of noise level.

  Noise level u in [0, 1] (0: clean data, 1: pure noise) is the flow's t, and t / (T - 1) for DDPM.
  """
  out = []
  for i in range(num_buckets):
    u = (i + 0.5) / num_buckets
    t = u if objective.kind == 'flow' else float(round(u * (objective.num_timesteps - 1)))
    out.append((f'loss_t{u:g}', t))
  return out


class DiTTrainer:
  """The DiT's part of the shared loop (see vidgen/train/loop.py)."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str | None, *,
               vae: vae_lib.VAE | None = None, vocab_size: int | None = None):
    """`vae` and `vocab_size` stand in for a trained VAE and tokenizer when only the step's
    shapes matter (ahead-of-time compilation on cached latents); otherwise both are loaded."""
    self.config = config
    self.evaluators = config_blocks.from_config(trainer_blocks.DiTEvalConfig, config.eval, 'eval').chosen(self.eval_source)
    if 'probe' in self.evaluators and self.eval_source != 'world':
      raise config_blocks.ConfigError(
          f'eval.evaluators has probe, which scores sampled videos with the world probe and needs world prompts '
          f'and truth, but the eval data is {self.eval_source!r}. Set eval.data_source=world (when the run trains '
          "on world videos or their cached latents), or eval.evaluators=\"('loss','samples')\" for your own data.")
    self.masking = masking.MaskingConfig.from_config(config.masking)
    data = config.data
    if vae is None:
      self.vae, self.vae_params = runs.frozen_vae(config)
    else:
      self.vae, self.vae_params = vae, None
    self.latent_shape = self.vae.config.latent_shape(data.num_frames, data.height, data.width)
    self.tokenizer: Tokenizer | None = None if vocab_size else pipeline.make_tokenizer(config, workdir)
    self.model = runs.build_dit_model(config, vocab_size or self.tokenizer.vocab_size, self.vae.config.latent_channels)
    self.model.dit.check_latent_shape(*self.latent_shape[:3])
    self.num_tokens = self.model.dit.num_tokens(*self.latent_shape[:3])
    self.objective = objectives.make_objective(config.diffusion)
    self.optimizer = optimizer_lib.make_optimizer(config.optim, config.train.num_steps)
    self._posterior = jax.jit(self._latent_posterior)  # on the host, outside the train step
    self._eval_loss = jax.jit(functools.partial(self.loss_fn, drop_prob=0.0))
    self._generator = None  # built on the first probe evaluation

  @property
  def eval_source(self) -> str:
    """Where eval batches come from: `eval.data_source`, or the training source when that is empty."""
    return self.config.eval.data_source or self.config.data.source

  def eval_data(self) -> str:
    data = self.eval_data_config()
    return sources.describe_split(data, data.eval_split)

  def dataset(self, split: str | None = None, **kwargs) -> grain.IterDataset:
    return pipeline.make_dataset(self.config, split, tokenizer=self.tokenizer, **kwargs)

  def _latent_posterior(self, batch: Mapping[str, Any]) -> tuple[jax.Array, jax.Array]:
    """(mean, logvar) of the batch's latents: cached, or encoded by the frozen VAE."""
    if pipeline.LATENT_MEAN in batch:
      return batch[pipeline.LATENT_MEAN], batch[pipeline.LATENT_LOGVAR]
    return jax.lax.stop_gradient(self.vae.apply({'params': self.vae_params}, batch[pipeline.VIDEO],
                                                method=vae_lib.VAE.encode))

  def sharded_dims(self) -> dict[str, int]:
    return {'heads': self.model.dit.num_heads, 'tokens': self.num_tokens}

  def flops_per_step(self) -> float:
    """Analytic training FLOPs of one global batch (the DiT; the small text encoder is left out)."""
    return flops.flops_per_step(self.model.dit, self.config.data.batch_size, *self.latent_shape[:3],
                                self.config.data.tokenizer.max_length)

  def latent_stats(self) -> dict[str, np.ndarray]:
    """Per-channel mean and 1/std of VAE latent means over a few training batches.

    Every process reads the same batches (not its shard), so all agree on the statistics.
    """
    it = iter(self.dataset(shuffle=False, num_epochs=None, process_index=0, process_count=1))
    means = []
    for _ in range(LATENT_STATS_BATCHES):
      mean = self._posterior(model_inputs(next(it)))[0]
      means.append(np.asarray(mean).reshape(-1, mean.shape[-1]))
    values = np.concatenate(means)
    return {'shift': values.mean(0).astype(np.float32), 'scale': (1.0 / (values.std(0) + 1e-6)).astype(np.float32)}

  def init_state(self, rng: jax.Array, batch: Mapping[str, Any]) -> TrainState:
    return new_state(self.model, self.optimizer, rng, batch[pipeline.TEXT_IDS].shape[1])

  def prepare_state(self, state: TrainState) -> TrainState:
    """Called once on a fresh state: fixes the latent normalisation from the data."""
    stats = self.latent_stats()
    return state.replace(extra={'latent_shift': jnp.asarray(stats['shift']),
                                'latent_scale': jnp.asarray(stats['scale'])})

  def _x0_and_masks(self, state, batch, rng, frame_masking: masking.MaskingConfig | None = None):
    """Normalised latents x0 [B, T, h, w, C] and the mask [B, T] of latent frames given clean.

    `frame_masking` (default: none given) draws one strategy per clip (diffusion/masking.py):
    image → video, extension forward or backward, connecting, random frames. The quickstart's
    DiT gives the first latent frame of most clips at a high timestep shift, and so learns to
    move a given object the way the caption says, which `generation.Settings.factorized`
    sampling turns into text-to-video (experiments/ablations/README.md).
    """
    latent_rng, mask_rng = jax.random.split(rng)
    mean, logvar = self._latent_posterior(batch)
    z = vae_lib.sample_latent(latent_rng, mean, logvar)
    x0 = (z - state.extra['latent_shift']) * state.extra['latent_scale']
    b, frames = x0.shape[:2]
    cond_mask = masking.draw(mask_rng, frame_masking or masking.MaskingConfig(), b, frames)
    return x0, cond_mask

  def loss_fn(self, params, state, batch, rng, *, drop_prob, frame_masking=None, t=None):
    """The objective's loss; `t` [B] fixes the timesteps (default: drawn as in training)."""
    latent_rng, drop_rng, time_rng, noise_rng = jax.random.split(rng, 4)
    x0, cond_mask = self._x0_and_masks(state, batch, latent_rng, frame_masking)
    b = x0.shape[0]
    drop = jax.random.bernoulli(drop_rng, drop_prob, (b,))
    if t is None:
      t = self.objective.sample_time(time_rng, b, self.num_tokens)
    noise = self.objective.noise(noise_rng, x0.shape)
    x_t = self.objective.noisy(x0, noise, t)
    pred = self.model.apply({'params': params}, x_t, self.objective.model_time(t), batch[pipeline.TEXT_IDS],
                            batch[pipeline.TEXT_MASK], drop, cond_mask, x0)
    return self.objective.loss(pred, self.objective.target(x0, noise, t), cond_mask)

  def train_step(self, state: TrainState, batch: Mapping[str, Any],
                 rng: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
    loss, grads = jax.value_and_grad(self.loss_fn)(state.params, state, batch, rng,
                                                   drop_prob=self.config.caption_dropout,
                                                   frame_masking=self.masking)
    updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ema = optimizer_lib.ema_update(state.ema_params, params, self.config.optim.ema_decay, state.step)
    return (state.replace(step=state.step + 1, params=params, opt_state=opt_state, ema_params=ema),
            {'loss': loss, 'grad_norm': optax.global_norm(grads)})

  def evaluate(self, state: TrainState, step: int, workdir: str) -> dict[str, float]:
    """The EMA weights judged by each of `eval.evaluators` (trainer_blocks.DiTEvalConfig)."""
    metrics = {}
    if 'loss' in self.evaluators:
      metrics.update(self.eval_losses(state))
    if 'probe' in self.evaluators:
      metrics.update(self.probe_scores(state.ema_params, state.extra))
    if 'samples' in self.evaluators:
      metrics.update(self.sample_sheet(state.ema_params, state.extra, os.path.join(workdir, 'eval', f'step_{step}.png')))
    return metrics

  def eval_dataset(self, split: str | None = None, source: str | None = None) -> grain.IterDataset:
    """One ordered pass over `split` (default `data.eval_split`) of `source` (default `eval_source`)."""
    return pipeline.make_eval_dataset(self.config, split, tokenizer=self.tokenizer, source=source or self.eval_source)

  def eval_losses(self, state: TrainState, split: str | None = None, num_batches: int | None = None,
                  source: str | None = None, num_buckets: int | None = None) -> dict[str, float]:
    """Loss of the EMA weights on the first `num_batches` (default `eval.num_batches`) eval batches.

    'loss' draws timesteps as training does; 'loss_t<u>' fixes the noise level at the centre u
    of each of `num_buckets` (default `eval.loss_buckets`) buckets. Batch i always uses the same noise (key i), so
    every bucket sees the same videos and noise, and two evaluations differ only by the weights.
    """
    num_batches = num_batches or self.config.eval.num_batches
    if num_buckets is None:
      num_buckets = self.config.eval.loss_buckets
    buckets = bucket_times(self.objective, num_buckets)
    losses = {name: [] for name in ['loss'] + [n for n, _ in buckets]}
    dtype = jnp.float32 if self.objective.kind == 'flow' else jnp.int32
    for i, batch in enumerate(self.eval_dataset(split, source)):
      if i == num_batches:
        break
      inputs, key = model_inputs(batch), jax.random.key(i)
      b = len(batch[pipeline.TEXT_IDS])
      drawn = self.objective.sample_time(jax.random.fold_in(key, 1), b, self.num_tokens)
      for name, t in [('loss', drawn)] + [(n, jnp.full((b,), t, dtype)) for n, t in buckets]:
        losses[name].append(float(self._eval_loss(state.ema_params, state, inputs, key, t=jnp.asarray(t, dtype))))
    if not losses['loss']:
      raise ValueError(f'The {source or self.eval_source!r} eval data gave no full batch of '
                       f'{self.config.data.batch_size} videos.')
    return {name: float(np.mean(v)) for name, v in losses.items()}

  def generator(self, params: Any, extra: Any) -> VideoGenerator:
    """A VideoGenerator on these weights (built once, then given new weights)."""
    if self._generator is None:
      self._generator = VideoGenerator(self.model, params, extra, self.config, self.tokenizer, self.vae,
                                       self.vae_params)
    else:
      self._generator.set_weights(params, extra)
    return self._generator

  def probe_scores(self, params: Any, extra: Any) -> dict[str, float]:
    """World probe scores ('probe/<metric>') of videos sampled for the first `eval.num_videos` eval prompts.

    Sampled with `eval.sample_steps` steps, the run's guidance and sampler, and the config
    seed, in batches of PROBE_BATCH (as `vidgen.evaluate` samples): the same prompts and noise
    at every evaluation.
    """
    records = world_metrics.prompt_records(self.config.data, self.config.data.eval_split, self.config.seed,
                                           self.config.eval.num_videos)
    videos = self.sample_eval_videos(params, extra, [r['caption'] for r in records])
    summary = world_metrics.summarize(world_metrics.score_videos(videos, records))
    return world_metrics.flat(summary, prefix='probe/')

  def sample_eval_videos(self, params: Any, extra: Any, prompts: list[str]) -> list[np.ndarray]:
    """`prompts` sampled as every evaluation samples them (eval.sample_steps, config seed, PROBE_BATCH)."""
    generator = self.generator(params, extra)
    settings = Settings(seed=self.config.seed, steps=self.config.eval.sample_steps or None)
    videos = []
    for start in range(0, len(prompts), PROBE_BATCH):
      videos.extend(generator.generate(prompts[start:start + PROBE_BATCH], settings))
    return videos

  def eval_data_config(self) -> ml_collections.ConfigDict:
    """`config.data` with the source the evaluation reads (`eval_source`)."""
    data = self.config.data.copy_and_resolve_references()
    data.source = self.eval_source
    return data

  def sample_prompts(self) -> list[str]:
    """`eval.prompts`, or the captions of the first `eval.num_videos` eval videos."""
    if self.config.eval.prompts:
      return list(self.config.eval.prompts)[:self.config.eval.num_videos]
    data = self.eval_data_config()
    source = sources.make_source(data, data.eval_split, self.config.seed)
    return [str(source[i]['caption']) for i in range(min(self.config.eval.num_videos, len(source)))]

  def sample_sheet(self, params: Any, extra: Any, path: str) -> dict[str, float]:
    """Samples the eval prompts (same noise every time) into a contact sheet at `path`."""
    prompts = self.sample_prompts()
    videos = self.sample_eval_videos(params, extra, prompts)
    save_contact_sheet(path, videos, prompts)
    return {'samples/videos': float(len(videos))}


def new_state(model: TextToVideo, optimizer: optax.GradientTransformation, rng: jax.Array,
              text_length: int) -> TrainState:
  """A fresh train state (parameters boxed with logical axes); latent normalisation is the identity
  until `prepare_state`."""
  params = runs.dit_params(model, rng, text_length)
  channels = model.dit.latent_channels
  extra = {'latent_shift': jnp.zeros((channels,)), 'latent_scale': jnp.ones((channels,))}
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params),
                    ema_params=params, extra=extra)
