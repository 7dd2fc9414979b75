"""The quickstart: a VAE, then a text-to-video DiT, on the built-in world, on a laptop CPU.

Run:  python -m vidgen.quickstart [--workdir runs/quickstart]
Smoke: python -m vidgen.quickstart --config experiments/configs/quickstart.py:tiny --workdir /tmp/qs
Stages (each resumes if interrupted): VAE (vae/), cached latents of `num_latent_videos`
training videos (latents/), DiT on them (dit/), then vidgen.evaluate on `num_eval_videos`
eval prompts: samples, probe scores beside real, VAE-reconstructed and noise videos, FVD
(feature net trained once into world_features/) (samples/, evaluation/, report.md).
One object per video: the scenes a CPU-sized model can learn in minutes.
Measured on a 2-core CPU from a fresh workdir: 25.4 min end to end (VAE 6.6, latents 0.3,
DiT 14.5 for 5,000 steps, evaluation 4.0 with the feature net); VAE eval PSNR 29.7 dB on
videos, 33.1 on images; on 64 eval prompts the generated videos have the right colour in 100%
[94%, 100%], background in 100%, motion direction in 75% [63%, 84%] and shape in 39%. Motion
comes from image-to-video examples at a high timestep shift and factorized sampling (below;
what was tried: experiments/ablations/README.md).
"""

import math

import ml_collections

from experiments.configs import dit_world, vae_world, world_features


def get_config(arg=None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  vae = vae_world.get_config('tiny' if arg == 'tiny' else None)
  dit = dit_world.get_config('tiny' if arg == 'tiny' else None)
  for c in (vae, dit):
    c.data.world.update(min_objects=1, max_objects=1, gravity_prob=0.0, occluder_prob=0.0, pan_prob=0.0)
    c.data.world.caption_style = 'descriptive'
  dit.eval.data_source = 'world'  # the DiT trains on cached latents; it is evaluated on world eval videos
  if arg != 'tiny':  # sized for a 2-core CPU: about 26 minutes in all
    vae.vae.latent_channels = 12
    vae.train.update(num_steps=600, eval_every=600, checkpoint_every=200)
    vae.eval.num_videos = 32
    dit.data.batch_size = 16
    dit.data.tokenizer.max_length = 32  # one-object captions are at most ~20 tokens; 64 cost 25% more per step
    dit.dit.update(depth=4, width=128, heads=4)
    dit.text.update(width=128, depth=2)
    dit.optim.update(lr=1e-3, warmup_steps=100)
    dit.train.update(num_steps=5000, eval_every=2500, checkpoint_every=500)
    dit.sample.update(steps=25, cfg_scale=3.0)
  # Motion: most clips are image-to-video examples (first latent frame given clean) at a timestep
  # shift of 8, and text-to-video samples in two passes (generation.Settings.factorized).
  dit.first_frame_prob = 0.75
  dit.diffusion.flow.update(base_shift=math.log(8.0), max_shift=math.log(8.0))
  dit.sample.factorized = True
  config.vae = vae
  config.dit = dit
  config.features = world_features.get_config('tiny' if arg == 'tiny' else None)  # the FVD feature net
  config.num_latent_videos = 2000  # training videos encoded once; the DiT trains on their latents
  config.num_eval_videos = 64      # eval prompts sampled and probed (and as many real videos)
  if arg == 'tiny':
    config.num_latent_videos = 8
    config.num_eval_videos = 2
  elif arg:
    raise ValueError(f'Unknown arg {arg!r} for quickstart.py: use tiny.')
  return config
