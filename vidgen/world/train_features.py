"""Trains the world feature network (the FVD embedding, see vidgen/world/features.py) through the
shared training loop, like the VAE and the DiT.

  python -m vidgen.world.train_features --out runs/world_features \
      [--config experiments/configs/world_features.py[:tiny]] [--config.train.num_steps=...]

OUT is a run like any other (config.json, checkpoints/, metrics.jsonl; killed or preempted,
the same command resumes), plus OUT/features.json: the weights' SHA-256 and the held-out
accuracy of each head, which reports cite. Deterministic: batch i is world training videos
i·B … (i+1)·B − 1, the weights start from `config.seed`, and the same command on the same
software writes the same weights.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from typing import Any, Mapping

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import app, flags

from vidgen import config_lib, entrypoint, host_memory, paths
from vidgen.train import loop
from vidgen.train import optimizer as optimizer_lib
from vidgen.train.state import TrainState
from vidgen.world import features as features_lib
from vidgen.world import scenes as world

DEFAULT_CONFIG = 'experiments/configs/world_features.py'


def _losses(logits: dict[str, jax.Array], labels: dict[str, jax.Array]) -> jax.Array:
  """Summed cross-entropy of every head; per-colour heads only where the colour is present."""
  total = 0.0
  for k in features_lib.GLOBAL_HEADS:
    total += optax.softmax_cross_entropy_with_integer_labels(logits[k], labels[k]).mean()
  for k in features_lib.COLOR_HEADS:
    y = labels[f'color_{k}']
    ce = optax.softmax_cross_entropy_with_integer_labels(logits[f'color_{k}'], jnp.maximum(y, 0))
    mask = (y >= 0).astype(jnp.float32)
    total += (ce * mask).sum() / jnp.maximum(mask.sum(), 1.0)
  return total


def accuracy(extractor_or_logits: Any, labels: dict[str, np.ndarray]) -> dict[str, float]:
  """Per-head accuracy of logits against labels (per-colour heads on present colours), and their mean."""
  logits = extractor_or_logits
  out = {}
  for k in features_lib.GLOBAL_HEADS:
    out[k] = float((logits[k].argmax(-1) == labels[k]).mean())
  for k in features_lib.COLOR_HEADS:
    y = labels[f'color_{k}']
    ok = logits[f'color_{k}'].argmax(-1) == y
    out[f'color_{k}'] = float(ok[y >= 0].mean()) if (y >= 0).any() else float('nan')
  out['mean'] = float(np.nanmean(list(out.values())))
  return out


def _example(record: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """A world record → the net's input video (float32 in [-1, 1]) and its heads' labels."""
  return {'video': features_lib.as_float_video(record['frames']), **features_lib.record_labels(record)}


class FeaturesTrainer:
  """The feature net's part of the shared loop (vidgen/train/loop.py)."""

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.model = features_lib.WorldClassifier(tuple(config.net.widths))
    self.optimizer = optimizer_lib.make_optimizer(config.optim, config.train.num_steps)

  def dataset(self) -> grain.IterDataset:
    """World training videos in order (no shuffle: batch i is videos i·B … (i+1)·B − 1)."""
    source = world.make_source(self.config.data, 'train', self.config.seed)
    local_batch = self.config.data.batch_size // jax.process_count()
    ds = grain.MapDataset.source(source).repeat()[jax.process_index()::jax.process_count()]
    return ds.map(_example).batch(local_batch, drop_remainder=True).to_iter_dataset()

  def init_state(self, rng: jax.Array, batch: Mapping[str, Any]) -> TrainState:
    del rng  # the weights start from config.seed itself, as the net's reports always have
    params = self.model.init(jax.random.key(self.config.seed), batch['video'][:1])['params']
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=self.optimizer.init(params),
                      ema_params=params)

  def train_step(self, state: TrainState, batch: Mapping[str, Any], rng: jax.Array):
    del rng
    labels = {k: v for k, v in batch.items() if k != 'video'}
    loss, grads = jax.value_and_grad(lambda p: _losses(self.model.apply({'params': p}, batch['video']), labels))(
        state.params)
    updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    # The features are the trained weights themselves (no EMA), as every FVD this net has given.
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state, ema_params=params), {'loss': loss}

  def evaluate(self, state: TrainState, step: int, workdir: str) -> dict[str, float]:
    return {f'accuracy/{k}': v for k, v in self.accuracy(state.params).items()}

  def accuracy(self, params: Any) -> dict[str, float]:
    """Per-head accuracy on the first `eval.num_videos` world eval videos, and their mean."""
    source = world.make_source(self.config.data, 'eval', self.config.seed)
    classify = jax.jit(lambda p, v: self.model.apply({'params': p}, v))
    logits, labels = [], []
    n, batch_size = self.config.eval.num_videos, self.config.data.batch_size
    for i in range(0, n, batch_size):
      examples = [_example(source[j]) for j in range(i, min(i + batch_size, n))]
      batch = {k: np.stack([e[k] for e in examples]) for k in examples[0]}
      logits.append({k: np.asarray(v) for k, v in classify(params, batch.pop('video')).items()})
      labels.append(batch)
    return accuracy({k: np.concatenate([l[k] for l in logits]) for k in logits[0]},
                    {k: np.concatenate([l[k] for l in labels]) for k in labels[0]})


