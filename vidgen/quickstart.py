"""The quickstart: text-to-video on the built-in world, end to end, on a laptop CPU.

  python -m vidgen.quickstart [--workdir runs/quickstart] [--config experiments/configs/quickstart.py[:tiny]]

1. trains the patch VAE on world videos                      → WORKDIR/vae
2. caches VAE latents of the training videos                 → WORKDIR/latents
3. trains the text-to-video DiT on them                      → WORKDIR/dit
4. evaluates it (vidgen.evaluate): a video for each eval prompt, scored by the world probe
   beside real videos, the VAE's reconstructions and decoded noise, FVD in the space of the
   world feature net (trained once → WORKDIR/world_features)    → WORKDIR/samples, WORKDIR/evaluation
5. prints the summary table                                     → WORKDIR/report.md

Every stage resumes where it stopped: run the same command again after an interruption.
`python -m vidgen.sample --workdir WORKDIR/dit --prompt "..."` samples from the result.
"""

from __future__ import annotations

import copy
import json
import os
import time
from typing import Any

import ml_collections
from absl import flags

from vidgen import config_lib, entrypoint, evaluate, host_memory, paths
from vidgen.data import encode_latents
from vidgen.eval import run_report
from vidgen.generation import Settings
from vidgen.train import trainers

DEFAULT_CONFIG = 'experiments/configs/quickstart.py'


def _stage(number: int, text: str) -> float:
  print(f'\n[{number}/5] {text}', flush=True)
  return time.time()


def cache_latents(config: ml_collections.ConfigDict, vae_dir: str, out: str, num_videos: int) -> str:
  """Encodes the first `num_videos` training videos once; returns the shards' glob pattern."""
  summary_path = os.path.join(out, 'train.json')
  if paths.exists(summary_path):
    summary = json.load(paths.open_file(summary_path))
    if summary['num_records'] == num_videos and summary.get('vae_workdir') == paths.absolute(vae_dir):
      print(f'  found {num_videos} cached latents in {out}')
      return summary['pattern']
  return encode_latents.encode_latents(config, vae_dir, out, 'train', num_videos, records_per_shard=1000,
                                       batch_size=16)['pattern']


def dit_config(config: ml_collections.ConfigDict, vae_dir: str, pattern: str) -> ml_collections.ConfigDict:
  """The DiT config, on the cached latents, with its eval loss on the world's eval split."""
  dit = copy.deepcopy(config.dit)
  dit.vae_workdir = vae_dir
  dit.data.source = 'array_record'
  dit.data.array_record.pattern = pattern
  dit.data.array_record.eval_fraction = 0.0  # every cached clip trains: the DiT is evaluated on world eval videos
  dit.data.keep_in_memory = True  # 30 MB of latents, read for many epochs: decode each once
  return dit


def run_quickstart(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs (or resumes) every stage in `workdir`; returns the evaluation (what evaluation/metrics.json holds)."""
  start = time.time()
  paths.makedirs(workdir)
  config_lib.save_config(config, workdir)
  vae_dir, dit_dir = os.path.join(workdir, 'vae'), os.path.join(workdir, 'dit')

  t = _stage(1, f'VAE: {config.vae.train.num_steps} steps on world videos')
  trainers.train_and_evaluate(config.vae, vae_dir)
  print(f'  done in {time.time() - t:.0f}s')

  t = _stage(2, f'caching VAE latents of {config.num_latent_videos} training videos')
  pattern = cache_latents(config.dit, vae_dir, os.path.join(workdir, 'latents'), config.num_latent_videos)
  print(f'  done in {time.time() - t:.0f}s')

  t = _stage(3, f'text-to-video DiT: {config.dit.train.num_steps} steps on the cached latents')
  trainers.train_and_evaluate(dit_config(config, vae_dir, pattern), dit_dir)
  print(f'  done in {time.time() - t:.0f}s')

  split = config.dit.data.eval_split
  t = _stage(4, f'evaluating: {config.num_eval_videos} videos for {split} prompts, scored beside reference videos')
  features_dir = os.path.join(workdir, 'world_features')
  results = evaluate.evaluate_run(dit_dir, split=split, num_videos=config.num_eval_videos,
                                  settings=Settings(seed=config.seed), out_dir=os.path.join(workdir, 'evaluation'),
                                  samples_dir=os.path.join(workdir, 'samples'), features_dir=features_dir,
                                  features_config=config.features)
  print(f'  done in {time.time() - t:.0f}s')

  _stage(5, 'probe scores against the prompts\' ground truth')
  table = run_report.summary_table(results)
  how = run_report.how_measured(results['protocol'])
  print(table + '\n\n' + how)
  with paths.open_file(os.path.join(workdir, 'report.md'), 'w') as f:
    f.write(f'# Quickstart\n\n{table}\n\n{how}\n\nThe full report, with every metric, plots and samples: '
            f'evaluation/report.md\n')
  print(f'\nDone in {(time.time() - start) / 60:.1f} min. Samples in {os.path.join(workdir, "samples")}; '
        f'sample more with: python -m vidgen.sample --workdir {dit_dir} --prompt "a large red circle moves '
        f'slowly to the right on a navy background"')
  return results


def main(argv):
  del argv
  host_memory.keep_freed_memory(restart=True)  # restarts once with GLIBC_TUNABLES if JAX threads already allocated
  config = config_lib.load_config(flags.FLAGS.config or DEFAULT_CONFIG, config_lib.overrides())
  run_quickstart(config, flags.FLAGS.workdir or 'runs/quickstart')


if __name__ == '__main__':
  config_lib.define_flags()
  entrypoint.run(main, flags_parser=config_lib.parse_flags_with_overrides)
