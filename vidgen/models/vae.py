"""The patch VAE: a causal 3D-conv video compression network (pixels ↔ spacetime latent grid).

Causal in time: every temporal conv pads only on the past side (with copies of the first
frame), normalization is per frame, and attention is per frame, so frame t's latent depends
only on frames ≤ t. Hence

* the first frame is encoded alone, and 1 + k·ft frames map to 1 + k latent frames: an image
  is a 1-frame video that the same weights encode (the VAE trains on videos, and its
  evaluation scores 1-frame images too);
* a long video can be encoded and decoded in temporal chunks with a cache of the last few
  frames each conv needs (`ChunkedCodec`), giving the whole-video result
  with memory that does not grow with length.

Compression is split between a spacetime pixel-unshuffle at the input (`patch`, `patch_t`)
and strided convs. With all of it in the unshuffle and `block='convnext'`, every conv runs on
the latent grid and the network starts as a linear patch autoencoder: on a CPU budget it
learns objects the latent-diffusion ResNet design (`block='resnet'`) does not reach.

Shapes: videos are float [B, T, H, W, 3] in [-1, 1]; latents [B, 1 + (T-1)/ft, H/fh, W/fw, C].
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Sequence

import einops
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vidgen import config_blocks
from vidgen.models import noise as noise_lib

Array = jax.Array
_CACHE = 'cache'  # the variable collection holding each causal conv's last input frames
# The posterior starts narrow (std e^-3 ≈ 0.05 at init) so the decoder learns from the signal,
# not from sampling noise; the small KL weight widens it where that costs no reconstruction.
LOGVAR_OFFSET = -6.0


@dataclasses.dataclass(frozen=True)
class VAEConfig:
  """Architecture of the VAE; `compression` is (ft, fh, fw), each a power of two."""
  compression: tuple[int, int, int] = (4, 4, 4)
  latent_channels: int = 8
  patch: int = 1             # spatial pixel-unshuffle at the input (and shuffle at the output): part of fh, fw
  patch_t: int = 1           # temporal pixel-unshuffle (the first frame fills a patch alone): part of ft
  channels: tuple[int, ...] = (32, 64, 128)  # per resolution level, fine to coarse
  num_res_blocks: int = 1
  attention: bool = False    # per-frame self-attention in the middle block
  # 'resnet': GroupNorm-SiLU-conv twice (the latent-diffusion VAE block). 'convnext': LayerNorm,
  # causal conv, GELU, zero-initialised projection, with 1×1 convs in and out, so the network
  # starts as a linear patch autoencoder; with a large patch it trains far faster on a CPU.
  block: str = 'resnet'
  # Hidden width of a zero-initialised per-position MLP beside the linear conv_out (decoder) and
  # conv_in (encoder); 0: none. With a large patch the linear 1×1 convs map C features to and from
  # 3·patch²·patch_t pixel values (192 for 4×4×4, more than C = 128): the MLP lifts that rank limit
  # and renders edges nonlinearly, at the cost of a per-position MLP on the latent grid.
  head_width: int = 0
  stem_width: int = 0
  # Colours per latent position for a palette output beside the linear one (0: none): each pixel
  # of the patch is a softmax-weighted mix of `palette` colours the decoder predicts for the patch,
  # so a hard edge between two flat colours is a sign change of a logit, not an exact balance of
  # linear weights. Its logits come from a hidden layer max(head_width, 256) wide.
  palette: int = 0
  dtype: str = 'float32'     # compute dtype; params are float32

  def __post_init__(self):
    ft, fh, fw = self.compression
    for name, f in zip('thw', self.compression):
      if f < 1 or f & (f - 1):
        raise ValueError(f'vae.compression must be powers of two, got f{name}={f} in {self.compression}.')
    if self.patch < 1 or self.patch & (self.patch - 1) or fh % self.patch or fw % self.patch:
      raise ValueError(f'vae.patch={self.patch} must be a power of two dividing fh={fh} and fw={fw}.')
    if self.patch_t < 1 or self.patch_t & (self.patch_t - 1) or ft % self.patch_t:
      raise ValueError(f'vae.patch_t={self.patch_t} must be a power of two dividing ft={ft}.')
    if self.block not in ('resnet', 'convnext'):
      raise ValueError(f"vae.block must be 'resnet' or 'convnext', got {self.block!r}.")
    levels = max(int(math.log2(f)) for f in self.conv_compression())
    if len(self.channels) != levels + 1:
      raise ValueError(f'vae.channels needs {levels + 1} entries (one per level for compression '
                       f'{self.compression}), got {len(self.channels)}: {self.channels}.')
    if self.palette < 0:
      raise ValueError(f'vae.palette must be >= 0 (0: off), got {self.palette}.')
    if self.head_width < 0 or self.stem_width < 0:
      raise ValueError(f'vae.head_width and vae.stem_width must be >= 0 (0: off), got {self.head_width}, '
                       f'{self.stem_width}.')
    if self.latent_channels < 1 or self.num_res_blocks < 1:
      raise ValueError('vae.latent_channels and vae.num_res_blocks must be >= 1.')
    if any(c % _groups(c) for c in self.channels):
      raise ValueError(f'vae.channels must be multiples of 8 (group norm), got {self.channels}.')

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> 'VAEConfig':
    return config_blocks.from_config(cls, config, 'vae')

  def conv_compression(self) -> tuple[int, int, int]:
    """The part of the compression done by strided convs (the rest by the input patch)."""
    ft, fh, fw = self.compression
    return ft // self.patch_t, fh // self.patch, fw // self.patch

  def levels(self) -> list[tuple[int, int, int]]:
    """Downsampling factor (t, h, w) applied after each level but the last."""
    logs = [int(math.log2(f)) for f in self.conv_compression()]
    return [tuple(2 if i < n else 1 for n in logs) for i in range(len(self.channels) - 1)]

  def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
    """(T', H', W', C) of the latent of a T×H×W video; a clear error if it does not divide."""
    check_video_shape(num_frames, height, width, self.compression)
    ft, fh, fw = self.compression
    return 1 + (num_frames - 1) // ft, height // fh, width // fw, self.latent_channels

  def frames_for(self, latent_frames: int) -> int:
    return 1 + (latent_frames - 1) * self.compression[0]

  def compression_ratio(self) -> float:
    """Pixel values (× 3 colours) per latent value, for long videos."""
    ft, fh, fw = self.compression
    return ft * fh * fw * 3 / self.latent_channels


def check_video_shape(num_frames: int, height: int, width: int, compression: Sequence[int]) -> None:
  """Raises if a T×H×W video cannot be compressed by (ft, fh, fw), naming sizes that would work."""
  ft, fh, fw = compression
  problems = []
  if num_frames < 1 or (num_frames - 1) % ft:
    k = max(0, (num_frames - 1) // ft)
    problems.append(f'{num_frames} frames is not 1 + k·{ft} (try {1 + k * ft} or {1 + (k + 1) * ft})')
  if height % fh or height < fh:
    problems.append(f'height {height} is not a multiple of {fh} (try {max(fh, height // fh * fh)})')
  if width % fw or width < fw:
    problems.append(f'width {width} is not a multiple of {fw} (try {max(fw, width // fw * fw)})')
  if problems:
    raise ValueError(f'Video {num_frames}×{height}×{width} does not fit the VAE compression '
                     f'{tuple(compression)}: ' + '; '.join(problems) + '.')


def _groups(channels: int) -> int:
  return min(32, channels // 4) if channels >= 8 else 1


def _dtype(name: str) -> Any:
  return jnp.dtype(name)


class CausalConv3D(nn.Module):
  """3D conv padded only on the past side in time; keeps its last input frames for chunking.

  `first=True` pads with copies of the first frame (a video's start); otherwise the frames
  cached by the previous chunk precede the input. With `use_cache`, the last k_t - s_t input
  frames are stored in the 'cache' collection for the next chunk.
  """
  features: int
  kernel: tuple[int, int, int] = (3, 3, 3)
  strides: tuple[int, int, int] = (1, 1, 1)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array, *, first: bool = True, use_cache: bool = False) -> Array:
    kt, kh, kw = self.kernel
    st, sh, sw = self.strides
    keep = kt - st  # input frames the next chunk's first output still needs
    if first:
      x = jnp.concatenate([jnp.repeat(x[:, :1], kt - 1, axis=1), x], axis=1) if kt > 1 else x
    elif keep > 0:
      cached = self.get_variable(_CACHE, 'frames')
      if cached is None:
        raise ValueError('CausalConv3D(first=False) needs the cache of a previous chunk.')
      x = jnp.concatenate([cached.astype(x.dtype), x], axis=1)
    if use_cache and keep > 0:
      self.put_variable(_CACHE, 'frames', x[:, x.shape[1] - keep:])
    # Spatial padding: 'SAME' for stride 1; (0, 1) for stride 2 as in latent-diffusion VAEs.
    pads = [((k - 1) // 2, k // 2) if s == 1 else (0, max(0, k - s)) for k, s in ((kh, sh), (kw, sw))]
    return TapConv(self.features, self.kernel, self.strides, pads, dtype=self.dtype, name='conv')(x)


class TapConv(nn.Module):
  """A 3D conv (no temporal padding) computed as one 2D conv over the temporal taps stacked on
  channels: nn.Conv's parameters, init and result, about 2× faster on CPU than XLA's 3D conv
  (experiments/benchmarks/causal_conv.py)."""
  features: int
  kernel: tuple[int, int, int]
  strides: tuple[int, int, int]
  spatial_padding: Sequence[tuple[int, int]]
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kt, kh, kw = self.kernel
    st = self.strides[0]
    b, c = x.shape[0], x.shape[-1]
    kernel = self.param('kernel', nn.with_logical_partitioning(
        noise_lib.drawn_as_matrix(nn.initializers.lecun_normal()), (None, None, None, 'conv_in', 'conv_out')),
        (kt, kh, kw, c, self.features))
    bias = self.param('bias', nn.with_logical_partitioning(nn.initializers.zeros_init(), ('conv_out',)),
                      (self.features,))
    frames = (x.shape[1] - kt) // st + 1
    taps = jnp.concatenate([x[:, a:a + st * (frames - 1) + 1:st] for a in range(kt)], axis=-1)
    y = jax.lax.conv_general_dilated(
        taps.reshape((b * frames,) + taps.shape[2:]).astype(self.dtype),
        einops.rearrange(kernel, 't h w i o -> h w (t i) o').astype(self.dtype),
        self.strides[1:], self.spatial_padding, dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    y = y + bias.astype(self.dtype)
    return y.reshape((b, frames) + y.shape[1:])


class FrameGroupNorm(nn.Module):
  """GroupNorm over (H, W, channel group) of each frame, so it never looks across time."""
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    b, t = x.shape[:2]
    y = nn.GroupNorm(num_groups=_groups(x.shape[-1]), dtype=self.dtype, name='norm')(
        x.reshape((b * t,) + x.shape[2:]))
    return y.reshape(x.shape)


class ResBlock(nn.Module):
  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array, *, first: bool, use_cache: bool) -> Array:
    h = nn.silu(FrameGroupNorm(self.dtype, name='norm1')(x))
    h = CausalConv3D(self.features, dtype=self.dtype, name='conv1')(h, first=first, use_cache=use_cache)
    h = nn.silu(FrameGroupNorm(self.dtype, name='norm2')(h))
    h = CausalConv3D(self.features, dtype=self.dtype, name='conv2')(h, first=first, use_cache=use_cache)
    if x.shape[-1] != self.features:
      x = nn.Dense(self.features, dtype=self.dtype, name='skip')(x)
    return x + h


class ConvNeXtBlock(nn.Module):
  """LayerNorm (per position, so nothing is mixed across frames), causal 3×3×3 conv, GELU, and a
  zero-initialised 1×1 projection: the identity at init, so depth never slows early training."""
  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array, *, first: bool, use_cache: bool) -> Array:
    h = nn.LayerNorm(dtype=self.dtype, name='norm')(x)
    h = nn.gelu(CausalConv3D(self.features, dtype=self.dtype, name='conv')(h, first=first, use_cache=use_cache))
    h = nn.Dense(self.features, dtype=self.dtype, kernel_init=nn.initializers.zeros_init(), name='proj')(h)
    if x.shape[-1] != self.features:
      x = nn.Dense(self.features, dtype=self.dtype, name='skip')(x)
    return x + h


def _block(cfg: 'VAEConfig', features: int, dtype: Any, name: str) -> nn.Module:
  return (ResBlock if cfg.block == 'resnet' else ConvNeXtBlock)(features, dtype, name=name)


def _io_kernel(cfg: 'VAEConfig') -> tuple[int, int, int]:
  """Kernel of the first and last convs: 1×1×1 for ConvNeXt blocks (a linear path end to end)."""
  return (3, 3, 3) if cfg.block == 'resnet' else (1, 1, 1)


class PositionMlp(nn.Module):
  """Dense, GELU, zero-initialised Dense at every position: a nonlinear path added beside a
  linear 1×1 conv, so the network is unchanged at init."""
  hidden: int
  features: int
  normalize: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    if self.normalize:
      x = nn.LayerNorm(dtype=self.dtype, name='norm')(x)
    h = nn.gelu(nn.Dense(self.hidden, dtype=self.dtype, name='fc1')(x))
    return nn.Dense(self.features, dtype=self.dtype, kernel_init=nn.initializers.zeros_init(), name='fc2')(h)


class PaletteHead(nn.Module):
  """Per position: `colors` RGB colours and, for each of the patch's `pixels`, softmax weights over
  them; returns the mixed pixels [..., pixels * 3]. The colours start at zero, so it adds nothing
  at init; the logits start random, which breaks the symmetry between colours."""
  colors: int
  pixels: int
  hidden: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    x = nn.LayerNorm(dtype=self.dtype, name='norm')(x)
    palette = nn.Dense(self.colors * 3, dtype=self.dtype, kernel_init=nn.initializers.zeros_init(),
                       name='colors')(x).reshape(x.shape[:-1] + (self.colors, 3))
    h = nn.gelu(nn.Dense(self.hidden, dtype=self.dtype, name='fc1')(x))
    logits = nn.Dense(self.pixels * self.colors, dtype=self.dtype, name='logits')(h)
    weights = jax.nn.softmax(logits.reshape(x.shape[:-1] + (self.pixels, self.colors)).astype(jnp.float32), axis=-1)
    mixed = jnp.einsum('...pk,...kc->...pc', weights, palette.astype(jnp.float32))
    return mixed.reshape(x.shape[:-1] + (self.pixels * 3,)).astype(self.dtype)


class FrameAttention(nn.Module):
  """Single-head self-attention over the pixels of each frame (causal in time by construction)."""
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    b, t, h, w, c = x.shape
    y = FrameGroupNorm(self.dtype, name='norm')(x).reshape(b * t, h * w, 1, c)
    q, k, v = (nn.DenseGeneral((1, c), dtype=self.dtype, name=n)(y[:, :, 0]) for n in ('q', 'k', 'v'))
    y = nn.dot_product_attention(q, k, v, dtype=self.dtype)
    y = nn.DenseGeneral(c, axis=(-2, -1), dtype=self.dtype, name='out')(y)
    return x + y.reshape(x.shape)


class Downsample(nn.Module):
  """Strided causal conv: time stride 2 maps 1 + 2k frames to 1 + k (the first stays alone)."""
  features: int
  factors: tuple[int, int, int]
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array, *, first: bool, use_cache: bool) -> Array:
    return CausalConv3D(self.features, strides=self.factors, dtype=self.dtype, name='conv')(
        x, first=first, use_cache=use_cache)


class Upsample(nn.Module):
  """Nearest upsampling then a causal conv; in time the first frame is not repeated (1 + k → 1 + 2k)."""
  features: int
  factors: tuple[int, int, int]
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array, *, first: bool, use_cache: bool) -> Array:
    ft, fh, fw = self.factors
    x = jnp.repeat(jnp.repeat(x, fh, axis=2), fw, axis=3)
    if ft > 1:
      repeated = jnp.repeat(x, ft, axis=1)
      x = jnp.concatenate([x[:, :1], repeated[:, ft:]], axis=1) if first else repeated
    return CausalConv3D(self.features, dtype=self.dtype, name='conv')(x, first=first, use_cache=use_cache)


class Encoder(nn.Module):
  """Video [B, T, H, W, 3] → Gaussian moments [B, T', H', W', 2C] (mean, log-variance)."""
  config: VAEConfig

  @nn.compact
  def __call__(self, x: Array, *, first: bool = True, use_cache: bool = False) -> Array:
    cfg, dtype = self.config, _dtype(self.config.dtype)
    kw = dict(first=first, use_cache=use_cache)
    p, pt = cfg.patch, cfg.patch_t
    if first and pt > 1:  # the first frame fills a whole temporal patch, so it is encoded alone
      x = jnp.concatenate([jnp.repeat(x[:, :1], pt - 1, axis=1), x], axis=1)
    x = einops.rearrange(x, 'b (t a) (h p) (w q) c -> b t h w (a p q c)', a=pt, p=p, q=p)
    x = x.astype(dtype)
    h = CausalConv3D(cfg.channels[0], _io_kernel(cfg), dtype=dtype, name='conv_in')(x, **kw)
    if cfg.stem_width:
      h = h + PositionMlp(cfg.stem_width, cfg.channels[0], dtype=dtype, name='stem_mlp')(x)
    for level, features in enumerate(cfg.channels):
      for i in range(cfg.num_res_blocks):
        h = _block(cfg, features, dtype, f'level{level}_block{i}')(h, **kw)
      if level < len(cfg.channels) - 1:
        h = Downsample(cfg.channels[level + 1], cfg.levels()[level], dtype, name=f'level{level}_down')(h, **kw)
    h = _block(cfg, cfg.channels[-1], dtype, 'mid_block1')(h, **kw)
    if cfg.attention:
      h = FrameAttention(dtype, name='mid_attention')(h)
    h = _block(cfg, cfg.channels[-1], dtype, 'mid_block2')(h, **kw)
    if cfg.block == 'resnet':
      h = nn.silu(FrameGroupNorm(dtype, name='norm_out')(h))
    return CausalConv3D(2 * cfg.latent_channels, _io_kernel(cfg), dtype=dtype, name='conv_out')(
        h, **kw).astype(jnp.float32)


class Decoder(nn.Module):
  """Latents [B, T', H', W', C] → video [B, T, H, W, 3] (unbounded; trained towards [-1, 1])."""
  config: VAEConfig

  @nn.compact
  def __call__(self, z: Array, *, first: bool = True, use_cache: bool = False) -> Array:
    cfg, dtype = self.config, _dtype(self.config.dtype)
    kw = dict(first=first, use_cache=use_cache)
    h = CausalConv3D(cfg.channels[-1], _io_kernel(cfg), dtype=dtype, name='conv_in')(z.astype(dtype), **kw)
    h = _block(cfg, cfg.channels[-1], dtype, 'mid_block1')(h, **kw)
    if cfg.attention:
      h = FrameAttention(dtype, name='mid_attention')(h)
    h = _block(cfg, cfg.channels[-1], dtype, 'mid_block2')(h, **kw)
    for level in reversed(range(len(cfg.channels))):
      for i in range(cfg.num_res_blocks + 1):
        h = _block(cfg, cfg.channels[level], dtype, f'level{level}_block{i}')(h, **kw)
      if level > 0:
        h = Upsample(cfg.channels[level - 1], cfg.levels()[level - 1], dtype, name=f'level{level}_up')(h, **kw)
    if cfg.block == 'resnet':
      h = nn.silu(FrameGroupNorm(dtype, name='norm_out')(h))
    p, pt = cfg.patch, cfg.patch_t
    out = CausalConv3D(3 * p * p * pt, _io_kernel(cfg), dtype=dtype, name='conv_out')(h, **kw)
    if cfg.head_width:
      out = out + PositionMlp(cfg.head_width, 3 * p * p * pt, normalize=True, dtype=dtype, name='head_mlp')(h)
    if cfg.palette:
      out = out + PaletteHead(cfg.palette, p * p * pt, max(cfg.head_width, 256), dtype, name='palette')(h)
    h = out.astype(jnp.float32)
    video = einops.rearrange(h, 'b t h w (a p q c) -> b (t a) (h p) (w q) c', a=pt, p=p, q=p)
    return video[:, pt - 1:] if first else video


def sample_latent(rng: Array, mean: Array, logvar: Array) -> Array:
  """z ~ N(mean, exp(logvar)), by reparameterization (the VAE in training, the DiT trainer on its latents)."""
  return mean + jnp.exp(0.5 * logvar) * noise_lib.normal(rng, mean.shape)


class VAE(nn.Module):
  """Encoder + decoder; `__call__` runs a training pass (sampled latent, reconstruction)."""
  config: VAEConfig

  def setup(self):
    self.encoder = Encoder(self.config)
    self.decoder = Decoder(self.config)

  def __call__(self, video: Array, rng: Array | None = None) -> dict[str, Array]:
    """video [B, T, H, W, 3] → {'reconstruction', 'mean', 'logvar'}; samples z when rng is given."""
    mean, logvar = self.encode(video)
    z = mean if rng is None else sample_latent(rng, mean, logvar)
    return {'reconstruction': self.decode(z), 'mean': mean, 'logvar': logvar}

  def encode(self, video: Array, *, first: bool = True, use_cache: bool = False) -> tuple[Array, Array]:
    """video [B, T, H, W, 3] in [-1, 1] → (mean, logvar), each [B, T', H', W', C]."""
    moments = self.encoder(video, first=first, use_cache=use_cache)
    mean, logvar = jnp.split(moments, 2, axis=-1)
    return mean, jnp.clip(logvar + LOGVAR_OFFSET, -30.0, 20.0)

  def decode(self, z: Array, *, first: bool = True, use_cache: bool = False) -> Array:
    """z [B, T', H', W', C] → video [B, T, H, W, 3]."""
    return self.decoder(z, first=first, use_cache=use_cache)

  def reconstruct(self, video: Array) -> Array:
    """video → decode(mean of encode(video)): the deterministic reconstruction used in evaluation."""
    return self.decode(self.encode(video)[0])


def jitted_reconstruct(model: VAE) -> Callable[[Any, Array], Array]:
  """`VAE.reconstruct` as one jitted function of (params, video), as evaluations call it."""
  return jax.jit(lambda params, video: model.apply({'params': params}, video, method=VAE.reconstruct))


def check_video(video: Any, compression: Sequence[int]) -> None:
  """Raises a clear error for input the VAE cannot take (wrong rank, dtype, range or size)."""
  shape = getattr(video, 'shape', None)
  if shape is None or len(shape) != 5 or shape[-1] != 3:
    raise ValueError(f'The VAE takes videos [B, T, H, W, 3]; got shape {shape}.')
  if not jnp.issubdtype(video.dtype, jnp.floating):
    raise ValueError(f'The VAE takes float videos in [-1, 1]; got {video.dtype} '
                     '(scale uint8 frames with frames / 127.5 - 1).')
  if isinstance(video, np.ndarray) or not isinstance(video, jax.core.Tracer):
    lo, hi = float(jnp.min(video)), float(jnp.max(video))
    if lo < -1.01 or hi > 1.01:
      raise ValueError(f'The VAE takes videos in [-1, 1]; got values in [{lo:.3g}, {hi:.3g}].')
  check_video_shape(shape[1], shape[2], shape[3], compression)


class ChunkedCodec:
  """Encodes and decodes long videos chunk by chunk with causal caches: memory flat in length.

  The first chunk is frame 0 alone (latent frame 0); later chunks are `chunk_latents` latent
  frames (× ft video frames) each. Each step is jitted once per chunk length.
  """

  def __init__(self, model: VAE, params: Any, chunk_latents: int = 4):
    if chunk_latents < 1:
      raise ValueError(f'chunk_latents must be >= 1, got {chunk_latents}.')
    self.model, self.params, self.chunk_latents = model, params, chunk_latents
    self.ft = model.config.compression[0]
    self._encode = jax.jit(self._step(VAE.encode), static_argnames='first')
    self._decode = jax.jit(self._step(VAE.decode), static_argnames='first')

  def _step(self, method: Callable) -> Callable:
    def step(params, cache, x, first):
      variables = {'params': params} if first else {'params': params, _CACHE: cache}
      out, mutated = self.model.apply(variables, x, first=first, use_cache=True, method=method,
                                      mutable=[_CACHE])
      return out, mutated[_CACHE]
    return step

  def encode(self, video: Array) -> tuple[Array, Array]:
    """video [B, T, H, W, 3] → (mean, logvar) [B, T', H', W', C], chunk by chunk."""
    check_video(video, self.model.config.compression)
    (mean, logvar), cache = self._encode(self.params, None, video[:, :1], first=True)
    means, logvars = [np.asarray(mean)], [np.asarray(logvar)]
    step = self.chunk_latents * self.ft
    for start in range(1, video.shape[1], step):
      (mean, logvar), cache = self._encode(self.params, cache, video[:, start:start + step], first=False)
      means.append(np.asarray(mean))
      logvars.append(np.asarray(logvar))
    return np.concatenate(means, axis=1), np.concatenate(logvars, axis=1)

  def decode(self, z: Array) -> np.ndarray:
    """z [B, T', H', W', C] → video [B, T, H, W, 3] (float32, on the host), chunk by chunk."""
    out, cache = self._decode(self.params, None, z[:, :1], first=True)
    frames = [np.asarray(out)]
    for start in range(1, z.shape[1], self.chunk_latents):
      out, cache = self._decode(self.params, cache, z[:, start:start + self.chunk_latents], first=False)
      frames.append(np.asarray(out))
    return np.concatenate(frames, axis=1)
