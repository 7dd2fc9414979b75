"""The built-in world as a dataset, for exporting, benchmarking and exploring the data.

Run:  python -m vidgen.data.export --config experiments/configs/world.py --out /tmp/world --num_records 1000
Arg:  `tiny` shrinks batch and clip length for a CPU smoke test; `physics` turns on gravity,
      occluders and camera pans.
"""

import ml_collections

from experiments.configs import common


def get_config(arg=None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.model = 'data'  # an input pipeline alone (vidgen.data.export, the pipeline benchmark)
  config.seed = 0
  config.data = common.data_config()
  if arg == 'physics':
    config.data.world.update(gravity_prob=0.3, occluder_prob=0.3, pan_prob=0.2)
  elif arg == 'tiny':
    config.data.batch_size = 2
    config.data.num_frames = 5
    config.data.tokenizer.train_examples = 200
  elif arg:
    raise ValueError(f'Unknown arg {arg!r} for world.py: use tiny or physics.')
  return config
