"""Sampling from a trained run: determinism, files written, and clear errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from vidgen import sample
from vidgen.generation import Settings, VideoGenerator


@pytest.fixture(scope='module')
def generator(tiny_dit_run):
  return VideoGenerator.from_workdir(tiny_dit_run)


def test_same_seed_same_video_other_seed_other_video(generator):
  prompts = ['a red circle moves to the right', 'a small blue square']
  a = generator.generate(prompts, Settings(seed=1, steps=2))
  b = generator.generate(prompts, Settings(seed=1, steps=2))
  c = generator.generate(prompts, Settings(seed=2, steps=2))
  assert a.dtype == np.uint8 and a.shape == (2, 9, 16, 16, 3)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)


def test_factorized_keeps_the_opening_latent_frame_and_resamples_the_motion(generator, monkeypatch):
  latents = []

  def keep_latents(z):
    latents.append(z)
    return np.zeros(z.shape[:1] + (9, 16, 16, 3), np.float32)
  monkeypatch.setattr(generator, 'decode', keep_latents)
  prompts = ['a red circle moves to the right', 'a small blue square']
  generator.generate(prompts, Settings(seed=3, steps=2))
  generator.generate(prompts, Settings(seed=3, steps=2, factorized=True))
  generator.generate(prompts, Settings(seed=3, steps=2, factorized=True))
  plain, factorized, again = latents
  np.testing.assert_array_equal(factorized[:, 0], plain[:, 0])  # the opening frame of the text-to-video pass
  assert np.abs(factorized[:, 1:] - plain[:, 1:]).max() > 1e-3  # the motion sampled again, given it
  np.testing.assert_array_equal(factorized, again)


def test_other_sizes_and_guidance_settings(generator):
  video = generator.generate(['a green triangle'], Settings(num_frames=5, height=32, width=16, steps=2,
                                                            cfg_scale=1.0, sampler='heun'))
  assert video.shape == (1, 5, 32, 16, 3)
  negative = generator.generate(['a green triangle'], Settings(steps=2, negative_prompt='a red circle'))
  assert negative.shape == (1, 9, 16, 16, 3)


def test_bad_requests_say_what_would_work(generator):
  with pytest.raises(ValueError, match='non-empty'):
    generator.generate(['  '])
  with pytest.raises(ValueError, match=r'not 1 \+ k·4 \(try 5 or 9\)'):
    generator.generate(['a red circle'], Settings(num_frames=6))
  with pytest.raises(ValueError, match='height 18 is not a multiple of 4'):
    generator.generate(['a red circle'], Settings(height=18))
  with pytest.raises(ValueError, match='does not fit rectified flow'):
    generator.generate(['a red circle'], Settings(sampler='ddim', steps=1))


def test_sample_to_files(generator, tmp_path):
  prompts = ['a red circle moves to the right', 'a small blue square', 'a white triangle']
  videos = sample.sample_to_files(generator, prompts, Settings(steps=2), str(tmp_path), batch_size=2,
                                  show_progress=False)
  assert len(videos) == 3 and videos[0].shape == (9, 16, 16, 3)
  for i in range(3):
    assert os.path.exists(tmp_path / f'{i:02d}.mp4') and os.path.exists(tmp_path / f'{i:02d}.gif')
  settings = json.load(open(tmp_path / 'settings.json'))
  assert settings['prompts'] == prompts and settings['steps'] == 2 and settings['cfg_scale'] == 4.0
  assert os.path.exists(tmp_path / 'contact_sheet.png')


def test_cli_errors(tiny_vae_run, tmp_path):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  no_prompt = subprocess.run([sys.executable, '-m', 'vidgen.sample', '--workdir', str(tmp_path)],
                             capture_output=True, text=True, env=env)
  assert no_prompt.returncode != 0 and 'at least one --prompt' in no_prompt.stderr
  not_dit = subprocess.run([sys.executable, '-m', 'vidgen.sample', '--workdir', tiny_vae_run, '--prompt', 'x'],
                           capture_output=True, text=True, env=env)
  assert not_dit.returncode != 0 and 'not a DiT run' in not_dit.stderr


# Video prompting: every task through the API and the CLI, given frames kept, bad input refused.


def _world_clips(generator, num=2):
  from vidgen.world import scenes as world
  source = world.make_source(generator.config.data, 'eval', 0)
  return np.stack([source[i]['frames'] for i in range(num)])


PROMPTS = ['a red circle moves to the right', 'a small blue square moves up']


def test_every_task_keeps_the_given_frames_as_given(generator):
  clips, s = _world_clips(generator), Settings(steps=2)
  video = generator.animate(clips[:, 0], PROMPTS, s)
  assert video.shape == (2, 9, 16, 16, 3)
  np.testing.assert_array_equal(video[:, 0], clips[:, 0])
  forward = generator.extend(clips, PROMPTS, 6, 'forward', s)  # one window of 4 new frames, then a second
  assert forward.shape == (2, 15, 16, 16, 3) and generator.num_windows(6, 'forward', 9, s) == 2
  np.testing.assert_array_equal(forward[:, :9], clips)
  backward = generator.extend(clips, PROMPTS, 3, 'backward', s)
  assert backward.shape == (2, 12, 16, 16, 3)
  np.testing.assert_array_equal(backward[:, 3:], clips)
  a, b = clips, clips[:, ::-1]
  connected = generator.connect(a, b, PROMPTS, s)
  ca, cb = generator.connect_context(s)
  assert (ca, cb) == (1, 4) and connected.shape == (2, 9, 16, 16, 3)
  np.testing.assert_array_equal(connected[:, :ca], a[:, -ca:])
  np.testing.assert_array_equal(connected[:, 9 - cb:], b[:, :cb])
  loop = generator.loop(PROMPTS, s)
  assert loop.shape == (2, 9 + 4, 16, 16, 3)


def test_extension_windows_condition_on_the_video_so_far(generator, monkeypatch):
  """Window 2 of a forward extension is given the last frames of window 1's output."""
  canvases = []
  real_generate = generator.generate

  def spy(prompts, settings, progress=None, canvas=None):
    canvases.append(canvas)
    return real_generate(prompts, settings, progress, canvas)
  monkeypatch.setattr(generator, 'generate', spy)
  clips = _world_clips(generator)
  out = generator.extend(clips, PROMPTS, 8, 'forward', Settings(steps=2))
  assert len(canvases) == 2
  np.testing.assert_array_equal(canvases[1].frames[:, :5], out[:, 8:13])  # the last 5 frames of window 1's video


