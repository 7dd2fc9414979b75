"""Loading a trained run for inference: its config, tokenizer and EMA weights, nothing more.

Generation, evaluation and latent caching load runs here, and so do the trainers (the DiT
trains on a frozen VAE); nothing here imports a trainer. From a checkpoint only what inference
needs is read, the EMA parameters (and a DiT's latent normalisation), never the optimizer's
moments; with a `mesh` and logical `rules` they are restored straight onto the mesh with the
shardings training would give them, so a model that only fits sharded is sampled sharded.

The models' parameter inits (`vae_params`, `dit_params`) live here too: training and loading
build the same trees from them.
"""

from __future__ import annotations

import os
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
from absl import logging

from vidgen import config_lib, paths
from vidgen.data.tokenizer import Tokenizer
from vidgen.models import dit as dit_lib
from vidgen.models import vae as vae_lib
from vidgen.models.text import TextEncoderConfig
from vidgen.models.text_to_video import TextToVideo
from vidgen.parallel import sharding as sharding_lib
from vidgen.parallel.rules import LogicalRules
from vidgen.train.checkpoint import Checkpointer, CheckpointError


def vae_params(model: vae_lib.VAE, model_rng: jax.Array, sample_rng: jax.Array, video: jax.Array) -> Any:
  """Fresh VAE parameters, boxed with logical axes; `video` [1, 1, H, W, 3] (the length does not matter)."""
  return model.init(model_rng, video, sample_rng)['params']


def dit_params(model: TextToVideo, rng: jax.Array, text_length: int) -> Any:
  """Fresh text encoder + DiT parameters, boxed with logical axes."""
  inputs = dit_lib.example_inputs(model.dit, text_len=text_length)
  ids = jnp.zeros((1, text_length), jnp.int32)
  return model.init(rng, inputs['x'], inputs['t'], ids, jnp.ones((1, text_length), bool))['params']


def build_dit_model(config: ml_collections.ConfigDict, vocab_size: int, latent_channels: int) -> TextToVideo:
  """The TextToVideo model of `config.dit` and `config.text` for a tokenizer and a VAE."""
  text = TextEncoderConfig.from_config({**config.text.to_dict(), 'vocab_size': vocab_size,
                                        'max_length': config.data.tokenizer.max_length})
  dit = dit_lib.DiTConfig.from_config({**config.dit.to_dict(), 'latent_channels': latent_channels,
                                       'text_width': text.width})
  return TextToVideo(dit, text)


def placed(boxed: Any, mesh: jax.sharding.Mesh | None = None, rules: LogicalRules | None = None) -> Any:
  """ShapeDtypeStructs of a boxed abstract tree: on the mesh by its logical names, else on one device."""
  if mesh is not None:
    if rules is None:
      raise ValueError('Loading onto a mesh needs the logical rules too (parallel.rules.logical_rules).')
    return sharding_lib.shaped_like(boxed, sharding_lib.state_shardings(boxed, mesh, rules))
  one = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=one), nn.unbox(boxed))


def restore_weights(workdir: str, abstract: dict[str, Any]) -> dict[str, Any]:
  """The entries of the latest checkpoint's train state named in `abstract` (e.g. 'ema_params')."""
  ckpt = Checkpointer(os.path.join(workdir, 'checkpoints'), create=False)
  try:
    return ckpt.restore_subset(abstract)
  finally:
    ckpt.close()


