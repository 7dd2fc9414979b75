"""Tests for vidgen/world/probe.py: the probe agrees with the world's truth, and not with noise.

The agreement test is what makes probe scores of generated videos meaningful: on ground-truth
world videos of every size, length and option, the probe must read back what was rendered.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from vidgen.world import probe
from vidgen.world import scenes as world
from vidgen.world.scenes import WorldSpec

SIZES = [(32, 32), (32, 48), (48, 32), (64, 64)]
FRAMES = [1, 5, 17, 33]
OPTIONS = [
    dict(),
    dict(gravity_prob=1.0),
    dict(occluder_prob=1.0),
    dict(gravity_prob=0.5, occluder_prob=0.5, pan_prob=1.0),
]
PER_CELL = 8  # 4 sizes x 4 lengths x 4 options x 8 = 512 videos


def _records():
  for (h, w), t, options in itertools.product(SIZES, FRAMES, OPTIONS):
    spec = WorldSpec(h, w, t, **options)
    for i in range(PER_CELL):
      yield world.render(spec, 'eval', 11, i)


@pytest.fixture(scope='module')
def agreement():
  scores = [probe.score_against_truth(probe.probe_video(r['frames']), r) for r in _records()]
  return probe.aggregate(scores)


def test_probe_agrees_with_the_truth(agreement):
  a = agreement
  print('probe agreement on', a['num_videos'], 'world videos:',
        {k: round(v, 4) for k, v in a.items() if isinstance(v, float)},
        {k: v for k, v in a.items() if k.startswith('num_')})
  assert a['num_videos'] >= 500
  for metric in ('color', 'shape', 'count'):
    assert a[metric] >= 0.99, (metric, a[metric])
  assert a['direction'] >= 0.98
  assert a['num_direction'] >= 500
  for metric in ('size', 'speed', 'background', 'occluder', 'pan'):
    assert a[metric] >= 0.98, (metric, a[metric])
  assert a['gravity'] >= 0.95
  assert a['consistency'] >= 0.98
  assert a['physics_residual'] < 0.6  # px/frame^2: pixel rounding of the centroids


def test_permanence_on_occluder_videos():
  scores = []
  for (h, w), i in itertools.product([(32, 32), (48, 32), (64, 64)], range(40)):
    record = world.render(WorldSpec(h, w, 33, occluder_prob=1.0), 'train', 12, i)
    scores.append(probe.score_against_truth(probe.probe_video(record['frames']), record))
  a = probe.aggregate(scores)
  print('permanence:', a['permanence'], 'over', a['num_permanence'], 'cases')
  assert a['num_permanence'] >= 15
  assert a['permanence'] >= 0.95


def test_noise_scores_far_below_the_truth(agreement):
  rng = np.random.default_rng(0)
  scores = []
  for record in itertools.islice(_records(), 0, None, 4):
    noise = rng.integers(0, 256, record['frames'].shape, dtype=np.uint8)
    scores.append(probe.score_against_truth(probe.probe_video(noise), record))
  a = probe.aggregate(scores)
  for metric in ('color', 'shape', 'count', 'direction', 'background'):
    assert a[metric] <= 0.2, (metric, a[metric])
    assert a[metric] < agreement[metric] - 0.75


def test_reads_one_video():
  spec = WorldSpec(32, 48, 17, min_objects=2, max_objects=2, still_prob=0.0)
  record = world.render(spec, 'train', 0, 3)
  result = probe.probe_video(record['frames'])
  assert (result.num_frames, result.height, result.width) == (17, 32, 48)
  assert sorted(result.colors) == sorted(world.COLOR_NAMES[c] for c in record['object_color'][:2])
  for k in range(2):
    obj = result.object(world.COLOR_NAMES[record['object_color'][k]])
    assert obj.shape == world.SHAPES[record['object_shape'][k]]
    assert obj.direction == world.DIRECTION_NAMES[record['object_direction'][k]]
    assert obj.centers.shape == (17, 2) and obj.visible.shape == (17,)
    seen = obj.visible
    np.testing.assert_allclose(obj.centers[seen], record['centers'][seen, k], atol=1.0)
  assert result.object('nothing') is None
  assert result.background == world.BACKGROUND_NAMES[record['background']]


def test_accepts_pipeline_floats_and_single_frames():
  record = world.render(WorldSpec(32, 32, 5), 'train', 0, 0)
  as_uint8 = probe.probe_video(record['frames'])
  as_float = probe.probe_video(record['frames'].astype(np.float32) / 127.5 - 1.0)
  assert as_float.colors == as_uint8.colors
  assert [o.shape for o in as_float.objects] == [o.shape for o in as_uint8.objects]
  image = probe.probe_video(record['frames'][0])
  assert image.num_frames == 1 and image.colors == as_uint8.colors
  assert all(o.direction is None for o in image.objects)
  with pytest.raises(ValueError, match=r'\[T, H, W, 3\]'):
    probe.probe_video(np.zeros((5, 32, 32)))


def test_parse_caption_reads_both_forms():
  spec = WorldSpec(32, 32, 17, gravity_prob=0.3, occluder_prob=0.3, pan_prob=0.3)
  for i in range(200):
    scene = world.make_scene(spec, 'train', 4, i)
    want = [(world.COLOR_NAMES[o.color], world.SHAPES[o.shape]) for o in scene.objects]
    short = probe.parse_caption(scene.caption_short)
    assert [(o['color'], o['shape']) for o in short['objects']] == want
    assert short['count'] == len(want) and not short['descriptive'] and short['background'] is None
    desc = probe.parse_caption(scene.caption_descriptive)
    assert [(o['color'], o['shape']) for o in desc['objects']] == want, scene.caption_descriptive
    assert desc['sizes'] == [world.SIZE_NAMES[o.size] for o in scene.objects]
    assert [o['direction'] for o in desc['objects']] == [world.DIRECTION_NAMES[o.direction] for o in scene.objects]
    assert [o['speed'] for o in desc['objects']] == [
        world.SPEED_NAMES[o.speed] if o.speed >= 0 else None for o in scene.objects]
    assert desc['background'] == world.BACKGROUND_NAMES[scene.background]
    assert desc['gravity'] == scene.gravity and desc['occluder'] == (scene.occluder is not None)
    assert desc['pan'] == tuple(int(np.sign(v)) for v in scene.pan)
  parsed = probe.parse_caption('a large red circle moves slowly to the right on a navy background '
                               'and bounces off the wall')
  assert parsed['objects'] == [dict(color='red', shape='circle', size='large', direction='east', speed='slow')]
  assert parsed['background'] == 'navy' and parsed['count'] == 1


def test_scores_against_captions():
  spec = WorldSpec(32, 32, 17, gravity_prob=0.2, occluder_prob=0.2, pan_prob=0.2)
  records = [world.render(spec, 'eval', 5, i) for i in range(40)]
  videos = [r['frames'] for r in records]
  right = probe.score_videos(videos, captions=[r['caption_descriptive'] for r in records])
  wrong = probe.score_videos(videos, captions=[records[(i + 1) % 40]['caption_descriptive'] for i in range(40)])
  for metric in ('color', 'shape', 'size', 'count', 'direction', 'background'):
    assert right[metric] >= 0.97, (metric, right[metric])
    assert wrong[metric] < right[metric] - 0.3, (metric, wrong[metric])
  short = probe.score_videos(videos, captions=[r['caption_short'] for r in records])
  assert short['color'] >= 0.97 and short['direction'] is None and short['background'] is None
  with pytest.raises(ValueError, match='exactly one reference'):
    probe.score_videos(videos)


def _blur(frames: np.ndarray) -> np.ndarray:
  """A 3x3 binomial blur, as a stand-in for the softness of generated video."""
  x = frames.astype(np.float32)
  x = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode='edge')
  x = (x[:, :-2] + 2 * x[:, 1:-1] + x[:, 2:]) / 4
  x = (x[:, :, :-2] + 2 * x[:, :, 1:-1] + x[:, :, 2:]) / 4
  return np.clip(np.round(x), 0, 255).astype(np.uint8)


def test_soft_noisy_videos_still_read():
  rng = np.random.default_rng(1)
  spec = WorldSpec(32, 32, 17, gravity_prob=0.2, occluder_prob=0.2, pan_prob=0.2)
  records = [world.render(spec, 'eval', 6, i) for i in range(40)]
  videos = [np.clip(_blur(r['frames']) + rng.normal(0, 5, r['frames'].shape), 0, 255).astype(np.uint8)
            for r in records]
  a = probe.score_videos(videos, records=records)
  for metric in ('color', 'count', 'direction'):
    assert a[metric] >= 0.95, (metric, a[metric])
  assert a['shape'] >= 0.85


def test_aggregate_weights_by_what_was_scored():
  one = {name: None for name in probe.ACCURACIES}
  one.update(color=1.0, physics_residual=0.5, consistency=1.0)
  one['weights'] = {name: 0 for name in probe.ACCURACIES} | {'color': 3}
  two = dict(one, color=0.0, physics_residual=1.5, weights=dict(one['weights'], color=1))
  a = probe.aggregate([one, two])
  assert a['color'] == 0.75 and a['num_color'] == 4
  assert a['physics_residual'] == 1.0 and a['shape'] is None and a['num_videos'] == 2
