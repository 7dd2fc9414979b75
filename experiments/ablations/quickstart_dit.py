"""DiT ablations on a quickstart run's cached latents: train a variant, score it like the quickstart.

  python experiments/ablations/quickstart_dit.py --quickstart runs/quickstart --name shift4 --steps 2000 \
      --set diffusion.flow.base_shift=1.386 --set diffusion.flow.max_shift=1.386

Each variant is the quickstart's DiT config (experiments/configs/quickstart.py; `--base full`:
its `:full` config, the base of the ablations before the 30-minute default) with the `--set`
overrides (parsed as `--config.KEY=VALUE` is by vidgen.train), trained on QUICKSTART/latents with the frozen
QUICKSTART/vae into OUT/NAME, then evaluated on the same 64 eval prompts, sampler and seed as
the quickstart, with QUICKSTART/world_features for FVD. It prints one line of results and
appends it to OUT/results.jsonl. Results of the variants tried: experiments/ablations/README.md.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

from experiments.configs import quickstart  # noqa: E402
from vidgen import config_lib  # noqa: E402
from vidgen import evaluate  # noqa: E402
from vidgen import quickstart as quickstart_lib  # noqa: E402
from vidgen.generation import Settings  # noqa: E402
from vidgen.train import trainers  # noqa: E402

REPORTED = ('adherence', 'color', 'shape', 'size', 'direction', 'speed', 'fvd')


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--quickstart', default='runs/quickstart', help='A finished quickstart workdir.')
  parser.add_argument('--name', required=True, help='The variant; its run goes to OUT/NAME.')
  parser.add_argument('--steps', type=int, default=2000)
  parser.add_argument('--base', choices=['default', 'full'], default='default',
                      help='The quickstart config the variant starts from (full: quickstart.py:full).')
  parser.add_argument('--set', action='append', default=[], dest='overrides', metavar='KEY=VALUE')
  parser.add_argument('--out', default='runs/ablations')
  args = parser.parse_args()

  pattern = os.path.join(args.quickstart, 'latents', 'train-*.array_record')
  if not glob.glob(pattern):
    raise SystemExit(f'No cached latents in {args.quickstart}/latents: run `python -m vidgen.quickstart '
                     f'--workdir {args.quickstart}` first.')
  config = quickstart.get_config(None if args.base == 'default' else args.base)
  dit = quickstart_lib.dit_config(config, os.path.join(args.quickstart, 'vae'), pattern)
  dit.train.update(num_steps=args.steps, eval_every=0, checkpoint_every=min(500, args.steps))
  dit.eval.num_videos = 0
  for assignment in args.overrides:
    config_lib.set_value(dit, *config_lib.split_override(assignment))

  workdir = os.path.join(args.out, args.name)
  start = time.time()
  trainers.train_and_evaluate(dit, workdir)
  train_seconds = time.time() - start
  results = evaluate.evaluate_run(workdir, split='eval', num_videos=config.num_eval_videos,
                                  settings=Settings(seed=config.seed), out_dir=os.path.join(workdir, 'evaluation'),
                                  samples_dir=os.path.join(workdir, 'samples'),
                                  features_dir=os.path.join(args.quickstart, 'world_features'),
                                  features_config=config.features)
  metrics = results['rows']['generated']['metrics']
  row = {'name': args.name, 'base': args.base, 'steps': args.steps, 'overrides': args.overrides,
         'train_seconds': round(train_seconds),
         **{k: round(metrics[k]['value'], 3) for k in REPORTED}}
  print(json.dumps(row))
  with open(os.path.join(args.out, 'results.jsonl'), 'a') as f:
    f.write(json.dumps(row) + '\n')


if __name__ == '__main__':
  main()