def load_vae(workdir: str, expected: ml_collections.ConfigDict | None = None, *,
             mesh: jax.sharding.Mesh | None = None,
             rules: LogicalRules | None = None) -> tuple[vae_lib.VAE, Any, ml_collections.ConfigDict]:
  """The EMA VAE of a trained run: (model, params, the run's config).

  Raises a clear error when the workdir has no run or no checkpoint, when the checkpoint does
  not match the run's config, or when `expected` (a `vae` config block) differs from the run's.
  """
  config = config_lib.read_saved_config(workdir)
  if config.model != 'vae':
    raise CheckpointError(f'{workdir} is not a VAE run (config.json has model={config.model!r}).')
  vae_config = vae_lib.VAEConfig.from_config(config.vae)
  if expected is not None:
    want = vae_lib.VAEConfig.from_config(expected)
    if want != vae_config:
      diffs = [f'{f}: run has {getattr(vae_config, f)}, expected {getattr(want, f)}'
               for f in vae_config.__dataclass_fields__ if getattr(vae_config, f) != getattr(want, f)]
      raise CheckpointError(f'The VAE in {workdir} differs from the one asked for: ' + '; '.join(diffs))
  model = vae_lib.VAE(vae_config)
  video = jnp.zeros((1, 1, config.data.height, config.data.width, 3))
  boxed = jax.eval_shape(lambda rng: vae_params(model, rng, rng, video), jax.random.key(0))
  weights = restore_weights(workdir, {'ema_params': placed(boxed, mesh, rules)})
  return model, weights['ema_params'], config


def resolve_vae_workdir(vae_workdir: str, dit_workdir: str) -> str:
  """The VAE run a DiT run names, found from any current directory and after a move.

  A run saves `vae_workdir` as it was given, often relative to where training started (the
  quickstart saves `runs/quickstart/vae`); evaluating from elsewhere then finds it under one
  of the DiT workdir's parents. A run moved together with its VAE (the quickstart's `vae/`
  beside `dit/`) finds it beside the DiT workdir, under the same folder name.
  """
  if paths.exists(os.path.join(vae_workdir, 'config.json')):
    return vae_workdir
  dit_dir = paths.absolute(dit_workdir)
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


def frozen_vae(config: ml_collections.ConfigDict, **placement: Any) -> tuple[vae_lib.VAE, Any]:
  """The VAE a DiT config names (`config.vae_workdir`), with a clear error when it is not set."""
  if not config.vae_workdir:
    raise config_lib.ConfigError(
        'config.vae_workdir is empty: the DiT trains on latents of a trained VAE. Train one with '
        '`python -m vidgen.train --config experiments/configs/vae_world.py --workdir runs/vae_world` '
        'and pass --config.vae_workdir=runs/vae_world.')
  model, params, _ = load_vae(config.vae_workdir, **placement)
  return model, params


def load_dit(workdir: str, *, mesh: jax.sharding.Mesh | None = None, rules: LogicalRules | None = None
             ) -> tuple[TextToVideo, Any, dict[str, Any], ml_collections.ConfigDict, Tokenizer]:
  """The EMA DiT of a trained run: (model, params, latent normalisation, the run's config, tokenizer).

  The config's `vae_workdir` is resolved to where the VAE run is now (`resolve_vae_workdir`).
  """
  config = config_lib.read_saved_config(workdir)
  if config.model != 'dit':
    raise CheckpointError(f'{workdir} is not a DiT run (config.json has model={config.model!r}).')
  tokenizer_path = os.path.join(workdir, 'tokenizer.model')
  if not paths.exists(tokenizer_path):
    raise CheckpointError(f'{tokenizer_path} is missing: the run saved no tokenizer.')
  tokenizer = Tokenizer.load(tokenizer_path)
  if not config.vae_workdir:
    raise CheckpointError(f'{workdir}/config.json names no vae_workdir.')
  config.vae_workdir = resolve_vae_workdir(config.vae_workdir, workdir)
  latent_channels = config_lib.read_saved_config(config.vae_workdir).vae.latent_channels
  model = build_dit_model(config, tokenizer.vocab_size, latent_channels)
  boxed = jax.eval_shape(lambda rng: dit_params(model, rng, config.data.tokenizer.max_length), jax.random.key(0))
  channels = jax.ShapeDtypeStruct((latent_channels,), jnp.float32)
  extra = placed({'latent_shift': channels, 'latent_scale': channels}, mesh, rules)
  weights = restore_weights(workdir, {'ema_params': placed(boxed, mesh, rules), 'extra': extra})
  return model, weights['ema_params'], weights['extra'], config, tokenizer
