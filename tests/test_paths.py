"""Remote (gs://) paths: every read and write goes through vidgen.paths (and so etils.epath, whose
backends speak gs://). Checked with vidgen.paths's epath pointed at a local folder."""

import json

import numpy as np
import pytest
from etils import epath
import types

from vidgen import paths
from vidgen.data import video_io
from vidgen.eval.contact_sheet import save_contact_sheet


@pytest.fixture
def fake_bucket(tmp_path, monkeypatch):
  """gs://bucket/... lands in tmp_path/... for every path vidgen.paths opens."""
  bucket = lambda p: epath.Path(str(p).replace('gs://bucket', str(tmp_path)))
  monkeypatch.setattr(paths, 'epath', types.SimpleNamespace(Path=bucket))
  return tmp_path


def test_videos_and_images_round_trip_through_a_remote_path(fake_bucket):
  frames = np.random.default_rng(0).integers(0, 255, (5, 16, 16, 3), np.uint8)
  video_io.write_video('gs://bucket/run/eval/clip.gif', frames, fps=8)
  assert (fake_bucket / 'run/eval/clip.gif').exists()  # the file went to the bucket, not the cwd
  back, fps = video_io.read_video('gs://bucket/run/eval/clip.gif')
  assert back.shape == frames.shape and fps == 8
  save_contact_sheet('gs://bucket/run/sheet.png', [frames], ['a caption'])
  assert (fake_bucket / 'run/sheet.png').stat().st_size > 0
  with pytest.raises(FileNotFoundError):
    video_io.read_video('gs://bucket/missing.mp4')


def test_text_files_and_folders(fake_bucket):
  paths.makedirs('gs://bucket/a/b')
  with paths.open_file('gs://bucket/a/b/m.json', 'w') as f:
    json.dump({'x': 1}, f)
  assert paths.exists('gs://bucket/a/b/m.json') and not paths.exists('gs://bucket/a/none.json')
  assert json.loads((fake_bucket / 'a/b/m.json').read_text()) == {'x': 1}
  assert paths.is_remote('gs://bucket/a') and not paths.is_remote('/tmp/a')
