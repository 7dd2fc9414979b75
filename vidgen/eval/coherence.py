"""Coherence of a long video over time: the probe's reading of each 2-second window against the prompt.

A long world video is cut into windows of `WINDOW_SECONDS` (frames [k·w, (k+1)·w], sharing
their boundary frame, so every frame step lies in a window). Each window is probed on its
own and judged against what the prompt says of the scene; the prompt describes the opening
(world captions describe 2-second clips), and what it fixes must hold for the whole video:

  identity    every prompt object is there with its colour, shape and size, and no other
  background  the prompt's background colour
  motion      each object moves at the prompt's speed (a still one stays still): a video
              that freezes fails here, not only at its first window
  bounce      direction reversals only against a wall (world_metrics.wall_bounces)
  teleport    no jump: the largest step of an object's centre between consecutive clean
              frames is at most TELEPORT_SPEEDS × the prompt's speed + TELEPORT_SLACK px
  permanence  an object that goes behind the bar comes out where its motion says (the
              probe's events over the whole video that come out at most a window after
              going out of view, each counted in the window it comes out in; only windows
              with such an event are judged)

`holds`: every judged metric of the window holds. Each is None where it does not apply
(no background named, no bar); a window's verdicts are 1.0 / 0.0 so they average.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from vidgen.world import probe, scenes as world
from vidgen.eval import intervals
from vidgen.world import metrics as world_metrics

WINDOW_SECONDS = 2.0
METRICS = ('identity', 'background', 'motion', 'bounce', 'teleport', 'permanence', 'holds')
DESCRIPTIONS = {
    'identity': "the prompt's objects, each with its colour, shape and size, and no other",
    'background': "the prompt's background colour",
    'motion': "objects at the prompt's speed (still ones still)",
    'bounce': 'direction reversals only against a wall',
    'teleport': 'no jump larger than twice the prompt\'s speed + 1.5 px between frames',
    'permanence': 'objects come out from behind the bar where their motion says (bar prompts)',
    'holds': 'every judged metric of the window holds',
}
TELEPORT_SPEEDS = 2.0
TELEPORT_SLACK = 1.5  # px: centroid jitter of a rendered or decoded object


def window_bounds(num_frames: int, fps: float, seconds: float = WINDOW_SECONDS) -> list[tuple[int, int]]:
  """[start, stop) of each window: `seconds`·fps frame steps each, sharing boundary frames.

  A last part shorter than half a window joins the window before it.
  """
  step = int(round(seconds * fps))
  if step < 2:
    raise ValueError(f'A {seconds:g} s window at {fps:g} fps has {step} frame steps; coherence needs at least 2.')
  if num_frames < step + 1:
    raise ValueError(f'A {num_frames}-frame video is shorter than one {seconds:g} s window ({step + 1} frames).')
  starts = list(range(0, num_frames - 1, step))
  if len(starts) > 1 and num_frames - 1 - starts[-1] < step / 2:
    starts.pop()
  return [(a, min(b + 1, num_frames) if i + 1 < len(starts) else num_frames)
          for i, (a, b) in enumerate(zip(starts, starts[1:] + [num_frames - 1]))]


def _clean_steps(obj: probe.ProbeObject) -> np.ndarray:
  """How far the object's centre moves between each pair of consecutive clean frames, px."""
  both = obj.clean[1:] & obj.clean[:-1]
  return np.hypot(*(obj.centers[1:] - obj.centers[:-1])[both].T)


def _speed(steps: np.ndarray, side: int) -> str | None:
  """'still' | 'slow' | 'fast' from the median of an object's clean steps.

  Elastic bounces keep the speed, so the median step reads it even in a window full of
  bounces, where the probe's first straight run (what `ProbeObject.speed` reads) may be a
  frame or two long.
  """
  if len(steps) < 2:
    return None
  step = float(np.median(steps))
  if step < probe.STILL_SPEED * side:
    return 'still'
  return 'fast' if step > probe.FAST_SPEED * side else 'slow'


def score_window(frames: np.ndarray, want: Mapping[str, Any]) -> dict[str, Any]:
  """Verdicts of one window against a parsed prompt (probe.parse_caption); 'largest_step' in px."""
  result = probe.probe_video(frames)
  side = min(result.height, result.width)
  identity, motion, steps, teleport = [], [], [], []
  for obj_want in want['objects']:
    found = result.object(obj_want['color'])
    identity.append(found is not None and found.shape == obj_want['shape']
                    and obj_want['size'] in (None, found.size))
    if found is None:
      motion.append(False)
      continue
    clean_steps = _clean_steps(found)
    speed_read = _speed(clean_steps, side)
    if speed_read is None:
      pass  # fewer than 3 clean frames (behind or against the bar): nothing to judge
    elif obj_want['direction'] == 'still':
      motion.append(speed_read == 'still')
    elif obj_want['speed'] is not None:
      motion.append(speed_read == obj_want['speed'])
    if len(clean_steps):
      step = float(clean_steps.max())
      speed = 0.0 if obj_want['direction'] == 'still' else world.SPEEDS[obj_want['speed'] or 'fast'] * side
      steps.append(step)
      teleport.append(step <= TELEPORT_SPEEDS * speed + TELEPORT_SLACK)
  identity.append(len(result.objects) == want['count'])
  bounces = world_metrics.wall_bounces(result)
  return {
      'identity': float(all(identity)),
      'background': float(result.background == want['background']) if want['background'] else None,
      'motion': float(all(motion)) if motion else None,
      'bounce': float(all(bounces)),
      'teleport': float(all(teleport)) if teleport else None,
      'permanence': None,
      'largest_step': max(steps) if steps else None,
  }


