"""The built-in world as a dataset: generate, pipeline and probe world videos.

Run:  python -m vidgen.quickstart --config experiments/configs/world.py
Arg:  `tiny` shrinks batch and sizes for a CPU smoke test; `physics` turns on gravity,
      occluders and camera pans.
"""

import ml_collections

from experiments.configs import common


def get_config(arg=None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.data = common.data_config()
  config.probe_videos = 64
  if arg == 'physics':
    config.data.world.update(gravity_prob=0.3, occluder_prob=0.3, pan_prob=0.2)
  elif arg == 'tiny':
    config.data.batch_size = 2
    config.data.num_frames = 5
    config.data.tokenizer.train_examples = 200
    config.probe_videos = 4
  elif arg:
    raise ValueError(f'Unknown arg {arg!r} for world.py: use tiny or physics.')
  return config
