"""The config blocks only the trainers read: the VAE's loss and each trainer's periodic evaluation.

They sit apart from the trainers so the config schema (vidgen/config_schema.py), which run
loading (vidgen/runs.py) reads from below training, knows them without importing a trainer.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class VAELossConfig:
  """The VAE's `loss` block (vidgen/train/vae_trainer.py)."""
  l1: float = 0.0
  l2: float = 1.0
  kl: float = 1e-6
  gan_weight: float = 0.0         # > 0 turns on the 3D patch-GAN loss (adaptive weight)
  foreground_weight: float = 0.0  # > 0: pixels off the frame's background colour weigh 1 + this in the loss
  gan_start: int = 2000           # step the GAN loss switches on
  disc_lr: float = 2e-4
  disc_channels: tuple[int, ...] = (32, 64)

  def __post_init__(self):
    weights = {n: getattr(self, n) for n in ('l1', 'l2', 'kl', 'gan_weight', 'foreground_weight')}
    if any(w < 0 for w in weights.values()):
      raise ValueError(f'loss weights must be >= 0, got {weights}.')
    if self.l1 == 0 and self.l2 == 0:
      raise ValueError('loss.l1 and loss.l2 are both 0: the VAE would learn no reconstruction.')
    if self.gan_weight > 0 and (not self.disc_channels or self.disc_lr <= 0):
      raise ValueError('the GAN loss needs loss.disc_channels and loss.disc_lr > 0.')


@dataclasses.dataclass(frozen=True)
class VAEEvalConfig:
  """The VAE's `eval` block: reconstruction PSNR/SSIM on eval-split videos every eval_every steps."""
  num_videos: int = 64
  batch_size: int = 16
  num_frames: int = 17  # frames of the eval videos; 0: data.num_frames

  def __post_init__(self):
    if self.num_videos < 0 or self.batch_size < 1 or self.num_frames < 0:
      raise ValueError('eval.num_videos and eval.num_frames must be >= 0 and eval.batch_size >= 1; got '
                       f'{self.num_videos}, {self.num_frames}, {self.batch_size}.')


EVALUATORS = ('loss', 'probe', 'samples')


@dataclasses.dataclass(frozen=True)
class DiTEvalConfig:
  """The DiT's `eval` block: what the run evaluates every train.eval_every steps, by name.

    loss     eval loss, drawn as in training and at each noise-level bucket (eval batches)
    probe    num_videos eval prompts sampled and scored by the world probe (world eval data only)
    samples  num_videos prompts sampled (`prompts`, or the eval data's captions) into a contact
             sheet WORKDIR/eval/step_N.png, for a user's own data where no probe knows the truth

  `evaluators=()` picks by the eval data: loss and probe on the world, loss and samples elsewhere.
  """
  evaluators: tuple[str, ...] = ()
  num_batches: int = 4     # eval batches for the losses
  data_source: str = ''    # '': data.source; 'world' when training on cached world latents
  loss_buckets: int = 10   # eval loss at the centre of each of these noise-level buckets (0: off)
  num_videos: int = 16     # prompts sampled (probe, samples) at each evaluation (0: neither runs)
  sample_steps: int = 10   # sampler steps for those videos (0: sample.steps)
  prompts: tuple[str, ...] = ()  # samples: these prompts instead of the eval data's captions

  def __post_init__(self):
    if min(self.num_batches, self.loss_buckets, self.num_videos, self.sample_steps) < 0:
      raise ValueError('eval.num_batches, loss_buckets, num_videos and sample_steps must be >= 0.')
    unknown = [e for e in self.evaluators if e not in EVALUATORS]
    if unknown:
      raise ValueError(f'eval.evaluators names {unknown}; the evaluators are {list(EVALUATORS)} '
                       '(or () to pick by the eval data).')

  def chosen(self, eval_source: str) -> tuple[str, ...]:
    """The evaluators that run on `eval_source` data."""
    names = self.evaluators or (('loss', 'probe') if eval_source == 'world' else ('loss', 'samples'))
    return tuple(n for n in names if n == 'loss' or self.num_videos)
