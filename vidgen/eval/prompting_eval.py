"""Video-prompting tasks on the world: what each is given, and its probe metrics with intervals.

Every task takes world eval videos (T frames, the run's clip) whose truth is known, gives the
model part of each (`prompting_report.task_for_records`), and scores what it makes against the rest of the truth:

| task            | given (of world video i, its caption the prompt)   | metrics                                  |
| --------------- | -------------------------------------------------- | ---------------------------------------- |
| i2v             | frame 0                                            | colour, shape, direction, … (adherence)  |
| extend_forward  | the first frames (context), the rest generated     | identity and direction on the new frames,|
|                 |                                                    | position error of the first new frame    |
| extend_backward | the last frames, the ones before generated         | the same, at the last new frame          |
| connect         | A = its first frames, B = its last frames          | position error at both seams, no jump    |
| loop            | nothing (text)                                     | seam difference / median frame step      |
|                 |                                                    | (and / median latent-boundary step)      |
| edit            | the whole video, prompt with another colour        | new colour, position kept, PSNR to source|
|                 | (of its first object; edit metrics are of that one) | (the source itself: colour 0, PSNR ∞)   |

Position errors are the probe's centre of the prompt's object against the world's own centre
in the same frame (px; a missed object counts as an error of infinity). Direction on new frames
is compared with what the probe reads on the real video's same frames (so a bounce inside them
counts as the truth's own turn). Reference rows run the same metrics on the real video through
the VAE (the ceiling the decoder allows) and on the given frames held still (the floor: no motion).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np

from vidgen.world import probe, scenes as world
from vidgen.eval import intervals
from vidgen.world import metrics as world_metrics
from vidgen.eval.image_metrics import psnr

POSITION_TOLERANCE = 2.0  # px: the targets' "within 2 px"
JUMP_SLACK = 2.0  # px: a frame step larger than the truth's largest step + this is a jump
LOOP_TARGET = 1.5  # seam difference within 1.5× the median frame-to-frame difference
COLOR_SHIFT = 3  # edit: the new colour is COLOR_NAMES[(c + COLOR_SHIFT) % n]


@dataclasses.dataclass(frozen=True)
class Layout:
  """Which frames of a T-frame clip a task gives and which it generates."""
  given: np.ndarray  # bool [T]

  @property
  def new(self) -> np.ndarray:
    return np.flatnonzero(~self.given)


def layout(task: str, num_frames: int, context: int = 0, context_b: int = 0) -> Layout:
  """The given frames of `task` in a clip of `num_frames` (context: frames given at the start or end)."""
  given = np.zeros(num_frames, bool)
  if task == 'i2v':
    given[0] = True
  elif task == 'extend_forward':
    given[:context] = True
  elif task == 'extend_backward':
    given[num_frames - context:] = True
  elif task == 'connect':
    given[:context] = True
    given[num_frames - context_b:] = True
  return Layout(given)


def edited_prompt(record: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
  """The caption with its first object's colour changed, and the record whose truth says so."""
  colors = world.COLOR_NAMES
  old = int(record['object_color'][0])
  taken = {int(c) for c in record['object_color'] if c >= 0}
  new = next((old + COLOR_SHIFT + i) % len(colors) for i in range(len(colors))
             if (old + COLOR_SHIFT + i) % len(colors) not in taken)
  shape = world.SHAPES[int(record['object_shape'][0])]
  caption = str(record['caption'])
  phrase = f'{colors[old]} {shape}'
  if phrase not in caption:
    raise ValueError(f'Caption {caption!r} does not name {phrase!r}: cannot write its edit prompt.')
  edited = dict(record)
  edited['object_color'] = np.array(record['object_color']).copy()
  edited['object_color'][0] = new
  edited['caption'] = caption.replace(phrase, f'{colors[new]} {shape}', 1)
  return edited['caption'], edited


