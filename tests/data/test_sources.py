"""Every source yields the same record layout; bad folders fail clearly; sources pickle for Grain."""

import json
import logging
import pickle

import numpy as np
import pytest

from experiments.configs import common
from vidgen.data import sources
from vidgen.data import video_io

LAYOUT = {'frames', 'caption', 'fps', 'index'}


def tiny_video(t, h=16, w=16, level=0):
  y, x = np.mgrid[:h, :w]
  return np.array([np.stack([(x * 12 + 20 * i) % 200, y * 12, np.full_like(x, level)], -1)
                   for i in range(t)], np.uint8)


def check_layout(record, index):
  assert LAYOUT <= set(record)
  assert record['frames'].dtype == np.uint8 and record['frames'].ndim == 4 and record['frames'].shape[-1] == 3
  assert isinstance(record['caption'], str)
  assert isinstance(record['fps'], np.float32) and isinstance(record['index'], np.int64)
  assert record['index'] == index


@pytest.fixture
def folder(tmp_path):
  """a.mp4 (3 frames, 8 fps), b.gif (2 frames, 10 fps), c.webm (4 frames, 12 fps)."""
  video_io.write_video(tmp_path / 'a.mp4', tiny_video(3, level=50), fps=8)
  video_io.write_video(tmp_path / 'b.gif', tiny_video(2, level=150), fps=10)
  video_io.write_video(tmp_path / 'c.webm', tiny_video(4, level=250), fps=12)
  return tmp_path


def write_jsonl(path, rows):
  path.write_text(''.join(json.dumps({'file': f, 'caption': c}) + '\n' for f, c in rows))


ROWS = [('a.mp4', 'a red circle'), ('b.gif', 'two, with "quotes"'), ('c.webm', 'ünïcode')]


def test_folder_source_jsonl(folder):
  write_jsonl(folder / 'captions.jsonl', ROWS)
  source = sources.VideoFolderSource(folder)
  assert len(source) == 3
  for i, ((_, caption), length, fps) in enumerate(zip(ROWS, (3, 2, 4), (8, 10, 12))):
    record = source[i]
    check_layout(record, i)
    assert record['caption'] == caption
    assert record['frames'].shape == (length, 16, 16, 3)
    assert record['fps'] == pytest.approx(fps)
  assert source.num_skipped == 0


def test_folder_source_csv_and_explicit_caption_path(folder, tmp_path_factory):
  captions = tmp_path_factory.mktemp('elsewhere') / 'my.csv'
  captions.write_text('file,caption\n' + ''.join(f'{f},"{c.replace(chr(34), 2 * chr(34))}"\n' for f, c in ROWS))
  source = sources.VideoFolderSource(str(folder), captions=str(captions))
  assert [source[i]['caption'] for i in range(3)] == [c for _, c in ROWS]


def test_corrupt_video_is_skipped_and_counted(folder, caplog):
  (folder / 'bad.mp4').write_bytes(b'\x00garbage' * 64)
  write_jsonl(folder / 'captions.jsonl', [ROWS[0], ('bad.mp4', 'broken'), ROWS[2]])
  source = sources.VideoFolderSource(folder)
  with caplog.at_level(logging.WARNING):
    first, again = source[1], source[1]
  assert first['caption'] == again['caption'] == ROWS[2][1]  # the next readable record, every time
  assert first['index'] == 2
  np.testing.assert_array_equal(first['frames'], source[2]['frames'])
  assert source.num_skipped == 1
  assert sum('bad.mp4' in r.getMessage() for r in caplog.records) == 1  # warned once per file


def test_all_videos_corrupt_fails(tmp_path):
  (tmp_path / 'x.mp4').write_bytes(b'junk' * 10)
  write_jsonl(tmp_path / 'captions.jsonl', [('x.mp4', 'x')])
  with pytest.raises(video_io.VideoReadError, match='None of the 1 videos'):
    sources.VideoFolderSource(tmp_path)[0]


