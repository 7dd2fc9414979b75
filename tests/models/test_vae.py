"""The patch VAE: shapes, causality, chunked == whole-video, and clear errors."""

import dataclasses

import flax.linen
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidgen.models import vae as vae_lib

TINY = vae_lib.VAEConfig(compression=(4, 4, 4), latent_channels=4, channels=(8, 16, 16), num_res_blocks=1)
# The patch design: 4×4×4 pixel-unshuffle, ConvNeXt blocks on the latent grid (one level).
PATCH = vae_lib.VAEConfig(compression=(4, 4, 4), latent_channels=4, patch=4, patch_t=4, channels=(16,),
                          num_res_blocks=1, block='convnext')
# The patch design with per-position MLPs beside its linear input and output convs, and a palette output.
PATCH_MLP = dataclasses.replace(PATCH, head_width=32, stem_width=24, palette=3)
# Half by patch, half by strided convs, in time and space.
MIXED = vae_lib.VAEConfig(compression=(4, 4, 4), latent_channels=4, patch=2, patch_t=2, channels=(8, 16),
                          num_res_blocks=1, block='convnext')


def _init(config=TINY, shape=(1, 9, 16, 16, 3)):
  model = vae_lib.VAE(config)
  video = jax.random.uniform(jax.random.key(1), shape, minval=-1, maxval=1)
  params = model.init(jax.random.key(0), video)['params']
  return model, params, video


def _past_init(config, params):
  """ConvNeXt blocks are the identity at init (zero projections), which would hide their convs
  from a causality or chunking test: nudge every parameter off its init."""
  if config.block != 'convnext':
    return params
  return jax.tree_util.tree_map(lambda p: p + 0.1 * jax.random.normal(jax.random.key(5), p.shape), params)


@pytest.mark.parametrize('compression,frames,latent_frames', [((4, 4, 4), 9, 3), ((2, 4, 4), 9, 5),
                                                              ((4, 4, 4), 1, 1), ((1, 2, 2), 3, 3)])
