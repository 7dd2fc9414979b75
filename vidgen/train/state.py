"""The training state every trainer carries: step, parameters, optimizer state, EMA weights."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax


@flax.struct.dataclass
class TrainState:
  """Everything a run needs to continue exactly; checkpointed whole.

  `extra` holds what a trainer adds (e.g. the VAE's discriminator and its optimizer state).
  """
  step: jax.Array
  params: Any
  opt_state: Any
  ema_params: Any
  extra: Any = None


def param_count(params: Any) -> int:
  return sum(int(x.size) for x in jax.tree_util.tree_leaves(params))
