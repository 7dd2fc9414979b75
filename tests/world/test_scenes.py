"""Tests for vidgen/world/scenes.py: determinism, splits, record layout, captions, physics, specs, Grain."""

from __future__ import annotations

import pickle
import time

import grain
import numpy as np
import pytest

from experiments.configs import common
from vidgen.world import scenes as world
from vidgen.world.scenes import WorldSource, WorldSpec

PHYSICS = dict(gravity_prob=0.3, occluder_prob=0.3, pan_prob=0.3)


def _equal(a: dict, b: dict) -> bool:
  return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_same_arguments_same_record_and_different_index_different_record():
  spec = WorldSpec(**PHYSICS)
  for index in range(5):
    assert _equal(world.render(spec, 'train', 3, index), world.render(spec, 'train', 3, index))
  a, b = world.render(spec, 'train', 3, 0), world.render(spec, 'train', 3, 1)
  assert not np.array_equal(a['frames'], b['frames'])
  assert not np.array_equal(world.render(spec, 'train', 4, 0)['frames'], a['frames'])


def test_source_is_deterministic_across_pickling():
  src = WorldSource(WorldSpec(), 'eval', seed=9, size=50)
  clone = pickle.loads(pickle.dumps(src))
  assert len(clone) == 50 and repr(clone) == repr(src)
  assert _equal(clone[7], src[7])
  assert src[7]['index'] == 7 and src[-1]['index'] == 49
  with pytest.raises(IndexError, match='out of range'):
    src[50]


def test_splits_are_disjoint_and_heldout_pairs_only_in_heldout():
  spec = WorldSpec(32, 32, 1)
  heldout = {(world.COLOR_NAMES.index(c), world.SHAPES.index(s)) for c, s in world.HELDOUT_PAIRS}
  for split in ('train', 'eval'):
    for i in range(300):
      scene = world.make_scene(spec, split, 0, i)
      pairs = {(o.color, o.shape) for o in scene.objects}
      assert not pairs & heldout, (split, i, pairs)
  for i in range(300):
    pairs = {(o.color, o.shape) for o in world.make_scene(spec, 'heldout', 0, i).objects}
    assert pairs & heldout, (i, pairs)
  train = [world.render(spec, 'train', 0, i)['frames'] for i in range(20)]
  evals = [world.render(spec, 'eval', 0, i)['frames'] for i in range(20)]
  assert not any(np.array_equal(a, b) for a in train for b in evals)
  with pytest.raises(ValueError, match='Unknown world split'):
    world.render(spec, 'test', 0, 0)


@pytest.mark.parametrize('height,width,num_frames', [(32, 32, 17), (32, 48, 5), (48, 32, 1), (64, 64, 33)])
def test_record_keys_shapes_and_dtypes(height, width, num_frames):
  spec = WorldSpec(height, width, num_frames, fps=12.0, **PHYSICS)
  t, h, w = num_frames, height, width
  expected = {
      'frames': (np.uint8, (t, h, w, 3)), 'fps': (np.float32, ()), 'index': (np.int64, ()),
      'num_objects': (np.int32, ()), 'object_color': (np.int32, (3,)), 'object_shape': (np.int32, (3,)),
      'object_size': (np.int32, (3,)), 'object_direction': (np.int32, (3,)), 'object_speed': (np.int32, (3,)),
      'centers': (np.float32, (t, 3, 2)), 'visible': (np.bool_, (t, 3)), 'bounces': (np.bool_, (t, 3)),
      'background': (np.int32, ()), 'gravity': (np.bool_, ()), 'occluder': (np.bool_, ()),
      'pan': (np.int32, (2,)),
  }
  for i in range(6):
    record = world.render(spec, 'train', 1, i)
    assert set(record) == set(expected) | {'caption', 'caption_short', 'caption_descriptive'}
    for key, (dtype, shape) in expected.items():
      value = np.asarray(record[key])
      assert value.dtype == dtype and value.shape == shape, (key, value.dtype, value.shape)
    for key in ('caption', 'caption_short', 'caption_descriptive'):
      assert isinstance(record[key], str) and record[key]
    assert record['fps'] == np.float32(12.0) and record['index'] == i
    n = int(record['num_objects'])
    assert 1 <= n <= 3
    for key in ('object_color', 'object_shape', 'object_size', 'object_direction'):
      assert np.all(record[key][:n] >= 0) and np.all(record[key][n:] == -1)
    assert not record['visible'][:, n:].any() and not record['centers'][:, n:].any()
    assert len(set(record['object_color'][:n].tolist())) == n  # distinct colours
    if num_frames == 1:
      assert not record['gravity'] and tuple(record['pan']) == (0, 0)