def test_folder_errors_are_clear(tmp_path, folder):
  empty = tmp_path / 'empty'
  empty.mkdir()
  with pytest.raises(FileNotFoundError, match='no video files'):
    sources.VideoFolderSource(empty)
  with pytest.raises(FileNotFoundError, match='does not exist'):
    sources.VideoFolderSource(tmp_path / 'nowhere')
  with pytest.raises(FileNotFoundError, match='captions.jsonl'):  # videos but no caption file
    sources.VideoFolderSource(folder)
  with pytest.raises(FileNotFoundError, match='other.jsonl'):
    sources.VideoFolderSource(folder, captions=folder / 'other.jsonl')
  write_jsonl(folder / 'captions.jsonl', [ROWS[0], ('gone.mp4', 'missing')])
  with pytest.raises(FileNotFoundError, match=r'captions.jsonl:2 names .gone.mp4'):
    sources.VideoFolderSource(folder)
  (folder / 'captions.jsonl').write_text('{"file": "a.mp4"}\n')
  with pytest.raises(ValueError, match='"caption"'):
    sources.VideoFolderSource(folder)


def test_array_record_round_trip_with_extra_keys(tmp_path):
  from array_record.python import array_record_module
  records = []
  for i in range(5):
    records.append({
        'frames': tiny_video(i + 1, level=i), 'caption': f'video {i} ✓', 'fps': np.float32(8),
        'index': np.int64(i), 'positions': np.random.default_rng(i).normal(size=(i + 1, 3, 2)).astype(np.float32),
        'colors': np.array(['red', 'blue', 'green']), 'num_objects': np.int32(3), 'has_gravity': np.bool_(i % 2),
        'file': '', 'allow_pickle': np.uint16(7),  # names that np.savez could not take
    })
  for shard, part in enumerate([records[:3], records[3:]]):
    writer = array_record_module.ArrayRecordWriter(str(tmp_path / f'train-{shard:05d}-of-00002.array_record'),
                                                   'group_size:1')
    for record in part:
      writer.write(sources.encode_record(record))
    writer.close()
  source = sources.ArrayRecordSource(str(tmp_path / 'train-*.array_record'))
  assert len(source) == 5 and len(source.paths) == 2
  for i, expected in enumerate(records):
    got = source[i]
    check_layout(got, i)
    assert set(got) == set(expected)
    for key, value in expected.items():
      assert type(got[key]) is type(value) or isinstance(value, np.ndarray), key
      if isinstance(value, np.ndarray):
        assert got[key].dtype == value.dtype and got[key].shape == value.shape, key
      np.testing.assert_array_equal(got[key], value)
  assert [r['caption'] for r in source.__getitems__([4, 0])] == ['video 4 ✓', 'video 0 ✓']
  assert sources.ArrayRecordSource(tmp_path).paths == source.paths  # a folder means its shards
  assert pickle.loads(pickle.dumps(source))[3]['caption'] == 'video 3 ✓'


def test_array_record_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match='matches no files'):
    sources.ArrayRecordSource(str(tmp_path / 'none-*.array_record'))
  with pytest.raises(ValueError, match='dtype object'):
    sources.encode_record({'x': np.array([1, 'a', None], dtype=object)})


def test_a_caption_file_that_is_not_utf8_is_a_clear_error(folder):
  (folder / 'captions.jsonl').write_bytes(b'{"file": "a.mp4", "caption": "\xff\xfe"}\n')
  with pytest.raises(ValueError, match=r'captions.jsonl is not UTF-8 text \(invalid start byte at byte 30\)'):
    sources.VideoFolderSource(folder)


def test_pickled_folder_source_reads_the_same(folder):
  write_jsonl(folder / 'captions.jsonl', ROWS)
  source = sources.VideoFolderSource(folder)
  clone = pickle.loads(pickle.dumps(source))
  assert len(clone) == 3
  np.testing.assert_array_equal(clone[2]['frames'], source[2]['frames'])


# ---- TFDS: a tiny dataset built here, offline --------------------------------------------

