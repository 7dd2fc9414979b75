"""Config pieces shared by every experiment, built from the blocks' dataclasses (their defaults
are the only defaults; vidgen/config_schema.py lists which block each field belongs to).

Each experiment config builds on these and changes only what it studies.
"""

from typing import Any

import ml_collections

from vidgen import config_blocks
from vidgen.data.pipeline import DataConfig
from vidgen.train.loop import TrainConfig


def data_config(**overrides: Any) -> ml_collections.ConfigDict:
  """Where videos come from and how they are cut, scaled, tokenized and batched (vidgen/data/pipeline.py: DataConfig)."""
  return config_blocks.to_config(DataConfig(**overrides))


def train_config(**overrides: Any) -> ml_collections.ConfigDict:
  """How long to train and how often to log, evaluate and checkpoint (vidgen/train/loop.py: TrainConfig)."""
  return config_blocks.to_config(TrainConfig(**overrides))


def block(cls: type, **overrides: Any) -> ml_collections.ConfigDict:
  """Any block as a config holds it: `cls`'s defaults with `overrides`."""
  return config_blocks.to_config(cls(**overrides))
