"""Cost of long videos: wall time and peak host memory of `VideoGenerator.long` at 4, 15, 30 and 60 s.

  python experiments/benchmarks/long_sampling.py --workdir runs/long_video/dit [--seconds 4,15,30,60]
      [--prompts 4] [--overlap 1]

Each length runs in a fresh process (peak RSS is per process): it loads the run, samples
`--prompts` prompts at that length and reports seconds, windows and peak RSS (MiB). Time
should grow about linearly in length (one sampler pass per window) and memory stay flat
(latents are tiny; the chunked causal decoder decodes a few latent frames at a time).
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


def measure(workdir: str, seconds: float, num_prompts: int, overlap: int) -> dict:
  """In the child process: one long sample, its time and the process's peak RSS."""
  sys.path.insert(0, ROOT)
  from vidgen.eval import coherence
  from vidgen.generation import Settings, VideoGenerator

  generator = VideoGenerator.from_workdir(workdir)
  frames = coherence.seconds_to_frames(seconds, generator.config.data.fps, generator.vae.config.compression[0])
  prompts = ['a small white circle moves fast up and to the right, on a black background'] * num_prompts
  start = time.time()
  video = generator.long(prompts, frames, Settings(seed=0), overlap=overlap)
  elapsed = time.time() - start
  window = generator.vae.config.latent_shape(generator.config.data.num_frames, 4, 4)[0]
  total = generator.vae.config.latent_shape(frames, 4, 4)[0]
  return {'seconds': seconds, 'frames': int(video.shape[1]), 'windows': generator.num_long_windows(total, window, overlap),
          'wall_s': round(elapsed, 1), 'peak_rss_mib': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--workdir', required=True, help='A trained DiT run.')
  parser.add_argument('--seconds', default='4,15,30,60')
  parser.add_argument('--prompts', type=int, default=4)
  parser.add_argument('--overlap', type=int, default=1)
  parser.add_argument('--child', type=float, default=None, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child is not None:
    print(json.dumps(measure(args.workdir, args.child, args.prompts, args.overlap)))
    return
  rows = []
  for seconds in (float(s) for s in args.seconds.split(',')):
    env = dict(os.environ, JAX_PLATFORMS=os.environ.get('JAX_PLATFORMS', 'cpu'))
    out = subprocess.run([sys.executable, __file__, '--workdir', args.workdir, '--prompts', str(args.prompts),
                          '--overlap', str(args.overlap), '--child', str(seconds)],
                         capture_output=True, text=True, env=env, check=True)
    rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(rows[-1], flush=True)
  base = rows[0]
  print('\n| seconds | frames | windows | wall (s) | s per window | peak RSS (MiB) | × first peak |')
  print('|---|---|---|---|---|---|---|')
  for r in rows:
    print(f'| {r["seconds"]:g} | {r["frames"]} | {r["windows"]} | {r["wall_s"]} | {r["wall_s"] / r["windows"]:.1f} '
          f'| {r["peak_rss_mib"]} | {r["peak_rss_mib"] / base["peak_rss_mib"]:.2f} |')


if __name__ == '__main__':
  main()