@pytest.fixture(scope='module')
def tfds_dir(tmp_path_factory):
  tfds = pytest.importorskip('tensorflow_datasets')

  class VidgenTinyVideos(tfds.core.GeneratorBasedBuilder):
    """Three videos of different lengths; nothing to download."""
    VERSION = tfds.core.Version('1.0.0')
    # No code folder (checksums, metadata): TFDS would otherwise look one up through
    # importlib_resources, which this environment lacks, because this class lives in a package.
    code_path = None

    def _info(self):
      return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
          'video': tfds.features.Video(shape=(None, 16, 16, 3)),
          'caption': tfds.features.Text(),
          'label': tfds.features.ClassLabel(names=['cat', 'dog']),
      }))

    def _split_generators(self, dl_manager):
      return {'train': self._generate_examples(3), 'test': self._generate_examples(1)}

    def _generate_examples(self, n):
      for i in range(n):
        yield i, {'video': tiny_video(i + 2, level=40 * i), 'caption': f'tfds video {i}', 'label': i % 2}

  data_dir = tmp_path_factory.mktemp('tfds')
  VidgenTinyVideos(data_dir=str(data_dir), file_format='array_record').download_and_prepare()
  return str(data_dir)


def test_tfds_source(tfds_dir):
  source = sources.TfdsSource('vidgen_tiny_videos', 'train', tfds_dir, fps=12.0)
  assert len(source) == 3
  seen = {}
  for i in range(3):
    record = source[i]
    check_layout(record, i)
    assert record['fps'] == 12.0
    seen[record['caption']] = record['frames']
  for i in range(3):  # TFDS shuffles examples when it prepares them; match them by caption
    np.testing.assert_array_equal(seen[f'tfds video {i}'], tiny_video(i + 2, level=40 * i))
  clone = pickle.loads(pickle.dumps(source))
  np.testing.assert_array_equal(clone[1]['frames'], source[1]['frames'])
  labelled = sources.TfdsSource('vidgen_tiny_videos', 'train', tfds_dir, caption_key='label')
  assert {labelled[i]['caption'] for i in range(3)} == {'cat', 'dog'}
  with pytest.raises(KeyError, match='no feature .clip.*caption, label, video'):
    sources.TfdsSource('vidgen_tiny_videos', 'train', tfds_dir, video_key='clip')
  with pytest.raises(ValueError, match='file_format=array_record'):
    sources.TfdsSource('vidgen_no_such_dataset', 'train', tfds_dir)


# ---- make_source --------------------------------------------------------------------------

def test_make_source_dispatches(folder, tfds_dir):
  write_jsonl(folder / 'captions.jsonl', ROWS)
  config = common.data_config()
  config.source = 'folder'
  config.folder.path = str(folder)
  train = sources.make_source(config, 'train', 0)  # the side of the folder not held out
  assert isinstance(train, sources.SubsetSource) and len(train) == 3
  config.source = 'tfds'
  config.tfds.update(name='vidgen_tiny_videos', data_dir=tfds_dir)
  test = sources.make_source(config, 'test', 0)
  assert isinstance(test, sources.TfdsSource) and len(test) == 1
  config.source = 'array_record'
  with pytest.raises(ValueError, match='array_record.pattern'):
    sources.make_source(config, 'train', 0)
  config.source = 'folders'
  with pytest.raises(ValueError, match="Unknown data.source 'folders'.*world, folder, array_record, tfds"):
    sources.make_source(config, 'train', 0)
  config.source = 'folder'
  config.folder.path = ''
  with pytest.raises(ValueError, match='data.folder.path'):
    sources.make_source(config, 'train', 0)


# ---- held-out splits of folders and shards --------------------------------------------------

class Names:
  """A source of n records named by their index."""

  def __init__(self, n):
    self.n = n

  def __len__(self):
    return self.n

  def __getitem__(self, index):
    return {'caption': f'video {index}', 'index': np.int64(index)}


