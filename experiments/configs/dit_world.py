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
from vidgen.diffusion import masking, objectives
from vidgen.parallel import mesh
from vidgen.train import optimizer


def get_config(arg=None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.model = 'dit'
  config.vae_workdir = ''       # a trained VAE run (required); its latents are the DiT's data
  config.data = common.data_config()
  config.data.batch_size = 16
  config.dit = ml_collections.ConfigDict(dict(
      size='S',                 # tiny | S | B | L | XL (DiT paper depth/width/heads)
      depth=6, width=256, heads=4,  # explicit overrides of the size (0: from size)
      patch=(1, 2, 2),          # (pt, ph, pw) latent cells per token
      mlp_ratio=4.0,
      conditioning='adaln_zero',  # adaln_zero | adaln | cross_attention | in_context
      attention='full',         # full | factorized (spatial then temporal)
      dtype='float32',          # compute dtype; bfloat16 on TPU
      remat='none',             # none | full | dots | dots_no_batch
      scan_layers=False,        # blocks in a Python loop: on a CPU faster than nn.scan (the quickstart's DiT step
                                # 185 → 152 ms); dit_xl2_256 scans (TPU: one compiled block)
      rope_theta=10000.0,       # RoPE base; each of (t, h, w) gets head_dim / 3 dims of frequencies theta^(-2j/dims)
      rope_mixed=False,         # True: learned per-head (t, h, w) frequency vectors, from the axial ones
  ))
  config.text = ml_collections.ConfigDict(dict(width=128, depth=2, heads=4, mlp_ratio=4.0, dtype='float32'))
  # kind: flow | ddpm; each objective's fields under diffusion.flow / diffusion.ddpm (diffusion/objectives.py)
  config.diffusion = objectives.objective_config('flow')
  config.caption_dropout = 0.1  # captions replaced by the learned null text, for guidance
  # Latent frames given clean per clip (image → video, extension, connecting; diffusion/masking.py);
  # the rest of the clips are text → video.
  config.masking = masking.masking_config()
  config.optim = optimizer.optim_config(lr=5e-4, warmup_steps=200, weight_decay=0.0, ema_decay=0.999)
  config.train = common.train_config(num_steps=3000, log_every=50, eval_every=1000, checkpoint_every=500)
  config.parallel = mesh.parallel_config()  # data parallel over every device; see vidgen/parallel
  config.eval = ml_collections.ConfigDict(dict(
      num_batches=4,            # eval batches for the losses
      data_source='',           # '' : data.source; 'world' when training on cached world latents
      loss_buckets=10,          # eval loss at the centre of each of these noise-level buckets (0: off)
      num_videos=16,            # eval prompts sampled and probed at each evaluation (0: off)
      sample_steps=10,          # sampler steps for those videos (0: sample.steps)
  ))
  # factorized: text → first latent frame → the rest given it (generation.Settings); needs masking.image > 0
  config.sample = ml_collections.ConfigDict(dict(steps=30, cfg_scale=4.0, sampler='euler', factorized=False))
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
