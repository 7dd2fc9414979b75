"""Coherence over time: ≈ 1 on real long world videos, and each failure it names is caught."""

import numpy as np
import pytest

from vidgen.world import scenes as world
from vidgen.eval import coherence

SPEC = world.WorldSpec(max_objects=1, occluder_prob=0.5)
FPS = 8.0


@pytest.fixture(scope='module')
def long_videos():
  return [world.render_long(SPEC, 'eval', 0, i, 161) for i in range(8)]


def test_windows_share_their_boundary_frames():
  assert coherence.window_bounds(481, FPS)[:2] == [(0, 17), (16, 33)]
  assert len(coherence.window_bounds(481, FPS)) == 30
  assert coherence.window_bounds(37, FPS)[-1] == (16, 37)  # a 0.5 s tail joins the window before
  with pytest.raises(ValueError, match='shorter than one 2 s window'):
    coherence.window_bounds(9, FPS)


def test_seconds_round_up_to_a_length_the_vae_makes():
  assert coherence.seconds_to_frames(60, FPS, 4) == 481
  assert coherence.seconds_to_frames(1.3, FPS, 4) == 13
  with pytest.raises(ValueError, match='seconds must be > 0'):
    coherence.seconds_to_frames(0, FPS, 4)


def test_real_long_videos_hold_and_noise_does_not(long_videos):
  scores = [coherence.score_long_video(r['frames'], r['caption'], FPS) for r in long_videos]
  summary = coherence.summarize(scores, FPS)
  for metric in ('identity', 'background', 'motion', 'bounce', 'teleport', 'holds'):
    assert summary['overall'][metric].value >= 0.95, (metric, summary['overall'][metric])
  assert len(summary['by_window']['holds']) == 10
  noise = np.random.default_rng(0).integers(0, 256, (161, 32, 32, 3), dtype=np.uint8)
  noisy = coherence.summarize([coherence.score_long_video(noise, long_videos[0]['caption'], FPS)], FPS)
  assert noisy['overall']['identity'].value == 0.0 and noisy['overall']['holds'].value == 0.0


def test_a_frozen_video_fails_motion_and_a_jump_fails_teleport(long_videos):
  record = next(r for r in long_videos if r['object_speed'][0] >= 0 and not r['occluder'])
  frozen = np.repeat(record['frames'][:1], 161, axis=0)
  scores = coherence.score_long_video(frozen, record['caption'], FPS)
  assert all(w['motion'] == 0.0 and w['holds'] == 0.0 for w in scores)
  jumped = np.concatenate([record['frames'][:40], record['frames'][100:]])[:161]
  jumped = np.concatenate([jumped, record['frames'][-(161 - len(jumped)):]]) if len(jumped) < 161 else jumped
  scores = coherence.score_long_video(jumped, record['caption'], FPS)
  assert scores[2]['teleport'] == 0.0  # frames 32..48 hold the cut at 39 → 40
  assert scores[0]['teleport'] == 1.0


def test_long_world_videos_continue_their_clip_with_the_same_physics():
  for i in range(6):
    clip, long = world.render(SPEC, 'eval', 0, i), world.render_long(SPEC, 'eval', 0, i, 481)
    np.testing.assert_array_equal(long['frames'][:17], clip['frames'])
    assert long['caption'] == clip['caption'] and long['frames'].shape[0] == 481
    steps = np.diff(long['centers'][:, 0], axis=0)
    speed = np.hypot(*steps.T)
    moving = speed[~long['bounces'][1:, 0]]
    assert np.allclose(moving, moving[0], atol=1e-4)  # constant speed between bounces
    if clip['object_speed'][0] >= 0:
      assert long['bounces'][:, 0].sum() >= 2  # a minute of motion meets the walls
