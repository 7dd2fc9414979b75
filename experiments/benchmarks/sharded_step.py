"""Step time of the tiny DiT on 1 device and on 8 simulated CPU devices under each rule preset.

  python experiments/benchmarks/sharded_step.py [--batch 8] [--steps 20]

Simulated devices share this machine's cores, so 8 devices are not 8× faster: the figure says
what sharding costs in communication and partitioning overhead at toy scale, not a speed-up.
Prints a markdown table (median step time over --steps steps after 3 warm-up steps).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ['XLA_FLAGS'] = os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=8'
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from tests.parallel import sharded_equivalence as setup  # noqa: E402  (the tiny DiT and its batch)
from vidgen.train import loop  # noqa: E402


def median_step_seconds(trainer, batch, devices, steps: int) -> float:
  training = loop.partition(trainer, batch, devices)
  state = training.init()
  times = []
  for i in range(steps + 3):
    start = time.perf_counter()
    state, metrics = training.step(state, batch)
    jax.block_until_ready(metrics)
    if i >= 3:
      times.append(time.perf_counter() - start)
  return float(np.median(times))


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument('--batch', type=int, default=8)
  parser.add_argument('--steps', type=int, default=20)
  args = parser.parse_args()
  setup.BATCH = args.batch
  print(f'{os.cpu_count()} CPUs; jax {jax.__version__}; dit_world.py:tiny, global batch {args.batch}\n')
  print('| mesh | devices | step (ms) | vs 1 device |\n|---|---|---|---|')
  reference_trainer = setup.dit_trainer(None)
  batch = setup.dit_batch(reference_trainer)
  one = median_step_seconds(reference_trainer, batch, jax.devices()[:1], args.steps)
  print(f'| 1 device | 1 | {one * 1e3:.1f} | 1.00× |', flush=True)
  for preset, sizes in setup.MESHES.items():
    seconds = median_step_seconds(setup.dit_trainer(preset), batch, None, args.steps)
    shape = ' × '.join(f'{k} {v}' for k, v in sizes.items() if v > 1)
    print(f'| {preset} ({shape}) | 8 | {seconds * 1e3:.1f} | {seconds / one:.2f}× |', flush=True)


if __name__ == '__main__':
  main()
