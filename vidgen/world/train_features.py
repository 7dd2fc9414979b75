"""Trains the world feature network (the FVD embedding, see vidgen/world/features.py) and saves it.

  python -m vidgen.world.train_features --out runs/world_features \
      [--config experiments/configs/world_features.py[:tiny]] [--config.train.num_steps=...]

Writes OUT/params.msgpack and OUT/features.json (the config, the weights' SHA-256, the held-out
accuracy of each head). Deterministic: batch i is world training videos i·B … (i+1)·B − 1,
and the same command on the same software writes the same weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import app, flags
from flax import serialization

from vidgen import config_lib, entrypoint, host_memory, paths
from vidgen.world import scenes as world
from vidgen.world import features as features_lib
from vidgen.train import optimizer as optimizer_lib

DEFAULT_CONFIG = 'experiments/configs/world_features.py'


def _batch(source: world.WorldSource, start: int, size: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
  records = [source[i % len(source)] for i in range(start, start + size)]
  labels = [features_lib.record_labels(r) for r in records]
  video = features_lib.as_float_video(np.stack([r['frames'] for r in records]))
  return video, {k: np.stack([l[k] for l in labels]) for k in labels[0]}


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


def train_features(config: ml_collections.ConfigDict, out: str, verbose: bool = True) -> dict[str, Any]:
  """Trains the net of `config` and writes it to `out`; returns the saved info (features.json)."""
  data = config.data
  train_source = world.make_source(data, 'train', config.seed)
  eval_source = world.make_source(data, 'eval', config.seed)
  model = features_lib.WorldClassifier(tuple(config.net.widths))
  steps, batch_size = config.train.num_steps, data.batch_size
  video, _ = _batch(train_source, 0, 1)
  params = model.init(jax.random.key(config.seed), jnp.asarray(video))['params']
  opt = optimizer_lib.make_optimizer(config.optim, steps)
  opt_state = opt.init(params)

  @jax.jit
  def step_fn(params, opt_state, video, labels):
    loss, grads = jax.value_and_grad(lambda p: _losses(model.apply({'params': p}, video), labels))(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  start, losses = time.time(), []
  for step in range(steps):
    video, labels = _batch(train_source, step * batch_size, batch_size)
    params, opt_state, loss = step_fn(params, opt_state, video, labels)
    losses.append(loss)  # read at the log line: the next batch renders while this step runs
    if (step + 1) % config.train.log_every == 0 or step + 1 == steps:
      if verbose:
        print(f'step {step + 1}/{steps} | loss {np.mean(jax.device_get(losses)):.4g} | {time.time() - start:.0f}s',
              flush=True)
      losses.clear()

  classify = jax.jit(lambda p, v: model.apply({'params': p}, v))
  logits, labels = [], []
  for i in range(0, config.eval.num_videos, batch_size):
    video, y = _batch(eval_source, i, min(batch_size, config.eval.num_videos - i))
    logits.append({k: np.asarray(v) for k, v in classify(params, video).items()})
    labels.append(y)
  acc = accuracy({k: np.concatenate([l[k] for l in logits]) for k in logits[0]},
                 {k: np.concatenate([l[k] for l in labels]) for k in labels[0]})

  paths.makedirs(out)
  raw = serialization.to_bytes(params)
  with paths.open_file(os.path.join(out, features_lib.PARAMS_FILE), 'wb') as f:
    f.write(raw)
  info = {
      'config': json.loads(config.to_json_best_effort()),
      'steps': steps,
      'feature_dim': 2 * int(config.net.widths[-1]),
      'params_sha256': hashlib.sha256(raw).hexdigest(),
      'accuracy': acc,
      'accuracy_on': f'{config.eval.num_videos} world eval-split videos',
      'train_seconds': round(time.time() - start, 1),
  }
  with paths.open_file(os.path.join(out, features_lib.INFO_FILE), 'w') as f:
    json.dump(info, f, indent=2)
  if verbose:
    print(f'Saved to {out}: held-out accuracy ' + ', '.join(f'{k} {v:.3f}' for k, v in acc.items()))
  return info


def load_or_train(directory: str, config: ml_collections.ConfigDict | str | None = None
                  ) -> features_lib.FeatureExtractor:
  """The feature net in `directory`; trained there first (from `config`: a ConfigDict or config file) if absent."""
  if not paths.exists(os.path.join(directory, features_lib.INFO_FILE)):
    config = config or DEFAULT_CONFIG
    if isinstance(config, str):
      config = config_lib.load_config(config)
    print(f'No world feature net in {directory}: training one for {config.train.num_steps} steps (the default '
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
