"""Read and write video files as uint8 [T, H, W, 3] arrays: mp4 (H.264), webm (VP9) and gif.

Everything in vidgen holds video as uint8 arrays; files exist only at the edges, for the
videos users bring (mp4 folders) and the videos vidgen writes for people to watch
(samples, reports). mp4 and webm go through the ffmpeg binary that ships with
imageio-ffmpeg, so nothing needs installing; gif goes through Pillow (an imageio
dependency), which keeps its palette exact.

Notes on fidelity:
- mp4 is H.264 yuv420p, which every browser and Colab plays. yuv420p needs an even height
  and width, so an odd-sized video is padded by repeating its last row/column: it reads
  back one pixel taller/wider. webm (VP9) keeps odd sizes as they are.
- mp4 and webm are lossy (near-lossless at the quality used here); gif quantizes each frame
  to a 256-colour palette, and stores frame delays in 1/100 s, so vidgen records the exact
  fps in a gif comment and restores it on read.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from typing import Any, Iterator

import numpy as np

from vidgen import paths

VIDEO_EXTENSIONS = ('.mp4', '.webm', '.gif')

# Constant-quality settings: near-lossless for the small videos vidgen makes, still small files.
_MP4_PARAMS = ['-crf', '12', '-preset', 'medium', '-movflags', '+faststart']
_WEBM_PARAMS = ['-crf', '20', '-b:v', '0', '-deadline', 'good', '-cpu-used', '5', '-row-mt', '1']
_GIF_FPS_TAG = b'vidgen:fps='
_GIF_DEFAULT_DELAY_MS = 100  # what browsers show for a gif frame with no (or a zero) delay


class VideoReadError(OSError):
  """A video file exists but cannot be decoded (corrupt, truncated, or not a video)."""


def validate_frames(frames: Any, name: str = 'frames') -> np.ndarray:
  """Returns `frames` as a uint8 [T, H, W, 3] array, or raises a ValueError saying how to fix it."""
  array = np.asarray(frames)
  if array.dtype != np.uint8:
    hint = (' Scale floats in [0, 1] with np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8).'
            if np.issubdtype(array.dtype, np.floating) else ' Convert with .astype(np.uint8).')
    raise ValueError(f'{name} must be uint8 [T, H, W, 3]; got dtype {array.dtype}.{hint}')
  if array.ndim != 4 or array.shape[-1] != 3:
    hint = ' For a single image, pass frames[None] (a 1-frame video).' if array.ndim == 3 else ''
    raise ValueError(f'{name} must be uint8 [T, H, W, 3] (RGB); got shape {array.shape}.{hint}')
  if 0 in array.shape:
    raise ValueError(f'{name} must have at least one frame of at least 1x1 pixels; got shape {array.shape}.')
  return array


def _check_path(path: str | os.PathLike, for_writing: bool) -> tuple[str, str]:
  path = os.fspath(path)
  ext = os.path.splitext(path)[1].lower()
  if ext not in VIDEO_EXTENSIONS:
    verb = 'write' if for_writing else 'read'
    raise ValueError(f'Cannot {verb} {path!r}: unsupported extension {ext!r}; '
                     f'use one of {", ".join(VIDEO_EXTENSIONS)}.')
  return path, ext


def write_video(path: str | os.PathLike, frames: Any, fps: float) -> None:
  """Writes uint8 [T, H, W, 3] frames to an mp4, webm or gif file, chosen by the extension.

  Creates the parent folder if needed. See the module docstring for what each format keeps.
  """
  path, ext = _check_path(path, for_writing=True)
  frames = validate_frames(frames)
  fps = float(fps)
  if not math.isfinite(fps) or fps <= 0:
    raise ValueError(f'fps must be a positive number; got {fps} (writing {path!r}).')
  with paths.local_for_writing(path) as local:  # ffmpeg and Pillow write local files
    if ext == '.gif':
      _write_gif(local, frames, fps)
    else:
      _write_ffmpeg(local, frames, fps, ext)


@contextlib.contextmanager
def _ffmpeg_subprocess() -> Iterator[None]:
  """Starting the ffmpeg binary without JAX's os.fork() warning.

  subprocess forks and at once execs ffmpeg, so no JAX thread state is used in the child; the
  warning (written for forks that go on running Python) would only be noise to the user.
  """
  with warnings.catch_warnings():
    warnings.filterwarnings('ignore', message=r'os\.fork\(\) was called', category=RuntimeWarning)
    yield


def _write_ffmpeg(path: str, frames: np.ndarray, fps: float, ext: str) -> None:
  import imageio_ffmpeg  # pylint: disable=g-import-not-at-top
  if ext == '.mp4':
    _, height, width, _ = frames.shape
    pad = ((0, 0), (0, height % 2), (0, width % 2), (0, 0))
    if height % 2 or width % 2:  # yuv420p stores chroma at half resolution: sizes must be even.
      frames = np.pad(frames, pad, mode='edge')
    codec, params = 'libx264', _MP4_PARAMS
  else:
    codec, params = 'libvpx-vp9', _WEBM_PARAMS
  _, height, width, _ = frames.shape
  writer = imageio_ffmpeg.write_frames(
      path, (width, height), fps=fps, codec=codec, pix_fmt_out='yuv420p', quality=None,
      macro_block_size=1, output_params=params)
  with _ffmpeg_subprocess():
    writer.send(None)  # starts ffmpeg
  try:
    for frame in frames:
      writer.send(np.ascontiguousarray(frame))
  finally:
    writer.close()


def _write_gif(path: str, frames: np.ndarray, fps: float) -> None:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  delay_ms = max(1, round(100 / fps)) * 10  # gif delays are whole hundredths of a second
  # Fast octree quantization: as accurate as Pillow's default median cut here, ~80x faster.
  images = [Image.fromarray(frame).quantize(256, method=Image.Quantize.FASTOCTREE) for frame in frames]
  # Pillow merges identical consecutive frames into one longer frame; `_read_gif` splits them back.
  images[0].save(path, save_all=True, append_images=images[1:], duration=delay_ms, loop=0,
                 comment=_GIF_FPS_TAG + repr(fps).encode())


def read_video(path: str | os.PathLike, max_frames: int | None = None) -> tuple[np.ndarray, float]:
  """Reads a video file into (uint8 [T, H, W, 3] frames, fps).

  Args:
    path: an .mp4, .webm or .gif file, local or remote (gs://; copied to a local file first).
    max_frames: read at most this many frames from the start (decoding stops early).

  Raises:
    FileNotFoundError: there is no file at `path`.
    VideoReadError: the file cannot be decoded, has no frames, or no frame rate.
  """
  path, ext = _check_path(path, for_writing=False)
  if max_frames is not None and max_frames < 1:
    raise ValueError(f'max_frames must be None or at least 1; got {max_frames}.')
  if not (paths.exists(path) if paths.is_remote(path) else os.path.isfile(path)):
    raise FileNotFoundError(f'No video file at {path!r}.')
  try:
    with paths.local_for_reading(path) as local:
      frames, fps = _read_gif(local, max_frames) if ext == '.gif' else _read_ffmpeg(local, max_frames)
  except VideoReadError:
    raise
  except Exception as e:  # ffmpeg and Pillow raise many types for a broken file.
    detail = ' | '.join(str(e).strip().splitlines()[-2:])[-300:]  # ffmpeg's last lines say why
    raise VideoReadError(f'Cannot decode video {path!r}: {type(e).__name__}: {detail}') from e
  if not len(frames):
    raise VideoReadError(f'Video {path!r} has no frames.')
  if not math.isfinite(fps) or fps <= 0:
    raise VideoReadError(f'Video {path!r} has no usable frame rate (read {fps}).')
  return frames, float(fps)


def _read_ffmpeg(path: str, max_frames: int | None) -> tuple[np.ndarray, float]:
  import imageio_ffmpeg  # pylint: disable=g-import-not-at-top
  output_params = ['-frames:v', str(max_frames)] if max_frames else None
  reader = imageio_ffmpeg.read_frames(path, pix_fmt='rgb24', output_params=output_params)
  try:
    with _ffmpeg_subprocess():
      meta = next(reader)  # starts ffmpeg
    width, height = meta['size']
    chunks = [np.frombuffer(chunk, np.uint8) for chunk in reader]
  finally:
    reader.close()
  frames = np.stack(chunks).reshape(-1, height, width, 3) if chunks else np.zeros((0, height, width, 3), np.uint8)
  return frames[:max_frames], float(meta['fps'])


def _read_gif(path: str, max_frames: int | None) -> tuple[np.ndarray, float]:
  from PIL import Image, ImageSequence  # pylint: disable=g-import-not-at-top
  with Image.open(path) as image:
    if image.format != 'GIF':
      raise VideoReadError(f'{path!r} is not a gif (Pillow reads it as {image.format}).')
    comment = image.info.get('comment', b'')
    frames, delays = [], []
    for frame in ImageSequence.Iterator(image):
      frames.append(np.asarray(frame.convert('RGB')))
      delays.append(frame.info.get('duration') or _GIF_DEFAULT_DELAY_MS)
  if comment.startswith(_GIF_FPS_TAG):
    fps = float(comment[len(_GIF_FPS_TAG):])
    base_ms = max(1, round(100 / fps)) * 10
  else:
    base_ms = min(delays)
    fps = 1000 / base_ms
  # A frame shown for k base delays stands for k identical frames (merged when written).
  repeats = [max(1, round(delay / base_ms)) for delay in delays]
  out = np.repeat(np.stack(frames), repeats, axis=0)
  return out[:max_frames], fps


def to_uint8(video: Any) -> np.ndarray:
  """Model-space floats in [-1, 1] → uint8 frames (values outside are clipped)."""
  return np.asarray(np.clip((np.asarray(video, np.float32) + 1.0) * 127.5 + 0.5, 0, 255), np.uint8)