def slice_record(record: Mapping[str, Any], frames: np.ndarray) -> dict[str, Any]:
  """The record restricted to `frames` (indices), as if the world had rendered only those."""
  out = dict(record)
  for key in ('frames', 'centers', 'visible', 'bounces'):
    out[key] = np.asarray(record[key])[frames]
  return out


def _truth_names(record: Mapping[str, Any]) -> list[str]:
  n = int(record['num_objects'])
  return [world.COLOR_NAMES[int(c)] for c in record['object_color'][:n]]


def position_errors(result: probe.ProbeResult, record: Mapping[str, Any], frames: Sequence[int]) -> list[float]:
  """Per truth object and frame in `frames` where it is visible: |probe centre − true centre| px."""
  out = []
  for k, name in enumerate(_truth_names(record)):
    found = result.object(name)
    for t in frames:
      if not record['visible'][t, k]:
        continue
      if found is None or not found.visible[t] or not np.all(np.isfinite(found.centers[t])):
        out.append(float('inf'))
      else:
        out.append(float(np.hypot(*(found.centers[t] - record['centers'][t, k]))))
  return out


def largest_step(result: probe.ProbeResult, record: Mapping[str, Any]) -> float | None:
  """The largest frame-to-frame centre step (px) of the prompt's objects as the probe read them."""
  steps = []
  for name in _truth_names(record):
    found = result.object(name)
    if found is None:
      return float('inf')
    c = found.centers
    ok = np.isfinite(c).all(axis=1)
    both = ok[1:] & ok[:-1]
    if both.any():
      steps.append(float(np.max(np.hypot(*(c[1:] - c[:-1])[both].T))))
  return max(steps) if steps else None


def loop_seam_ratio(video: np.ndarray, ft: int | None = None) -> float:
  """Mean |last − first| pixel difference over the median frame-to-frame difference.

  With `ft`, over the median of the steps across latent-frame boundaries (frame j·ft → j·ft + 1)
  instead: the VAE decodes each latent frame to ft pixel frames, and its steps across those
  boundaries are about twice the others on the world, so a seam is fairly compared with them.
  """
  v = video.astype(np.float32)
  steps = np.abs(v[1:] - v[:-1]).mean(axis=(1, 2, 3))
  if ft is not None:
    steps = steps[::ft]
  return float(np.abs(v[-1] - v[0]).mean() / max(np.median(steps), 1e-6))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
  return float(psnr(np.asarray(a, np.float32) / 127.5 - 1, np.asarray(b, np.float32) / 127.5 - 1))


def _median(values: Sequence[float]) -> intervals.Estimate:
  x = np.asarray([v for v in values if v is not None], np.float64)
  if not len(x):
    return intervals.Estimate.missing()
  low, high = intervals.bootstrap(lambda idx: float(np.median(x[idx])), len(x))
  return intervals.Estimate(float(np.median(x)), low, high, len(x), 'bootstrap')


def _share(values: Sequence[float], ok) -> intervals.Estimate:
  x = [v for v in values if v is not None]
  return intervals.wilson(sum(bool(ok(v)) for v in x), len(x))


def _identity(videos, records, new) -> dict[str, intervals.Estimate]:
  """Colour, shape, count of the prompt's objects on the new frames alone."""
  scores = [probe.score_against_truth(probe.probe_video(v[new]), slice_record(r, new))
            for v, r in zip(videos, records)]
  return {f'new_frames_{name}': world_metrics.accuracy(scores, name) for name in ('color', 'shape', 'count')}


def _direction_continued(videos, records, new) -> intervals.Estimate:
  """The probe's direction of each object on the new frames equals its reading of the real frames there."""
  hits = n = 0
  for video, record in zip(videos, records):
    made, real = probe.probe_video(video[new]), probe.probe_video(np.asarray(record['frames'])[new])
    for name in _truth_names(record):
      truth = real.object(name)
      if truth is None or truth.direction is None:
        continue  # the probe cannot read the real motion there either
      found = made.object(name)
      n += 1
      hits += found is not None and found.direction == truth.direction
  return intervals.wilson(hits, n)


