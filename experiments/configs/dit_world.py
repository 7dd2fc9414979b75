"""Text-to-video DiT on the built-in world, on latents of the vae_world VAE.

Run:  python -m vidgen.train --config experiments/configs/dit_world.py --workdir runs/dit_world \
          --config.vae_workdir=runs/vae_world
Smoke: python -m vidgen.train --config experiments/configs/dit_world.py:tiny --workdir /tmp/dit_tiny \
          --config.vae_workdir=/tmp/vae_tiny
Then:  python -m vidgen.sample --workdir runs/dit_world --prompt "a large red circle moves slowly to the right"
Eval:  python -m vidgen.evaluate --workdir runs/dit_world   (report in runs/dit_world/evaluation/eval/)
Every eval_every steps the run also logs its eval loss per noise level and the probe scores
of eval.num_videos sampled eval prompts (eval/probe/adherence, ...) to metrics.jsonl.
"""

import ml_collections

from experiments.configs import common
from vidgen.diffusion.masking import MaskingConfig
from vidgen.diffusion.objectives import DiffusionConfig
from vidgen.diffusion.samplers import SampleConfig
from vidgen.models.dit import DiTConfig
from vidgen.models.text import TextEncoderConfig
from vidgen.parallel.mesh import ParallelConfig
from vidgen.train.optimizer import OptimConfig
from vidgen.train.trainer_blocks import DiTEvalConfig


def get_config(arg=None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.model = 'dit'
  config.seed = 0
  config.vae_workdir = ''       # a trained VAE run (required); its latents are the DiT's data
  config.data = common.data_config(batch_size=16)
  # depth/width/heads override size 'S'. Blocks in a Python loop (scan_layers=False): on a CPU
  # faster than nn.scan (the quickstart's DiT step 185 → 152 ms); dit_xl2_256 scans (TPU: one compiled block).
  config.dit = common.block(DiTConfig, depth=6, width=256, heads=4, scan_layers=False)
  config.text = common.block(TextEncoderConfig, width=128, depth=2, heads=4)
  # kind: flow | ddpm; each objective's fields under diffusion.flow / diffusion.ddpm (diffusion/objectives.py)
  config.diffusion = common.block(DiffusionConfig)
  config.caption_dropout = 0.1  # captions replaced by the learned null text, for guidance
  # Latent frames given clean per clip (image → video, extension, connecting; diffusion/masking.py);
  # the rest of the clips are text → video.
  config.masking = common.block(MaskingConfig)
  config.optim = common.block(OptimConfig, lr=5e-4, warmup_steps=200, weight_decay=0.0, ema_decay=0.999)
  config.train = common.train_config(num_steps=3000, log_every=50, eval_every=1000, checkpoint_every=500)
  config.parallel = common.block(ParallelConfig)  # data parallel over every device; see vidgen/parallel
  # Every eval_every steps: eval loss per noise level, and probe scores of num_videos sampled prompts.
  config.eval = common.block(DiTEvalConfig, num_batches=4, loss_buckets=10, num_videos=16, sample_steps=10)
  # factorized: text → first latent frame → the rest given it (generation.Settings); needs masking.image > 0
  config.sample = common.block(SampleConfig, steps=30, cfg_scale=4.0, sampler='euler', factorized=False)
  if arg == 'tiny':
    config.data.update(num_frames=9, height=16, width=16, batch_size=2)  # 3 latent frames: room to extend, connect
    config.data.tokenizer.train_examples = 200
    config.dit.update(depth=2, width=32, heads=2)
    config.text.update(width=32, depth=1, heads=2)
    config.train.update(num_steps=4, log_every=1, eval_every=4, checkpoint_every=2)
    config.eval.update(num_batches=1, num_videos=2, sample_steps=2)
    config.sample.update(steps=2)
  elif arg:
    raise ValueError(f'Unknown arg {arg!r} for dit_world.py: use tiny.')
  return config
