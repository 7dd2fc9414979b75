"""The denoiser trained for text-to-video: a text encoder and a DiT, trained jointly.

Shapes: x and cond_latents [B, T, H, W, C] latents; t [B]; text_ids/text_mask [B, L];
drop [B] bool (captions replaced by the learned null text, for classifier-free guidance);
cond_mask [B, T] bool (latent frames given clean).
"""

from __future__ import annotations

import flax.linen as nn
import jax

from vidgen.models.dit import DiT, DiTConfig
from vidgen.models.text import TextEncoder, TextEncoderConfig

Array = jax.Array


class TextToVideo(nn.Module):
  dit: DiTConfig
  text: TextEncoderConfig

  def setup(self):
    self.text_encoder = TextEncoder(self.text)
    self.denoiser = DiT(self.dit)

  def __call__(self, x: Array, t: Array, text_ids: Array, text_mask: Array, drop: Array | None = None,
               cond_mask: Array | None = None, cond_latents: Array | None = None) -> Array:
    """The training forward pass: encode (maybe dropped) captions, then predict from x_t."""
    tokens, _, mask = self.text_encoder.encode(text_ids, text_mask, drop)
    return self.denoiser(x, t, tokens, mask, cond_mask, cond_latents)

  def encode_text(self, text_ids: Array, text_mask: Array) -> tuple[Array, Array]:
    """(tokens [B, L, D], mask [B, L]) of prompts, computed once per sampling run."""
    tokens, _, mask = self.text_encoder.encode(text_ids, text_mask)
    return tokens, mask

  def null_text(self, batch: int, length: int) -> tuple[Array, Array]:
    """The learned unconditional text (tokens, mask) for classifier-free guidance."""
    tokens, _, mask = self.text_encoder.null(batch, length)
    return tokens, mask

  def denoise(self, x: Array, t: Array, text: Array, text_mask: Array, cond_mask: Array | None = None,
              cond_latents: Array | None = None) -> Array:
    """The DiT alone, on already encoded text (the sampler's inner call)."""
    return self.denoiser(x, t, text, text_mask, cond_mask, cond_latents)
