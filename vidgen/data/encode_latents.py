"""Cache VAE latents: encode a source once so DiT training does not run the encoder each step.

  python -m vidgen.data.encode_latents --vae_workdir runs/vae_world \
      --config experiments/configs/dit_world.py --out /data/world_latents \
      [--split train] [--num_records N] [--records_per_shard K] [--config.x=y ...]

Each record keeps the source record's caption, index and fps and replaces its frames by the
latent Gaussian: 'latent_mean' and 'latent_logvar', float32 [T', H', W', C] (T' = 1 + (T-1)/ft).
Clips are cut exactly as the pipeline cuts them for training (`config.data`, with clips taken
from the start of each video). Train on them with
  --config.data.source=array_record --config.data.array_record.pattern="OUT/train-*.array_record"
and evaluate on a split of their own (`--split eval`) with
  --config.data.array_record.eval_pattern="OUT/eval-*.array_record"
(without one, data.array_record.eval_fraction of the training records are held out).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import app, flags

from vidgen import config_lib, entrypoint, host_memory, paths, runs
from vidgen.data import pipeline, sources
from vidgen.data.export import ShardWriter
from vidgen.models import vae as vae_lib

FLAGS = flags.FLAGS


def encode_latents(config: ml_collections.ConfigDict, vae_workdir: str, out: str, split: str | None = None,
                   num_records: int | None = None, records_per_shard: int = 1000,
                   batch_size: int = 8) -> dict[str, Any]:
  """Encodes records 0..num_records-1 of `config.data`'s source with the VAE in `vae_workdir`."""
  model, params, vae_run_config = runs.load_vae(vae_workdir)
  data = config.data
  vae_lib.check_video_shape(data.num_frames, data.height, data.width, model.config.compression)
  split = split or data.split

  source = sources.make_source(data, split, config.seed)
  num_records = len(source) if num_records is None else min(num_records, len(source))
  if num_records < 1:
    raise ValueError(f'Nothing to encode: the {data.source!r} source for split {split!r} is empty.')
  spec = dataclasses.replace(pipeline.ClipSpec.from_config(data), clip_start='start', crop='center')
  make_clip = pipeline.MakeClip(spec, tokenizer=None, max_length=0, overflow='truncate')
  rng = np.random.default_rng(0)  # unused: clips from the start, centre crops

  encode = jax.jit(lambda p, v: model.apply({'params': p}, v, method=vae_lib.VAE.encode))
  os.makedirs(out, exist_ok=True)
  with ShardWriter(out, split, num_records, records_per_shard) as writer:
    for start in range(0, num_records, batch_size):
      clips = [make_clip.random_map(source[i], rng) for i in range(start, min(start + batch_size, num_records))]
      mean, logvar = (np.asarray(a) for a in encode(params, np.stack([c['video'] for c in clips])))
      for clip, m, lv in zip(clips, mean, logvar):
        writer.write({'latent_mean': m, 'latent_logvar': lv, 'caption': clip['caption'],
                      'index': clip['index'], 'fps': np.float32(data.fps)})
    return writer.finish(vae_workdir=paths.absolute(vae_workdir),
                         vae=json.loads(vae_run_config.vae.to_json_best_effort()),
                         data_config=json.loads(data.to_json_best_effort()))


def main(argv: list[str]) -> None:
  host_memory.keep_freed_memory(restart=True)  # restarts once with GLIBC_TUNABLES if JAX threads already allocated
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  if not FLAGS.out or not FLAGS.vae_workdir:
    raise app.UsageError('--vae_workdir and --out are required.')
  summary = encode_latents(config_lib.config_from_flags(), FLAGS.vae_workdir, FLAGS.out, FLAGS.split,
                           FLAGS.num_records, FLAGS.records_per_shard, FLAGS.batch_size)
  print(f'Wrote {summary["num_records"]} latent records to {summary["pattern"]}')


if __name__ == '__main__':
  config_lib.define_flags()
  flags.DEFINE_string('vae_workdir', None, 'Workdir of a trained VAE run (required).')
  flags.DEFINE_string('out', None, 'Output folder for the latent shards (required).')
  flags.DEFINE_string('split', None, "Split to encode (default: the config's data.split).")
  flags.DEFINE_integer('num_records', None, 'Records to encode from index 0 (default: all).')
  flags.DEFINE_integer('records_per_shard', 1000, 'Records per shard file.')
  flags.DEFINE_integer('batch_size', 8, 'Videos encoded per VAE call.')
  entrypoint.run(main, flags_parser=config_lib.parse_flags_with_overrides)
