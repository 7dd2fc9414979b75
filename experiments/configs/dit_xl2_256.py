"""DiT-XL/2 text-to-video at 256×256 × 17 frames, for a TPU pod, on cached VAE latents.

17 frames = 16 + the first frame, which the causal VAE encodes alone (1 + 4k frames ↔ 1 + k
latent frames). Latents 5×32×32×16 (VAE 4×8×8, 16 channels), patch 1×2×2: 1,280 tokens.

Compile ahead of time for a slice (no TPU needed; libtpu from requirements-tpu.txt):
  python -m vidgen.tools.compile --config experiments/configs/dit_xl2_256.py --topology v5p-128
Train on the slice (every worker runs it; see experiments/tpu/README.md), after the VAE
(experiments/configs/vae_256.py) and its cached latents (vidgen.data.encode_latents):
  python -m vidgen.train --config experiments/configs/dit_xl2_256.py --workdir gs://BUCKET/runs/dit_xl2_256 \
      --distributed --config.vae_workdir=gs://BUCKET/runs/vae_256 \
      --config.data.array_record.pattern='gs://BUCKET/latents/train-*.array_record'
Measured by the compile tool (experiments/tpu/RESULTS.md), v5p-128, FSDP over 64 chips, global
batch 256, bf16, remat 'dots': 892M parameters, 20.3 GB per chip of 102 GB (fits); XLA 1.24
PFLOP per step (analytic 1.21); step 159 ms by XLA's estimate, 111 ms by the roofline (HBM
bound): implied MFU 26% / 37%.
"""

import ml_collections

from experiments.configs import dit_world, vae_256


def get_config(arg=None) -> ml_collections.ConfigDict:
  config = dit_world.get_config()
  config.name = 'dit_xl2_256'
  config.data.update(num_frames=17, height=256, width=256, batch_size=256, source='array_record')
  config.data.tokenizer.update(vocab_size=32000, max_length=120)
  # The VAE's architecture (its trained weights are in vae_workdir, a vae_256 run): sets the latent shape.
  config.vae = vae_256.vae_block()
  config.dit.update(size='XL', depth=0, width=0, heads=0, patch=(1, 2, 2), dtype='bfloat16', remat='dots',
                    scan_layers=True)  # 28 blocks compile once
  config.text.update(width=768, depth=6, heads=12, dtype='bfloat16')
  config.optim.update(lr=1e-4, warmup_steps=1000, weight_decay=0.0, ema_decay=0.9999)
  config.train.update(num_steps=400_000, log_every=100, eval_every=5000, checkpoint_every=2000)
  config.eval.update(evaluators=('loss', 'samples'), num_videos=8)  # real data: no probe; a contact sheet of 8 prompts
  config.parallel.ici.update(data=1, fsdp=-1)
  config.parallel.rules = 'fsdp'
  if arg == 'tiny':  # same structure, 2 layers: for the compile test
    config.data.update(height=64, width=64, batch_size=16)
    config.data.tokenizer.update(vocab_size=512, max_length=16)
    config.dit.update(depth=2, width=128, heads=4)
    config.text.update(width=64, depth=1, heads=2)
  elif arg:
    raise ValueError(f'Unknown arg {arg!r} for dit_xl2_256.py: use tiny.')
  return config
