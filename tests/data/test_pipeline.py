"""The Grain pipeline: clip cutting, scaling, sharding, determinism and exact resume."""

import numpy as np
import pytest

from experiments.configs import common
import ml_collections
from vidgen.data import pipeline


class CountingSource:
  """Videos whose pixel values are their frame numbers, so a clip's frames can be read back."""

  def __init__(self, num_records=10, num_frames=40, height=24, width=36, fps=16.0):
    self.num_records, self.num_frames, self.height, self.width, self.fps = (
        num_records, num_frames, height, width, fps)

  def __len__(self):
    return self.num_records

  def __getitem__(self, index):
    index = int(index)
    frames = np.broadcast_to(np.arange(self.num_frames, dtype=np.uint8)[:, None, None, None] * 5,
                             (self.num_frames, self.height, self.width, 3)).copy()
    frames[..., 2] = index  # the record's identity in the blue channel
    return {'frames': frames, 'caption': f'video {index}', 'fps': np.float32(self.fps),
            'index': np.int64(index)}


def _config(**data):
  config = ml_collections.ConfigDict({'seed': 3, 'data': common.data_config()})
  config.data.update(dict(num_frames=5, height=16, width=16, fps=8.0, batch_size=2))
  config.data.update(data)
  return config


def _take(dataset, n):
  it = iter(dataset)
  return [next(it) for _ in range(n)]


def test_batches_have_the_clip_shape_and_range():
  (batch,) = _take(pipeline.make_dataset(_config(), source=CountingSource()), 1)
  assert batch['video'].shape == (2, 5, 16, 16, 3)
  assert batch['video'].dtype == np.float32
  assert batch['video'].min() >= -1.0 and batch['video'].max() <= 1.0
  assert batch['index'].shape == (2,)
  assert list(batch['caption']) == [f'video {i}' for i in batch['index']]


def test_temporal_sampling_follows_the_fps_ratio():
  config = _config(clip_start='start', shuffle=False)
  (batch,) = _take(pipeline.make_dataset(config, source=CountingSource(fps=16.0)), 1)
  frame_numbers = np.round((batch['video'][0, :, 8, 8, 0] + 1) * 127.5 / 5)
  np.testing.assert_array_equal(frame_numbers, [0, 2, 4, 6, 8])  # 16 fps source, 8 fps clip


@pytest.mark.parametrize('clip_start,first', [('start', 0), ('center', 15)])
def test_clip_start(clip_start, first):
  spec = pipeline.ClipSpec(num_frames=5, height=8, width=8, fps=8.0, clip_start=clip_start)
  idx = pipeline.clip_frame_indices(40, 16.0, spec, np.random.default_rng(0))
  np.testing.assert_array_equal(idx, first + np.arange(0, 10, 2))


def test_random_clip_start_stays_inside_the_video():
  spec = pipeline.ClipSpec(num_frames=5, height=8, width=8, fps=8.0, clip_start='random')
  starts = {pipeline.clip_frame_indices(12, 8.0, spec, np.random.default_rng(s))[0] for s in range(50)}
  assert starts == set(range(8))


def test_short_clip_policies():
  spec = dict(num_frames=6, height=8, width=8, fps=8.0)
  rng = np.random.default_rng(0)
  with pytest.raises(ValueError, match='short_clip'):
    pipeline.clip_frame_indices(4, 8.0, pipeline.ClipSpec(**spec), rng)
  np.testing.assert_array_equal(
      pipeline.clip_frame_indices(4, 8.0, pipeline.ClipSpec(**spec, short_clip='loop'), rng), [0, 1, 2, 3, 0, 1])
  np.testing.assert_array_equal(
      pipeline.clip_frame_indices(4, 8.0, pipeline.ClipSpec(**spec, short_clip='pad'), rng), [0, 1, 2, 3, 3, 3])


def test_bad_clip_options_fail_early():
  with pytest.raises(ValueError, match='clip_start'):
    pipeline.ClipSpec(num_frames=5, height=8, width=8, fps=8.0, clip_start='middle')
  with pytest.raises(ValueError, match='batch_size'):
    pipeline.make_dataset(_config(batch_size=3), source=CountingSource(), process_count=2, process_index=0)


def test_resize_keeps_aspect_and_crops():
  frames = np.zeros((2, 20, 40, 3), np.uint8)
  frames[:, :, 20:] = 200  # right half bright
  out = pipeline.resize_and_crop(frames, 10, 10, 'center', np.random.default_rng(0))
  assert out.shape == (2, 10, 10, 3)
  # 20x40 → 10x20, centre crop is columns 5..15: left half dark, right half bright.
  assert out[0, 5, 1, 0] < 20 and out[0, 5, 8, 0] > 180


def test_same_seed_same_batches_other_seed_other_order():
  first = _take(pipeline.make_dataset(_config(), source=CountingSource()), 3)
  again = _take(pipeline.make_dataset(_config(), source=CountingSource()), 3)
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a['video'], b['video'])
    np.testing.assert_array_equal(a['index'], b['index'])
  config = _config()
  config.seed = 4
  reseeded = _take(pipeline.make_dataset(config, source=CountingSource()), 3)
  assert [list(b['index']) for b in reseeded] != [list(b['index']) for b in first]


def test_each_epoch_visits_every_record_once_in_a_new_order():
  batches = _take(pipeline.make_dataset(_config(), source=CountingSource(num_records=10)), 10)
  order = np.concatenate([b['index'] for b in batches])
  assert sorted(order[:10]) == list(range(10)) and sorted(order[10:]) == list(range(10))
  assert list(order[:10]) != list(order[10:])


def test_processes_get_disjoint_shards_that_cover_the_data():
  seen = []
  for process_index in range(2):
    ds = pipeline.make_dataset(_config(batch_size=2), source=CountingSource(num_records=8),
                               process_index=process_index, process_count=2, num_epochs=1)
    seen.append(np.concatenate([b['index'] for b in ds]))
  assert set(seen[0]).isdisjoint(seen[1])
  assert sorted(np.concatenate(seen)) == list(range(8))


@pytest.mark.parametrize('num_workers', [0, 2])
def test_restored_iterator_continues_exactly(num_workers):
  config = _config(num_workers=num_workers, clip_start='random', crop='random')
  uninterrupted = _take(pipeline.make_dataset(config, source=CountingSource()), 7)

  it = iter(pipeline.make_dataset(config, source=CountingSource()))
  for _ in range(4):
    next(it)
  state = it.get_state()
  del it
  resumed = iter(pipeline.make_dataset(config, source=CountingSource()))
  resumed.set_state(state)
  for expected in uninterrupted[4:]:
    got = next(resumed)
    np.testing.assert_array_equal(got['index'], expected['index'])
    np.testing.assert_array_equal(got['video'], expected['video'])
