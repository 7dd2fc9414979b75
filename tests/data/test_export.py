"""Export writes a source's records to ArrayRecord shards that read back exactly."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from vidgen import config_lib
from vidgen.data import export
from vidgen.data import sources
from vidgen.data import video_io

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = 'experiments/configs/world.py:tiny'


def make_folder(path, names=('a.mp4', 'b.mp4', 'c.mp4')):
  for i, name in enumerate(names):
    y, x = np.mgrid[:12, :14]
    frames = np.array([np.stack([x * 15 + t * 9, y * 18, np.full_like(x, 80 * i)], -1) for t in range(i + 2)], np.uint8)
    video_io.write_video(path / name, frames, fps=8 + i)
  (path / 'captions.jsonl').write_text(
      ''.join(json.dumps({'file': name, 'caption': f'video number {i}'}) + '\n' for i, name in enumerate(names)))
  return path


def folder_config(path):
  return config_lib.load_config(CONFIG, {'data.source': 'folder', 'data.folder.path': str(path)})


def test_export_folder_reads_back_exactly(tmp_path):
  videos = make_folder(tmp_path / 'videos')
  out = tmp_path / 'shards'
  summary = export.export(folder_config(videos), str(out), split='train', records_per_shard=2)
  assert sorted(os.listdir(out)) == ['train-00000-of-00002.array_record', 'train-00001-of-00002.array_record',
                                     'train.json']
  assert summary == json.loads((out / 'train.json').read_text())
  assert summary['num_records'] == 3 and summary['num_shards'] == 2
  assert summary['keys']['frames'] == {'dtype': 'uint8', 'shape': [None, 12, 14, 3]}
  assert summary['keys']['caption']['dtype'] == 'str'

  folder = sources.VideoFolderSource(videos)
  shards = sources.ArrayRecordSource(str(out / 'train-*.array_record'))
  assert len(shards) == 3
  for i in range(3):
    want, got = folder[i], shards[i]
    assert set(got) == set(want)
    np.testing.assert_array_equal(got['frames'], want['frames'])  # decoded once, stored raw: exact
    assert got['caption'] == want['caption']
    assert got['fps'] == want['fps'] and got['index'] == want['index'] == i

  with pytest.raises(FileExistsError, match='--overwrite'):
    export.export(folder_config(videos), str(out), split='train')
  export.export(folder_config(videos), str(out), split='train', num_records=1, overwrite=True)
  assert len(sources.ArrayRecordSource(str(out / 'train-*.array_record'))) == 1  # old shards are gone


def test_export_leaves_out_unreadable_videos(tmp_path):
  videos = make_folder(tmp_path / 'videos')
  (videos / 'b.mp4').write_bytes(b'corrupt' * 50)
  summary = export.export(folder_config(videos), str(tmp_path / 'out'), split='train')
  assert summary['num_records'] == 2 and summary['num_skipped'] == 1
  shards = sources.ArrayRecordSource(str(tmp_path / 'out'))
  assert [shards[i]['caption'] for i in range(2)] == ['video number 0', 'video number 2']
  assert [int(shards[i]['index']) for i in range(2)] == [0, 1]  # positions in the shards


def test_export_checks_its_arguments(tmp_path):
  config = folder_config(make_folder(tmp_path / 'videos'))
  with pytest.raises(ValueError, match='num_records must be between 1 and 3'):
    export.export(config, str(tmp_path / 'out'), num_records=4)
  with pytest.raises(ValueError, match='records_per_shard'):
    export.export(config, str(tmp_path / 'out'), records_per_shard=0)


def test_export_command_line(tmp_path):
  videos = make_folder(tmp_path / 'videos')
  out = tmp_path / 'out'
  result = subprocess.run(
      [sys.executable, '-m', 'vidgen.data.export', '--config', CONFIG, '--out', str(out), '--split', 'eval',
       '--num_records', '2', '--config.data.source=folder', f'--config.data.folder.path={videos}',
       f'--config.data.folder.eval_path={videos}'],  # the folder's own eval split: a folder of its own
      cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, 'JAX_PLATFORMS': 'cpu'})
  assert result.returncode == 0, result.stderr[-3000:]
  assert json.loads((out / 'eval.json').read_text())['num_records'] == 2
  assert (out / 'eval-00000-of-00001.array_record').exists()


def test_export_world_reads_back_identical(tmp_path):
  world = pytest.importorskip('vidgen.world.scenes')  # runs once the world source has landed
  config = config_lib.load_config('experiments/configs/world.py:physics', {'data.num_frames': 5})
  export.export(config, str(tmp_path), split='eval', num_records=4, records_per_shard=3)
  truth = world.make_source(config.data, 'eval', config.seed)
  shards = sources.ArrayRecordSource(str(tmp_path / 'eval-*.array_record'))
  assert len(shards) == 4
  for i in range(4):
    want, got = truth[i], shards[i]
    assert set(got) == set(want) and len(want) > 4  # the ground-truth keys too
    for key, value in want.items():
      if isinstance(value, np.ndarray):
        assert got[key].dtype == value.dtype and got[key].shape == value.shape, key
      else:
        assert type(got[key]) is type(value), key
      np.testing.assert_array_equal(got[key], value, err_msg=key)
