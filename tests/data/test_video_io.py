"""Video files round-trip through write_video/read_video with small error, in every format."""

import numpy as np
import pytest

from vidgen.data import video_io


def smooth_video(t=6, h=32, w=32, seed=0):
  """A moving colour gradient: like real footage, smooth enough for yuv420p chroma."""
  y, x = np.mgrid[:h, :w].astype(np.float32)
  phase = np.random.default_rng(seed).uniform(0, 6)
  frames = [np.stack([128 + 100 * np.sin(x / 9 + i / 3 + phase), 128 + 100 * np.cos(y / 11 - i / 4),
                      np.full_like(x, 60.0 + 20 * i)], -1) for i in range(t)]
  return np.array(frames).round().astype(np.uint8)


def mean_abs_error(a, b):
  return float(np.abs(a.astype(np.int32) - b.astype(np.int32)).mean())


# Most of the mp4/webm error is yuv420p's half-resolution colour (about 2.3 even when lossless).
@pytest.mark.parametrize('ext, tolerance', [('mp4', 3.5), ('webm', 3.5), ('gif', 4.0)])
def test_round_trip(tmp_path, ext, tolerance):
  frames = smooth_video()
  path = tmp_path / f'v.{ext}'
  video_io.write_video(path, frames, fps=8)
  out, fps = video_io.read_video(path)
  assert out.dtype == np.uint8 and out.shape == frames.shape
  assert fps == pytest.approx(8.0)
  assert mean_abs_error(out, frames) < tolerance


@pytest.mark.parametrize('ext', ['mp4', 'webm', 'gif'])
def test_one_frame_video(tmp_path, ext):
  frames = smooth_video(t=1)
  video_io.write_video(tmp_path / f'v.{ext}', frames, fps=24)
  out, fps = video_io.read_video(tmp_path / f'v.{ext}')
  assert out.shape == (1, 32, 32, 3)
  assert fps == pytest.approx(24.0)
  assert mean_abs_error(out, frames) < 4.0


@pytest.mark.parametrize('ext', ['mp4', 'webm', 'gif'])
def test_odd_size(tmp_path, ext):
  frames = smooth_video(t=3, h=17, w=23)
  video_io.write_video(tmp_path / f'v.{ext}', frames, fps=8)
  out, _ = video_io.read_video(tmp_path / f'v.{ext}')
  if ext == 'mp4':  # yuv420p needs even sizes: padded by repeating the last row and column
    assert out.shape == (3, 18, 24, 3)
    out = out[:, :17, :23]
  assert out.shape == frames.shape
  assert mean_abs_error(out, frames) < 4.0


def test_gif_keeps_repeated_frames_and_fps(tmp_path):
  frames = smooth_video(t=6)
  frames[2:5] = frames[1]  # a still stretch: Pillow stores it as one longer frame
  video_io.write_video(tmp_path / 'v.gif', frames, fps=7.5)
  out, fps = video_io.read_video(tmp_path / 'v.gif')
  assert out.shape == frames.shape
  assert fps == 7.5
  np.testing.assert_array_equal(out[1], out[4])


@pytest.mark.parametrize('ext', ['mp4', 'gif'])
def test_max_frames(tmp_path, ext):
  video_io.write_video(tmp_path / f'v.{ext}', smooth_video(t=6), fps=8)
  out, _ = video_io.read_video(tmp_path / f'v.{ext}', max_frames=2)
  assert out.shape[0] == 2


@pytest.mark.parametrize('frames, message', [
    (np.zeros((2, 8, 8, 3), np.float32), 'uint8'),
    (np.zeros((8, 8, 3), np.uint8), r'frames\[None\]'),
    (np.zeros((2, 8, 8, 4), np.uint8), r'\[T, H, W, 3\]'),
    (np.zeros((0, 8, 8, 3), np.uint8), 'at least one frame'),
])
def test_bad_frames_fail_clearly(tmp_path, frames, message):
  with pytest.raises(ValueError, match=message):
    video_io.write_video(tmp_path / 'v.mp4', frames, fps=8)


def test_bad_arguments_fail_clearly(tmp_path):
  frames = smooth_video(t=2)
  with pytest.raises(ValueError, match='unsupported extension'):
    video_io.write_video(tmp_path / 'v.avi', frames, fps=8)
  with pytest.raises(ValueError, match='fps'):
    video_io.write_video(tmp_path / 'v.mp4', frames, fps=0)
  with pytest.raises(FileNotFoundError, match='missing.mp4'):
    video_io.read_video(tmp_path / 'missing.mp4')


@pytest.mark.parametrize('ext', ['mp4', 'gif'])
def test_corrupt_file_raises_video_read_error(tmp_path, ext):
  path = tmp_path / f'bad.{ext}'
  path.write_bytes(b'not a video' * 100)
  with pytest.raises(video_io.VideoReadError, match='bad'):
    video_io.read_video(path)
