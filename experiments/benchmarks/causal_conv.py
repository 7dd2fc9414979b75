"""The VAE's 3D conv two ways: XLA's 3D conv (flax nn.Conv) against `TapConv` (one 2D conv over
the temporal taps stacked on channels), forward and forward + backward, on shapes of the VAE.

  python experiments/benchmarks/causal_conv.py [--repeats 10]

Both compute the same function with the same parameters (tests/models/test_vae.py checks it);
this measures which is faster on the machine it runs on.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from experiments.benchmarks.dit_step import best_time  # noqa: E402
from vidgen.models import vae as vae_lib  # noqa: E402

# (batch, frames incl. the 2 causal pad frames, height, width, channels): the vae_world VAE's
# latent grid at batch 16, and the ResNet design's first level at batch 4.
SHAPES = [(16, 5, 8, 8, 128), (4, 11, 16, 16, 64)]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--repeats', type=int, default=10)
  args = parser.parse_args()
  print('| input [B, T, H, W, C] | conv | forward ms | forward + backward ms |')
  print('|---|---|---|---|')
  for shape in SHAPES:
    x = jax.random.normal(jax.random.key(0), shape)
    channels = shape[-1]
    convs = {'nn.Conv (XLA 3D conv)': nn.Conv(channels, (3, 3, 3), padding=[(0, 0), (1, 1), (1, 1)]),
             'TapConv (2D over taps)': vae_lib.TapConv(channels, (3, 3, 3), (1, 1, 1), [(1, 1), (1, 1)])}
    params = convs['TapConv (2D over taps)'].init(jax.random.key(1), x)
    for name, conv in convs.items():
      forward = jax.jit(conv.apply)
      backward = jax.jit(jax.grad(lambda p, x, conv=conv: jnp.sum(conv.apply(p, x) ** 2), argnums=(0, 1)))
      f = best_time(forward, params, x, repeats=args.repeats)
      b = best_time(backward, params, x, repeats=args.repeats)
      print(f'| {list(shape)} | {name} | {f * 1e3:.1f} | {b * 1e3:.1f} |')


if __name__ == '__main__':
  main()
