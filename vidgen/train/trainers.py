"""Which trainer trains which model, and the one call that trains it (entrypoint and notebooks)."""

from __future__ import annotations

import ml_collections

from vidgen import config_schema
from vidgen.config_blocks import ConfigError
from vidgen.train import loop
from vidgen.train.dit_trainer import DiTTrainer
from vidgen.train.state import TrainState
from vidgen.train.vae_trainer import VAETrainer


def make_trainer(config: ml_collections.ConfigDict, workdir: str | None = None) -> loop.Trainer:
  """The trainer for `config.model` ('vae' or 'dit'); `config` is checked against its schema first."""
  config = config_schema.check(config)
  if config.model == 'vae':
    return VAETrainer(config)
  if config.model == 'dit':
    return DiTTrainer(config, workdir)
  raise ConfigError(f"config.model={config.model!r} is not a model vidgen trains; use 'vae' or 'dit'.")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       stop_after: int | None = None) -> TrainState:
  """Trains (or resumes) the model `config.model` in `workdir`; also callable from a notebook."""
  return loop.run(make_trainer(config, workdir), workdir, stop_after=stop_after)