def test_long_video_windows_are_given_the_last_latents_of_the_window_before(generator, monkeypatch):
  """A 33-frame video from 9-frame windows (3 latent frames): window k+1 starts from window k's own latents."""
  calls = []
  real_sample = generator._sample

  def spy(prompts, s, shape, rng, progress, cond_mask=None, cond_latents=None, **kw):
    x = real_sample(prompts, s, shape, rng, progress, cond_mask, cond_latents, **kw)
    calls.append((cond_mask, cond_latents, np.asarray(x)))
    return x
  monkeypatch.setattr(generator, '_sample', spy)
  s = Settings(steps=1, factorized=False)
  z = np.asarray(generator.long_latents(PROMPTS, 9, s, overlap=1))
  assert z.shape[1] == 9 and len(calls) == 1 + 3  # 3 + 2 + 2 + 2 latent frames
  for (_, _, before), (mask, cond, _) in zip(calls, calls[1:]):
    assert np.asarray(mask)[:, 0].all() and not np.asarray(mask)[:, 1:].any()
    np.testing.assert_array_equal(np.asarray(cond)[:, 0], before[:, -1])
  np.testing.assert_array_equal(z[:, :3], calls[0][2])
  np.testing.assert_array_equal(z[:, 3:5], calls[1][2][:, 1:])
  video = generator.long(PROMPTS, 33, s, overlap=2)
  assert video.shape[:2] == (len(PROMPTS), 33) and video.dtype == np.uint8
  with pytest.raises(ValueError, match='1 \\+ k·4 frames; got 34 \\(try 37\\)'):
    generator.long(PROMPTS, 34, s)
  with pytest.raises(ValueError, match='overlap must be at least 1 and smaller than the window'):
    generator.long(PROMPTS, 33, s, overlap=3)


