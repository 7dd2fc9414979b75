"""The quickstart: a VAE, then a text-to-video DiT, on the built-in world, on a laptop CPU.

Run:  python -m vidgen.quickstart [--workdir runs/quickstart]
Smoke: python -m vidgen.quickstart --config experiments/configs/quickstart.py:tiny --workdir /tmp/qs
Stages (each resumes if interrupted): VAE (vae/), cached latents of `num_latent_videos`
training videos (latents/), DiT on them (dit/), then vidgen.evaluate on `num_eval_videos`
eval prompts: samples, probe scores beside real, VAE-reconstructed and noise videos, FVD
(feature net trained once into world_features/) (samples/, evaluation/, report.md).
One object per video: the scenes a CPU-sized model can learn in minutes.
Measured on a 2-core AMD Zen 3 without AVX-512, from a fresh workdir: 26.9 min end to end
(VAE 4.9, latents 0.6, DiT 17.6 for 4,000 steps, evaluation 3.8 with a feature net trained
500 steps); VAE eval PSNR 27.3 dB on videos, 29.9 on images; on 64 eval prompts the generated
videos have the right colour in 100% [94%, 100%], background in 100%, motion direction in 67%
[55%, 77%] (64% on 128 other eval prompts) and shape in 45%. Motion comes from image-to-video
examples at a high timestep shift and factorized sampling (below; what was tried, and what
this config cut: experiments/ablations/README.md).
`:full` is the longer run (VAE 600 steps at batch 16, DiT 5,000 steps, FVD net 1,500 steps):
48.8 min on the Zen 3 (before the flat random draws), 25.4 on a 2-core CPU with AVX-512;
direction 72% and 75% there.
"""

import math

import ml_collections

from experiments.configs import dit_world, vae_world, world_features


def get_config(arg=None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.model = 'quickstart'  # three runs: vae, dit, features (vidgen/config_schema.py: QuickstartRun)
  config.seed = 0
  vae = vae_world.get_config('tiny' if arg == 'tiny' else None)
  dit = dit_world.get_config('tiny' if arg == 'tiny' else None)
  for c in (vae, dit):
    c.data.world.update(min_objects=1, max_objects=1, gravity_prob=0.0, occluder_prob=0.0, pan_prob=0.0)
    c.data.world.caption_style = 'descriptive'
  dit.eval.data_source = 'world'  # the DiT trains on cached latents; it is evaluated on world eval videos
  if arg in (None, 'full'):  # sized for a 2-core CPU
    vae.vae.latent_channels = 12
    vae.eval.num_videos = 32
    dit.data.batch_size = 16
    dit.dit.update(depth=4, width=128, heads=4)
    dit.text.update(width=128, depth=2)
    dit.optim.update(lr=1e-3, warmup_steps=100)
    dit.sample.update(steps=25, cfg_scale=3.0)
  if arg is None:  # within 30 minutes on a 2-core AMD Zen 3 without AVX-512
    vae.data.batch_size = 8
    vae.train.update(num_steps=400, eval_every=400, checkpoint_every=200)
    dit.data.tokenizer.max_length = 24  # one-object captions are at most 23 tokens; each token costs step time
    dit.train.update(num_steps=4000, eval_every=0, checkpoint_every=500)  # vidgen.quickstart's stage 4 evaluates it
  elif arg == 'full':  # the longer run: 1.6x the time, motion direction about 9 points better
    vae.train.update(num_steps=600, eval_every=600, checkpoint_every=200)
    dit.data.tokenizer.max_length = 32
    dit.train.update(num_steps=5000, eval_every=2500, checkpoint_every=500)
  # Motion: most clips are image-to-video examples (first latent frame given clean) at a timestep
  # shift of 8, and text-to-video samples in two passes (generation.Settings.factorized).
  dit.masking.image = 0.75 if arg == 'full' else 0.9
  dit.diffusion.flow.update(base_shift=math.log(8.0), max_shift=math.log(8.0))
  dit.sample.factorized = True
  config.vae = vae
  config.dit = dit
  config.features = world_features.get_config('tiny' if arg == 'tiny' else None)  # the FVD feature net
  if arg is None:
    config.features.train.num_steps = 500
  config.num_latent_videos = 2000  # training videos encoded once; the DiT trains on their latents
  config.num_eval_videos = 64      # eval prompts sampled and probed (and as many real videos)
  if arg == 'tiny':
    config.num_latent_videos = 8
    config.num_eval_videos = 2
  elif arg not in (None, 'full'):
    raise ValueError(f'Unknown arg {arg!r} for quickstart.py: use full or tiny (or none).')
  return config
