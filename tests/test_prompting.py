"""Video prompting's pixel ↔ latent rule, canvases, and given frames through the VAE."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidgen import prompting
from vidgen.world import scenes as world
from vidgen.models import vae as vae_lib
from vidgen.runs import load_vae


def test_latent_frames_are_given_when_all_their_pixel_frames_are():
  given = np.zeros((4, 9), bool)
  given[0, 0] = True  # an image: latent 0
  given[1, :5] = True  # frames 0-4: latents 0 and 1
  given[2, 5:] = True  # frames 5-8: latent 2
  given[3, 1:4] = True  # part of latent 1's frames only: nothing
  np.testing.assert_array_equal(prompting.latent_given(given, 4),
                                [[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 0, 0]])
  with pytest.raises(ValueError, match='1 \\+ k·4 frames'):
    prompting.latent_given(np.zeros((1, 8), bool), 4)


def test_unknown_frames_take_the_nearest_given_frame():
  frames = np.arange(7, dtype=np.uint8)[None, :, None, None, None] * np.ones((1, 7, 1, 1, 3), np.uint8)
  given = np.array([[False, True, False, False, False, True, False]])
  filled = prompting.fill_unknown(frames, given)[0, :, 0, 0, 0]
  np.testing.assert_array_equal(filled, [1, 1, 1, 1, 5, 5, 5])  # frame 3: tie, the earlier one


def test_extension_context_fills_whole_latent_frames_and_names_the_minimum():
  assert prompting.context_frames(17, 4, 3, 'forward') == 9  # latents 0-2
  assert prompting.context_frames(7, 4, 3, 'forward') == 5
  assert prompting.context_frames(3, 4, 3, 'forward') == 1  # the last frame alone, as from an image
  assert prompting.context_frames(17, 4, 3, 'backward') == 12  # the last 3 latents
  assert prompting.context_frames(6, 4, 3, 'backward') == 4
  with pytest.raises(ValueError, match='too short to extend backward: give at least 4 frames'):
    prompting.context_frames(3, 4, 3, 'backward')
  with pytest.raises(ValueError, match="'forward' or 'backward'"):
    prompting.context_frames(9, 4, 3, 'sideways')


def test_canvases_place_what_is_given():
  clips = np.random.default_rng(0).integers(0, 255, (2, 9, 4, 4, 3), np.uint8)
  fwd = prompting.forward_canvas(clips, 9, 5)
  np.testing.assert_array_equal(fwd.frames[:, :5], clips[:, -5:])
  assert fwd.given[:, :5].all() and not fwd.given[:, 5:].any()
  bwd = prompting.backward_canvas(clips, 9, 4)
  np.testing.assert_array_equal(bwd.frames[:, 5:], clips[:, :4])
  conn = prompting.connect_canvas(clips, clips[:, ::-1], 9, 1, 4)
  np.testing.assert_array_equal(conn.frames[:, 0], clips[:, -1])
  np.testing.assert_array_equal(conn.frames[:, 5:], clips[:, ::-1][:, :4])
  assert conn.given.sum(1).tolist() == [5, 5]
  with pytest.raises(ValueError, match='leaves nothing to generate'):
    prompting.connect_canvas(clips, clips, 9, 5, 4)
  image = prompting.image_canvas(clips[:, 0], 5)
  assert image.given.sum() == 2 and image.frames.shape == (2, 5, 4, 4, 3)


def test_fit_frames_covers_then_crops():
  frames = np.zeros((3, 20, 40, 3), np.uint8)
  assert prompting.fit_frames(frames, 16, 16).shape == (3, 16, 16, 3)
  assert prompting.fit_frames(frames[0], 8, 12).shape == (8, 12, 3)


def _reconstruction_errors(tiny_vae_run, given):
  model, params, config = load_vae(tiny_vae_run)
  real = np.stack([world.make_source(config.data, 'eval', 0)[i]['frames'] for i in range(2)])
  encode = jax.jit(lambda v: model.apply({'params': params}, v, method=vae_lib.VAE.encode)[0])
  decode = jax.jit(lambda z: model.apply({'params': params}, z, method=vae_lib.VAE.decode))
  as_float = lambda v: jnp.asarray(v, jnp.float32) / 127.5 - 1
  canvas = prompting.fill_unknown(real, np.repeat(given[None], 2, axis=0))
  through_canvas = np.asarray(decode(encode(as_float(canvas))))
  own = np.asarray(decode(encode(as_float(real))))
  err = lambda out: float(np.mean(np.abs(out[:, given] - np.asarray(as_float(real))[:, given])))
  return real, canvas, encode, as_float, err(through_canvas), err(own)


def test_frames_given_at_the_start_encode_exactly_as_on_their_own(tiny_vae_run):
  given = np.zeros(5, bool)
  given[:1] = True
  real, canvas, encode, as_float, _, _ = _reconstruction_errors(tiny_vae_run, given)
  np.testing.assert_allclose(np.asarray(encode(as_float(canvas)))[:, :1], np.asarray(encode(as_float(real[:, :1]))),
                             atol=1e-5)  # the encoder is causal: what comes after does not change them


def test_frames_given_at_the_end_come_back_within_the_vaes_own_error(tiny_vae_run):
  given = np.zeros(5, bool)
  given[1:] = True  # latent frame 1: the last ft frames, after one unknown frame
  *_, through_canvas, own = _reconstruction_errors(tiny_vae_run, given)
  assert through_canvas <= 1.25 * own, (through_canvas, own)