def test_chunked_decode_of_a_long_video_equals_whole_decode(generator):
  rng = np.random.default_rng(0)
  z = rng.normal(size=(1, 12) + generator.vae.config.latent_shape(9, 16, 16)[1:]).astype(np.float32)
  whole = np.asarray(generator._decode(generator.vae_params, z))
  np.testing.assert_allclose(generator.decode(z), whole, atol=2e-5)


def test_edit_strength_keeps_more_of_the_source_when_low(generator):
  clips, s = _world_clips(generator), Settings(steps=4, seed=0)
  diff = [np.abs(generator.edit(clips, PROMPTS, strength, s).astype(float) - clips).mean() for strength in (0.05, 1.0)]
  assert diff[0] < diff[1]
  with pytest.raises(ValueError, match=r'strength must be in \(0, 1\]'):
    generator.edit(clips, PROMPTS, 0.0, s)


def test_prompting_bad_input_says_what_would_work(generator):
  clips = _world_clips(generator)
  with pytest.raises(ValueError, match='too short to extend backward: give at least 4 frames'):
    generator.extend(clips[:, :3], PROMPTS, 4, 'backward')
  with pytest.raises(ValueError, match=r'is 8×8 but the run makes 16×16: fit it with vidgen.prompting.fit_frames'):
    generator.animate(clips[:, 0, :8, :8], PROMPTS)
  with pytest.raises(ValueError, match='2 prompts for 1 canvases'):
    generator.animate(clips[:1, 0], PROMPTS)
  with pytest.raises(ValueError, match='Connecting needs at least 3 latent frames'):
    generator.connect(clips, clips, PROMPTS, Settings(num_frames=5))
  from vidgen.generation import Task
  with pytest.raises(ValueError, match="Task 'connect' needs videos_b"):
    Task('connect', videos=clips)
  with pytest.raises(ValueError, match='Unknown task'):
    Task('interpolate')


def _run_cli(workdir, *args):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, '-m', 'vidgen.sample', '--workdir', workdir, *args],
                        capture_output=True, text=True, env=env)


@pytest.fixture(scope='module')
def media(tmp_path_factory, generator):
  from PIL import Image
  from vidgen.data import video_io
  folder = tmp_path_factory.mktemp('media')
  clip = _world_clips(generator, 1)[0]
  Image.fromarray(np.repeat(np.repeat(clip[0], 2, 0), 3, 1)).save(folder / 'image.png')  # 32×48: fitted
  video_io.write_video(str(folder / 'clip.mp4'), clip, 8.0)
  video_io.write_video(str(folder / 'short.mp4'), clip[:2], 8.0)
  (folder / 'broken.mp4').write_bytes(b'not a video')
  (folder / 'prompts.txt').write_bytes(b'\xff\xfe a red circle')
  return folder


