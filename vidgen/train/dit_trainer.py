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

from absl import logging
import flax.linen as nn
import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from vidgen import config_lib, paths
from vidgen.data import pipeline
from vidgen.data.tokenizer import Tokenizer
from vidgen.diffusion import objectives
from vidgen.models import dit as dit_lib
from vidgen.models import flops
from vidgen.models import vae as vae_lib
from vidgen.models.text import TextEncoderConfig
from vidgen.models.text_to_video import TextToVideo
from vidgen.train import checkpoint as checkpoint_lib
from vidgen.train import optimizer as optimizer_lib
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


def build_model(config: ml_collections.ConfigDict, vocab_size: int, latent_channels: int) -> TextToVideo:
  """The TextToVideo model of `config.dit` and `config.text` for a tokenizer and a VAE."""
  text = TextEncoderConfig.from_config({**config.text.to_dict(), 'vocab_size': vocab_size,
                                        'max_length': config.data.tokenizer.max_length})
  dit = dit_lib.DiTConfig.from_config({**config.dit.to_dict(), 'latent_channels': latent_channels,
                                       'text_width': text.width})
  return TextToVideo(dit, text)


def vae_from_config(config: ml_collections.ConfigDict) -> tuple[vae_lib.VAE, Any]:
  """The frozen VAE named by `config.vae_workdir`, with a clear error when it is not set."""
  from vidgen.train.vae_trainer import load_vae
  if not config.vae_workdir:
    raise config_lib.ConfigError(
        'config.vae_workdir is empty: the DiT trains on latents of a trained VAE. Train one with '
        '`python -m vidgen.train --config experiments/configs/vae_world.py --workdir runs/vae_world` '
        'and pass --config.vae_workdir=runs/vae_world.')
  model, params, _ = load_vae(config.vae_workdir)
  return model, params


class DiTTrainer:
  """The DiT's part of the shared loop (see vidgen/train/loop.py)."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str | None, *,
               vae: vae_lib.VAE | None = None, vocab_size: int | None = None):
    """`vae` and `vocab_size` stand in for a trained VAE and tokenizer when only the step's
    shapes matter (ahead-of-time compilation on cached latents); otherwise both are loaded."""
    self.config = config
    if config.eval.get('num_videos', 0) and self.eval_source != 'world':
      raise config_lib.ConfigError(
          f'eval.num_videos={config.eval.num_videos} scores sampled videos with the world probe, which needs world '
          f'prompts and truth, but the eval data is {self.eval_source!r}. Set eval.data_source=world (when the '
          'run trains on world videos or their cached latents) or eval.num_videos=0.')
    if not 0.0 <= config.get('first_frame_prob', 0.0) <= 1.0:
      raise config_lib.ConfigError(f'first_frame_prob={config.first_frame_prob} is a probability: set it in [0, 1] '
                                   '(0: text-to-video only; 0.3: 30% of clips are image-to-video examples).')
    data = config.data
    if vae is None:
      self.vae, self.vae_params = vae_from_config(config)
    else:
      self.vae, self.vae_params = vae, None
    self.latent_shape = self.vae.config.latent_shape(data.num_frames, data.height, data.width)
    self.tokenizer: Tokenizer | None = None if vocab_size else pipeline.make_tokenizer(config, workdir)
    self.model = build_model(config, vocab_size or self.tokenizer.vocab_size, self.vae.config.latent_channels)
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
    return self.config.eval.get('data_source') or self.config.data.source

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

  def _x0_and_masks(self, state, batch, rng, first_frame_prob=0.0):
    """Normalised latents x0 [B, T, h, w, C] and the mask [B, T] of latent frames given clean.

    With probability `first_frame_prob` a clip's first latent frame is given clean: an
    image-to-video example for the same model (the samplers' `cond_mask`), whose loss on the
    frames after it depends on the motion the caption names. With most clips so and a high
    timestep shift, the quickstart's DiT learns to move a given object the way the caption
    says, which `generation.Settings.factorized` sampling turns into text-to-video
    (experiments/ablations/README.md).
    """
    latent_rng, mask_rng = jax.random.split(rng)
    mean, logvar = self._latent_posterior(batch)
    z = vae_lib.sample_latent(latent_rng, mean, logvar)
    x0 = (z - state.extra['latent_shift']) * state.extra['latent_scale']
    b, frames = x0.shape[:2]
    cond_mask = jnp.zeros((b, frames), bool)
    if first_frame_prob > 0 and frames > 1:
      cond_mask = cond_mask.at[:, 0].set(jax.random.bernoulli(mask_rng, first_frame_prob, (b,)))
    return x0, cond_mask

  def loss_fn(self, params, state, batch, rng, *, drop_prob, first_frame_prob=0.0, t=None):
    """The objective's loss; `t` [B] fixes the timesteps (default: drawn as in training)."""
    latent_rng, drop_rng, time_rng, noise_rng = jax.random.split(rng, 4)
    x0, cond_mask = self._x0_and_masks(state, batch, latent_rng, first_frame_prob)
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
                                                   first_frame_prob=self.config.get('first_frame_prob', 0.0))
    updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ema = optimizer_lib.ema_update(state.ema_params, params, self.config.optim.ema_decay, state.step)
    return (state.replace(step=state.step + 1, params=params, opt_state=opt_state, ema_params=ema),
            {'loss': loss, 'grad_norm': optax.global_norm(grads)})

  def evaluate(self, state: TrainState, step: int, workdir: str) -> dict[str, float]:
    """Eval losses of the EMA weights (see `eval_losses`) and, if `eval.num_videos`, probe scores."""
    metrics = self.eval_losses(state)
    if self.config.eval.get('num_videos', 0):
      metrics.update(self.probe_scores(state.ema_params, state.extra))
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
      num_buckets = self.config.eval.get('loss_buckets', 0)
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

  def generator(self, params: Any, extra: Any) -> Any:
    """A VideoGenerator on these weights (built once, then given new weights)."""
    from vidgen.generation import VideoGenerator  # pylint: disable=g-import-not-at-top (it imports this module)
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
    from vidgen.eval import world_metrics  # pylint: disable=g-import-not-at-top
    from vidgen.generation import Settings  # pylint: disable=g-import-not-at-top
    records = world_metrics.prompt_records(self.config.data, self.config.data.eval_split, self.config.seed,
                                           self.config.eval.num_videos)
    generator = self.generator(params, extra)
    settings = Settings(seed=self.config.seed, steps=self.config.eval.get('sample_steps') or None)
    videos = []
    for start in range(0, len(records), PROBE_BATCH):
      prompts = [r['caption'] for r in records[start:start + PROBE_BATCH]]
      videos.extend(generator.generate(prompts, settings))
    summary = world_metrics.summarize(world_metrics.score_videos(videos, records))
    return world_metrics.flat(summary, prefix='probe/')


