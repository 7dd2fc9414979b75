"""Sample videos from a trained run.

  python -m vidgen.sample --workdir runs/dit_world --prompt "a large red circle moves slowly to the right" \
      [--prompt ... | --prompts_file prompts.txt] [--num_frames 17 --height 32 --width 32] \
      [--steps 30 --cfg_scale 4 --sampler euler --seed 0 --negative_prompt "..." --[no]factorized] [--out OUTDIR]

Writes per prompt OUTDIR/NN.mp4 and NN.gif, plus settings.json (every setting, the prompts
and the run) and contact_sheet.png. Default OUTDIR: WORKDIR/samples.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Sequence

import numpy as np
import tqdm
from absl import app, flags

from vidgen import host_memory, paths
from vidgen.data import video_io
from vidgen.eval.contact_sheet import save_contact_sheet
from vidgen.generation import Settings, VideoGenerator

FLAGS = flags.FLAGS


def read_prompts(prompts: Sequence[str], prompts_file: str | None) -> list[str]:
  """Prompts from flags and/or a file (one per line; blank lines and # comments skipped)."""
  out = list(prompts or [])
  if prompts_file:
    if not paths.exists(prompts_file):
      raise FileNotFoundError(f'--prompts_file {prompts_file} does not exist.')
    with paths.open_file(prompts_file) as f:
      out += [line.strip() for line in f if line.strip() and not line.lstrip().startswith('#')]
  if not out:
    raise app.UsageError('Give at least one --prompt "..." or a --prompts_file.')
  return out


def sample_to_files(generator: VideoGenerator, prompts: Sequence[str], settings: Settings, out_dir: str,
                    batch_size: int = 8, show_progress: bool = True) -> list[np.ndarray]:
  """Samples every prompt (in batches), writes NN.mp4/NN.gif, settings.json and a contact sheet.

  Returns:
    The videos, uint8 [T, H, W, 3] each, in prompt order.
  """
  settings = generator.resolve(settings)
  paths.makedirs(out_dir)
  videos = []
  for start in range(0, len(prompts), batch_size):
    chunk = prompts[start:start + batch_size]
    bar = tqdm.tqdm(total=settings.steps * generator.num_passes(settings),
                    desc=f'prompts {start + 1}-{start + len(chunk)}', disable=not show_progress)
    videos.extend(generator.generate(chunk, settings, progress=lambda i, n: bar.update(1)))
    bar.close()
  files = []
  for i, video in enumerate(videos):
    for ext in ('mp4', 'gif'):
      files.append(os.path.join(out_dir, f'{i:02d}.{ext}'))
      video_io.write_video(files[-1], video, generator.config.data.fps)
  save_contact_sheet(os.path.join(out_dir, 'contact_sheet.png'), videos, prompts)
  with paths.open_file(os.path.join(out_dir, 'settings.json'), 'w') as f:
    json.dump({'workdir': generator.workdir if paths.is_remote(generator.workdir) else os.path.abspath(generator.workdir), 'prompts': list(prompts),
               **dataclasses.asdict(settings), 'fps': generator.config.data.fps,
               'files': [os.path.basename(p) for p in files]}, f, indent=2)
  return videos


def main(argv):
  host_memory.keep_freed_memory()  # before JAX starts its threads
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments {argv[1:]}; quote prompts: --prompt "a red circle".')
  if not FLAGS.workdir:
    raise app.UsageError('--workdir (a trained DiT run) is required.')
  prompts = read_prompts(FLAGS.prompt, FLAGS.prompts_file)
  generator = VideoGenerator.from_workdir(FLAGS.workdir)
  settings = Settings(num_frames=FLAGS.num_frames, height=FLAGS.height, width=FLAGS.width, steps=FLAGS.steps,
                      cfg_scale=FLAGS.cfg_scale, sampler=FLAGS.sampler, seed=FLAGS.seed,
                      negative_prompt=FLAGS.negative_prompt, factorized=FLAGS.factorized)
  out = FLAGS.out or os.path.join(FLAGS.workdir, 'samples')
  sample_to_files(generator, prompts, settings, out, FLAGS.batch_size)
  print(f'Wrote {len(prompts)} videos (mp4 + gif), settings.json and contact_sheet.png to {out}')


if __name__ == '__main__':
  flags.DEFINE_string('workdir', None, 'A trained DiT run.')
  flags.DEFINE_multi_string('prompt', [], 'A prompt; repeat for several.')
  flags.DEFINE_string('prompts_file', None, 'A text file of prompts, one per line.')
  flags.DEFINE_integer('num_frames', None, 'Frames (1 + k·ft); default: the run\'s training clips.')
  flags.DEFINE_integer('height', None, 'Height in pixels; default: the run\'s.')
  flags.DEFINE_integer('width', None, 'Width in pixels; default: the run\'s.')
  flags.DEFINE_integer('steps', None, 'Sampler steps; default: the run\'s config.sample.steps.')
  flags.DEFINE_float('cfg_scale', None, 'Classifier-free guidance scale (1: none).')
  flags.DEFINE_string('sampler', None, 'euler | heun (flow), ddim | ddpm (DDPM).')
  flags.DEFINE_integer('seed', 0, 'Sampling seed: same seed, same videos.')
  flags.DEFINE_string('negative_prompt', None, 'Guide away from this prompt instead of the empty one.')
  flags.DEFINE_boolean('factorized', None, 'First the opening latent frame from the text, then the motion after it '
                       'given that frame; default: the run\'s config.sample.factorized.')
  flags.DEFINE_string('out', None, 'Output folder; default WORKDIR/samples.')
  flags.DEFINE_integer('batch_size', 8, 'Prompts sampled together.')
  app.run(main)
