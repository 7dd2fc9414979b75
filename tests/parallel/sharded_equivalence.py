"""Runs one training step of the tiny DiT and VAE on 1 device and on 8 under each rule preset.

Run in a subprocess with XLA_FLAGS=--xla_force_host_platform_device_count=8 (see
test_sharded_training.py); prints one JSON object: per model and preset, the losses, the
largest gradient and parameter differences to the 1-device run, and the shardings.
"""

from __future__ import annotations

import json
import sys
import tempfile

import jax
import numpy as np

from vidgen import config_lib
from vidgen.models import vae as vae_lib
from vidgen.parallel import sharding as sharding_lib
from vidgen.train import checkpoint as checkpoint_lib
from vidgen.train import loop
from vidgen.train.dit_trainer import DiTTrainer
from vidgen.train.vae_trainer import VAETrainer

# Each preset on a mesh that uses the axes it shards over.
MESHES = {
    'data_parallel': dict(data=8, fsdp=1, tensor=1, sequence=1),
    'fsdp': dict(data=2, fsdp=4, tensor=1, sequence=1),
    'fsdp_tensor': dict(data=1, fsdp=4, tensor=2, sequence=1),
    'fsdp_sequence': dict(data=1, fsdp=2, tensor=1, sequence=4),
}
BATCH = 8
VOCAB = 64


def configure(spec: str, preset: str | None) -> config_lib.ml_collections.ConfigDict:
  config = config_lib.load_config(spec)
  config.data.batch_size = BATCH
  if preset is not None:
    config.parallel.ici.update(MESHES[preset])
    config.parallel.rules = preset
  return config


def dit_trainer(preset: str | None) -> DiTTrainer:
  vae = vae_lib.VAE(vae_lib.VAEConfig.from_config(config_lib.load_config('experiments/configs/vae_world.py:tiny').vae))
  config = configure('experiments/configs/dit_world.py:tiny', preset)
  config.dit.scan_layers = True  # the TPU configs' layout: blocks stacked on a leading 'layers' axis
  return DiTTrainer(config, None, vae=vae, vocab_size=VOCAB)


def dit_batch(trainer: DiTTrainer) -> dict[str, np.ndarray]:
  rng = np.random.default_rng(0)
  shape = (BATCH,) + tuple(trainer.latent_shape)
  length = trainer.config.data.tokenizer.max_length
  mask = np.arange(length)[None] < rng.integers(3, length, (BATCH, 1))
  return {'latent_mean': rng.normal(size=shape).astype(np.float32),
          'latent_logvar': np.full(shape, -4.0, np.float32),
          'text_ids': np.where(mask, rng.integers(3, VOCAB, (BATCH, length)), 0).astype(np.int32),
          'text_mask': mask}


def vae_batch(trainer: VAETrainer) -> dict[str, np.ndarray]:
  data = trainer.config.data
  video = np.random.default_rng(0).uniform(-1, 1, (BATCH, data.num_frames, data.height, data.width, 3))
  return {'video': video.astype(np.float32)}


def max_diff(a, b) -> float:
  return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in
             zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def one_step(trainer, batch, devices=None) -> dict:
  """Gradients at init and the state and metrics after one step, on `devices` (default all)."""
  training = loop.partition(trainer, batch, devices)
  state = training.init()
  grads = None
  if isinstance(trainer, DiTTrainer):
    grad_fn = training.jit(jax.grad(lambda p, s, b: trainer.loss_fn(p, s, b, jax.random.key(1), drop_prob=0.0)))
    grads = jax.device_get(grad_fn(state.params, state, sharding_lib.shard_batch(batch, training.mesh)))
  state, metrics = training.step(state, batch)
  actual = jax.tree.map(lambda x: x.sharding, state)
  return dict(grads=grads, params=jax.device_get(state.params), metrics=jax.device_get(metrics),
              planned=sharding_lib.sharding_table(training.state_shardings),
              actual=sharding_lib.sharding_table(actual), devices=training.mesh.devices.size)


def compare(make_trainer, make_batch, presets) -> dict:
  reference_trainer = make_trainer(None)
  batch = make_batch(reference_trainer)
  reference = one_step(reference_trainer, batch, jax.devices()[:1])
  out = {}
  for preset in presets:
    run = one_step(make_trainer(preset), batch)
    out[preset] = dict(
        devices=run['devices'], reference_devices=reference['devices'],
        loss=float(run['metrics']['loss']), reference_loss=float(reference['metrics']['loss']),
        grad_norm=float(run['metrics']['grad_norm']) if 'grad_norm' in run['metrics'] else None,
        reference_grad_norm=(float(reference['metrics']['grad_norm'])
                             if 'grad_norm' in reference['metrics'] else None),
        max_grad_diff=max_diff(run['grads'], reference['grads']) if run['grads'] is not None else None,
        max_grad=max(float(np.max(np.abs(g))) for g in jax.tree.leaves(reference['grads']))
        if reference['grads'] is not None else None,
        max_param_diff=max_diff(run['params'], reference['params']),
        planned=run['planned'], actual=run['actual'])
  return out


def reshard_roundtrip(directory: str) -> dict:
  """Saves a state sharded for `fsdp` (data 2 × fsdp 4) and restores it for `fsdp_tensor`
  (fsdp 4 × tensor 2): the values survive and land on the new mesh's shardings."""
  trainer = dit_trainer('fsdp')
  batch = dit_batch(trainer)
  state = loop.partition(trainer, batch).init()
  ckpt = checkpoint_lib.Checkpointer(directory, async_save=True)
  ckpt.save(0, state)
  ckpt.wait()
  target = loop.partition(dit_trainer('fsdp_tensor'), batch)
  restored = ckpt.restore(target.abstract_state)
  ckpt.close()
  return dict(max_diff=max_diff(jax.device_get(state), jax.device_get(restored)),
              planned=sharding_lib.sharding_table(target.state_shardings),
              actual=sharding_lib.sharding_table(jax.tree.map(lambda x: x.sharding, restored)))


def main() -> None:
  assert jax.device_count() == 8, f'needs 8 devices, has {jax.device_count()}'
  result = {'dit': compare(dit_trainer, dit_batch, list(MESHES)),
            'vae': compare(lambda p: VAETrainer(configure('experiments/configs/vae_world.py:tiny', p)),
                           vae_batch, ['data_parallel']),
            'reshard': reshard_roundtrip(tempfile.mkdtemp())}
  json.dump(result, sys.stdout)


if __name__ == '__main__':
  main()
