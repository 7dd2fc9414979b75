"""The patch VAE of dit_xl2_256: 256×256 × 17-frame videos → 5×32×32×16 latents (4×8×8), for a TPU pod.

Train it first, on ArrayRecord shards of real videos (vidgen.data.export), then cache its
latents for the DiT (vidgen.data.encode_latents) and pass its workdir as the DiT's vae_workdir:
  python -m vidgen.train --config experiments/configs/vae_256.py --workdir gs://BUCKET/runs/vae_256 \
      --distributed --config.data.array_record.pattern='gs://BUCKET/videos/train-*.array_record'
Compile ahead of time for a slice (no TPU needed):
  python -m vidgen.tools.compile --config experiments/configs/vae_256.py --topology v5p-16
Sized as latent-diffusion video VAEs are (channels 128-256-512, attention in the middle block,
L1 + L2 with a small KL and the 3D patch-GAN from step 20k); not trained here: nothing at this
size runs on the 2-core CPU this repository is developed on.
"""

import ml_collections

from experiments.configs import common
from vidgen.models.vae import VAEConfig
from vidgen.parallel.mesh import ParallelConfig
from vidgen.train.optimizer import OptimConfig
from vidgen.train.trainer_blocks import VAEEvalConfig, VAELossConfig


def vae_block() -> ml_collections.ConfigDict:
  """The architecture; dit_xl2_256 reads it too, so the DiT's latent shape always matches."""
  return common.block(VAEConfig, compression=(4, 8, 8), latent_channels=16, patch=2, channels=(128, 256, 512),
                      num_res_blocks=2, attention=True, dtype='bfloat16')


def get_config(arg=None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.model = 'vae'
  config.name = 'vae_256'
  config.seed = 0
  config.data = common.data_config(source='array_record', num_frames=17, height=256, width=256, batch_size=64,
                                   short_clip='pad', crop='random', num_workers=8)
  config.vae = vae_block()
  config.loss = common.block(VAELossConfig, l1=1.0, l2=1.0, kl=1e-6, gan_weight=0.1, gan_start=20_000,
                             disc_channels=(64, 128, 256))
  config.optim = common.block(OptimConfig, lr=1e-4, warmup_steps=1000, b2=0.99, ema_decay=0.999)
  config.train = common.train_config(num_steps=100_000, log_every=100, eval_every=5000, checkpoint_every=2000)
  config.parallel = common.block(ParallelConfig)  # data parallel: the VAE's parameters fit on each chip
  config.eval = common.block(VAEEvalConfig, num_videos=256, batch_size=64, num_frames=17)
  if arg == 'tiny':  # the same structure at 64×64: for the compile and shape tests
    config.data.update(height=64, width=64, batch_size=8, num_workers=0)
    config.vae.channels = (32, 64, 128)
    config.loss.disc_channels = (16,)
    config.eval.update(num_videos=8, batch_size=8)
  elif arg:
    raise ValueError(f'Unknown arg {arg!r} for vae_256.py: use tiny.')
  return config
