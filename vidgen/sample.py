"""Sample videos from a trained run: text → video, and prompting with images and videos.

  python -m vidgen.sample --workdir runs/dit_world --prompt "a large red circle moves slowly to the right" \
      [--prompt ... | --prompts_file prompts.txt] [--num_frames 17 | --seconds 2] [--height 32 --width 32] \
      [--steps 30 --cfg_scale 4 --sampler euler --seed 0 --negative_prompt "..." --[no]factorized] [--out OUTDIR]
  Video prompting (one of these; each prompt is applied to the same image or clips):
      --image still.png                                animate an image (it is frame 0)
      --video clip.mp4 --extend forward|backward --seconds 1    extend a clip (in windows)
      --connect a.mp4 b.mp4 [--seconds 2]              from where A ends to where B starts
      --loop [--seconds 2]                             a clip whose end flows into its start
      --seconds 60 [--overlap 1]                       a minute: windows of the run's clips, each given
                                                       the last latent frames of the one before
      --edit clip.mp4 --strength 0.6                   SDEdit under the new prompt

Images and clips of another size are resized to cover the run's size and centre-cropped (a
note says so). Given frames appear in the written video as given (the file's own pixels).
Writes per prompt OUTDIR/NN.mp4 and NN.gif, plus settings.json (the task, its inputs, every
setting, the prompts and the run) and contact_sheet.png. Default OUTDIR: WORKDIR/samples.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from typing import Any, Sequence

import numpy as np
import tqdm
from absl import app, flags, logging

from vidgen import entrypoint, host_memory, paths, prompting
from vidgen.data import video_io
from vidgen.eval.contact_sheet import save_contact_sheet
from vidgen.generation import Settings, Task, VideoGenerator

FLAGS = flags.FLAGS


def read_prompts(prompts: Sequence[str], prompts_file: str | None) -> list[str]:
  """Prompts from flags and/or a file (one per line; blank lines and # comments skipped)."""
  out = list(prompts or [])
  if prompts_file:
    if not paths.exists(prompts_file):
      raise FileNotFoundError(f'--prompts_file {prompts_file} does not exist.')
    try:
      with paths.open_file(prompts_file) as f:
        out += [line.strip() for line in f if line.strip() and not line.lstrip().startswith('#')]
    except UnicodeDecodeError as e:
      raise app.UsageError(f'--prompts_file {prompts_file} is not UTF-8 text ({e.reason} at byte {e.start}): save '
                           'it as UTF-8, one prompt per line.') from None
  if not out:
    raise app.UsageError('Give at least one --prompt "..." or a --prompts_file.')
  return out


def sample_to_files(generator: VideoGenerator, prompts: Sequence[str], settings: Settings, out_dir: str,
                    batch_size: int = 8, show_progress: bool = True, task: Task = Task(),
                    inputs: dict[str, Any] | None = None) -> list[np.ndarray]:
  """Makes `task`'s video for every prompt (in batches), writes NN.mp4/NN.gif, settings.json, a contact sheet.

  `inputs` (e.g. the files given) go into settings.json beside the task and settings.

  Returns:
    The videos, uint8 [T, H, W, 3] each, in prompt order.
  """
  settings = generator.resolve(settings)
  paths.makedirs(out_dir)
  videos = []
  for start in range(0, len(prompts), batch_size):
    chunk = prompts[start:start + batch_size]
    part = task.media_for(start, start + len(chunk), len(prompts))
    bar = tqdm.tqdm(total=settings.steps * generator.passes(part, settings),
                    desc=f'prompts {start + 1}-{start + len(chunk)}', disable=not show_progress)
    videos.extend(generator.run(part, chunk, settings, progress=lambda i, n: bar.update(1)))
    bar.close()
  files = []
  for i, video in enumerate(videos):
    for ext in ('mp4', 'gif'):
      files.append(os.path.join(out_dir, f'{i:02d}.{ext}'))
      video_io.write_video(files[-1], video, generator.config.data.fps)
  save_contact_sheet(os.path.join(out_dir, 'contact_sheet.png'), videos, prompts)
  workdir = generator.workdir if paths.is_remote(generator.workdir) else os.path.abspath(generator.workdir)
  record = {'workdir': workdir, 'task': task.name, 'prompts': list(prompts), **dataclasses.asdict(settings),
            'fps': generator.config.data.fps, 'frames_written': int(videos[0].shape[0]),
            'given_frames': 'the inputs\' own pixels (fitted to the run\'s size); the rest decoded by the VAE',
            **({'new_frames': task.new_frames} if task.name.startswith('extend') else {}),
            **({'strength': task.strength} if task.name == 'edit' else {}),
            **({'overlap': task.overlap} if task.name == 'long' else {}),
            'inputs': inputs or {}, 'files': [os.path.basename(p) for p in files]}
  with paths.open_file(os.path.join(out_dir, 'settings.json'), 'w') as f:
    json.dump(record, f, indent=2)
  return videos


def frames_for_seconds(seconds: float, fps: float, ft: int, new: bool) -> int:
  """Frames for `seconds` of video: seconds·fps new frames, or seconds·fps + 1 for a clip (1 + k·ft)."""
  if seconds <= 0:
    raise app.UsageError(f'--seconds must be > 0; got {seconds:g}.')
  frames = seconds * fps
  step = (1 if new else ft) / fps
  if abs(frames - round(frames)) > 1e-6 or (not new and round(frames) % ft):
    lower = max(step, math.floor(seconds / step + 1e-9) * step)
    raise app.UsageError(f'--seconds {seconds:g} at {fps:g} fps is {frames:g} frames, which the VAE cannot make '
                         f'({"whole frames" if new else f"clips of 1 + k·{ft} frames"}): try {lower:g} or '
                         f'{lower + step:g}.')
  return int(round(frames)) + (0 if new else 1)


def task_from_flags(generator: VideoGenerator, settings: Settings) -> tuple[Task, Settings, dict[str, Any]]:
  """The task the flags ask for, its media loaded and fitted, the settings it runs with, and its inputs."""
  chosen = [name for name, on in (('--image', FLAGS.image), ('--video', FLAGS.video), ('--connect', FLAGS.connect),
                                  ('--loop', FLAGS.loop), ('--edit', FLAGS.edit)) if on]
  if len(chosen) > 1:
    raise app.UsageError(f'{" and ".join(chosen)} do not go together: give one of --image, --video (with '
                         '--extend), --connect, --loop or --edit.')
  if FLAGS.extend and not FLAGS.video:
    raise app.UsageError('--extend needs the clip to extend: --video clip.mp4 --extend forward --seconds 1.')
  if FLAGS.video and not FLAGS.extend:
    raise app.UsageError('--video is the clip to extend: add --extend forward or --extend backward.')
  if FLAGS.strength is not None and not FLAGS.edit:
    raise app.UsageError('--strength goes with --edit clip.mp4.')
  if FLAGS.seconds is not None and FLAGS.num_frames is not None:
    raise app.UsageError('Give --seconds or --num_frames, not both.')
  s = generator.resolve(settings)
  fps, ft = generator.config.data.fps, generator.vae.config.compression[0]
  if FLAGS.seconds is not None and not FLAGS.video and not FLAGS.edit:
    frames = frames_for_seconds(FLAGS.seconds, fps, ft, new=False)
    if frames > s.num_frames and not (FLAGS.image or FLAGS.connect or FLAGS.loop):
      # Longer than the run's clips: windows of them, each given the last latent frames of the one before.
      window = generator.vae.config.latent_shape(s.num_frames, s.height, s.width)[0]
      if not 1 <= FLAGS.overlap < window:
        raise app.UsageError(f'--overlap must be at least 1 and below the window\'s {window} latent frames; got '
                             f'{FLAGS.overlap}.')
      total = generator.vae.config.latent_shape(frames, s.height, s.width)[0]
      print(f'{FLAGS.seconds:g} s is {frames} frames: {generator.num_long_windows(total, window, FLAGS.overlap)} '
            f'windows of {s.num_frames} frames, each after the first given {FLAGS.overlap} latent frame(s) of the '
            'one before.', flush=True)
      return Task('long', num_frames=frames, overlap=FLAGS.overlap), s, {'overlap': FLAGS.overlap}
    s = generator.resolve(dataclasses.replace(s, num_frames=frames))
  fit = lambda path: prompting.load_clip(path, s.height, s.width, fps)
  if FLAGS.image:
    return Task('i2v', images=prompting.load_image(FLAGS.image, s.height, s.width)[None]), s, {'image': FLAGS.image}
  if FLAGS.video:
    if FLAGS.seconds is None:
      raise app.UsageError('--extend needs --seconds: how much video to add (e.g. --seconds 1).')
    new = frames_for_seconds(FLAGS.seconds, fps, ft, new=True)
    clip = fit(FLAGS.video)
    direction = FLAGS.extend
    generator.extension_context(len(clip), direction, s)  # a clip too short fails here, naming the minimum
    return Task(f'extend_{direction}', videos=clip[None], new_frames=new), s, {'video': FLAGS.video}
  if FLAGS.connect:
    a, b = FLAGS.connect
    return Task('connect', videos=fit(a)[None], videos_b=fit(b)[None]), s, {'a': a, 'b': b}
  if FLAGS.loop:
    return Task('loop'), s, {}
  if FLAGS.edit:
    strength = 0.6 if FLAGS.strength is None else FLAGS.strength
    if not 0.0 < strength <= 1.0:
      raise app.UsageError(f'--strength must be in (0, 1] (0.6 keeps the layout, 1 ignores the video); got '
                           f'{strength:g}.')
    clip = fit(FLAGS.edit)
    frames = 1 + (len(clip) - 1) // ft * ft
    if frames != len(clip):
      print(f'Note: {FLAGS.edit} has {len(clip)} frames; editing its first {frames} (1 + k·{ft}).', flush=True)
    return Task('edit', videos=clip[None, :frames], strength=strength), s, {'video': FLAGS.edit}
  return Task(), s, {}


def main(argv):
  host_memory.keep_freed_memory(restart=True)  # restarts once with GLIBC_TUNABLES if JAX threads already allocated
  if not any(a.startswith(('--verbosity', '-v', '--v=')) for a in sys.argv):
    logging.set_verbosity(logging.WARNING)  # checkpoint libraries' INFO lines drown the progress
  if FLAGS.connect and len(FLAGS.connect) == 1 and len(argv) == 2:
    FLAGS.connect = FLAGS.connect + argv[1:]  # --connect A B
    argv = argv[:1]
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments {argv[1:]}; quote prompts: --prompt "a red circle".')
  if FLAGS.connect and len(FLAGS.connect) != 2:
    raise app.UsageError(f'--connect takes two clips, A then B (--connect a.mp4 b.mp4); got {FLAGS.connect}.')
  if not FLAGS.workdir:
    raise app.UsageError('--workdir (a trained DiT run) is required.')
  if FLAGS.steps is not None and FLAGS.steps < 1:
    raise app.UsageError(f'--steps must be >= 1; got {FLAGS.steps}.')
  if FLAGS.cfg_scale is not None and FLAGS.cfg_scale < 1:
    raise app.UsageError(f'--cfg_scale must be >= 1 (1: no guidance; the run samples with its config\'s); got '
                         f'{FLAGS.cfg_scale:g}.')
  prompts = read_prompts(FLAGS.prompt, FLAGS.prompts_file)
  generator = VideoGenerator.from_workdir(FLAGS.workdir)
  settings = Settings(num_frames=FLAGS.num_frames, height=FLAGS.height, width=FLAGS.width, steps=FLAGS.steps,
                      cfg_scale=FLAGS.cfg_scale, sampler=FLAGS.sampler, seed=FLAGS.seed,
                      negative_prompt=FLAGS.negative_prompt, factorized=FLAGS.factorized)
  try:
    task, settings, inputs = task_from_flags(generator, settings)
  except (ValueError, FileNotFoundError, video_io.VideoReadError) as e:
    raise app.UsageError(str(e)) from None
  out = FLAGS.out or os.path.join(FLAGS.workdir, 'samples')
  sample_to_files(generator, prompts, settings, out, FLAGS.batch_size, task=task, inputs=inputs)
  print(f'Wrote {len(prompts)} videos ({task.name}; mp4 + gif), settings.json and contact_sheet.png to {out}')


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
  flags.DEFINE_string('image', None, 'Animate this PNG/JPEG (image → video; it is frame 0).')
  flags.DEFINE_string('video', None, 'A clip to extend (with --extend and --seconds).')
  flags.DEFINE_enum('extend', None, ['forward', 'backward'], 'Extend --video forward (after it) or backward.')
  flags.DEFINE_float('seconds', None, 'Length: new video for --extend; the clip for text → video, --image, '
                     '--connect and --loop (seconds·fps + 1 frames).')
  flags.DEFINE_integer('overlap', 1, 'Text → video longer than the run\'s clips (--seconds 60): latent frames each '
                       'window is given from the one before.')
  flags.DEFINE_multi_string('connect', None, 'Two clips, A then B: a clip from where A ends to where B starts.')
  flags.DEFINE_bool('loop', False, 'A clip whose last frame flows into its first.')
  flags.DEFINE_string('edit', None, 'A clip to edit under the prompt (SDEdit; with --strength).')
  flags.DEFINE_float('strength', None, 'Edit strength in (0, 1]: noise level the clip is taken to (default 0.6).')
  flags.DEFINE_string('out', None, 'Output folder; default WORKDIR/samples.')
  flags.DEFINE_integer('batch_size', 8, 'Prompts sampled together.')
  entrypoint.run(main)
