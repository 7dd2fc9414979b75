"""World metrics: ~100% on ground-truth videos, at or below chance on noise, wrong bounces caught."""

import numpy as np
import pytest

from vidgen import config_lib
from vidgen.world import probe
from vidgen.world import metrics as world_metrics


@pytest.fixture(scope='module')
def records():
  """World videos with every kind of scene: 1-3 objects, gravity, occluders, camera pans."""
  config = config_lib.load_config('experiments/configs/world.py:physics', {'data.world.occluder_prob': 0.6})
  return world_metrics.prompt_records(config.data, 'eval', 0, 48)


def test_ground_truth_videos_score_about_100_percent(records):
  summary = world_metrics.summarize(world_metrics.score_videos([r['frames'] for r in records], records))
  for name in world_metrics.ADHERENCE + ('adherence', 'consistency'):
    assert summary[name].value >= 0.97, (name, summary[name])
  assert summary['bounce'].n >= 20 and summary['bounce'].value >= 0.95
  assert summary['permanence'].n >= 3 and summary['permanence'].value >= 0.9
  assert summary['physics_residual'].value < 0.6  # px/frame²: centroid rounding, no real acceleration
  assert summary['color'].method == 'wilson' and summary['adherence'].method == 'wilson-mean'  # all videos at 1.0
  assert summary['adherence'].low < 1.0


def test_noise_scores_at_or_below_chance(records):
  rng = np.random.default_rng(0)
  noise = [rng.integers(0, 256, r['frames'].shape, dtype=np.uint8) for r in records]
  summary = world_metrics.summarize(world_metrics.score_videos(noise, records))
  for name in world_metrics.ADHERENCE + ('adherence',):
    assert summary[name].value <= world_metrics.BY_NAME[name].chance, (name, summary[name])
    assert summary[name].low <= world_metrics.BY_NAME[name].chance
  assert summary['bounce'].value is None and summary['bounce'].n == 0  # nothing moving to judge


def test_adherence_interval_comes_from_the_videos_when_they_differ(records):
  half = [r['frames'] if i % 2 else np.zeros_like(r['frames']) for i, r in enumerate(records)]
  summary = world_metrics.summarize(world_metrics.score_videos(half, records))
  adherence = summary['adherence']
  assert adherence.method == 'bootstrap' and adherence.low < adherence.value < adherence.high
  assert 0.4 < adherence.value < 0.6


def test_a_reversal_in_mid_air_is_a_wrong_bounce(records):
  """Playing a video forward then backward turns its objects round wherever they are."""
  picked = None
  for r in records:
    if r['gravity'] or r['occluder'] or r['pan'].any() or r['bounces'].any() or r['num_objects'] != 1:
      continue
    result = probe.probe_video(r['frames'])
    if result.objects and result.objects[0].direction not in (None, 'still'):
      picked = r
      break
  assert picked is not None
  frames = picked['frames']
  turned = np.concatenate([frames[:10], frames[8::-1]])
  assert world_metrics.wall_bounces(probe.probe_video(frames)) == []
  assert world_metrics.wall_bounces(probe.probe_video(turned)) == [False]


def test_summary_lists_every_world_metric_and_flat_drops_missing(records):
  no_occluder = next(r for r in records if not r['occluder'])  # permanence has nothing to score
  scores = world_metrics.score_videos([no_occluder['frames']], [no_occluder])
  summary = world_metrics.summarize(scores)
  assert list(summary) == list(world_metrics.WORLD_METRICS)
  flat = world_metrics.flat(summary, prefix='probe/')
  assert all(k.startswith('probe/') and isinstance(v, float) for k, v in flat.items())
  assert summary['permanence'].value is None and 'probe/permanence' not in flat
  assert {f'probe/{k}' for k, e in summary.items() if e.value is not None} == set(flat)
