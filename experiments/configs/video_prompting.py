"""Video prompting on the built-in world: the quickstart with clips that give frames clean.

Run:   python -m vidgen.quickstart --config experiments/configs/video_prompting.py --workdir runs/video_prompting
Smoke: python -m vidgen.quickstart --config experiments/configs/video_prompting.py:tiny --workdir /tmp/vp
Then every task of one DiT (vidgen.evaluate --task; README "Video prompting"):
       python -m vidgen.evaluate --workdir runs/video_prompting/dit --task i2v   (extend_forward,
       extend_backward, connect, loop, edit; t2v is the quickstart's table)
The same VAE, data and DiT as the quickstart, so its stages and time are the quickstart's; only
the frame masks differ (diffusion/masking.py): of the training clips, half give the first
latent frame (image → video; also the opening frame of factorized text → video), 15% the first
k (extend forward), 15% the last k (extend backward), 10% both ends (connect, loop), 5% random
frames, 5% none (text → video), k in 1-3 of the 5 latent frames. Open-Sora 1.1 gives 75% of
clips no frames; here motion is learned from clips whose object's start is given (the
quickstart's finding), so given-frame clips are the majority. Results: README, "Video prompting".
"""

import ml_collections

from experiments.configs import quickstart


def get_config(arg=None) -> ml_collections.ConfigDict:
  config = quickstart.get_config(arg)
  config.dit.masking.update(image=0.5, forward=0.15, backward=0.15, connect=0.1, random=0.05,
                            min_frames=1, max_frames=3)
  if arg is None:
    config.dit.train.num_steps = 8000  # six tasks to learn, not one: twice the quickstart's steps
  return config
