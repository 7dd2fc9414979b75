"""Peak memory of VAE decoding as videos get longer: chunked (causal cache) vs whole-video.

  python experiments/benchmarks/vae_chunked_memory.py [--frames 17,129,481] [--config ...]

Each measurement runs in a fresh process (peak RSS is per process) that builds the VAE of
the config (randomly initialised: memory does not depend on the weights), decodes a latent
video of the given length at the config's resolution, and reports its peak RSS and time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def measure(config_spec: str, frames: int, mode: str, chunk_latents: int) -> dict:
  """Runs in the child process: decode once, report peak RSS (MiB) and seconds."""
  sys.path.insert(0, ROOT)
  import flax.linen as nn
  import jax
  import numpy as np
  from vidgen import config_lib
  from vidgen.models import vae as vae_lib

  config = config_lib.load_config(config_spec)
  vae_config = vae_lib.VAEConfig.from_config(config.vae)
  model = vae_lib.VAE(vae_config)
  d = config.data
  params = nn.unbox(model.init(jax.random.key(0), np.zeros((1, 1, d.height, d.width, 3), np.float32)))['params']
  latent_shape = vae_config.latent_shape(frames, d.height, d.width)
  z = np.random.default_rng(0).normal(size=(1,) + latent_shape).astype(np.float32)
  start = time.time()
  if mode == 'chunked':
    video = vae_lib.ChunkedCodec(model, params, chunk_latents=chunk_latents).decode(z)
  else:
    video = np.asarray(jax.jit(lambda p, z: model.apply({'params': p}, z, method=vae_lib.VAE.decode))(params, z))
  seconds = time.time() - start
  assert video.shape[1] == frames, video.shape
  return {'frames': frames, 'mode': mode, 'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
          'seconds': seconds}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--config', default='experiments/configs/vae_world.py')
  parser.add_argument('--frames', default='17,129,481')
  parser.add_argument('--modes', default='chunked,whole')
  parser.add_argument('--chunk_latents', type=int, default=4)
  parser.add_argument('--child', default=None, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    frames, mode = args.child.split(':')
    print(json.dumps(measure(args.config, int(frames), mode, args.chunk_latents)))
    return
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  print(f'VAE of {args.config}; latent chunks of {args.chunk_latents} latent frames.\n')
  print('| frames | mode | peak RSS (MiB) | decode s |\n|---|---|---|---|')
  for mode in args.modes.split(','):
    for frames in (int(f) for f in args.frames.split(',')):
      out = subprocess.run([sys.executable, __file__, '--config', args.config, '--chunk_latents',
                            str(args.chunk_latents), '--child', f'{frames}:{mode}'],
                           capture_output=True, text=True, env=env, cwd=ROOT)
      if out.returncode:
        print(f'| {frames} | {mode} | failed: {out.stderr.strip().splitlines()[-1]} | |')
        continue
      row = json.loads(out.stdout.strip().splitlines()[-1])
      print(f'| {frames} | {mode} | {row["peak_rss_mib"]:.0f} | {row["seconds"]:.1f} |', flush=True)


if __name__ == '__main__':
  main()
