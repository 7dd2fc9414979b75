"""The schema of every config: which blocks a config of each kind (`config.model`) holds.

A config file builds a ConfigDict; `check` passes it through the dataclasses below and their
blocks (each defined next to the code that reads it), so that when a config is loaded

  * a key no block has fails, naming the key and the nearest field,
  * a key left out takes its block's default (the dataclass field: the only default there is),
  * every block's values are checked (`__post_init__`),

and the config the code then reads holds every field. Runs saved by older versions load
through `migrate` first.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections

from vidgen import config_blocks
from vidgen.config_blocks import ConfigError
from vidgen.data.pipeline import DataConfig
from vidgen.diffusion.masking import MaskingConfig
from vidgen.diffusion.objectives import DiffusionConfig
from vidgen.diffusion.samplers import SampleConfig
from vidgen.world.features import FeatureEvalConfig, FeatureNetConfig
from vidgen.models.dit import DiTConfig
from vidgen.models.text import TextEncoderConfig
from vidgen.models.vae import VAEConfig
from vidgen.parallel.mesh import ParallelConfig
from vidgen.train.loop import TrainConfig
from vidgen.train.optimizer import OptimConfig
from vidgen.train.trainer_blocks import DiTEvalConfig, VAEEvalConfig, VAELossConfig

_block = lambda cls: dataclasses.field(default_factory=cls)  # noqa: E731


@dataclasses.dataclass(frozen=True)
class DataRun:
  """An input pipeline alone (experiments/configs/world.py: export, benchmarks)."""
  model: str = 'data'
  seed: int = 0
  data: DataConfig = _block(DataConfig)


@dataclasses.dataclass(frozen=True)
class VAERun:
  """A patch VAE run (experiments/configs/vae_world.py)."""
  model: str = 'vae'
  name: str = ''
  seed: int = 0
  data: DataConfig = _block(DataConfig)
  vae: VAEConfig = _block(VAEConfig)
  loss: VAELossConfig = _block(VAELossConfig)
  optim: OptimConfig = _block(OptimConfig)
  train: TrainConfig = _block(TrainConfig)
  parallel: ParallelConfig = _block(ParallelConfig)
  eval: VAEEvalConfig = _block(VAEEvalConfig)


@dataclasses.dataclass(frozen=True)
class DiTRun:
  """A text-to-video DiT run on a trained VAE's latents (experiments/configs/dit_world.py)."""
  model: str = 'dit'
  name: str = ''
  seed: int = 0
  vae_workdir: str = ''        # a trained VAE run (required to train); its latents are the DiT's data
  vae: VAEConfig | None = None  # the VAE's architecture, where no VAE run is at hand (ahead-of-time compiles)
  data: DataConfig = _block(DataConfig)
  dit: DiTConfig = _block(DiTConfig)
  text: TextEncoderConfig = _block(TextEncoderConfig)
  diffusion: DiffusionConfig = _block(DiffusionConfig)
  caption_dropout: float = 0.1  # captions replaced by the learned null text, for guidance
  masking: MaskingConfig = _block(MaskingConfig)
  optim: OptimConfig = _block(OptimConfig)
  train: TrainConfig = _block(TrainConfig)
  parallel: ParallelConfig = _block(ParallelConfig)
  eval: DiTEvalConfig = _block(DiTEvalConfig)
  sample: SampleConfig = _block(SampleConfig)

  def __post_init__(self):
    if not 0.0 <= self.caption_dropout < 1.0:
      raise ValueError(f'caption_dropout is a probability below 1, got {self.caption_dropout}.')


@dataclasses.dataclass(frozen=True)
class FeaturesRun:
  """The world feature net of the Fréchet video distance (experiments/configs/world_features.py)."""
  model: str = 'features'
  seed: int = 0
  data: DataConfig = _block(DataConfig)
  net: FeatureNetConfig = _block(FeatureNetConfig)
  optim: OptimConfig = _block(OptimConfig)
  train: TrainConfig = _block(TrainConfig)
  parallel: ParallelConfig = _block(ParallelConfig)
  eval: FeatureEvalConfig = _block(FeatureEvalConfig)


@dataclasses.dataclass(frozen=True)
class QuickstartRun:
  """The quickstart's three runs and its evaluation sizes (experiments/configs/quickstart.py)."""
  model: str = 'quickstart'
  seed: int = 0
  vae: VAERun = _block(VAERun)
  dit: DiTRun = _block(DiTRun)
  features: FeaturesRun = _block(FeaturesRun)
  num_latent_videos: int = 2000  # training videos encoded once; the DiT trains on their latents
  num_eval_videos: int = 64      # eval prompts sampled and probed (and as many real videos)


RUNS: dict[str, type] = {cls().model: cls for cls in (DataRun, VAERun, DiTRun, FeaturesRun, QuickstartRun)}


def check(config: ml_collections.ConfigDict | dict[str, Any]) -> ml_collections.ConfigDict:
  """`config` complete and checked against the schema of its kind (`config.model`)."""
  kind = config.get('model')
  if kind not in RUNS:
    raise ConfigError(f'config.model={kind!r} names no kind of config; use one of {list(RUNS)} '
                      '(set it in the config file\'s get_config).')
  return config_blocks.to_config(config_blocks.from_config(RUNS[kind], config, '', as_config=True))


def migrate(values: dict[str, Any]) -> dict[str, Any]:
  """A saved config in today's schema, so runs saved by older versions of vidgen still load.

  * `first_frame_prob` (clips whose first latent frame is given) became `masking.image`; a DiT
    run saved before either has `masking` with nothing given.
  * Keys added since a run was saved take their defaults (`check` fills them in).
  """
  values = dict(values)
  if values.get('model') == 'dit' and 'masking' not in values:
    values['masking'] = {'image': values.pop('first_frame_prob', 0.0)}
  return values
