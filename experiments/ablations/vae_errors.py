"""Where a VAE's reconstruction error sits: edges, flat background, lattice lines, object interiors.

  python experiments/ablations/vae_errors.py --workdir runs/vae_world [--videos 64]

Reconstructs the run's eval videos (and their first frames as images) with the EMA weights and
splits the squared error by what each true pixel shows. PSNR is a mean squared error, so the
share of a kind is how much of the gap to a perfect reconstruction it holds; beside each share
is the PSNR with that kind's error removed. World objects are drawn aliased (a pixel is in or
out), so their edges are where a soft decoder loses most.
"""

from __future__ import annotations

import argparse

import numpy as np

from vidgen import runs
from vidgen.data import pipeline
from vidgen.world import scenes as world
from vidgen.eval import image_metrics
from vidgen.models import vae as vae_lib

KINDS = ('edges', 'flat background', 'lattice lines', 'occluder', 'object interiors')
EDGE_STEP = 0.3  # a colour change larger than this (in [-1, 1] units) to a neighbour marks an edge


def pixel_kinds(video: np.ndarray) -> dict[str, np.ndarray]:
  """bool masks [B, T, H, W] of each kind in KINDS; they partition the pixels."""
  padded = np.pad(video, ((0, 0), (0, 0), (1, 1), (1, 1), (0, 0)), mode='edge')
  h, w = video.shape[2:4]
  edges = np.zeros(video.shape[:4], bool)
  for dy in (-1, 0, 1):
    for dx in (-1, 0, 1):
      neighbour = padded[:, :, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
      edges |= np.abs(neighbour - video).max(-1) > EDGE_STEP
  background = np.median(video, axis=(2, 3), keepdims=True)
  off_background = np.abs(video - background).max(-1)
  grey = np.asarray(world.OCCLUDER_COLOR, np.float32) / 127.5 - 1
  occluder = np.abs(video - grey).max(-1) < 0.02
  lattice = (off_background > 0.05) & (off_background < EDGE_STEP)
  objects = off_background >= EDGE_STEP
  return {'edges': edges, 'flat background': ~edges & ~lattice & ~objects, 'lattice lines': lattice & ~edges,
          'occluder': objects & occluder & ~edges, 'object interiors': objects & ~occluder & ~edges}


def error_split(reconstruct, params, config, num_frames: int, num_videos: int) -> dict[str, float]:
  """{'psnr': PSNR of the pooled MSE, kind: share of the squared error}."""
  totals = dict.fromkeys(KINDS, 0.0)
  pixels, seen = 0, 0
  for batch in pipeline.make_eval_dataset(config, num_frames=num_frames, batch_size=config.eval.batch_size):
    video = np.asarray(batch['video'])[:num_videos - seen]
    squared = ((np.asarray(reconstruct(params, video)) - video) ** 2).mean(-1)
    for kind, mask in pixel_kinds(video).items():
      totals[kind] += float(squared[mask].sum())
    pixels += squared.size
    seen += len(video)
    if seen >= num_videos:
      break
  total = sum(totals.values())
  return {'psnr': float(image_metrics.psnr_from_mse(total / pixels)), 'mse': total / pixels,
          **{k: v / total for k, v in totals.items()}}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--workdir', required=True, help='a VAE run (python -m vidgen.train --config vae_world.py)')
  parser.add_argument('--videos', type=int, default=64, help='eval videos (and as many images)')
  args = parser.parse_args()
  model, params, config = runs.load_vae(args.workdir)
  reconstruct = vae_lib.jitted_reconstruct(model)
  frames = config.eval.get('num_frames') or config.data.num_frames
  print(f'{args.workdir}: squared error of {args.videos} eval reconstructions (EMA weights) by what the pixel shows')
  print('| input | PSNR (pooled MSE) | ' + ' | '.join(KINDS) + ' |')
  print('|---' * (len(KINDS) + 2) + '|')
  for name, num_frames in ((f'{frames}-frame videos', frames), ('images', 1)):
    split = error_split(reconstruct, params, config, num_frames, args.videos)
    cells = [f"{split[k]:.0%} (→ {float(image_metrics.psnr_from_mse(split['mse'] * (1 - split[k]))):.1f} dB)"
             for k in KINDS]
    print(f"| {name} | {split['psnr']:.2f} | " + ' | '.join(cells) + ' |')
  print('Each cell: the share of the squared error, and the PSNR were that kind reconstructed perfectly.')


if __name__ == '__main__':
  main()