def train_features(config: ml_collections.ConfigDict, out: str, verbose: bool = True) -> dict[str, Any]:
  """Trains (or resumes) the net of `config` in the run folder `out`; returns the info it writes
  to `out/features.json` (the weights' hash and held-out accuracy)."""
  start = time.time()
  trainer = FeaturesTrainer(config)
  state = loop.run(trainer, out) if verbose else _quietly(loop.run, trainer, out)
  params = jax.device_get(state.params)
  acc = trainer.accuracy(params)
  info = {
      'config': json.loads(config.to_json_best_effort()),
      'steps': int(state.step),
      'feature_dim': 2 * int(config.net.widths[-1]),
      'params_sha256': features_lib.params_sha256(params),
      'accuracy': acc,
      'accuracy_on': f'{config.eval.num_videos} world eval-split videos',
      'train_seconds': round(time.time() - start, 1),
  }
  with paths.open_file(os.path.join(out, features_lib.INFO_FILE), 'w') as f:
    json.dump(info, f, indent=2)
  if verbose:
    print(f'Saved to {out}: held-out accuracy ' + ', '.join(f'{k} {v:.3f}' for k, v in acc.items()))
  return info


def _quietly(fn, *args):
  """Runs `fn` with the loop's progress lines swallowed (tests, notebooks)."""
  with contextlib.redirect_stdout(io.StringIO()):
    return fn(*args)


def load_or_train(directory: str, config: ml_collections.ConfigDict | str | None = None
                  ) -> features_lib.FeatureExtractor:
  """The feature net in `directory`; trained there first (from `config`: a ConfigDict or config file)
  if absent, cut off before its features.json, or saved by an older vidgen (params.msgpack)."""
  trained = paths.exists(os.path.join(directory, features_lib.INFO_FILE))
  if not trained or not paths.exists(os.path.join(directory, 'checkpoints')):
    config = config or DEFAULT_CONFIG
    if isinstance(config, str):
      config = config_lib.load_config(config)
    why = 'saved by an older vidgen' if trained else 'none'
    print(f'World feature net in {directory}: {why}; training one for {config.train.num_steps} steps (the default '
          '1,500 take 4-5 min on a 2-core CPU); later evaluations reuse it.', flush=True)
    train_features(config, directory)
  return features_lib.FeatureExtractor(directory)


def main(argv):
  host_memory.keep_freed_memory(restart=True)  # restarts once with GLIBC_TUNABLES if JAX threads already allocated
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  if not flags.FLAGS.out:
    raise app.UsageError('--out (the folder to save the feature net to) is required.')
  config = config_lib.load_config(flags.FLAGS.config or DEFAULT_CONFIG, config_lib.overrides())
  train_features(config, flags.FLAGS.out)


if __name__ == '__main__':
  flags.DEFINE_string('config', None, f'Config file (default {DEFAULT_CONFIG}).')
  flags.DEFINE_string('out', None, 'Folder to save the feature net to.')
  entrypoint.run(main, flags_parser=config_lib.parse_flags_with_overrides)
