"""Evaluating a run trained on a user's own videos, where no probe knows the truth.

    python -m vidgen.evaluate --workdir runs/my_dit     (a run whose eval data is not the world)

Two evaluators, as the run's periodic evaluation names them (`eval.evaluators`): `loss`, the
DiT's eval loss drawn as in training and at each noise level, on the run's held-out videos
(`data.folder.eval_path`, `data.array_record.eval_pattern` or the hash-held-out share: the
report says which), and `samples`, a video for each of N prompts (`eval.prompts`, or the
held-out videos' captions) with a contact sheet. Writes into WORKDIR/evaluation/samples (or
--out): metrics.json, report.md, contact_sheet.png and samples/.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import numpy as np

from vidgen import paths, runs, sample
from vidgen.eval import report
from vidgen.generation import Settings
from vidgen.train import dit_trainer
from vidgen.train.state import TrainState


def evaluate_samples(workdir: str, *, num_videos: int = 16, settings: Settings = Settings(), batch_size: int = 8,
                     out_dir: str | None = None, verbose: bool = True) -> dict[str, Any]:
  """Eval loss on the run's held-out data and a contact sheet of `num_videos` sampled prompts."""
  if num_videos < 1:
    raise ValueError(f'Evaluation needs num_videos >= 1; got {num_videos}.')
  start = time.time()
  log = print if verbose else (lambda *a, **k: None)
  out_dir = out_dir or os.path.join(workdir, 'evaluation', 'samples')
  _, params, extra, config, _ = runs.load_dit(workdir)
  config.eval.num_videos = num_videos
  trainer = dit_trainer.DiTTrainer(config, workdir)
  generator = trainer.generator(params, extra)
  generator.workdir = workdir
  s = generator.resolve(settings)
  eval_data = trainer.eval_data()

  log(f'[1/2] eval loss on {eval_data}', flush=True)
  state = TrainState(step=np.int32(0), params=params, opt_state=None, ema_params=params, extra=extra)
  loss_batches = max(1, num_videos // config.data.batch_size)
  losses = trainer.eval_losses(state, num_batches=loss_batches)
  prompts = trainer.sample_prompts()
  log(f'[2/2] sampling {len(prompts)} prompts ({s.sampler}, {s.steps} steps, guidance {s.cfg_scale}, seed {s.seed})',
      flush=True)
  sample.sample_to_files(generator, prompts, s, os.path.join(out_dir, 'samples'), batch_size, show_progress=verbose)
  results = {
      'protocol': {'eval_data': eval_data, 'prompts': 'eval.prompts' if config.eval.prompts else
                   f'the captions of the first {len(prompts)} held-out videos',
                   'num_videos': len(prompts), 'seed': s.seed, 'sampler': s.sampler, 'steps': s.steps,
                   'cfg_scale': s.cfg_scale, 'workdir': paths.absolute(workdir),
                   'seconds': round(time.time() - start, 1)},
      'eval_loss': {'num_videos': loss_batches * config.data.batch_size, 'losses': losses},
      'prompts': prompts,
  }
  paths.makedirs(out_dir)
  with paths.open_file(os.path.join(out_dir, 'metrics.json'), 'w') as f:
    json.dump(results, f, indent=2)
  with paths.open_file(os.path.join(out_dir, 'report.md'), 'w') as f:
    f.write(samples_report(results) + '\n')
  return results


def samples_report(results: dict[str, Any]) -> str:
  """The markdown report: what was evaluated on, the losses, where the videos are."""
  p, loss = results['protocol'], results['eval_loss']
  rows = {name: {'eval loss': value} for name, value in loss['losses'].items()}
  return '\n'.join([
      f'# Evaluation of {p["workdir"]}', '',
      f'Eval loss on {p["eval_data"]} ({loss["num_videos"]} videos); {p["num_videos"]} prompts ({p["prompts"]}) '
      f'sampled with {p["sampler"]}, {p["steps"]} steps, guidance {p["cfg_scale"]}, seed {p["seed"]}: '
      '`samples/` and `samples/contact_sheet.png`. No probe scores: the world probe needs world videos.', '',
      report.markdown_table(rows, ['eval loss'], row_header='noise level'),
  ])