def new_state(model: TextToVideo, optimizer: optax.GradientTransformation, rng: jax.Array,
              text_length: int) -> TrainState:
  """A fresh train state (parameters boxed with logical axes); latent normalisation is the identity
  until `prepare_state`."""
  inputs = dit_lib.example_inputs(model.dit, text_len=text_length)
  ids = jnp.zeros((1, text_length), jnp.int32)
  params = model.init(rng, inputs['x'], inputs['t'], ids, jnp.ones((1, text_length), bool))['params']
  channels = model.dit.latent_channels
  extra = {'latent_shift': jnp.zeros((channels,)), 'latent_scale': jnp.ones((channels,))}
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params),
                    ema_params=params, extra=extra)


def resolve_vae_workdir(vae_workdir: str, dit_workdir: str) -> str:
  """The VAE run a DiT run names, found from any current directory and after a move.

  A run saves `vae_workdir` as it was given, often relative to where training started (the
  quickstart saves `runs/quickstart/vae`); evaluating from elsewhere then finds it under one
  of the DiT workdir's parents. A run moved together with its VAE (the quickstart's `vae/`
  beside `dit/`) finds it beside the DiT workdir, under the same folder name.
  """
  if paths.exists(os.path.join(vae_workdir, 'config.json')):
    return vae_workdir
  dit_dir = os.path.abspath(dit_workdir)
  if not os.path.isabs(vae_workdir) and '://' not in vae_workdir:
    parent = dit_dir
    while True:
      candidate = os.path.join(parent, vae_workdir)
      if paths.exists(os.path.join(candidate, 'config.json')):
        return candidate
      if os.path.dirname(parent) == parent:
        break
      parent = os.path.dirname(parent)
  beside = os.path.join(os.path.dirname(dit_dir), os.path.basename(os.path.normpath(vae_workdir)))
  if paths.exists(os.path.join(beside, 'config.json')):
    logging.warning('The VAE run %s named by %s is gone; using %s beside it.', vae_workdir, dit_workdir, beside)
    return beside
  return vae_workdir  # not found: load_vae names the missing path


def load_dit(workdir: str) -> tuple[TextToVideo, Any, dict[str, Any], ml_collections.ConfigDict, Tokenizer]:
  """The EMA DiT of a trained run: (model, params, latent stats, the run's config, tokenizer)."""
  config = config_lib.read_saved_config(workdir)
  if config.get('model') != 'dit':
    raise checkpoint_lib.CheckpointError(f'{workdir} is not a DiT run (config.json has model={config.get("model")!r}).')
  tokenizer_path = os.path.join(workdir, 'tokenizer.model')
  if not paths.exists(tokenizer_path):
    raise checkpoint_lib.CheckpointError(f'{tokenizer_path} is missing: the run saved no tokenizer.')
  tokenizer = Tokenizer.load(tokenizer_path)
  if not config.vae_workdir:
    raise checkpoint_lib.CheckpointError(f'{workdir}/config.json names no vae_workdir.')
  config.vae_workdir = resolve_vae_workdir(config.vae_workdir, workdir)
  latent_channels = config_lib.read_saved_config(config.vae_workdir).vae.latent_channels
  model = build_model(config, tokenizer.vocab_size, latent_channels)
  optimizer = optimizer_lib.make_optimizer(config.optim, config.train.num_steps)
  abstract = nn.unbox(jax.eval_shape(lambda rng: new_state(model, optimizer, rng, config.data.tokenizer.max_length),
                                     jax.random.key(0)))
  ckpt = checkpoint_lib.Checkpointer(os.path.join(workdir, 'checkpoints'), create=False)
  try:
    state = ckpt.restore(abstract)
  finally:
    ckpt.close()
  return model, state.ema_params, state.extra, config, tokenizer
