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
  assert a.dtype == np.uint8 and a.shape == (2, 5, 16, 16, 3)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)


def test_factorized_keeps_the_opening_latent_frame_and_resamples_the_motion(generator, monkeypatch):
  latents = []

  def keep_latents(z):
    latents.append(z)
    return np.zeros(z.shape[:1] + (5, 16, 16, 3), np.float32)
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
  video = generator.generate(['a green triangle'], Settings(num_frames=9, height=32, width=16, steps=2,
                                                            cfg_scale=1.0, sampler='heun'))
  assert video.shape == (1, 9, 32, 16, 3)
  negative = generator.generate(['a green triangle'], Settings(steps=2, negative_prompt='a red circle'))
  assert negative.shape == (1, 5, 16, 16, 3)


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
  assert len(videos) == 3 and videos[0].shape == (5, 16, 16, 3)
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
