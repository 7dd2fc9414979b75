"""The world feature network: the embedding of vidgen's Fréchet video distance (vidgen/world/features.py).

Run:  python -m vidgen.world.train_features --out runs/world_features
Smoke: python -m vidgen.world.train_features --config experiments/configs/world_features.py:tiny --out /tmp/wf
Trains on every kind of world scene (1-3 objects, gravity, occluders, camera pans) at the
quickstart's clip size (17x32x32). Measured on a 2-core AMD Zen 3: 4.4 min (6.6 before the
training loop stopped waiting for each step's loss before rendering the next batch); held-out
accuracy (256 eval-split videos) 0.94 averaged over heads: background 1.00, colours present
1.00, shape 0.94, size 0.99, speed 0.94, direction 0.66 (of 9), gravity 0.99, pan 0.96.
`vidgen.evaluate` trains it on first use if its --features_dir has none.
"""

import ml_collections

from experiments.configs import common
from vidgen.parallel.mesh import ParallelConfig
from vidgen.world.features import FeatureEvalConfig, FeatureNetConfig
from vidgen.train.optimizer import OptimConfig


def get_config(arg=None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.model = 'features'
  config.seed = 0
  config.data = common.data_config(batch_size=32)
  config.data.world.update(gravity_prob=0.2, occluder_prob=0.2, pan_prob=0.2)
  config.net = common.block(FeatureNetConfig, widths=(64, 128))
  config.optim = common.block(OptimConfig, lr=3e-3, warmup_steps=50, weight_decay=0.0)
  # Evaluated once, after training (its held-out accuracy goes into features.json).
  config.train = common.train_config(num_steps=1500, log_every=250, eval_every=0, checkpoint_every=500)
  config.parallel = common.block(ParallelConfig)
  config.eval = common.block(FeatureEvalConfig, num_videos=256)  # eval-split videos its accuracy is read on
  if arg == 'tiny':
    config.data.update(num_frames=5, height=16, width=16, batch_size=4)
    config.net.widths = (8, 16)
    config.train.update(num_steps=3, log_every=1, checkpoint_every=3)
    config.eval.num_videos = 8
  elif arg:
    raise ValueError(f'Unknown arg {arg!r} for world_features.py: use tiny.')
  return config
