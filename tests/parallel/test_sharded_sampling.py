"""A run loaded sharded onto 8 simulated devices samples the same videos as on one device."""

import json
import subprocess
import sys

import numpy as np

from tests.parallel.test_sharded_training import REPO, eight_device_env
from vidgen.generation import Settings, VideoGenerator


def test_sharded_run_samples_what_one_device_samples(tiny_dit_run):
  out = subprocess.run([sys.executable, '-m', 'tests.parallel.sharded_sampling', tiny_dit_run], cwd=REPO,
                       env=eight_device_env(), capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  result = json.loads(out.stdout.strip().splitlines()[-1])
  assert result['devices'] == 8 and result['sharded_leaves'] > 0  # weights really restored sharded
  one = VideoGenerator.from_workdir(tiny_dit_run)
  prompts, settings = ['a red circle moves to the right', 'a small blue square'], Settings(steps=2, seed=3)
  clip = one.generate(prompts, settings)
  extended = one.extend(clip, prompts, 4, 'forward', settings)
  # uint8 videos: a float32 summation order can move a value across a rounding boundary.
  assert np.mean(np.abs(np.asarray(result['video'], np.int16) - clip.astype(np.int16))) < 0.5
  assert np.mean(np.abs(np.asarray(result['extended'], np.int16) - extended.astype(np.int16))) < 0.5
