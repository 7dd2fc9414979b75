"""World metrics of a set of videos: what the probe reads, against each prompt's ground truth, with intervals.

Each video is probed once (vidgen/world/probe.py) and scored against the world record its
prompt came from; a set's metrics pool those scores. Definitions (and what a uniform guess
would score) live in METRICS, so the report, the JSON and the plots say the same thing.

Prompt adherence is measured against ground truth, not against a re-parse of the caption:
the record says exactly which objects, colours and motions the prompt describes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from vidgen.world import probe, scenes as world
from vidgen.eval import intervals


@dataclasses.dataclass(frozen=True)
class Metric:
  """One reported number: how it pools over videos and what it means."""
  name: str
  group: str
  kind: str  # 'accuracy': pooled hits / count (Wilson) | 'mean': mean over videos (bootstrap)
  #            | 'average': mean of the ADHERENCE accuracies (bootstrap) | 'distance' (jackknife)
  description: str
  chance: float | None = None  # what guessing uniformly among the world's options scores
  higher_is_better: bool = True


ADHERENCE = ('color', 'shape', 'size', 'count', 'direction', 'speed', 'background')
_CHANCE = {'color': 1 / len(world.COLOR_NAMES), 'shape': 1 / len(world.SHAPES), 'size': 1 / len(world.SIZE_NAMES),
           'count': 1 / world.MAX_OBJECTS, 'direction': 1 / len(world.DIRECTION_NAMES),
           'speed': 1 / len(world.SPEED_NAMES), 'background': 1 / len(world.BACKGROUND_NAMES)}

METRICS: tuple[Metric, ...] = (
    Metric('adherence', 'prompt adherence', 'average', 'mean of the seven accuracies below',
           float(np.mean(list(_CHANCE.values())))),
    Metric('color', 'prompt adherence', 'accuracy', "the prompt's objects found in their colour", _CHANCE['color']),
    Metric('shape', 'prompt adherence', 'accuracy', "the prompt's objects found with their shape", _CHANCE['shape']),
    Metric('size', 'prompt adherence', 'accuracy', "the prompt's objects found at their size (small/large)",
           _CHANCE['size']),
    Metric('count', 'prompt adherence', 'accuracy', 'videos with as many objects as the prompt', _CHANCE['count']),
    Metric('direction', 'prompt adherence', 'accuracy',
           "the prompt's objects moving its way (8 compass directions or still)", _CHANCE['direction']),
    Metric('speed', 'prompt adherence', 'accuracy', "the prompt's moving objects at its speed (slow/fast)",
           _CHANCE['speed']),
    Metric('background', 'prompt adherence', 'accuracy', "videos with the prompt's background colour",
           _CHANCE['background']),
    Metric('physics_residual', 'motion', 'mean',
           'mean size of objects\' acceleration away from bounces, gravity removed (px/frame²; 0: constant velocity)',
           higher_is_better=False),
    Metric('bounce', 'motion', 'accuracy',
           'direction reversals that happen against a wall, of those the probe reads (truth-free)'),
    Metric('consistency', 'consistency', 'mean',
           'frame steps where an object keeps its shape, does not jump and does not vanish in the open'),
    Metric('permanence', 'permanence', 'accuracy',
           'objects that come out from behind the occluder where their motion says (occluder prompts only)'),
    Metric('fvd', 'distribution', 'distance',
           'Fréchet distance to the real videos of the prompts, in world feature net space (0: same distribution)',
           higher_is_better=False),
)
BY_NAME = {m.name: m for m in METRICS}
WORLD_METRICS = tuple(m.name for m in METRICS if m.kind != 'distance')

# A reversal is read from at least this many clean frames around the probe's bounce frame,
# and counts as at a wall when the object's edge is within its speed + this many px of it.
_BOUNCE_WINDOW = 4
_BOUNCE_MIN_FRAMES = 4
_WALL_TOLERANCE = 1.5
_MIN_SPEED = 0.1  # px/frame: slower than this is no motion to reverse


def prompt_records(data_config: Any, split: str, seed: int, num: int, start: int = 0) -> list[dict[str, Any]]:
  """World records start … start + num − 1 of `split`: a fixed prompt set (their captions) and its truth."""
  source = world.make_source(data_config, split, seed)
  if start + num > len(source):
    raise ValueError(f'The world {split} split has {len(source)} videos; {start + num} were asked for.')
  return [source[i] for i in range(start, start + num)]


def wall_bounces(result: probe.ProbeResult) -> list[bool]:
  """For each direction reversal the probe reads, whether it happens against a wall.

  Truth-free, so it applies to generated videos, whose prompts do not fix where objects
  start (and so when they bounce). Around each bounce frame the probe found, the object's
  track along each axis is fitted before and after its extreme point; a reversal is a sign
  change of that velocity (both sides faster than _MIN_SPEED). It is right if the object's
  edge then touches the wall it was moving towards. Under gravity the top of a fall is not
  a bounce. Track kinks without a reversal are not judged.
  """
  out = []
  side = min(result.height, result.width)
  limits = (result.height - 1, result.width - 1)
  for obj in result.objects:
    up, down, left, right = world.object_extents(obj.shape, world.SIZES[obj.size] * side)
    low_reach, high_reach = (up, left), (down, right)
    for f in obj.bounce_frames:
      frames = np.array([t for t in range(f - _BOUNCE_WINDOW, f + _BOUNCE_WINDOW)
                         if 0 <= t < len(obj.clean) and obj.clean[t]])
      if len(frames) < _BOUNCE_MIN_FRAMES:
        continue
      verdict = None
      for axis in (0, 1):
        c = obj.centers[frames, axis]
        v0 = np.polyfit(frames[:2], c[:2], 1)[0]
        if abs(v0) < _MIN_SPEED:
          continue
        k = int(np.argmax(c) if v0 > 0 else np.argmin(c))
        if k < 1 or k > len(frames) - 2:
          continue  # no turn inside the window
        before = np.polyfit(frames[:k + 1], c[:k + 1], 1)[0]
        after = np.polyfit(frames[k:], c[k:], 1)[0]
        if before * after >= 0 or min(abs(before), abs(after)) < _MIN_SPEED:
          continue
        if result.gravity and axis == 0 and before < 0:
          continue  # the top of a fall
        tol = abs(before) + _WALL_TOLERANCE
        if before > 0:
          at_wall = c[k] + high_reach[axis] >= limits[axis] + 0.5 - tol
        else:
          at_wall = c[k] - low_reach[axis] <= -0.5 + tol
        verdict = bool(verdict) or bool(at_wall)
      if verdict is not None:
        out.append(verdict)
  return out


def score_video(video: np.ndarray, record: Mapping[str, Any]) -> dict[str, Any]:
  """Probe scores of a video against the record its prompt came from (probe.score_against_truth) + 'bounce'."""
  result = probe.probe_video(video)
  score = probe.score_against_truth(result, record)
  bounces = wall_bounces(result)
  score['bounce'] = float(np.mean(bounces)) if bounces else None
  score['weights'] = {**score['weights'], 'bounce': len(bounces)}
  return score


def score_videos(videos: Iterable[np.ndarray], records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
  """Per-video scores; videos and records in the same order."""
  videos = list(videos)
  if len(videos) != len(records):
    raise ValueError(f'score_videos got {len(videos)} videos but {len(records)} records.')
  return [score_video(v, r) for v, r in zip(videos, records)]


def _hits_and_counts(scores: Sequence[Mapping[str, Any]], name: str) -> tuple[np.ndarray, np.ndarray]:
  """Per video: how many things `name` scored right, and how many it scored."""
  counts = np.array([s['weights'].get(name, 0) if s.get(name) is not None else 0 for s in scores], np.float64)
  hits = np.array([s[name] * s['weights'][name] if s.get(name) is not None else 0.0 for s in scores], np.float64)
  return hits, counts


def accuracy(scores: Sequence[Mapping[str, Any]], name: str) -> intervals.Estimate:
  """The pooled accuracy `name` of per-video scores (hits over things scored), with its Wilson interval."""
  hits, counts = _hits_and_counts(scores, name)
  return intervals.wilson(hits.sum(), int(counts.sum()))


def summarize(scores: Sequence[Mapping[str, Any]], *, seed: int = 0) -> dict[str, intervals.Estimate]:
  """Every world metric of a set of per-video scores, with its 95% interval (`seed`: the bootstrap's)."""
  out = {}
  for metric in METRICS:
    if metric.kind == 'accuracy':
      out[metric.name] = accuracy(scores, metric.name)
    elif metric.kind == 'mean':
      out[metric.name] = intervals.bootstrap_mean([s.get(metric.name) for s in scores], seed=seed)
  out['adherence'] = _adherence_estimate(scores, [out[name] for name in ADHERENCE], seed)
  return {m.name: out[m.name] for m in METRICS if m.name in out}


def _adherence(hits: np.ndarray, counts: np.ndarray) -> float | None:
  """Mean over attributes (columns) of their pooled accuracy, skipping attributes that scored nothing."""
  total = counts.sum(0)
  defined = total > 0
  return float((hits.sum(0)[defined] / total[defined]).mean()) if defined.any() else None


def _adherence_estimate(scores: Sequence[Mapping[str, Any]], attributes: Sequence[intervals.Estimate],
                        seed: int) -> intervals.Estimate:
  """Adherence with a bootstrap interval over videos (attributes of one video move together).

  Where every video scores alike (all right, or all wrong) the bootstrap has no spread to
  show; the interval is then the mean of the attributes' Wilson bounds, as wide as it would
  be if they moved together.
  """
  pairs = [_hits_and_counts(scores, name) for name in ADHERENCE]
  hits, counts = np.stack([h for h, _ in pairs], 1), np.stack([c for _, c in pairs], 1)
  value = _adherence(hits, counts)
  if value is None:
    return intervals.Estimate.missing()
  low, high = intervals.bootstrap(lambda idx: _adherence(hits[idx], counts[idx]), len(scores), seed=seed)
  if low is None or high - low < 1e-12:
    return intervals.mean_of(attributes, n=len(scores))
  return intervals.Estimate(value, low, high, len(scores), 'bootstrap')


def flat(summary: Mapping[str, intervals.Estimate], prefix: str = '') -> dict[str, float]:
  """The defined values only, as plain floats (for training logs)."""
  return {f'{prefix}{k}': float(v.value) for k, v in summary.items() if v.value is not None}


__all__ = ['Metric', 'METRICS', 'BY_NAME', 'ADHERENCE', 'WORLD_METRICS', 'prompt_records', 'wall_bounces',
           'score_video', 'score_videos', 'summarize', 'flat']
