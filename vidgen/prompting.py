"""Video prompting: the pixel frames a user gives, placed on a canvas, and the latent frames they fix.

A *canvas* is the video to generate, [B, T, H, W, 3] uint8, with a mask [B, T] of the pixel
frames that are given (an image, the end of a clip to extend, two clips to connect). The
DiT conditions on latent frames given clean (diffusion/masking.py trains it so), and the VAE
is causal with temporal compression ft, so:

* latent frame 0 is pixel frame 0 alone; latent frame j ≥ 1 is pixel frames (j−1)·ft+1 … j·ft.
  A latent frame is given when all its pixel frames are (`latent_given`).
* The latents of given frames come from encoding the whole canvas, its unknown frames first
  filled with the nearest given frame (`fill_unknown`). Frames given at the start (an image, the
  clip before a forward extension) then encode exactly as on their own, since the encoder is
  causal; frames given later (backward extension, the second clip of a connection) see the
  filled frames before them through the encoder's temporal receptive field, as a clip cut from
  a longer video sees the frames before its start. On the world VAE they move by 0.3% of the
  latents' spread and decode as well as the whole real video does
  (experiments/ablations/given_frames_vae.py; tests/test_prompting.py checks the rule).
* In the video written, given frames are the user's own pixels, exactly; generated frames are
  the VAE's decoding (`VideoGenerator` pastes the given pixels back).

The builders place what a user gives: `image_canvas` (image → video), `forward_canvas` and
`backward_canvas` (extension; the context is the clip's frames nearest the new ones),
`connect_canvas` (the end of A, then new frames, then the start of B). `load_image` and
`load_clip` read files and fit them to the run's size (resize to cover, centre crop).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import numpy as np

from vidgen import paths
from vidgen.data import pipeline, video_io

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')


@dataclasses.dataclass(frozen=True)
class Canvas:
  """Videos to generate: frames [B, T, H, W, 3] uint8 (unknown frames any value), given [B, T] bool."""
  frames: np.ndarray
  given: np.ndarray

  def __post_init__(self):
    if self.frames.ndim != 5 or self.frames.shape[-1] != 3 or self.frames.dtype != np.uint8:
      raise ValueError(f'Canvas frames must be uint8 [B, T, H, W, 3]; got {self.frames.dtype} {self.frames.shape}.')
    if self.given.shape != self.frames.shape[:2] or self.given.dtype != bool:
      raise ValueError(f'Canvas given must be bool [B, T]={self.frames.shape[:2]}; got {self.given.dtype} '
                       f'{self.given.shape}.')

  @property
  def num_frames(self) -> int:
    return self.frames.shape[1]


def latent_given(given: np.ndarray, ft: int) -> np.ndarray:
  """[B, T'] bool: latent frames all of whose pixel frames are given (T = 1 + (T' − 1)·ft)."""
  given = np.asarray(given, bool)
  b, t = given.shape
  if (t - 1) % ft:
    raise ValueError(f'A canvas of {t} frames does not fit temporal compression {ft}: use 1 + k·{ft} frames.')
  groups = given[:, 1:].reshape(b, (t - 1) // ft, ft).all(axis=2)
  return np.concatenate([given[:, :1], groups], axis=1)


def fill_unknown(frames: np.ndarray, given: np.ndarray) -> np.ndarray:
  """Each frame not given takes the nearest given frame in time (the earlier one on a tie)."""
  out = np.array(frames, copy=True)
  for b in range(frames.shape[0]):
    idx = np.flatnonzero(given[b])
    if not len(idx):
      continue
    t = np.arange(frames.shape[1])
    nearest = idx[np.argmin(np.abs(t[:, None] - idx[None, :]), axis=1)]  # argmin takes the first (earlier)
    out[b] = frames[b, nearest]
  return out


def check_fits(frames: np.ndarray, height: int, width: int, what: str) -> None:
  if frames.shape[-3:-1] != (height, width):
    raise ValueError(f'{what} is {frames.shape[-3]}×{frames.shape[-2]} but the run makes {height}×{width}: '
                     f'fit it with vidgen.prompting.fit_frames(frames, {height}, {width}) (resize to cover, '
                     'centre crop), as vidgen.sample does.')


def _blank(batch: int, num_frames: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
  return np.zeros((batch, num_frames, height, width, 3), np.uint8), np.zeros((batch, num_frames), bool)


def image_canvas(images: np.ndarray, num_frames: int) -> Canvas:
  """Image → video: images [B, H, W, 3] as frame 0 of `num_frames`-frame videos."""
  images = np.asarray(images)
  if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
    raise ValueError(f'images must be uint8 [B, H, W, 3]; got {images.dtype} {images.shape}.')
  frames, given = _blank(len(images), num_frames, *images.shape[1:3])
  frames[:, 0], given[:, 0] = images, True
  return Canvas(frames, given)


def context_frames(clip_frames: int, ft: int, max_latents: int, direction: str) -> int:
  """How many of a clip's frames condition an extension: the most that fill whole latent frames.

  Forward: 1 + m·ft frames (the clip's last ones, as latent frames 0 … m; m ≤ max_latents − 1; m = 0
  continues from the last frame alone, as from an image). Backward: m·ft frames (its first ones,
  as the last m latent frames; 1 ≤ m ≤ max_latents).
  """
  if clip_frames < 1:
    raise ValueError('The clip to extend has no frames.')
  if direction == 'forward':
    return 1 + min((clip_frames - 1) // ft, max_latents - 1) * ft
  if direction != 'backward':
    raise ValueError(f"direction must be 'forward' or 'backward'; got {direction!r}.")
  m = min(clip_frames // ft, max_latents)
  if m < 1:
    raise ValueError(f'A clip of {clip_frames} frames is too short to extend backward: give at least {ft} frames '
                     f'(one latent frame after the first, at temporal compression {ft}).')
  return m * ft


def forward_canvas(clips: np.ndarray, num_frames: int, context: int) -> Canvas:
  """The last `context` frames of clips [B, T0, H, W, 3] as the first frames of the canvas."""
  frames, given = _blank(len(clips), num_frames, *clips.shape[2:4])
  frames[:, :context], given[:, :context] = clips[:, -context:], True
  return Canvas(frames, given)


def backward_canvas(clips: np.ndarray, num_frames: int, context: int) -> Canvas:
  """The first `context` frames of clips [B, T0, H, W, 3] as the last frames of the canvas."""
  frames, given = _blank(len(clips), num_frames, *clips.shape[2:4])
  frames[:, num_frames - context:], given[:, num_frames - context:] = clips[:, :context], True
  return Canvas(frames, given)


def connect_canvas(a: np.ndarray, b: np.ndarray, num_frames: int, context_a: int, context_b: int) -> Canvas:
  """The last `context_a` frames of A, new frames, then the first `context_b` frames of B."""
  if context_a + context_b >= num_frames:
    raise ValueError(f'Connecting {context_a} + {context_b} given frames leaves nothing to generate in '
                     f'{num_frames} frames: ask for more frames (--seconds).')
  frames, given = _blank(len(a), num_frames, *a.shape[2:4])
  frames[:, :context_a], given[:, :context_a] = a[:, -context_a:], True
  frames[:, num_frames - context_b:], given[:, num_frames - context_b:] = b[:, :context_b], True
  return Canvas(frames, given)


def fit_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
  """[..., h, w, 3] uint8 resized to cover height × width (aspect kept), then centre-cropped."""
  frames = np.asarray(frames)
  lead = frames.shape[:-3]
  flat = frames.reshape((-1,) + frames.shape[-3:])
  out = pipeline.resize_and_crop(flat, height, width, 'center', np.random.default_rng(0))
  return out.reshape(lead + out.shape[1:])


def _fit_with_note(frames: np.ndarray, height: int, width: int, path: str) -> np.ndarray:
  if frames.shape[-3:-1] != (height, width):
    print(f'Note: {path} is {frames.shape[-3]}×{frames.shape[-2]}; resized to cover {height}×{width} and '
          'centre-cropped (the run\'s size).', flush=True)
  return fit_frames(frames, height, width)


def load_image(path: str, height: int, width: int) -> np.ndarray:
  """A PNG/JPEG as uint8 [H, W, 3] at the run's size (a printed note when it had to be fitted)."""
  from PIL import Image, UnidentifiedImageError  # pylint: disable=g-import-not-at-top
  if os.path.splitext(path)[1].lower() not in IMAGE_EXTENSIONS:
    raise ValueError(f'--image {path!r}: give a {"/".join(IMAGE_EXTENSIONS)} file (for a video, use --video).')
  if not paths.exists(path):
    raise FileNotFoundError(f'--image {path!r} does not exist.')
  try:
    with paths.local_for_reading(path) as local, Image.open(local) as image:
      array = np.asarray(image.convert('RGB'))
  except (UnidentifiedImageError, OSError) as e:
    raise ValueError(f'Cannot read the image {path!r}: {e}') from None
  return _fit_with_note(array, height, width, path)


def load_clip(path: str, height: int, width: int, fps: float) -> np.ndarray:
  """A video file as uint8 [T, H, W, 3] at the run's size; a note when its fps differs from the run's."""
  frames, file_fps = video_io.read_video(path)
  if abs(file_fps - fps) > 0.01 * fps:
    print(f'Note: {path} is {file_fps:g} fps and the run makes {fps:g} fps; its frames are taken as they are.',
          flush=True)
  return _fit_with_note(frames, height, width, path)


def stack(videos: Sequence[np.ndarray], what: str) -> np.ndarray:
  """[B, T, H, W, 3] from same-shaped videos, with a clear error otherwise."""
  shapes = {np.shape(v) for v in videos}
  if len(shapes) != 1:
    raise ValueError(f'{what} must all have one shape; got {sorted(shapes)}.')
  return np.stack([video_io.validate_frames(v, what) for v in videos])
