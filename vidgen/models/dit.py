"""The diffusion transformer: denoises a spacetime latent grid cut into (pt, ph, pw) patches.

Inputs (see `DiT.__call__`): noisy latents x [B, T, H, W, C], the model time t [B] in [0, 1]
(each objective maps its own time to this), text tokens [B, L, D_text] with their mask, and a
per-latent-frame mask of frames given clean with their latents. Clean frames replace the noisy
ones in the input and a learned embedding of each token's clean flags is added to its
embedding, so text-to-video, image-to-video, extension (forward and backward), connecting and
looping are one model, trained with the frame-mask strategies of `config.masking`
(vidgen/diffusion/masking.py; vidgen/prompting.py says which pixel frames a mask fixes). Output: the prediction [B, T, H, W, C] (velocity,
eps or v, as the objective chooses).

Tokens carry 3D RoPE over their (t, h, w) patch position; there is no learned position table,
so the parameters do not depend on the grid size and any duration, resolution or aspect ratio
runs with the same weights. Axial RoPE turns each rotated pair by one axis only, so a head's
score is a sum f(Δt) + g(Δh) + k(Δw) and its attention cannot follow a diagonal in spacetime,
i.e. a moving object. `rope_mixed=True` learns each head's frequencies as vectors over
(t, h, w) (RoPE-Mixed, Heo et al. 2024), initialised to the axial ones: a pair turning with
a·Δt + b·Δw has its ridge along the motion of velocity −a/b. Still relative, still any grid.

Conditioning variants (`DiTConfig.conditioning`), each block being self-attention (+ cross-
attention) + MLP, pre-norm with LayerNorm:

| name              | modulation vector c     | gates          | text seen through                 |
| ----------------- | ----------------------- | -------------- | --------------------------------- |
| 'adaln_zero'      | timestep + pooled text  | zero-init      | cross-attention to text tokens    |
| 'adaln'           | timestep + pooled text  | none (≡ 1)     | cross-attention to text tokens    |
| 'cross_attention' | timestep only           | zero-init      | cross-attention to [t; text]      |
| 'in_context'      | timestep + pooled text  | zero-init      | text tokens joined to self-attn   |

* 'adaln_zero' (DiT's best): shift/scale/gate regressed from c, the regression zero-initialised,
  and the cross-attention output projection zero-initialised (PixArt-α), so every block is the
  identity at init and the network outputs 0.
* 'adaln' is DiT's plain adaLN: shift/scale from c with a default (non-zero) initialisation and
  no gates; the cross-attention output projection is not zero-initialised either.
* 'cross_attention' follows DiT's cross-attention variant (the timestep embedding and the text
  tokens form the sequence each block cross-attends to) but, unlike the paper's plain-LN blocks,
  keeps adaLN-Zero modulation from the timestep alone (never from text), so timestep still
  modulates, training is as stable as adaLN-Zero, and the ablation isolates how text enters.
* 'in_context': text tokens (projected to the DiT width) are concatenated to the video tokens
  in self-attention (no RoPE on them; key-padding mask kept) and go through the MLPs too; they
  are dropped before the final layer. No cross-attention.

Attention variants (`DiTConfig.attention`):

* 'full': joint attention over all spacetime tokens, 3D RoPE over (t, h, w).
* 'factorized' (Latte/STDiT style; each block has both, so it has one more attention than
  'full'): spatial attention within each frame, then temporal attention across frames at each
  spatial position, each with its own adaLN shift/scale/gate. Both use the same 3D RoPE
  tables: within a frame every token shares t, so the t part of the rotation cancels in the
  scores and spatial attention is rotated by (h, w) only; across frames h and w are shared, so
  temporal attention is rotated by t only. With 'in_context', each frame's spatial attention
  also sees the text tokens (their per-frame updates are averaged over frames) and temporal
  attention sees video tokens only.

Layers go through `nn.scan` (`scan_layers`: compile time flat in depth; params stacked on a
leading 'layers' axis) and `nn.remat` with the configured policy. Params are float32, compute
in `dtype`; `nn.unbox` the output of `init` to get plain arrays (params are boxed with logical
axis names).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import einops
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vidgen import config_blocks
from vidgen.models import layers

Array = jax.Array

# (depth, width, heads), as in the DiT paper; 'tiny' is for tests and laptop smoke runs.
SIZES = {'tiny': (2, 64, 4), 'S': (12, 384, 6), 'B': (12, 768, 12), 'L': (24, 1024, 16), 'XL': (28, 1152, 16)}
CONDITIONINGS = ('adaln_zero', 'adaln', 'cross_attention', 'in_context')
ATTENTIONS = ('full', 'factorized')
REMAT_POLICIES = {
    'none': None,  # no rematerialization
    'full': jax.checkpoint_policies.nothing_saveable,  # recompute the whole block in the backward pass
    'dots': jax.checkpoint_policies.checkpoint_dots,  # keep matmul outputs, recompute the rest
    'dots_no_batch': jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,  # keep weight matmuls only
}
DTYPES = ('float32', 'bfloat16')
TIME_SCALE = 1000.0   # t in [0, 1] is embedded as the sinusoid of t·1000 (DiT's integer-step range)
TIME_FREQ_DIM = 256   # width of the sinusoidal timestep embedding fed to the timestep MLP


@dataclasses.dataclass(frozen=True)
class DiTConfig:
  """Architecture of the DiT. depth/width/heads of 0 take their value from `size`.

  The `dit` config block holds all fields but DERIVED, which come from the VAE run and the text
  encoder when the model is built."""
  DERIVED: ClassVar[tuple[str, ...]] = ('latent_channels', 'text_width')
  size: str = 'S'
  depth: int = 0
  width: int = 0
  heads: int = 0
  patch: tuple[int, int, int] = (1, 2, 2)  # (pt, ph, pw) latent cells per token
  latent_channels: int = 4
  mlp_ratio: float = 4.0
  conditioning: str = 'adaln_zero'  # see the module docstring
  attention: str = 'full'           # 'full' | 'factorized'
  text_width: int = 256             # width D_text of the text encoder's tokens
  dtype: str = 'float32'            # compute dtype ('float32' | 'bfloat16'); params stay float32
  remat: str = 'none'               # 'none' | 'full' | 'dots' | 'dots_no_batch'
  scan_layers: bool = True          # one compiled block for all layers (nn.scan): fast TPU compiles
  rope_theta: float = 10000.0
  rope_mixed: bool = False          # learned per-head (t, h, w) frequency vectors (module docstring)

  def __post_init__(self):
    if self.size not in SIZES:
      raise ValueError(f'dit.size={self.size!r} is not a DiT size; use one of {list(SIZES)} '
                       '(or set depth/width/heads explicitly).')
    if min(self.depth, self.width, self.heads) < 0:
      raise ValueError(f'dit.depth/width/heads must be >= 0 (0 = from size), got '
                       f'{self.depth}/{self.width}/{self.heads}.')
    if self.conditioning not in CONDITIONINGS:
      raise ValueError(f'dit.conditioning={self.conditioning!r} is unknown; use one of {list(CONDITIONINGS)}.')
    if self.attention not in ATTENTIONS:
      raise ValueError(f'dit.attention={self.attention!r} is unknown; use one of {list(ATTENTIONS)}.')
    if self.remat not in REMAT_POLICIES:
      raise ValueError(f'dit.remat={self.remat!r} is not a remat policy; use one of {list(REMAT_POLICIES)}.')
    if self.dtype not in DTYPES:
      raise ValueError(f'dit.dtype={self.dtype!r} is not supported; use one of {list(DTYPES)}.')
    if len(self.patch) != 3 or any(int(p) != p or p < 1 for p in self.patch):
      raise ValueError(f'dit.patch must be three positive ints (pt, ph, pw), got {self.patch}.')
    if self.latent_channels < 1 or self.text_width < 1 or self.mlp_ratio <= 0:
      raise ValueError('dit.latent_channels and dit.text_width must be >= 1 and dit.mlp_ratio > 0; got '
                       f'{self.latent_channels}, {self.text_width}, {self.mlp_ratio}.')
    if self.rope_mixed and (self.attention != 'full' or self.conditioning == 'in_context'):
      raise ValueError("dit.rope_mixed needs dit.attention='full' and a conditioning other than 'in_context' "
                       f"(got {self.attention!r}, {self.conditioning!r}): factorized and in-context attention "
                       'mix the RoPE tables of other tokens in; set dit.rope_mixed=False for them.')
    depth, width, heads = self.dims
    if depth < 1 or width < 1 or heads < 1:
      raise ValueError(f'dit depth/width/heads must be >= 1, got {depth}/{width}/{heads}.')
    if width % heads:
      raise ValueError(f'dit width {width} is not divisible by heads {heads}; pick heads dividing the width '
                       f'(e.g. {[h for h in range(1, 33) if width % h == 0][-4:]}).')
    try:
      layers.rope_axes_split(width // heads)
    except ValueError as e:
      raise ValueError(f'dit width {width} / heads {heads} gives head_dim {width // heads}, which 3D RoPE '
                       f'cannot split over (t, h, w): {e}') from None

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict | dict[str, Any]) -> 'DiTConfig':
    """Builds from a ConfigDict with any subset of the fields; an unknown key is an error."""
    return config_blocks.from_config(cls, config, 'dit')

  @property
  def dims(self) -> tuple[int, int, int]:
    """(depth, width, heads) after filling zeros from `size`."""
    depth, width, heads = SIZES[self.size]
    return self.depth or depth, self.width or width, self.heads or heads

  @property
  def num_layers(self) -> int:
    return self.dims[0]

  @property
  def hidden_size(self) -> int:
    return self.dims[1]

  @property
  def num_heads(self) -> int:
    return self.dims[2]

  @property
  def head_dim(self) -> int:
    return self.hidden_size // self.num_heads

  @property
  def patch_dim(self) -> int:
    """Latent values per token: pt·ph·pw·C."""
    return int(np.prod(self.patch)) * self.latent_channels

  @property
  def compute_dtype(self) -> Any:
    return jnp.dtype(self.dtype)

  def check_latent_shape(self, num_frames: int, height: int, width: int) -> None:
    """Raises if the latent grid T×H×W is not divisible by the patch, naming sizes that would work."""
    problems = []
    for name, size, p in (('frames', num_frames, self.patch[0]), ('height', height, self.patch[1]),
                          ('width', width, self.patch[2])):
      if size < p or size % p:
        lower, upper = max(p, size // p * p), (size // p + 1) * p
        options = f'{lower}' if lower == upper or lower >= size else f'{lower} or {upper}'
        problems.append(f'latent {name} {size} is not a multiple of {p} (try {options})')
    if problems:
      hint = (' Latent frames are 1 + k for the causal VAE, so a temporal patch pt > 1 needs 1 + k '
              'divisible by pt; pt = 1 takes any length.') if self.patch[0] > 1 and any(
                  'frames' in p for p in problems) else ''
      raise ValueError(f'Latent grid {num_frames}×{height}×{width} does not fit the DiT patch '
                       f'{tuple(self.patch)}: ' + '; '.join(problems) + '.' + hint)

  def grid(self, num_frames: int, height: int, width: int) -> tuple[int, int, int]:
    """Token grid (T/pt, H/ph, W/pw) of a latent grid (checked)."""
    self.check_latent_shape(num_frames, height, width)
    pt, ph, pw = self.patch
    return num_frames // pt, height // ph, width // pw

  def num_tokens(self, num_frames: int, height: int, width: int) -> int:
    """Video tokens of a T×H×W latent grid: (T/pt)·(H/ph)·(W/pw)."""
    return int(np.prod(self.grid(num_frames, height, width)))


def patchify(x: Array, patch: tuple[int, int, int]) -> Array:
  """[B, T, H, W, C] → tokens [B, (T/pt)(H/ph)(W/pw), pt·ph·pw·C], time-major."""
  pt, ph, pw = patch
  return einops.rearrange(x, 'b (t pt) (h ph) (w pw) c -> b (t h w) (pt ph pw c)', pt=pt, ph=ph, pw=pw)


def unpatchify(tokens: Array, patch: tuple[int, int, int], grid: tuple[int, int, int]) -> Array:
  """Inverse of `patchify`: [B, N, pt·ph·pw·C] → [B, T, H, W, C]."""
  pt, ph, pw = patch
  t, h, w = grid
  return einops.rearrange(tokens, 'b (t h w) (pt ph pw c) -> b (t pt) (h ph) (w pw) c',
                          t=t, h=h, w=w, pt=pt, ph=ph, pw=pw)


def token_positions(batch: int, grid: tuple[int, int, int]) -> Array:
  """Integer (t, h, w) of each token, [B, N, 3] in patchify order."""
  t, h, w = grid
  pos = jnp.stack(jnp.meshgrid(jnp.arange(t), jnp.arange(h), jnp.arange(w), indexing='ij'), axis=-1)
  return jnp.broadcast_to(pos.reshape(1, t * h * w, 3), (batch, t * h * w, 3))


class DiTBlock(nn.Module):
  """One transformer block; `__call__((x, x_text), c, context, context_mask, rope) -> ((x, x_text), None)`.

  x [B, N, D] video tokens on the token grid `grid`; x_text [B, L, D] in-context text tokens
  (None otherwise); c [B, D] the modulation vector; context [B, M, D] / context_mask [B, M] what
  cross-attention reads (None for 'in_context'; for 'in_context' context_mask masks x_text);
  rope = (cos, sin) [B, N, head_dim / 2] of the video tokens.
  """
  config: DiTConfig
  grid: tuple[int, int, int]

  @nn.compact
  def __call__(self, carry, c, context, context_mask, rope):
    cfg = self.config
    x, x_text = carry
    dtype, width = cfg.compute_dtype, cfg.hidden_size
    gated = cfg.conditioning != 'adaln'
    in_context = cfg.conditioning == 'in_context'
    branches = ('attn', 'temporal', 'mlp') if cfg.attention == 'factorized' else ('attn', 'mlp')
    per_branch = 3 if gated else 2
    chunks = layers.AdaLNModulation(per_branch * len(branches), width, zero_init=gated, dtype=dtype,
                                    name='adaln')(c)
    mods = {}
    for i, name in enumerate(branches):
      shift, scale, *gate = chunks[per_branch * i:per_branch * (i + 1)]
      mods[name] = (shift, scale, gate[0] if gate else None)

    def residual(h, y, gate):
      return h + (y if gate is None else gate.astype(y.dtype) * y)

    def attention(name):
      return layers.Attention(cfg.num_heads, cfg.head_dim, dtype=dtype, zero_init_out=False, name=name)

    # Self-attention: joint over spacetime, or spatial within each frame.
    shift, scale, gate = mods['attn']
    h = layers.modulate(layers.LayerNorm(dtype=dtype, name='norm1')(x), shift, scale)
    ht = layers.modulate(layers.LayerNorm(dtype=dtype, name='norm1_text')(x_text), shift, scale) if in_context else None
    if cfg.attention == 'full':
      y, yt = self._joint_attention(attention('attn'), h, ht, context_mask, rope)
    else:
      y, yt = self._spatial_attention(attention('attn'), h, ht, context_mask, rope)
    x = residual(x, y, gate)
    if in_context:
      x_text = residual(x_text, yt, gate)
    if cfg.attention == 'factorized':
      shift, scale, gate = mods['temporal']
      h = layers.modulate(layers.LayerNorm(dtype=dtype, name='norm_temporal')(x), shift, scale)
      x = residual(x, self._temporal_attention(attention('temporal_attn'), h, rope), gate)
    # Cross-attention to the text (not modulated; its output projection starts at 0 when gated).
    if not in_context:
      h = layers.LayerNorm(dtype=dtype, use_affine=True, name='norm_cross')(x)
      y = layers.Attention(cfg.num_heads, cfg.head_dim, dtype=dtype, zero_init_out=gated,
                           name='cross_attn')(h, context.astype(dtype), mask=context_mask)
      x = x + y
    # MLP.
    shift, scale, gate = mods['mlp']
    mlp = layers.Mlp(cfg.mlp_ratio, dtype=dtype, name='mlp')
    h = layers.modulate(layers.LayerNorm(dtype=dtype, name='norm2')(x), shift, scale)
    if in_context:
      ht = layers.modulate(layers.LayerNorm(dtype=dtype, name='norm2_text')(x_text), shift, scale)
      out = mlp(jnp.concatenate([ht, h], axis=1))
      yt, y = out[:, :ht.shape[1]], out[:, ht.shape[1]:]
      x_text = residual(x_text, yt, gate)
    else:
      y = mlp(h)
    x = layers.constrain(residual(x, y, gate), (layers.BATCH, layers.LENGTH, layers.EMBED))
    return (x, x_text), None

  def _joint_attention(self, attn, h, ht, text_mask, rope):
    if ht is None:
      return attn(h, rope=rope), None
    b, n, _ = h.shape
    length = ht.shape[1]
    cos, sin = layers.identity_rope(b, length, self.config.head_dim)
    rope = (jnp.concatenate([cos, rope[0]], axis=1), jnp.concatenate([sin, rope[1]], axis=1))
    mask = jnp.concatenate([text_mask, jnp.ones((b, n), bool)], axis=1)
    out = attn(jnp.concatenate([ht, h], axis=1), mask=mask, rope=rope)
    return out[:, length:], out[:, :length]

  def _spatial_attention(self, attn, h, ht, text_mask, rope):
    b, n, d = h.shape
    frames = self.grid[0]
    per_frame = n // frames
    to_frames = lambda a: a.reshape((b * frames, per_frame) + a.shape[2:])
    hv, rope_v = to_frames(h), tuple(to_frames(r) for r in rope)
    if ht is None:
      return attn(hv, rope=rope_v).reshape(b, n, d), None
    length = ht.shape[1]
    per_frame_text = lambda a: jnp.broadcast_to(a[:, None], (b, frames) + a.shape[1:]).reshape(
        (b * frames,) + a.shape[1:])
    cos, sin = layers.identity_rope(b * frames, length, self.config.head_dim)
    rope_v = (jnp.concatenate([cos, rope_v[0]], axis=1), jnp.concatenate([sin, rope_v[1]], axis=1))
    mask = jnp.concatenate([per_frame_text(text_mask), jnp.ones((b * frames, per_frame), bool)], axis=1)
    out = attn(jnp.concatenate([per_frame_text(ht), hv], axis=1), mask=mask, rope=rope_v)
    yt = out[:, :length].reshape(b, frames, length, d).mean(axis=1)
    return out[:, length:].reshape(b, n, d), yt

  def _temporal_attention(self, attn, h, rope):
    b, n, d = h.shape
    frames = self.grid[0]
    per_frame = n // frames
    to_time = lambda a: jnp.swapaxes(a.reshape((b, frames, per_frame) + a.shape[2:]), 1, 2).reshape(
        (b * per_frame, frames) + a.shape[2:])
    y = attn(to_time(h), rope=tuple(to_time(r) for r in rope))
    return jnp.swapaxes(y.reshape(b, per_frame, frames, d), 1, 2).reshape(b, n, d)


class DiT(nn.Module):
  """Latent video DiT (see the module docstring)."""
  config: DiTConfig

  @nn.compact
  def __call__(self, x: Array, t: Array, text: Array, text_mask: Array, cond_mask: Array | None = None,
               cond_latents: Array | None = None) -> Array:
    """Predicts from noisy latents.

    Args:
      x: noisy latents [B, T, H, W, C].
      t: model time [B] in [0, 1] (`objective.model_time(t)`).
      text: text encoder tokens [B, L, D_text].
      text_mask: [B, L] bool, True on real tokens.
      cond_mask: [B, T] bool, True on latent frames given clean (None: none given).
      cond_latents: [B, T, H, W, C] clean latents read where cond_mask is True.

    Returns:
      The prediction [B, T, H, W, C], float32.
    """
    cfg = self.config
    self._check_inputs(x, t, text, text_mask, cond_mask, cond_latents)
    b, frames, height, width_, _ = x.shape
    grid = cfg.grid(frames, height, width_)
    dtype, width = cfg.compute_dtype, cfg.hidden_size
    if cond_mask is None:
      cond_mask = jnp.zeros((b, frames), bool)
    else:
      x = jnp.where(cond_mask[:, :, None, None, None], cond_latents, x)

    # Tokens: patch embedding + embedding of the clean flags of the pt frames in each token.
    tokens = patchify(x.astype(dtype), cfg.patch)
    flags = jnp.repeat(cond_mask.astype(dtype).reshape(b, grid[0], 1, cfg.patch[0]), grid[1] * grid[2], axis=2)
    flags = flags.reshape(b, -1, cfg.patch[0])  # [B, N, pt]: which of each token's frames are clean
    h = layers.Dense(width, (None, 'embed'), dtype, name='patch_embed')(tokens)
    h = h + layers.Dense(width, (None, 'embed'), dtype, use_bias=False,
                         kernel_init=nn.initializers.normal(0.02), name='cond_embed')(flags)
    h = layers.constrain(h, (layers.BATCH, layers.LENGTH, layers.EMBED))

    # Conditioning vector: timestep MLP (+ pooled text).
    temb = layers.timestep_embedding(t * TIME_SCALE, TIME_FREQ_DIM)
    temb = layers.Dense(width, (None, 'embed'), dtype, kernel_init=nn.initializers.normal(0.02), name='t_embed1')(temb)
    c = layers.Dense(width, ('mlp', 'embed'), dtype, kernel_init=nn.initializers.normal(0.02),
                     name='t_embed2')(nn.silu(temb))
    if cfg.conditioning != 'cross_attention':
      pooled = layers.masked_mean(text, text_mask)
      c = c + layers.Dense(width, (None, 'embed'), dtype, name='pooled_text_proj')(pooled.astype(dtype))
    text_tokens = layers.Dense(width, (None, 'embed'), dtype, name='text_proj')(text.astype(dtype))
    if cfg.conditioning == 'in_context':
      context, context_mask, x_text = None, text_mask, text_tokens
    elif cfg.conditioning == 'cross_attention':
      context = jnp.concatenate([c[:, None].astype(dtype), text_tokens], axis=1)
      context_mask = jnp.concatenate([jnp.ones((b, 1), bool), text_mask], axis=1)
      x_text = None
    else:
      context, context_mask, x_text = text_tokens, text_mask, None

    positions = token_positions(b, grid)
    if cfg.rope_mixed:
      axial = layers.rope_3d_frequencies(cfg.head_dim, theta=cfg.rope_theta)
      freqs = self.param('rope_freqs', nn.with_logical_partitioning(
          lambda _, shape, dtype: jnp.broadcast_to(axial, shape).astype(dtype), (None, None, None)),
                         (cfg.num_heads,) + axial.shape, jnp.float32)
      rope = layers.rope_from_frequencies(positions, freqs)  # [B, N, heads, head_dim / 2]
    else:
      rope = layers.rope_3d(positions, cfg.head_dim, theta=cfg.rope_theta)

    block = DiTBlock
    if cfg.remat != 'none':
      block = nn.remat(block, policy=REMAT_POLICIES[cfg.remat], prevent_cse=not cfg.scan_layers)
    carry = (h, x_text)
    if cfg.scan_layers:
      blocks = nn.scan(block, variable_axes={'params': 0}, split_rngs={'params': True},
                       in_axes=(nn.broadcast,) * 4, length=cfg.num_layers,
                       metadata_params={nn.PARTITION_NAME: 'layers'})(cfg, grid, name='blocks')
      carry, _ = blocks(carry, c, context, context_mask, rope)
    else:
      for i in range(cfg.num_layers):
        carry, _ = block(cfg, grid, name=f'block{i}')(carry, c, context, context_mask, rope)
    h = carry[0]  # in-context text tokens are dropped here

    # Final layer: adaLN-modulated norm, zero-initialised linear to patch values.
    shift, scale = layers.AdaLNModulation(2, width, zero_init=True, dtype=dtype, name='final_adaln')(c)
    h = layers.modulate(layers.LayerNorm(dtype=dtype, name='final_norm')(h), shift, scale)
    out = layers.Dense(cfg.patch_dim, ('embed', None), dtype, zero_init=True, name='final_proj')(h)
    return unpatchify(out.astype(jnp.float32), cfg.patch, grid)

  def _check_inputs(self, x, t, text, text_mask, cond_mask, cond_latents) -> None:
    cfg = self.config
    if x.ndim != 5 or x.shape[-1] != cfg.latent_channels:
      raise ValueError(f'DiT takes latents [B, T, H, W, {cfg.latent_channels}]; got shape {x.shape}.')
    b = x.shape[0]
    if t.shape != (b,):
      raise ValueError(f'DiT takes one timestep per example, t [B]={b}; got shape {t.shape}.')
    if text.ndim != 3 or text.shape[0] != b or text.shape[-1] != cfg.text_width:
      raise ValueError(f'DiT takes text tokens [B={b}, L, text_width={cfg.text_width}]; got {text.shape} '
                       '(set dit.text_width to the text encoder width).')
    if text_mask.shape != text.shape[:2]:
      raise ValueError(f'text_mask must be [B, L]={text.shape[:2]}; got {text_mask.shape}.')
    if cond_mask is not None:
      if cond_mask.shape != x.shape[:2]:
        raise ValueError(f'cond_mask must be [B, T]={x.shape[:2]}; got {cond_mask.shape}.')
      if cond_latents is None or cond_latents.shape != x.shape:
        raise ValueError(f'cond_mask needs cond_latents of the latents\' shape {x.shape}; got '
                         f'{None if cond_latents is None else cond_latents.shape}.')


def example_inputs(config: DiTConfig, batch: int = 1, num_frames: int | None = None, height: int | None = None,
                   width: int | None = None, text_len: int = 8) -> dict[str, Array]:
  """Zero inputs of the right shapes for `DiT.init`/`eval_shape` (default: one token)."""
  pt, ph, pw = config.patch
  shape = (batch, num_frames or pt, height or ph, width or pw, config.latent_channels)
  return dict(x=jnp.zeros(shape), t=jnp.zeros((batch,)), text=jnp.zeros((batch, text_len, config.text_width)),
              text_mask=jnp.ones((batch, text_len), bool), cond_mask=jnp.zeros(shape[:2], bool),
              cond_latents=jnp.zeros(shape))


def count_params(params_or_config: Any) -> int:
  """Number of parameters of a (boxed or unboxed) param tree, or of a `DiTConfig` (via eval_shape)."""
  if isinstance(params_or_config, DiTConfig):
    model = DiT(params_or_config)
    params_or_config = jax.eval_shape(lambda: model.init(jax.random.key(0), **example_inputs(params_or_config)))
  return int(sum(np.prod(leaf.shape) for leaf in jax.tree.leaves(params_or_config)))