def test_latent_shape(compression, frames, latent_frames):
  levels = max(int(np.log2(f)) for f in compression)
  config = vae_lib.VAEConfig(compression=compression, latent_channels=4, channels=(8,) * (levels + 1))
  model, params, video = _init(config, (2, frames, 16, 16, 3))
  out = model.apply({'params': params}, video, jax.random.key(2))
  assert out['mean'].shape == (2, latent_frames, 16 // compression[1], 16 // compression[2], 4)
  assert out['reconstruction'].shape == video.shape
  assert config.latent_shape(frames, 16, 16) == out['mean'].shape[1:]


@pytest.mark.parametrize('kernel,strides', [((3, 3, 3), (1, 1, 1)), ((3, 3, 3), (2, 2, 2)), ((1, 1, 1), (1, 1, 1))])
def test_tap_conv_equals_a_3d_conv(kernel, strides):
  x = jax.random.normal(jax.random.key(0), (2, 7, 8, 8, 5))
  pads = [((k - 1) // 2, k // 2) if s == 1 else (0, max(0, k - s)) for k, s in zip(kernel[1:], strides[1:])]
  conv = vae_lib.TapConv(6, kernel, strides, pads)
  params = conv.init(jax.random.key(1), x)
  reference = flax.linen.Conv(6, kernel, strides=strides, padding=[(0, 0)] + pads)
  np.testing.assert_allclose(conv.apply(params, x), reference.apply(params, x), atol=1e-5)


@pytest.mark.parametrize('config', [PATCH, MIXED])
def test_patch_vae_shapes(config):
  model, params, video = _init(config, (2, 9, 16, 16, 3))
  out = model.apply({'params': params}, video, jax.random.key(2))
  assert out['mean'].shape == (2, 3, 4, 4, 4)
  assert out['reconstruction'].shape == video.shape
  image, _ = model.apply({'params': params}, video[:, :1], method=vae_lib.VAE.encode)
  assert image.shape == (2, 1, 4, 4, 4)


def test_convnext_blocks_start_as_the_identity():
  """At init the ConvNeXt VAE is a linear patch autoencoder: decode is affine in the latent."""
  model, params, video = _init(PATCH)
  z = jax.random.normal(jax.random.key(4), (1, 3, 4, 4, 4))
  decode = lambda z: model.apply({'params': params}, z, method=vae_lib.VAE.decode)
  np.testing.assert_allclose(decode(2 * z) - decode(z), decode(z) - decode(0 * z), atol=1e-4)


def test_head_stem_and_palette_change_nothing_at_init():
  """Their last layer (the palette's colours) is zero-initialised: the VAE computes what the same
  weights do without them."""
  model, params, video = _init(PATCH_MLP)
  assert {'stem_mlp', 'head_mlp', 'palette'} <= set(params['encoder']) | set(params['decoder'])
  plain = {part: {k: v for k, v in params[part].items() if not k.endswith('_mlp') and k != 'palette'} for part in params}
  with_mlp = model.apply({'params': params}, video, method=vae_lib.VAE.reconstruct)
  without = vae_lib.VAE(PATCH).apply({'params': plain}, video, method=vae_lib.VAE.reconstruct)
  np.testing.assert_allclose(with_mlp, without, atol=1e-6)
  trained = _past_init(PATCH_MLP, params)  # once trained, the MLPs do change the result
  assert not np.allclose(model.apply({'params': trained}, video, method=vae_lib.VAE.reconstruct),
                         vae_lib.VAE(PATCH).apply({'params': _past_init(PATCH, plain)}, video,
                                                  method=vae_lib.VAE.reconstruct), atol=1e-3)


def test_palette_head_mixes_its_colours():
  """Each pixel is a softmax-weighted mix of the position's colours (a numpy reference)."""
  head = vae_lib.PaletteHead(colors=3, pixels=4, hidden=8)
  x = jax.random.normal(jax.random.key(0), (2, 5, 16))
  params = head.init(jax.random.key(1), x)['params']
  np.testing.assert_allclose(head.apply({'params': params}, x), 0.0)  # colours start at zero
  params = jax.tree_util.tree_map(lambda p: p + jax.random.normal(jax.random.key(2), p.shape), params)
  p = jax.tree_util.tree_map(np.asarray, params)
  xn = np.asarray(x)
  xn = (xn - xn.mean(-1, keepdims=True)) / np.sqrt(xn.var(-1, keepdims=True) + 1e-6)
  xn = xn * p['norm']['scale'] + p['norm']['bias']
  colours = (xn @ p['colors']['kernel'] + p['colors']['bias']).reshape(2, 5, 3, 3)
  hidden = np.asarray(jax.nn.gelu(xn @ p['fc1']['kernel'] + p['fc1']['bias']))
  logits = (hidden @ p['logits']['kernel'] + p['logits']['bias']).reshape(2, 5, 4, 3)
  weights = np.exp(logits - logits.max(-1, keepdims=True))
  weights /= weights.sum(-1, keepdims=True)
  expected = np.einsum('bspk,bskc->bspc', weights, colours).reshape(2, 5, 12)
  np.testing.assert_allclose(head.apply({'params': params}, x), expected, atol=1e-4)


@pytest.mark.parametrize('config', [TINY, PATCH, MIXED, PATCH_MLP])
def test_encoder_is_causal_in_time(config):
  model, params, video = _init(config)
  params = _past_init(config, params)
  changed = video.at[:, 5:].set(0.3)  # frames 5.. change: latent frames 0 (frame 0) and 1 (frames 1-4) must not
  mean, _ = model.apply({'params': params}, video, method=vae_lib.VAE.encode)
  mean2, _ = model.apply({'params': params}, changed, method=vae_lib.VAE.encode)
  np.testing.assert_allclose(mean[:, :2], mean2[:, :2], atol=1e-5)
  assert not np.allclose(mean[:, 2], mean2[:, 2])


def test_image_is_a_one_frame_video():
  model, params, video = _init()
  mean_video, _ = model.apply({'params': params}, video, method=vae_lib.VAE.encode)
  mean_image, _ = model.apply({'params': params}, video[:, :1], method=vae_lib.VAE.encode)
  np.testing.assert_allclose(mean_video[:, :1], mean_image, atol=1e-5)


@pytest.mark.parametrize('chunk_latents,config', [
    (1, dataclasses.replace(TINY, attention=True)), (3, dataclasses.replace(TINY, attention=True)),
    (2, PATCH), (1, MIXED), (2, PATCH_MLP)])
def test_chunked_equals_whole_video(chunk_latents, config):
  model, params, _ = _init(config)
  params = _past_init(config, params)
  video = jax.random.uniform(jax.random.key(3), (1, 25, 16, 16, 3), minval=-1, maxval=1)
  mean, logvar = model.apply({'params': params}, video, method=vae_lib.VAE.encode)
  decoded = model.apply({'params': params}, mean, method=vae_lib.VAE.decode)
  codec = vae_lib.ChunkedCodec(model, params, chunk_latents=chunk_latents)
  chunk_mean, chunk_logvar = codec.encode(video)
  # Chunks sum the convolutions in another order: float32 rounding, relative to the values (up to ~5).
  np.testing.assert_allclose(chunk_mean, mean, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(chunk_logvar, logvar, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(codec.decode(mean), decoded, rtol=1e-5, atol=1e-5)


def test_bad_input_is_a_clear_error():
  with pytest.raises(ValueError, match=r'not 1 \+ k·4 \(try 9 or 13\)'):
    vae_lib.check_video(jnp.zeros((1, 10, 16, 16, 3)), (4, 4, 4))
  with pytest.raises(ValueError, match='height 18 is not a multiple of 4'):
    vae_lib.check_video(jnp.zeros((1, 9, 18, 16, 3)), (4, 4, 4))
  with pytest.raises(ValueError, match='uint8 frames'):
    vae_lib.check_video(jnp.zeros((1, 9, 16, 16, 3), jnp.uint8), (4, 4, 4))
  with pytest.raises(ValueError, match=r'in \[-1, 1\]'):
    vae_lib.check_video(jnp.full((1, 9, 16, 16, 3), 255.0), (4, 4, 4))
  with pytest.raises(ValueError, match=r'\[B, T, H, W, 3\]'):
    vae_lib.check_video(jnp.zeros((9, 16, 16, 3)), (4, 4, 4))


def test_bad_config_is_a_clear_error():
  with pytest.raises(ValueError, match='powers of two'):
    vae_lib.VAEConfig(compression=(3, 4, 4), channels=(8, 8, 8))
  with pytest.raises(ValueError, match='needs 3 entries'):
    vae_lib.VAEConfig(compression=(4, 4, 4), channels=(8, 8))
  with pytest.raises(ValueError, match='patch_t=8 must be a power of two dividing ft=4'):
    vae_lib.VAEConfig(compression=(4, 4, 4), patch_t=8, channels=(8,))
  with pytest.raises(ValueError, match="block must be 'resnet' or 'convnext'"):
    vae_lib.VAEConfig(compression=(4, 4, 4), channels=(8, 8, 8), block='unet')
  with pytest.raises(ValueError, match='head_width and vae.stem_width must be >= 0'):
    vae_lib.VAEConfig(compression=(4, 4, 4), channels=(8, 8, 8), head_width=-1)
  with pytest.raises(ValueError, match='vae.palette must be >= 0'):
    vae_lib.VAEConfig(compression=(4, 4, 4), channels=(8, 8, 8), palette=-2)


def test_compression_ratio():
  config = vae_lib.VAEConfig(compression=(4, 8, 8), latent_channels=16, channels=(8, 8, 8, 8))
  assert config.compression_ratio() == 4 * 8 * 8 * 3 / 16