def score_long_video(video: np.ndarray, caption: str, fps: float,
                     seconds: float = WINDOW_SECONDS) -> list[dict[str, Any]]:
  """Per-window verdicts (`METRICS`) of a uint8 video [T, H, W, 3] generated for `caption`."""
  video = np.asarray(video)
  want = probe.parse_caption(caption)
  bounds = window_bounds(len(video), fps, seconds)
  scores = [score_window(video[a:b], want) for a, b in bounds]
  if want['occluder']:  # events span windows: read them from the whole video
    whole = probe.probe_video(video)
    horizon = bounds[0][1] - 1  # the probe extrapolates motion reliably over a clip's length, not a minute
    events = {(e.color, e.exit_frame): e for e in whole.permanence}  # runs split by a flicker share an exit
    for event in events.values():
      if event.exit_frame - event.hidden_to > horizon:
        continue
      k = next(i for i, (a, b) in enumerate(bounds) if event.exit_frame < b)
      previous = scores[k]['permanence']
      scores[k]['permanence'] = float(event.passed and previous in (None, 1.0))
  for s in scores:
    judged = [s[m] for m in METRICS[:-1] if s[m] is not None]
    s['holds'] = float(all(v == 1.0 for v in judged))
  return scores


def summarize(videos: Sequence[Sequence[Mapping[str, Any]]], fps: float, seconds: float = WINDOW_SECONDS,
              seed: int = 0) -> dict[str, Any]:
  """Coherence of a set of long videos (per-window scores of each), with 95% intervals.

  Returns:
    'overall': per metric, the share of judged windows where it holds, with an interval from
      resampling videos (a video's windows are not independent);
    'by_window': per metric, a list over windows of the share of videos where it holds (Wilson);
    'time': each window's centre in seconds; 'largest_step': its mean per window (px).
  """
  if not videos:
    raise ValueError('No videos to summarize.')
  num_windows = min(len(v) for v in videos)
  overall, by_window = {}, {}
  for metric in METRICS:
    values = [np.array([w[metric] for w in v if w[metric] is not None], np.float64) for v in videos]
    hits = np.array([x.sum() for x in values])
    counts = np.array([len(x) for x in values])

    def pooled(idx, hits=hits, counts=counts):
      return hits[idx].sum() / counts[idx].sum() if counts[idx].sum() else float('nan')

    if counts.sum():
      low, high = intervals.bootstrap(pooled, len(videos), seed=seed)
      overall[metric] = intervals.Estimate(float(hits.sum() / counts.sum()), low, high, int(counts.sum()),
                                           'bootstrap')
    else:
      overall[metric] = intervals.Estimate.missing()
    by_window[metric] = []
    for k in range(num_windows):
      judged = [v[k][metric] for v in videos if v[k][metric] is not None]
      by_window[metric].append(intervals.wilson(sum(judged), len(judged)))
  steps = [[v[k]['largest_step'] for v in videos if v[k]['largest_step'] is not None] for k in range(num_windows)]
  return {'overall': overall, 'by_window': by_window,
          'time': [seconds * (k + 0.5) for k in range(num_windows)],
          'largest_step': [float(np.mean(s)) if s else None for s in steps],
          'num_videos': len(videos), 'window_seconds': seconds, 'fps': fps}


def first_break(curve: Sequence[intervals.Estimate], target: float) -> int | None:
  """The first window whose value falls below `target`, or None if none does."""
  return next((k for k, e in enumerate(curve) if e.value is not None and e.value < target), None)


def to_json(summary: Mapping[str, Any]) -> dict[str, Any]:
  """The summary with its Estimates as dicts."""
  return {**summary,
          'overall': {m: e.to_dict() for m, e in summary['overall'].items()},
          'by_window': {m: [e.to_dict() for e in c] for m, c in summary['by_window'].items()}}


def seconds_to_frames(seconds: float, fps: float, ft: int) -> int:
  """Frames of a `seconds`-long clip the VAE can make (1 + k·ft), rounding up to the next such length."""
  if not seconds > 0:
    raise ValueError(f'seconds must be > 0; got {seconds:g}.')
  return 1 + ft * math.ceil(seconds * fps / ft - 1e-9)