def score_task(task: str, videos: Sequence[np.ndarray], records: Sequence[Mapping[str, Any]],
               lay: Layout | None = None, sources: Sequence[np.ndarray] | None = None,
               ft: int | None = None) -> dict[str, intervals.Estimate]:
  """The task's metrics (module docstring) over videos made for `records` (edit: from `sources`).

  `ft`, the VAE's temporal compression, adds the loop seam against latent-frame boundary steps.
  """
  videos = [np.asarray(v) for v in videos]
  if task in ('t2v', 'i2v'):
    return world_metrics.summarize(world_metrics.score_videos(videos, records))
  if task == 'loop':
    ratios = [loop_seam_ratio(v) for v in videos]
    boundary = [loop_seam_ratio(v, ft) for v in videos] if ft else []
    clips = [v[:len(r['frames'])] for v, r in zip(videos, records)]  # the text → video clip the loop closes
    return {'seam_over_median_step': _median(ratios),
            'seamless': _share(ratios, lambda r: r <= LOOP_TARGET),
            'seam_over_boundary_step': _median(boundary),
            **{k: v for k, v in world_metrics.summarize(world_metrics.score_videos(clips, records)).items()
               if k in ('color', 'shape', 'direction')}}
  read = [probe.probe_video(v) for v in videos]  # each whole video probed once
  if task in ('extend_forward', 'extend_backward'):
    new = lay.new
    seam = [int(new[0])] if task == 'extend_forward' else [int(new[-1])]
    first = [min(position_errors(p, r, seam), default=None) for p, r in zip(read, records)]
    errors = [position_errors(p, r, new) for p, r in zip(read, records)]
    every = [np.median(e) if e else None for e in errors]
    bounces = [world_metrics.wall_bounces(p) for p in read]
    return {'seam_position_error': _median(first),
            'seam_within_2px': _share(first, lambda e: e <= POSITION_TOLERANCE),
            'new_frames_position_error': _median(every),
            'direction_continued': _direction_continued(videos, records, new),
            **_identity(videos, records, new),
            'bounce': intervals.wilson(sum(map(sum, bounces)), sum(map(len, bounces)))}
  if task == 'connect':
    new = lay.new
    seams = [max(position_errors(p, r, [int(new[0]), int(new[-1])]), default=None) for p, r in zip(read, records)]
    jumps = []
    for p, r in zip(read, records):
      made, real = largest_step(p, r), largest_step(probe.probe_video(np.asarray(r['frames'])), r)
      jumps.append(None if made is None or real is None else made - real)
    return {'seam_position_error': _median(seams),
            'seams_within_2px': _share(seams, lambda e: e <= POSITION_TOLERANCE),
            'largest_step_over_truth': _median(jumps),
            'no_jump': _share(jumps, lambda j: j <= JUMP_SLACK),
            **_identity(videos, records, new)}
  if task == 'edit':  # records: the edited truth (its first object in the new colour)
    edited = [p.object(_truth_names(rec)[0]) for p, rec in zip(read, records)]
    kept = [np.median(position_errors(p, dict(r, num_objects=1), range(len(v))))
            for p, v, r in zip(read, videos, records)]
    shapes = [o is not None and o.shape == world.SHAPES[int(r['object_shape'][0])] for o, r in zip(edited, records)]
    return {'new_color': intervals.wilson(sum(o is not None for o in edited), len(edited)),
            'position_kept_error': _median(kept),
            'position_within_2px': _share(kept, lambda e: e <= POSITION_TOLERANCE),
            'psnr_to_source': intervals.bootstrap_mean([_psnr(v, s) for v, s in zip(videos, sources)]),
            'shape_kept': intervals.wilson(sum(shapes), len(shapes))}
  raise ValueError(f'Unknown task {task!r}.')