def test_canvas_colours_are_the_palette():
  spec = WorldSpec(**PHYSICS)
  for i in range(10):
    record = world.render(spec, 'train', 0, i)
    bg = np.array(world.BACKGROUNDS[world.BACKGROUND_NAMES[record['background']]])
    allowed = {tuple(bg), tuple(np.clip(bg + world.TEXTURE_DELTA, 0, 255)), world.OCCLUDER_COLOR}
    allowed |= {world.COLORS[world.COLOR_NAMES[c]] for c in record['object_color'][:record['num_objects']]}
    seen = {tuple(p) for p in record['frames'].reshape(-1, 3).tolist()}
    assert seen <= allowed
    assert (world.OCCLUDER_COLOR in seen) == bool(record['occluder'])


def test_captions_name_what_is_shown():
  spec = WorldSpec(caption_style='mixed', **PHYSICS)
  styles = set()
  for i in range(100):
    r = world.render(spec, 'train', 2, i)
    short, desc = r['caption_short'], r['caption_descriptive']
    assert r['caption'] in (short, desc)
    styles.add(r['caption'] == short)
    for k in range(r['num_objects']):
      name = f"{world.COLOR_NAMES[r['object_color'][k]]} {world.SHAPES[r['object_shape'][k]]}"
      assert name in short and name in desc
      assert f"{world.SIZE_NAMES[r['object_size'][k]]} {name}" in desc
    assert f"{world.BACKGROUND_NAMES[r['background']]} background" in desc
    assert ('bounces' in desc) == bool(r['bounces'].any())
    assert ('falls' in desc) == bool(r['gravity'])
    assert ('grey bar' in desc) == bool(r['occluder'])
    assert ('camera pans' in desc) == bool(np.any(r['pan']))
  assert styles == {True, False}
  assert world.render(WorldSpec(caption_style='short'), 'train', 0, 0)['caption'] == \
      world.render(WorldSpec(caption_style='short'), 'train', 0, 0)['caption_short']
  scene = world.make_scene(WorldSpec(min_objects=1, max_objects=1, still_prob=0.0), 'train', 0, 0)
  assert scene.caption_short.removeprefix('a ') == \
      f'{world.COLOR_NAMES[scene.objects[0].color]} {world.SHAPES[scene.objects[0].shape]}'


def test_objects_move_at_constant_velocity_between_bounces_and_stay_inside():
  spec = WorldSpec(48, 32, 33)
  moved = 0
  for i in range(60):
    scene = world.make_scene(spec, 'train', 5, i)
    for obj in scene.objects:
      c = obj.centers
      up, down, left, right = obj.extents
      assert np.all(c[:, 0] - up >= -0.5 - 1e-6) and np.all(c[:, 0] + down <= spec.height - 0.5 + 1e-6)
      assert np.all(c[:, 1] - left >= -0.5 - 1e-6) and np.all(c[:, 1] + right <= spec.width - 0.5 + 1e-6)
      accel = c[2:] - 2 * c[1:-1] + c[:-2]
      smooth = ~(obj.wall_bounces[1:-1] | obj.wall_bounces[2:])
      np.testing.assert_allclose(accel[smooth], 0.0, atol=1e-6)
      dy, dx = world.DIRECTIONS[world.DIRECTION_NAMES[obj.direction]]
      v = c[1] - c[0]  # no bounce in the first frames
      assert np.sign(np.round(v, 6)).tolist() == [dy, dx]
      if obj.speed >= 0:
        expected = world.SPEEDS[world.SPEED_NAMES[obj.speed]] * min(spec.height, spec.width)
        assert np.hypot(*v) == pytest.approx(expected)
        moved += 1
      assert not (obj.wall_bounces[:world.CLEAR_FRAMES + 1]).any()
  assert moved > 50


def test_bounce_reverses_the_velocity_component():
  spec = WorldSpec(32, 32, 33, still_prob=0.0)
  flips = 0
  for i in range(30):
    for obj in world.make_scene(spec, 'train', 6, i).objects:
      v = np.diff(obj.centers, axis=0)
      for t in np.nonzero(obj.wall_bounces)[0]:
        if 2 <= t < len(v):  # velocities of the steps before and after the bounce step
          before, after = v[t - 2], v[t]
          assert np.any(np.sign(before) * np.sign(after) < 0)
          flips += 1
  assert flips > 10


def test_gravity_accelerates_downward_and_bounces_on_the_floor():
  spec = WorldSpec(32, 32, 33, gravity_prob=1.0)
  g = world.gravity_accel(32)
  floors = 0
  for i in range(30):
    scene = world.make_scene(spec, 'train', 7, i)
    assert scene.gravity
    for obj in scene.objects:
      y = obj.centers[:, 0]
      assert y[1] > y[0]  # falls from rest
      accel = y[2:] - 2 * y[1:-1] + y[:-2]
      smooth = ~(obj.floor_bounces[1:-1] | obj.floor_bounces[2:])
      np.testing.assert_allclose(accel[smooth], g, atol=1e-6)
      assert world.DIRECTION_NAMES[obj.direction] in ('east', 'west', 'still')
      assert y.max() <= 32 - 0.5 - obj.extents[1] + 1e-6
      floors += obj.floor_bounces.any()
  assert floors > 10


