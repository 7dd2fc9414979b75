"""Which latent frames a training clip gives clean: one DiT for text → video and video prompting.

Each training clip draws one strategy (Open-Sora 1.1's mask strategies, sized for the world):

| strategy   | latent frames given clean               | teaches                          |
| ---------- | --------------------------------------- | -------------------------------- |
| (the rest) | none                                    | text → video                     |
| 'image'    | frame 0                                 | image → video                    |
| 'forward'  | frames 0 … k−1                          | extending a video forward        |
| 'backward' | frames T−k … T−1                        | extending a video backward       |
| 'connect'  | frames 0 … a−1 and T−b … T−1            | connecting two videos, loops     |
| 'random'   | each frame with probability 1/2         | keyframes, interpolation         |

k, a and b are drawn per clip, uniformly in [min_frames, max_frames] and always leaving at
least one frame to generate (a + b ≤ T − 1). The DiT's loss skips given frames (the objective's
frame mask), so every clip trains the same model on the frames it must make. A 1-frame clip
(an image) gives nothing.

`image` is drawn first, from the same uniform as `jax.random.bernoulli`, so a config with only
`image` set draws exactly the masks the old `first_frame_prob` did.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from vidgen import config_blocks

Array = jax.Array
STRATEGIES = ('image', 'forward', 'backward', 'connect', 'random')


@dataclasses.dataclass(frozen=True)
class MaskingConfig:
  """Probability of each strategy per clip (the rest: text → video) and the range of k."""
  image: float = 0.0
  forward: float = 0.0
  backward: float = 0.0
  connect: float = 0.0
  random: float = 0.0
  min_frames: int = 1   # given latent frames per end, drawn in [min_frames, max_frames]
  max_frames: int = 3

  def __post_init__(self):
    for name in STRATEGIES:
      p = getattr(self, name)
      if not 0.0 <= p <= 1.0:
        raise config_blocks.ConfigError(f'masking.{name}={p} is a probability: set it in [0, 1].')
    if self.total > 1.0 + 1e-6:
      raise config_blocks.ConfigError(
          f'masking probabilities sum to {self.total:g} > 1 ({self.probabilities}); the rest of the clips '
          'are text → video, so lower some.')
    if not 1 <= self.min_frames <= self.max_frames:
      raise config_blocks.ConfigError(f'masking needs 1 <= min_frames <= max_frames; got {self.min_frames}, '
                                   f'{self.max_frames}.')

  @classmethod
  def from_config(cls, config: Any) -> 'MaskingConfig':
    return config_blocks.from_config(cls, config, 'masking')

  @property
  def probabilities(self) -> dict[str, float]:
    return {name: getattr(self, name) for name in STRATEGIES}

  @property
  def total(self) -> float:
    return float(sum(self.probabilities.values()))


def strategy_ids(rng: Array, config: MaskingConfig, batch: int) -> Array:
  """Index into STRATEGIES per clip [B] (len(STRATEGIES): none), from one uniform draw per clip."""
  edges = jnp.cumsum(jnp.asarray([getattr(config, n) for n in STRATEGIES], jnp.float32))
  u = jax.random.uniform(rng, (batch,))
  return jnp.sum(u[:, None] >= edges[None, :], axis=1)


def draw(rng: Array, config: MaskingConfig, batch: int, frames: int) -> Array:
  """The mask [B, T] of latent frames given clean, one strategy per clip (module docstring)."""
  if frames < 2 or config.total == 0:
    return jnp.zeros((batch, frames), bool)
  strategy = strategy_ids(rng, config, batch)
  k_rng, a_rng, b_rng, r_rng = (jax.random.fold_in(rng, i) for i in range(1, 5))
  most = min(config.max_frames, frames - 1)
  least = min(config.min_frames, most)

  def count(key):
    return jax.random.randint(key, (batch,), least, most + 1)

  t = jnp.arange(frames)[None, :]
  k, a = count(k_rng), count(a_rng)
  b = jnp.minimum(count(b_rng), frames - 1 - a)
  head = lambda n: t < n[:, None]
  tail = lambda n: t >= frames - n[:, None]
  drawn = jax.random.bernoulli(r_rng, 0.5, (batch, frames))
  random = drawn & ~(jnp.all(drawn, axis=1, keepdims=True) & (t == frames - 1))  # never every frame
  masks = jnp.stack([head(jnp.ones_like(k)), head(k), tail(k), head(a) | tail(b), random,
                     jnp.zeros((batch, frames), bool)])  # [len(STRATEGIES) + 1, B, T]
  return jnp.take_along_axis(masks, strategy[None, :, None], axis=0)[0]
