"""Compile time of Gaussian noise on XLA's CPU backend: `jax.random.normal` at a latent's shape
against `vidgen.models.noise.normal` (the same values, drawn flat and reshaped).

  python experiments/benchmarks/rng_compile.py [--steps] [--vae_workdir DIR]

First each draw alone, in its own `jax.jit`, with the two draws' values checked equal; then a 3D
conv kernel's initializer against the same drawn as a matrix (`noise.drawn_as_matrix`). With
`--steps`, the quickstart's VAE training step is also compiled with each draw (the "before"
swaps `jax.random.normal` back in), and with `--vae_workdir` (a trained VAE run, e.g. a
quickstart's vae/) its DiT training step too, on world videos encoded in the step.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402

from experiments.configs import quickstart  # noqa: E402
from vidgen.models import noise  # noqa: E402
from vidgen.train import loop, trainers  # noqa: E402

# A latent batch of the quickstart's DiT [B, T, H, W, C], the same with one shared frame, a
# rank-4 view of the first, and its flat size.
SHAPES = [(16, 5, 8, 8, 12), (16, 1, 8, 8, 12), (16, 5, 64, 12), (61440,)]
# 3D conv kernels [kt, kh, kw, in, out], as the VAE's TapConv initializes them.
CONV_KERNELS = [(3, 3, 3, 128, 128), (3, 3, 3, 16, 32)]


def draw_seconds(draw, shape: tuple[int, ...]) -> tuple[float, np.ndarray]:
  """Seconds to lower and compile `draw(key, shape)`, and its values for key 0."""
  fn = jax.jit(lambda key: draw(key, shape))
  start = time.perf_counter()
  compiled = fn.lower(jax.random.key(0)).compile()
  seconds = time.perf_counter() - start
  return seconds, np.asarray(compiled(jax.random.key(0)))


def step_seconds(config, workdir: str) -> float:
  """Seconds to lower and compile the training step of `config` (the loop's own partitioning)."""
  trainer = trainers.make_trainer(config, workdir)
  batch = loop.model_inputs(next(iter(trainer.dataset())))
  training = loop.partition(trainer, batch)
  start = time.perf_counter()
  training.lower_step().compile()
  return time.perf_counter() - start


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--steps', action='store_true', help="also compile the quickstart's training steps")
  parser.add_argument('--vae_workdir', default='', help="a trained VAE run: also the quickstart's DiT step")
  args = parser.parse_args()
  print(f'jax {jax.__version__}, backend {jax.default_backend()}, '
        f'threefry_partitionable={jax.config.jax_threefry_partitionable}')
  print('| draw or step | with jax.random.normal, compile s | with noise.normal, compile s | same values |')
  print('|---|---|---|---|')
  for shape in SHAPES:
    direct_s, direct = draw_seconds(jax.random.normal, shape)
    flat_s, flat = draw_seconds(noise.normal, shape)
    print(f'| normal {shape} | {direct_s:.2f} | {flat_s:.2f} | {np.array_equal(direct, flat)} |', flush=True)
  lecun = nn.initializers.lecun_normal()
  for shape in CONV_KERNELS:
    direct_s, direct = draw_seconds(lecun, shape)
    matrix_s, matrix = draw_seconds(noise.drawn_as_matrix(lecun), shape)
    print(f'| lecun_normal {shape} | {direct_s:.2f} | {matrix_s:.2f} (drawn_as_matrix) | '
          f'{np.array_equal(direct, matrix)} |', flush=True)
  if not (args.steps or args.vae_workdir):
    return
  config = quickstart.get_config()
  steps = {'quickstart VAE step': config.vae}
  if args.vae_workdir:
    config.dit.vae_workdir = args.vae_workdir
    steps['quickstart DiT step'] = config.dit
  for name, step_config in steps.items():
    workdir = f'/tmp/rng_compile_{step_config.model}'
    with mock.patch.object(noise, 'normal', jax.random.normal):
      direct_s = step_seconds(step_config, workdir)
    flat_s = step_seconds(step_config, workdir)
    print(f'| {name} | {direct_s:.1f} | {flat_s:.1f} | — |', flush=True)


if __name__ == '__main__':
  main()