def test_occluder_is_in_front_and_never_hides_an_object_for_good():
  spec = WorldSpec(32, 32, 17, occluder_prob=1.0)
  behind = 0
  for i in range(40):
    scene = world.make_scene(spec, 'train', 8, i)
    frames, visible = world.render_scene(scene)
    assert scene.occluder is not None
    y0, y1, x0, x1 = scene.occluder
    assert np.all(frames[:, y0:y1, x0:x1] == world.OCCLUDER_COLOR)  # drawn in front of everything
    assert visible[:world.CLEAR_FRAMES + 1].all()  # in view at the start
    behind += sum(o.behind_bar for o in scene.objects)
  assert behind > 10


def test_camera_pan_scrolls_the_texture():
  spec = WorldSpec(32, 48, 9, pan_prob=1.0, min_objects=1, max_objects=1)
  for i in range(10):
    r = world.render(spec, 'train', 9, i)
    dy, dx = (int(v) for v in r['pan'])
    assert (dy, dx) != (0, 0) and max(abs(dy), abs(dx)) <= world.MAX_PAN
    bg = np.array(world.BACKGROUNDS[world.BACKGROUND_NAMES[r['background']]], np.uint8)
    tex = np.clip(bg.astype(int) + world.TEXTURE_DELTA, 0, 255).astype(np.uint8)
    f = r['frames']
    h, w = f.shape[1:3]
    ys, xs = slice(max(0, -dy), min(h, h - dy)), slice(max(0, -dx), min(w, w - dx))
    ys2, xs2 = slice(ys.start + dy, ys.stop + dy), slice(xs.start + dx, xs.stop + dx)
    a, b = f[1:, ys, xs], f[:-1, ys2, xs2]
    background = lambda x: np.all(x == bg, -1) | np.all(x == tex, -1)
    both = background(a) & background(b)
    assert np.array_equal(a[both], b[both])  # frame t+1 at (y, x) shows frame t at (y+dy, x+dx)


def test_bad_specs_fail_with_a_helpful_message():
  with pytest.raises(ValueError, match=r'8x8 is too small.*at least 16'):
    WorldSpec(height=8, width=8)
  with pytest.raises(ValueError, match='num_frames must be >= 1'):
    WorldSpec(num_frames=0)
  with pytest.raises(ValueError, match='fps must be > 0'):
    WorldSpec(fps=0.0)
  with pytest.raises(ValueError, match='min_objects=3 and max_objects=2'):
    WorldSpec(min_objects=3, max_objects=2)
  with pytest.raises(ValueError, match='max_objects=4'):
    WorldSpec(max_objects=4)
  with pytest.raises(ValueError, match=r'occluder_prob is a probability.*got 1.5'):
    WorldSpec(occluder_prob=1.5)
  with pytest.raises(ValueError, match='caption_style'):
    WorldSpec(caption_style='long')


def test_spec_and_source_from_config():
  data = common.data_config()
  data.height, data.width, data.num_frames = 32, 48, 5
  data.world.update(gravity_prob=0.5, caption_style='short', eval_size=7)
  spec = WorldSpec.from_config(data)
  assert (spec.height, spec.width, spec.num_frames, spec.fps) == (32, 48, 5, 8.0)
  assert spec.gravity_prob == 0.5 and spec.caption_style == 'short'
  src = world.make_source(data, 'eval', seed=1)
  assert len(src) == 7 and src.split == 'eval'
  assert len(world.make_source(data, 'heldout', 1)) == data.world.heldout_size
  assert src.caption(3) == src[3]['caption'] == src[3]['caption_short']
  data.height = 8
  with pytest.raises(ValueError, match='too small'):
    WorldSpec.from_config(data)


def test_world_source_batches_with_grain():
  src = WorldSource(WorldSpec(32, 32, 5, **PHYSICS), 'train', seed=0, size=10)
  batch = next(iter(grain.MapDataset.source(src).batch(4)))
  assert batch['frames'].shape == (4, 5, 32, 32, 3) and batch['frames'].dtype == np.uint8
  assert batch['centers'].shape == (4, 5, 3, 2) and batch['pan'].shape == (4, 2)
  assert batch['index'].tolist() == [0, 1, 2, 3]
  assert len(batch['caption']) == 4
  assert isinstance(src, grain.sources.RandomAccessDataSource)


def test_world_is_fast():
  spec = WorldSpec()  # 32x32x17, the default config
  n = 200
  start = time.perf_counter()
  for i in range(n):
    world.render(spec, 'train', 0, i)
  rate = n / (time.perf_counter() - start)
  print(f'world: {rate:.0f} samples/s at 32x32x17 (one process)')
  assert rate > 100