@pytest.mark.parametrize('mode', [
    ('--image', '{m}/image.png'),
    ('--video', '{m}/clip.mp4', '--extend', 'forward', '--seconds', '1'),
    ('--video', '{m}/clip.mp4', '--extend', 'backward', '--seconds', '0.5'),
    ('--connect', '{m}/clip.mp4', '{m}/clip.mp4'),
    ('--loop',),
    ('--edit', '{m}/clip.mp4', '--strength', '0.5'),
    ('--seconds', '4', '--overlap', '2'),
], ids=['image', 'forward', 'backward', 'connect', 'loop', 'edit', 'long'])
def test_each_cli_mode_writes_its_videos(tiny_dit_run, media, tmp_path, mode):
  args = [a.format(m=media) for a in mode]
  result = _run_cli(tiny_dit_run, '--prompt', 'a red circle moves to the right', '--steps', '1', '--out',
                    str(tmp_path), *args)
  assert result.returncode == 0, result.stderr[-2000:]
  settings = json.load(open(tmp_path / 'settings.json'))
  expected_frames = {'--image': 9, '--video': 9 + (8 if '1' in args else 4), '--connect': 9, '--loop': 13,
                     '--edit': 9, '--seconds': 33}[args[0]]
  assert settings['frames_written'] == expected_frames and settings['task'] != 't2v'
  for name in ('00.mp4', '00.gif', 'contact_sheet.png'):
    assert os.path.exists(tmp_path / name)
  if args[0] == '--image':
    assert 'resized to cover 16×16' in result.stdout
  if args[0] == '--edit':
    assert settings['strength'] == 0.5


@pytest.mark.parametrize('args,message', [
    (('--image', '{m}/image.png', '--video', '{m}/clip.mp4'), '--image and --video do not go together'),
    (('--loop', '--connect', '{m}/clip.mp4', '{m}/clip.mp4'), '--connect and --loop do not go together'),
    (('--edit', '{m}/clip.mp4', '--strength', '1.5'), r'--strength must be in \(0, 1\]'),
    (('--edit', '{m}/clip.mp4', '--strength', '0'), r'--strength must be in \(0, 1\]'),
    (('--video', '{m}/clip.mp4', '--extend', 'forward', '--seconds', '0.3'),
     'cannot make .whole frames.: try 0.25 or 0.375'),
    (('--loop', '--seconds', '0.6'), r'clips of 1 \+ k·4 frames.: try 0.5 or 1'),
    (('--seconds', '-1'), '--seconds must be > 0'),
    (('--seconds', '60', '--overlap', '3'), r'--overlap must be at least 1 and below the window.s 3 latent frames'),
    (('--video', '{m}/short.mp4', '--extend', 'backward', '--seconds', '1'), 'give at least 4 frames'),
    (('--image', '{m}/missing.png'), 'does not exist'),
    (('--video', '{m}/broken.mp4', '--extend', 'forward', '--seconds', '1'), 'Cannot decode video'),
    (('--video', '{m}/clip.mp4'), 'add --extend forward or --extend backward'),
    (('--strength', '0.5',), '--strength goes with --edit'),
    (('--steps', '0'), '--steps must be >= 1'),
    (('--cfg_scale', '-1'), '--cfg_scale must be >= 1'),
    (('--prompts_file', '{m}/prompts.txt'), 'is not UTF-8 text'),
], ids=['image+video', 'loop+connect', 'strength>1', 'strength0', 'seconds-extend', 'seconds-clip', 'too-short',
        'missing', 'broken', 'no-extend', 'strength-alone', 'steps0', 'cfg-1', 'non-utf8', 'seconds<0',
        'overlap>=window'])
def test_cli_bad_input_is_a_clear_error(tiny_dit_run, media, args, message):
  result = _run_cli(tiny_dit_run, '--prompt', 'a red circle', *[a.format(m=media) for a in args])
  assert result.returncode != 0
  last = result.stderr.strip().splitlines()[-1]
  assert 'Traceback' not in result.stderr, result.stderr[-1500:]
  import re
  assert re.search(message, last), last


def test_a_canvas_whose_frames_fix_no_latent_frame_is_refused(generator):
  from vidgen import prompting
  frames = _world_clips(generator)
  given = np.zeros(frames.shape[:2], bool)
  given[:, 2:4] = True  # part of latent frame 1 only
  with pytest.raises(ValueError, match='fill no whole latent frame'):
    generator.generate(PROMPTS, Settings(steps=1), canvas=prompting.Canvas(frames, given))