def test_a_hash_split_is_disjoint_complete_and_stable():
  names = [f'clips/{i:04d}.mp4' for i in range(2000)]
  train = sources.split_source(Names(2000), names, 'train', 0.1, 'folder')
  held = sources.split_source(Names(2000), names, 'eval', 0.1, 'folder')
  train_ids = {int(train[i]['caption'].split()[1]) for i in range(len(train))}
  held_ids = {int(held[i]['caption'].split()[1]) for i in range(len(held))}
  assert not train_ids & held_ids and len(train_ids | held_ids) == 2000
  assert 160 <= len(held) <= 240  # about 10%
  assert [held[i]['index'] for i in range(3)] == [0, 1, 2]  # renumbered: source[r['index']] is r
  assert '10% held out by name hash (' in held.description
  more = sources.split_source(Names(2100), names + [f'new/{i}.mp4' for i in range(100)], 'eval', 0.1, 'folder')
  assert held_ids <= {int(more[i]['caption'].split()[1]) for i in range(len(more))}  # adding files moves none


def test_folder_eval_split_reads_its_own_folder_or_the_held_out_files(folder, tmp_path_factory):
  write_jsonl(folder / 'captions.jsonl', ROWS)
  config = common.data_config(source='folder')
  config.folder.path = str(folder)
  config.folder.eval_fraction = 0.0
  assert isinstance(sources.make_source(config, 'train', 0), sources.VideoFolderSource)  # nothing held out
  with pytest.raises(ValueError, match='data.folder has no held-out split.*eval_path.*flatter'):
    sources.make_source(config, 'eval', 0)
  config.folder.eval_fraction = 0.02
  with pytest.raises(ValueError, match=r'held-out side of folder data with 2% held out by name hash \(0 of 3\) is empty'):
    sources.make_source(config, 'eval', 0)
  other = tmp_path_factory.mktemp('eval_videos')
  video_io.write_video(other / 'z.mp4', tiny_video(3, level=90), fps=8)
  write_jsonl(other / 'captions.jsonl', [('z.mp4', 'a held-out video')])
  config.folder.eval_path = str(other)
  held = sources.make_source(config, 'eval', 0)
  assert len(held) == 1 and held[0]['caption'] == 'a held-out video'
  assert len(sources.make_source(config, 'train', 0)) == 3  # with a folder of its own, all of PATH trains
  assert sources.describe_split(config, 'eval') == f'held-out folder data at {other}'


# ---- in memory ----------------------------------------------------------------------------

class ReadCounter:
  """A source that counts how often each record is read."""

  def __init__(self, n=4):
    self.reads = [0] * n

  def __len__(self):
    return len(self.reads)

  def __getitem__(self, index):
    self.reads[index] += 1
    return {'frames': tiny_video(2, level=index), 'caption': f'video {index}', 'fps': np.float32(8),
            'index': np.int64(index)}


def test_in_memory_source_reads_each_record_once_and_serves_the_same_values():
  counter = ReadCounter()
  source = sources.InMemorySource(counter)
  assert len(source) == 4
  for _ in range(3):
    for i in (2, 0, 2, 3):
      got = source[i]
      check_layout(got, i)
      np.testing.assert_array_equal(got['frames'], tiny_video(2, level=i))
  assert counter.reads == [1, 0, 1, 1]
  with pytest.raises(ValueError, match='read-only'):
    source[0]['frames'][0, 0, 0, 0] = 1  # a later epoch must read what the first did
  source[0]['caption'] = 'changed'  # each read is a new dict: changing one changes no other
  assert source[0]['caption'] == 'video 0'
  with pytest.raises(IndexError, match='out of range'):
    source[4]
  assert pickle.loads(pickle.dumps(source))[3]['caption'] == 'video 3'


def test_make_source_keeps_records_in_memory_when_asked(folder):
  write_jsonl(folder / 'captions.jsonl', ROWS)
  config = common.data_config()
  config.update(source='folder', keep_in_memory=True)
  config.folder.path = str(folder)
  source = sources.make_source(config, 'train', 0)
  plain = sources.VideoFolderSource(folder)
  assert isinstance(source, sources.InMemorySource) and len(source) == len(plain)
  for i in range(len(plain)):
    np.testing.assert_array_equal(source[i]['frames'], plain[i]['frames'])
    assert source[i]['caption'] == plain[i]['caption']
