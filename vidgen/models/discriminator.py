"""A 3D patch-GAN discriminator: real/fake logits for spacetime patches of a video."""

from __future__ import annotations

import flax.linen as nn
import jax


class PatchDiscriminator3D(nn.Module):
  """Strided 3D convs; each output logit judges one spacetime patch of [B, T, H, W, 3]."""
  channels: tuple[int, ...] = (32, 64, 128)

  @nn.compact
  def __call__(self, video: jax.Array) -> jax.Array:
    h = video
    for i, c in enumerate(self.channels):
      stride = (1 if h.shape[1] < 4 else 2, 2, 2)
      h = nn.Conv(c, (3, 4, 4), strides=stride, padding='SAME', name=f'conv{i}')(h)
      if i:
        h = nn.GroupNorm(num_groups=min(32, c // 4), name=f'norm{i}')(h)
      h = nn.leaky_relu(h, 0.2)
    return nn.Conv(1, (3, 3, 3), padding='SAME', name='logits')(h)
