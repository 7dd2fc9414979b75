"""The world probe: reads what a video shows (objects, motion, background, camera) from its pixels.

It works on any uint8 video [T, H, W, 3], real world footage or generated, and is how vidgen
scores generated videos: against the ground truth of a world record (`score_against_truth`)
or against the caption it was generated from (`score_against_caption`). On ground-truth world
videos it agrees with the truth (tests/world/test_probe.py measures by how much), which is
what makes its scores of generated videos meaningful.

How it reads a video:
  background  the dark palette colour (or its lattice texture) covering most pixels.
  pixels      each pixel takes the nearest of: background, texture, occluder grey, the
              object colours, if within a distance; a pixel counts only if at least two of
              its four neighbours agree.
  objects     one per palette colour that covers a few pixels, some of them a solid 3x3
              core (scattered noise pixels do not make objects), in enough frames. Centre =
              centroid of its pixels. "Clean" frames are those where it touches neither the
              bar nor another object: shape and size are read there (bounding-box fill,
              centroid offset, corners; majority vote).
  motion      per axis, the clean centres are cut into straight runs (a bounce starts a
              new run); velocity, direction (8 compass names, or 'still' below
              STILL_SPEED) and speed come from the first runs. Gravity is read when the
              vertical track runs straighter once g t^2 / 2 is taken out; then the vertical
              velocity is the initial one, so a falling object's direction is its horizontal
              motion ('east', 'west' or 'still'), as world records define it.
  camera      the integer shift that best maps the background texture of one frame onto the
              next.
  permanence  when an object goes behind the bar, where linear motion says it comes back out,
              and whether it does.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from vidgen.world import scenes as world

# Thresholds, as fractions of min(H, W) unless noted.
STILL_SPEED = 0.01  # px/frame below which an object is still (half the slow speed)
FAST_SPEED = math.sqrt(world.SPEEDS['slow'] * world.SPEEDS['fast'])  # slow | fast boundary
LARGE_EXTENT = 0.16  # half-extent boundary between small (0.12) and large (0.2)
MAX_COLOR_DISTANCE = 90.0  # RGB distance beyond which a pixel is no palette colour
BACKGROUND_DISTANCE = 60.0  # RGB distance within which a pixel is background
MIN_BACKGROUND_SHARE = 0.25  # below this share of background pixels, no background is named
PAN_RANGE = 3  # camera shifts searched, in px/frame (the lattice period is 8)
PAN_MIN_GAIN = 0.5  # mean |luminance| difference a shift must save over no shift
TELEPORT = 0.3  # a centre jump between clean frames larger than this is a teleport
PERMANENCE_TOLERANCE = 0.1  # reappearance error allowed (and at least 2 px)
TRACK_TOLERANCE = 0.75  # px a centre may stray from a straight run (pixel rounding) before a bounce is read

_COLOR_NAMES = world.COLOR_NAMES
_DIRS8 = ('east', 'northeast', 'north', 'northwest', 'west', 'southwest', 'south', 'southeast')


@dataclasses.dataclass
class ProbeObject:
  """One object the probe found, named by its colour."""
  color: str
  shape: str
  size: str
  centers: np.ndarray  # float [T, 2] (y, x); nan where not visible
  visible: np.ndarray  # bool [T]: enough pixels of its colour
  clean: np.ndarray  # bool [T]: visible and touching neither the bar nor another object
  pixels: np.ndarray  # int [T]: how many pixels it covers
  frame_shapes: list[str | None]  # shape read on each clean frame (None elsewhere)
  velocity: tuple[float, float] | None  # (vy, vx) px/frame before the first bounce
  direction: str | None  # one of the 8 compass names or 'still'; None when unreadable
  speed: str | None  # 'slow' | 'fast'; None when still or unreadable
  bounce_frames: list[int]
  consistency: float | None  # fraction of frame steps where it keeps its shape and does not jump


@dataclasses.dataclass
class PermanenceEvent:
  """An object that went behind the bar, and where it came out against where it should have."""
  color: str
  fit_from: int  # first and last frames of the motion the prediction extrapolates
  fit_to: int
  hidden_from: int  # first hidden frame
  hidden_to: int  # last hidden frame of the run
  exit_frame: int  # first frame linear motion says it is fully out again
  predicted: tuple[float, float]
  observed: tuple[float, float] | None  # None: not seen at the exit frame (or the next)
  error: float  # px; inf when not seen
  passed: bool


@dataclasses.dataclass
class ProbeResult:
  """What the probe read from one video."""
  num_frames: int
  height: int
  width: int
  background: str | None
  objects: list[ProbeObject]
  pan: tuple[int, int]  # camera (dy, dx) px/frame, as world records define it
  occluder: bool
  occluder_box: tuple[int, int, int, int] | None  # (y0, y1, x0, x1), end exclusive
  gravity: bool
  permanence: list[PermanenceEvent]

  def object(self, color: str) -> ProbeObject | None:
    """The object of that colour, or None."""
    return next((o for o in self.objects if o.color == color), None)

  @property
  def colors(self) -> list[str]:
    return [o.color for o in self.objects]


# ---- reading a video ------------------------------------------------------------------------

def _as_uint8(frames: Any) -> np.ndarray:
  frames = np.asarray(frames)
  if frames.ndim == 3:
    frames = frames[None]
  if frames.ndim != 4 or frames.shape[-1] != 3:
    raise ValueError(f'probe_video expects a video [T, H, W, 3] (or one frame [H, W, 3]); got shape {frames.shape}.')
  if frames.dtype == np.uint8:
    return frames
  if np.issubdtype(frames.dtype, np.floating):
    if frames.min(initial=0.0) < -1e-3 or frames.max(initial=0.0) <= 1.0 + 1e-3:
      frames = (frames + 1.0) * 127.5  # the pipeline's [-1, 1]
    return np.clip(np.round(frames), 0, 255).astype(np.uint8)
  return np.clip(frames, 0, 255).astype(np.uint8)


def _dilate(mask: np.ndarray) -> np.ndarray:
  """3x3 dilation of bool [..., H, W]."""
  out = mask.copy()
  out[..., 1:, :] |= mask[..., :-1, :]
  out[..., :-1, :] |= mask[..., 1:, :]
  m = out.copy()
  out[..., :, 1:] |= m[..., :, :-1]
  out[..., :, :-1] |= m[..., :, 1:]
  return out


def _agreeing_neighbours(labels: np.ndarray) -> np.ndarray:
  """int [T, H, W]: how many of each pixel's 4 neighbours carry its label."""
  count = np.zeros(labels.shape, np.int8)
  count[:, 1:] += labels[:, 1:] == labels[:, :-1]
  count[:, :-1] += labels[:, :-1] == labels[:, 1:]
  count[:, :, 1:] += labels[:, :, 1:] == labels[:, :, :-1]
  count[:, :, :-1] += labels[:, :, :-1] == labels[:, :, 1:]
  return count


def _core(labels: np.ndarray) -> np.ndarray:
  """bool [T, H, W]: pixels whose label holds at least 5 of the 9 pixels of their 3x3 block.

  Objects have cores; the scattered pixels of noise that happen to be near a palette colour
  almost never do.
  """
  t, h, w = labels.shape
  padded = np.full((t, h + 2, w + 2), -2, labels.dtype)
  padded[:, 1:-1, 1:-1] = labels
  count = np.zeros(labels.shape, np.int8)
  for dy in range(3):
    for dx in range(3):
      count += padded[:, dy:dy + h, dx:dx + w] == labels
  return count >= 5


def _background(pixels: np.ndarray) -> tuple[str | None, np.ndarray, np.ndarray]:
  """The background's name (None if no palette background dominates), colour and texture colour."""
  palette = np.array(list(world.BACKGROUNDS.values()), np.float32)
  both = np.concatenate([palette, np.clip(palette + world.TEXTURE_DELTA, 0, 255)])
  sample = pixels[:: max(1, len(pixels) // 20000)]
  d2 = ((sample[:, None, :] - both[None]) ** 2).sum(-1)
  nearest = d2.argmin(1)
  close = d2[np.arange(len(sample)), nearest] <= BACKGROUND_DISTANCE ** 2
  counts = np.bincount(nearest[close] % len(palette), minlength=len(palette))
  best = int(counts.argmax())
  share = counts[best] / max(1, len(sample))
  name = world.BACKGROUND_NAMES[best] if share >= MIN_BACKGROUND_SHARE else None
  base = sample[close & (nearest == best)]
  tex = sample[close & (nearest == best + len(palette))]
  color = np.median(base, 0) if len(base) >= 8 else palette[best]
  texture = np.median(tex, 0) if len(tex) >= 8 else np.clip(color + world.TEXTURE_DELTA, 0, 255)
  return name, color, texture


def _classify_shape(mask: np.ndarray, cy: float, bbox: tuple[int, int, int, int]) -> str:
  """circle | square | triangle from one clean view of an object.

  A triangle (apex up) has its centroid low in its bounding box and empty top corners; a
  square fills the corners of its box, a circle leaves them empty.
  """
  y0, y1, x0, x1 = bbox  # inclusive
  bh, bw = y1 - y0 + 1, x1 - x0 + 1
  box = mask[y0:y1 + 1, x0:x1 + 1]
  offset = (cy - 0.5 * (y0 + y1)) / bh
  u = (np.arange(bh) - 0.5 * (bh - 1)) / (0.5 * bh)
  v = np.abs(np.arange(bw) - 0.5 * (bw - 1)) / (0.5 * bw)
  corner = np.abs(u)[:, None] + v[None, :] >= 1.5
  top, bottom = corner & (u[:, None] < 0), corner & (u[:, None] > 0)
  top_fill = box[top].mean() if top.any() else 0.0
  bottom_fill = box[bottom].mean() if bottom.any() else 0.0
  if top_fill < 0.25 and (offset > 0.065 or bottom_fill >= 0.25 and offset > 0.03):
    return 'triangle'
  return 'square' if top_fill + bottom_fill >= 1.0 else 'circle'


def _line(t: np.ndarray, c: np.ndarray) -> tuple[float, float]:
  """Least-squares slope of c(t), and the sum of squared residuals."""
  if len(t) < 2:
    return 0.0, 0.0
  tm, cm = t.mean(), c.mean()
  slope = float(((t - tm) * (c - cm)).sum() / ((t - tm) ** 2).sum())
  return slope, float(((c - cm - slope * (t - tm)) ** 2).sum())


def _segments(t: np.ndarray, c: np.ndarray, tol: float, min_slope: float
              ) -> list[tuple[int, int, float, float]]:
  """Cuts a track into runs that each follow a straight line within `tol` px.

  Greedy from the start: a run grows while a least-squares line still fits all its points;
  the point that breaks it starts the next run (a bounce lies between the two). A slow
  bounce can hide inside one flat-looking run, so a run is also split where two lines of
  opposite slope (each steeper than `min_slope`) explain it far better. Returns
  (first index, last index, slope, sum of squared residuals) per run.
  """
  runs = []
  i, n = 0, len(t)
  while i < n:
    j = i + 2
    while j <= n:
      tt, cc = t[i:j], c[i:j]
      slope, _ = _line(tt, cc)
      if np.abs(cc - cc.mean() - slope * (tt - tt.mean())).max() > tol:
        break
      j += 1
    runs.append((i, j - 2 if j <= n else n - 1))
    i = runs[-1][1] + 1
  out = []
  stack = list(reversed(runs))
  while stack:
    i0, i1 = stack.pop()
    slope, sse = _line(t[i0:i1 + 1], c[i0:i1 + 1])
    best = None
    for k in range(i0 + 2, i1 - 1):  # left run i0..k (>= 3 points), right run k+1..i1 (>= 2)
      s1, e1 = _line(t[i0:k + 1], c[i0:k + 1])
      s2, e2 = _line(t[k + 1:i1 + 1], c[k + 1:i1 + 1])
      if s1 * s2 < 0 and min(abs(s1), abs(s2)) > min_slope and e1 + e2 < 0.25 * sse:
        if best is None or e1 + e2 < best[0]:
          best = (e1 + e2, k)
    if best is not None:
      stack.extend([(best[1] + 1, i1), (i0, best[1])])
    else:
      out.append((i0, i1, slope, sse))
  return out


def _track_cost(segments: list[tuple[int, int, float, float]], tol: float) -> float:
  """How badly straight runs explain a track: residuals, plus a price per extra run."""
  return sum(s[3] for s in segments) + 4 * tol * tol * (len(segments) - 1)


def _speed_name(speed: float, side: int) -> str | None:
  if not np.isfinite(speed) or speed < STILL_SPEED * side:
    return None
  return 'fast' if speed > FAST_SPEED * side else 'slow'


def _direction_name(vy: float, vx: float, side: int) -> str:
  if math.hypot(vy, vx) < STILL_SPEED * side:
    return 'still'
  angle = math.degrees(math.atan2(-vy, vx))
  return _DIRS8[int(round(angle / 45.0)) % 8]


def horizontal(direction: str | None) -> int | None:
  """The horizontal part of a direction: -1 (west), 0 (none) or 1 (east)."""
  if direction is None:
    return None
  return world.DIRECTIONS[direction][1]


def _estimate_pan(lum: np.ndarray, background: np.ndarray) -> tuple[int, int]:
  """The camera shift (dy, dx) that best maps each frame's background onto the next."""
  t, h, w = lum.shape
  if t < 2:
    return (0, 0)
  r = PAN_RANGE
  errors = {}
  for dy in range(-r, r + 1):
    for dx in range(-r, r + 1):
      ys, ye = max(0, -dy), min(h, h - dy)
      xs, xe = max(0, -dx), min(w, w - dx)
      a = lum[1:, ys:ye, xs:xe]
      b = lum[:-1, ys + dy:ye + dy, xs + dx:xe + dx]
      m = background[1:, ys:ye, xs:xe] & background[:-1, ys + dy:ye + dy, xs + dx:xe + dx]
      n = m.sum()
      errors[(dy, dx)] = float((np.abs(a - b) * m).sum() / n) if n else float('inf')
  best = min(errors, key=errors.get)
  if errors[(0, 0)] - errors[best] < PAN_MIN_GAIN:
    return (0, 0)
  return best


def _occluder(grey: np.ndarray) -> tuple[int, int, int, int] | None:
  """The static bar: a long rectangle of grey pixels present in most frames."""
  _, h, w = grey.shape
  static = grey.mean(0) >= 0.5
  if static.sum() < 2 * min(h, w):
    return None
  rows, cols = np.nonzero(static.any(1))[0], np.nonzero(static.any(0))[0]
  y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
  bh, bw = y1 - y0, x1 - x0
  if static.sum() < 0.7 * bh * bw or max(bh, bw) < 2 * min(bh, bw):
    return None
  if bh >= 0.4 * h and bh > bw or bw >= 0.4 * w and bw > bh:
    return (y0, y1, x0, x1)
  return None


def probe_video(frames: Any) -> ProbeResult:
  """Reads background, objects, motion, camera pan, occluder and permanence from a video.

  Args:
    frames: uint8 [T, H, W, 3]; floats are taken as the pipeline's [-1, 1] when they lie in
      it, else as [0, 255]; one frame [H, W, 3] is a 1-frame video. Calibrated for canvases
      whose shorter side is >= 32 pixels (smaller ones read, less reliably).

  Returns:
    A ProbeResult; objects are listed in palette order.
  """
  video = _as_uint8(frames)
  t_len, h, w, _ = video.shape
  side = min(h, w)
  x = video.astype(np.float32)
  flat = x.reshape(-1, 3)
  background_name, bg, tex = _background(flat)

  # Label every pixel by its nearest colour: 0 background, 1 texture, 2 grey, 3.. objects.
  palette = np.concatenate([bg[None], tex[None], np.array([world.OCCLUDER_COLOR], np.float32),
                            np.array(list(world.COLORS.values()), np.float32)])
  d2 = np.stack([((x - p) ** 2).sum(-1) for p in palette], -1)
  labels = d2.argmin(-1).astype(np.int8)
  labels[np.take_along_axis(d2, labels[..., None].astype(np.int64), -1)[..., 0] > MAX_COLOR_DISTANCE ** 2] = -1
  keep = _agreeing_neighbours(labels) >= 2

  bar_box = _occluder((labels == 2) & keep)
  bar = np.zeros((h, w), bool)
  if bar_box is not None:
    y0, y1, x0, x1 = bar_box
    bar[y0:y1, x0:x1] = True
  bar_near = _dilate(bar)

  min_pixels = max(3, int(0.2 * 2 * (world.SIZES['small'] * side) ** 2))  # a fifth of a small triangle
  min_frames = max(1, int(round(0.25 * t_len)))
  core = _core(labels)
  masks, names, seen = [], [], []
  for k, name in enumerate(_COLOR_NAMES):
    mask = (labels == 3 + k) & keep
    shows = (mask.sum((1, 2)) >= min_pixels) & ((mask & core).sum((1, 2)) >= max(3, min_pixels // 2))
    if shows.sum() >= min_frames:
      masks.append(mask)
      names.append(name)
      seen.append(shows)

  ys = np.arange(h, dtype=np.float64)
  xs = np.arange(w, dtype=np.float64)
  g = world.gravity_accel(h)
  raw = []
  for k, (name, mask, visible) in enumerate(zip(names, masks, seen)):
    counts = mask.sum((1, 2))
    safe = np.maximum(counts, 1)
    rows, cols = mask.any(2), mask.any(1)
    cy = (mask.sum(2) * ys).sum(1) / safe
    cx = (mask.sum(1) * xs).sum(1) / safe
    centers = np.where(visible[:, None], np.stack([cy, cx], -1), np.nan)
    others = np.zeros_like(mask)
    for j, other in enumerate(masks):
      if j != k:
        others |= other
    near = _dilate(others) | bar_near[None]
    touching_bar = np.any(mask & bar_near[None], axis=(1, 2))
    clean = visible & ~np.any(mask & near, axis=(1, 2))
    y0 = rows.argmax(1)
    y1 = h - 1 - rows[:, ::-1].argmax(1)
    x0 = cols.argmax(1)
    x1 = w - 1 - cols[:, ::-1].argmax(1)
    frame_shapes: list[str | None] = [None] * t_len
    extents = []
    for t in np.nonzero(clean)[0]:
      frame_shapes[t] = _classify_shape(mask[t], cy[t], (y0[t], y1[t], x0[t], x1[t]))
      extents.append((y1[t] - y0[t] + 1 + x1[t] - x0[t] + 1) / 4.0)
    views = [s for s in frame_shapes if s is not None]
    if not views:  # never seen clean: read it where it shows most
      t = int(counts.argmax())
      views = [_classify_shape(mask[t], cy[t], (y0[t], y1[t], x0[t], x1[t]))]
      extents = [(y1[t] - y0[t] + 1 + x1[t] - x0[t] + 1) / 4.0]
    shape = max(world.SHAPES, key=views.count)
    size = 'large' if float(np.median(extents)) > LARGE_EXTENT * side else 'small'
    box = np.stack([cy - y0, y1 - cy, cx - x0, x1 - cx], -1)[clean]  # reach from the centre
    reach = np.median(box, 0) + 0.5 if len(box) else None
    raw.append(dict(name=name, mask=mask, counts=counts, visible=visible, clean=clean, centers=centers,
                    frame_shapes=frame_shapes, shape=shape, size=size, touching_bar=touching_bar,
                    reach=reach, others=others))

  # Motion. Each axis is cut into straight runs; a bounce starts a new run. Gravity is
  # the better of two explanations of the vertical tracks: straight runs of y, or of
  # y - g t^2 / 2 (free fall between floor bounces), summed over the objects.
  tol = TRACK_TOLERANCE
  tracks = []
  for r in raw:
    frames_ok = np.nonzero(r['clean'])[0]
    if len(frames_ok) < 2:
      frames_ok = np.nonzero(r['visible'])[0]
    t = frames_ok.astype(np.float64)
    c = r['centers'][frames_ok]
    min_slope = 0.5 * STILL_SPEED * side
    tracks.append((frames_ok, _segments(t, c[:, 1], tol, min_slope), _segments(t, c[:, 0], tol, min_slope),
                   _segments(t, c[:, 0] - 0.5 * g * t * t, tol, min_slope)))
  cost_still = sum(_track_cost(tr[2], tol) for tr in tracks if len(tr[0]) >= 3)
  cost_fall = sum(_track_cost(tr[3], tol) for tr in tracks if len(tr[0]) >= 3)
  gravity = bool(t_len >= 3 and any(len(tr[0]) >= 3 for tr in tracks) and cost_fall < cost_still)

  objects = []
  for r, (frames_ok, x_runs, y_runs, fall_runs) in zip(raw, tracks):
    y_runs = fall_runs if gravity else y_runs
    if t_len < 2 or len(frames_ok) < 2:
      velocity = direction = speed = None
    else:
      velocity = (y_runs[0][2], x_runs[0][2])
      direction = _direction_name(*velocity, side)
      speed = _speed_name(math.hypot(*velocity), side)
    bounce_frames = sorted({int(frames_ok[run[0]]) for run in (x_runs[1:] + y_runs[1:])})
    objects.append(ProbeObject(
        color=r['name'], shape=r['shape'], size=r['size'], centers=r['centers'], visible=r['visible'],
        clean=r['clean'], pixels=r['counts'], frame_shapes=r['frame_shapes'], velocity=velocity,
        direction=direction, speed=speed, bounce_frames=bounce_frames,
        consistency=_consistency(r, bar_box is not None, side)))

  lum = x.mean(-1)
  pan = _estimate_pan(lum, (labels == 0) | (labels == 1))
  result = ProbeResult(num_frames=t_len, height=h, width=w, background=background_name, objects=objects,
                       pan=pan, occluder=bar_box is not None, occluder_box=bar_box, gravity=gravity,
                       permanence=[])
  if bar_box is not None:
    for r, obj in zip(raw, objects):
      result.permanence.extend(_permanence(r, obj, bar_box, result))
  return result


def _consistency(r: dict[str, Any], has_bar: bool, side: int) -> float | None:
  """Of the steps from a clean frame, the fraction where the object keeps its shape and place.

  It fails a step by vanishing in the open (away from the bar), by changing shape, or by
  jumping further than TELEPORT * min(H, W) between clean frames.
  """
  clean, visible, centers = r['clean'], r['visible'], r['centers']
  checks = passes = 0
  for t in range(1, len(clean)):
    if not clean[t - 1]:
      continue
    if not visible[t]:
      if has_bar and r['touching_bar'][t - 1]:
        continue  # gone behind the bar
      checks += 1
      continue
    if not clean[t]:
      continue
    checks += 1
    jump = float(np.hypot(*(centers[t] - centers[t - 1])))
    passes += r['frame_shapes'][t] == r['shape'] and jump <= TELEPORT * side
  return passes / checks if checks else None


def _permanence(r: dict[str, Any], obj: ProbeObject, bar_box: tuple[int, int, int, int],
                result: ProbeResult) -> list[PermanenceEvent]:
  """Runs of frames where the object is mostly hidden by the bar, and whether it comes back right."""
  t_len, h, w = result.num_frames, result.height, result.width
  side = min(h, w)
  if t_len < 4 or r['reach'] is None or not r['clean'].any():
    return []
  ref = float(np.median(r['counts'][r['clean']]))
  hidden = ~r['visible'] | (r['touching_bar'] & (r['counts'] < 0.5 * ref))
  events = []
  t = 0
  while t < t_len:
    if not hidden[t]:
      t += 1
      continue
    a = t
    while t < t_len and hidden[t]:
      t += 1
    b = t - 1
    event = _permanence_event(r, obj, bar_box, result, a, b, side)
    if event is not None:
      events.append(event)
  return events


def _reflect(p: float, lo: float, hi: float) -> tuple[float, int]:
  """Free motion `p` folded into [lo, hi] by elastic reflections, and the reflection count."""
  span = hi - lo
  if span <= 0:
    return lo, 0
  u = (p - lo) % (2 * span)
  return lo + (u if u <= span else 2 * span - u), int(math.floor((p - lo) / span))


def _permanence_event(r, obj, bar_box, result, a, b, side) -> PermanenceEvent | None:
  """Judges one hidden run [a, b]; None where linear motion cannot say where it comes out.

  The motion is a straight line (plus gravity if the probe saw it) fitted to at least 3
  clean frames since the last bounce, reflected off the walls (not off the floor: under
  gravity a floor bounce makes it not apply). It applies if that motion puts the object
  behind the bar during the run and has it fully out (1 px clear of the bar) before the
  video ends. The object passes if it is seen, clean, within 2 frames of that exit, within
  PERMANENCE_TOLERANCE of the predicted centre; it fails if it is not seen where nothing else
  covers it; a view tangled with another object says nothing.
  """
  t_len, h, w = result.num_frames, result.height, result.width
  last_bounce = max([f for f in obj.bounce_frames if f < a], default=-1)
  fit = np.array([f for f in np.nonzero(r['clean'])[0] if last_bounce < f < a], np.float64)
  if len(fit) < 3:
    return None
  c = r['centers'][fit.astype(int)]
  g = world.gravity_accel(h) if result.gravity else 0.0
  py = np.polyfit(fit, c[:, 0] - 0.5 * g * fit ** 2, 1)
  px = np.polyfit(fit, c[:, 1], 1)
  up, down, left, right = r['reach']

  def predict(t: int) -> tuple[float, float, tuple[int, int]]:
    """Centre at frame t, and how many times it has reflected off a wall along each axis."""
    yy, ny = float(np.polyval(py, t) + 0.5 * g * t * t), 0
    if not g:
      yy, ny = _reflect(yy, -0.5 + up, h - 0.5 - down)
    xx, nx = _reflect(float(np.polyval(px, t)), -0.5 + left, w - 0.5 - right)
    return yy, xx, (ny, nx)

  start = predict(int(fit[-1]))[2]

  y0, y1, x0, x1 = (v - 0.5 for v in bar_box)

  def apart(yy: float, xx: float, gap: float) -> bool:
    return yy + down <= y0 - gap or yy - up >= y1 + gap or xx + right <= x0 - gap or xx - left >= x1 + gap

  behind, exit_frame = False, None
  for t in range(int(fit[-1]) + 1, t_len):
    yy, xx, count = predict(t)
    if yy + down > h or abs(count[0] - start[0]) + abs(count[1] - start[1]) > 1:
      return None  # a floor bounce, or more than one wall: too uncertain to judge
    behind |= a <= t <= b and not apart(yy, xx, 0.0)
    if t > b and apart(yy, xx, 1.0):
      exit_frame = t
      break
  if not behind or exit_frame is None:
    return None
  window = range(exit_frame, min(t_len, exit_frame + 3))
  seen = next((t for t in window if r['clean'][t]), None)
  if seen is None:
    if any(r['visible'][t] for t in window):
      return None  # only seen tangled with another object
    yy, xx, _ = predict(exit_frame)
    iy, ix = int(round(yy)), int(round(xx))
    if 0 <= iy < h and 0 <= ix < w and r['others'][exit_frame, iy, ix]:
      return None  # something else stands where it should be
    return PermanenceEvent(color=obj.color, fit_from=int(fit[0]), fit_to=int(fit[-1]), hidden_from=a, hidden_to=b,
                           exit_frame=exit_frame, predicted=(yy, xx), observed=None, error=float('inf'),
                           passed=False)
  predicted = predict(seen)[:2]
  observed = (float(r['centers'][seen, 0]), float(r['centers'][seen, 1]))
  error = math.hypot(observed[0] - predicted[0], observed[1] - predicted[1])
  return PermanenceEvent(color=obj.color, fit_from=int(fit[0]), fit_to=int(fit[-1]), hidden_from=a, hidden_to=b,
                         exit_frame=seen,
                         predicted=predicted, observed=observed, error=error,
                         passed=error <= max(2.0, PERMANENCE_TOLERANCE * side))


# ---- scoring --------------------------------------------------------------------------------

def _names(record: Mapping[str, Any]) -> list[dict[str, Any]]:
  n = int(record['num_objects'])
  out = []
  for k in range(n):
    speed = int(record['object_speed'][k])
    out.append(dict(
        color=_COLOR_NAMES[int(record['object_color'][k])],
        shape=world.SHAPES[int(record['object_shape'][k])],
        size=world.SIZE_NAMES[int(record['object_size'][k])],
        direction=world.DIRECTION_NAMES[int(record['object_direction'][k])],
        speed=world.SPEED_NAMES[speed] if speed >= 0 else None))
  return out


class _Tally:
  """Accuracies as (hits, count), so a batch weights them by how many things were scored."""

  def __init__(self):
    self.hits: dict[str, float] = {}
    self.counts: dict[str, int] = {}

  def add(self, name: str, ok: bool | float):
    self.hits[name] = self.hits.get(name, 0.0) + float(ok)
    self.counts[name] = self.counts.get(name, 0) + 1

  def means(self, names: Iterable[str]) -> dict[str, Any]:
    out = {n: (self.hits[n] / self.counts[n] if self.counts.get(n) else None) for n in names}
    out['weights'] = {n: self.counts.get(n, 0) for n in names}
    return out


ACCURACIES = ('color', 'shape', 'size', 'count', 'direction', 'speed', 'background', 'occluder', 'pan',
              'gravity', 'permanence')


def _physics_residual(result: ProbeResult, bounces_of: dict[str, np.ndarray] | None, g: float) -> float | None:
  """Mean |second difference| of clean centres away from bounces, minus gravity (px/frame^2)."""
  res = []
  for obj in result.objects:
    c, ok = obj.centers, obj.clean
    near_bounce = np.zeros(len(c), bool)
    if bounces_of is not None:
      b = bounces_of.get(obj.color)
      if b is None:
        continue
      near_bounce[:] = b
    else:
      for f in obj.bounce_frames:
        near_bounce[max(0, f - 1):f + 2] = True
    for t in range(1, len(c) - 1):
      if ok[t - 1] and ok[t] and ok[t + 1] and not (near_bounce[t] or near_bounce[t + 1]):
        d2 = c[t + 1] - 2 * c[t] + c[t - 1]
        res.append(math.hypot(d2[0] - g, d2[1]))
  return float(np.mean(res)) if res else None


def _mean_consistency(result: ProbeResult) -> float | None:
  values = [o.consistency for o in result.objects if o.consistency is not None]
  return float(np.mean(values)) if values else None


def score_against_truth(result: ProbeResult, record: Mapping[str, Any]) -> dict[str, Any]:
  """Scores what the probe read against a world record's truth.

  Returns:
    Accuracies in [0, 1] (None where nothing applies): 'color' (truth objects found by
    colour), 'shape', 'size', 'direction', 'speed' (per truth object; with gravity only the
    horizontal part of the direction counts; no direction in a 1-frame video), 'count',
    'background', 'occluder', 'pan', 'gravity' (per video), 'permanence' (per time an object
    went behind the bar and its motion says where it comes out; not where the truth has a
    bounce among the frames the motion was read from);
    'physics_residual' (px/frame^2, lower is better), 'consistency'; and 'weights', how
    many things each accuracy scored (for `aggregate`).
  """
  t_len = int(np.shape(record['frames'])[0])
  side = min(result.height, result.width)
  truth = _names(record)
  gravity = bool(record['gravity'])
  tally = _Tally()
  for obj_truth in truth:
    found = result.object(obj_truth['color'])
    tally.add('color', found is not None)
    tally.add('shape', found is not None and found.shape == obj_truth['shape'])
    tally.add('size', found is not None and found.size == obj_truth['size'])
    if t_len >= 2:
      if gravity:
        ok = (found is not None and found.velocity is not None
              and _horizontal_of_velocity(found.velocity[1], side) == horizontal(obj_truth['direction']))
      else:
        ok = found is not None and found.direction == obj_truth['direction']
      tally.add('direction', ok)
      if obj_truth['speed'] is not None:
        if found is None or found.velocity is None:
          speed = None
        else:
          speed = _speed_name(abs(found.velocity[1]) if gravity else math.hypot(*found.velocity), side)
        tally.add('speed', speed == obj_truth['speed'])
  tally.add('count', len(result.objects) == len(truth))
  tally.add('background', result.background == world.BACKGROUND_NAMES[int(record['background'])])
  tally.add('occluder', result.occluder == bool(record['occluder']))
  if t_len >= 2:
    tally.add('pan', tuple(result.pan) == tuple(int(v) for v in record['pan']))
  if t_len >= 3:
    tally.add('gravity', result.gravity == gravity)
  bounces = np.asarray(record['bounces'])
  bounces_of = {o['color']: bounces[:, k] for k, o in enumerate(truth)}
  for event in result.permanence:
    b = bounces_of.get(event.color)
    if b is not None and not b[event.fit_from + 1:event.fit_to + 1].any():
      tally.add('permanence', event.passed)
  out = tally.means(ACCURACIES)
  g = world.gravity_accel(result.height) if gravity else 0.0
  out['physics_residual'] = _physics_residual(result, bounces_of, g)
  out['consistency'] = _mean_consistency(result)
  return out


def _horizontal_of_velocity(vx: float, side: int) -> int:
  return 0 if abs(vx) < STILL_SPEED * side else int(np.sign(vx))


# ---- captions -------------------------------------------------------------------------------

_OBJECT_RE = re.compile(r'(?:\b(small|large)\s+)?\b(' + '|'.join(_COLOR_NAMES) + r')\s+(' +
                        '|'.join(world.SHAPES) + r')s?\b')
_BACKGROUND_RE = re.compile(r'\b(' + '|'.join(world.BACKGROUND_NAMES) + r')\s+background\b'
                            r'|\bbackground\s+is\s+(' + '|'.join(world.BACKGROUND_NAMES) + r')\b')
_PAN_RE = re.compile(r'\bcamera\s+pans\s+('
                     + '|'.join(sorted(world.PAN_PHRASES.values(), key=len, reverse=True)) + r')\b')
_DIRECTION_PHRASES = sorted(((p, d) for d, ps in world.DIRECTION_PHRASES.items() for p in ps),
                            key=lambda pd: len(pd[0]), reverse=True)
_DIRECTION_RE = re.compile(r'\b(' + '|'.join(re.escape(p) for p, _ in _DIRECTION_PHRASES) + r')\b')
_DIRECTION_OF = dict(_DIRECTION_PHRASES)
_SPEED_OF = {w: s for s, ws in world.SPEED_WORDS.items() for w in ws}
_SPEED_RE = re.compile(r'\b(' + '|'.join(_SPEED_OF) + r')\b')
_STILL_RE = re.compile(r'\b(' + '|'.join(re.escape(p) for p in world.STILL_PHRASES) + r'|straight down)\b')


def parse_caption(caption: str) -> dict[str, Any]:
  """What a world caption (short or descriptive) says a video shows.

  Returns:
    'objects': a list of {'color', 'shape', 'size', 'direction', 'speed'} in caption order
    (None for what the caption does not say; with gravity the direction is the horizontal
    one: 'east', 'west' or 'still'); 'colors', 'shapes', 'sizes' (lists), 'direction' and
    'speed' (of the first object), 'count', 'background' (None if not said), 'gravity'
    ('falls'), 'occluder' ('grey bar'), 'pan' ((dy, dx) signs, (0, 0) when a descriptive
    caption names no pan, None for a short one) and 'descriptive'.
  """
  text = caption.lower()
  pan_match = _PAN_RE.search(text)
  background = _BACKGROUND_RE.search(text)
  descriptive = background is not None
  pan = None
  if pan_match:
    pan = next(k for k, v in world.PAN_PHRASES.items() if v == pan_match.group(1))
  elif descriptive:
    pan = (0, 0)
  body = _PAN_RE.sub(' ', text)
  body = _BACKGROUND_RE.sub(' ', body)
  matches = list(_OBJECT_RE.finditer(body))
  gravity = bool(re.search(r'\bfalls?\b', text))
  objects = []
  for i, m in enumerate(matches):
    segment = body[m.end():matches[i + 1].start() if i + 1 < len(matches) else len(body)]
    direction = speed = None
    if _STILL_RE.search(segment):
      direction = 'still'
    else:
      d = _DIRECTION_RE.search(segment)
      if d:
        direction = _DIRECTION_OF[d.group(1)]
      elif gravity and re.search(r'\bfalls?\b', segment):
        direction = 'still'
      s = _SPEED_RE.search(segment)
      if s:
        speed = _SPEED_OF[s.group(1)]
    objects.append(dict(color=m.group(2), shape=m.group(3), size=m.group(1), direction=direction, speed=speed))
  bg = (background.group(1) or background.group(2)) if background else None
  return {
      'objects': objects,
      'colors': [o['color'] for o in objects],
      'shapes': [o['shape'] for o in objects],
      'sizes': [o['size'] for o in objects],
      'direction': objects[0]['direction'] if objects else None,
      'speed': objects[0]['speed'] if objects else None,
      'count': len(objects),
      'background': bg,
      'gravity': gravity,
      'occluder': 'grey bar' in text or 'gray bar' in text,
      'pan': pan,
      'descriptive': descriptive,
  }


def score_against_caption(result: ProbeResult, caption: str) -> dict[str, Any]:
  """Scores what the probe read against what a caption asks for (see `parse_caption`).

  Returns:
    The accuracies of `score_against_truth` that a caption can state ('color', 'shape',
    'size', 'direction', 'speed', 'count', and for descriptive captions 'background',
    'occluder', 'pan', 'gravity'), 'permanence' from the probe's own events, plus
    'physics_residual' (away from the probe's bounces) and 'consistency'; and 'weights'.
  """
  want = parse_caption(caption)
  side = min(result.height, result.width)
  t_len = result.num_frames
  tally = _Tally()
  for obj_want in want['objects']:
    found = result.object(obj_want['color'])
    tally.add('color', found is not None)
    tally.add('shape', found is not None and found.shape == obj_want['shape'])
    if obj_want['size'] is not None:
      tally.add('size', found is not None and found.size == obj_want['size'])
    if obj_want['direction'] is not None and t_len >= 2:
      if want['gravity']:
        ok = (found is not None and found.velocity is not None
              and _horizontal_of_velocity(found.velocity[1], side) == horizontal(obj_want['direction']))
      else:
        ok = found is not None and found.direction == obj_want['direction']
      tally.add('direction', ok)
    if obj_want['speed'] is not None and t_len >= 2:
      speed = None
      if found is not None and found.velocity is not None:
        speed = _speed_name(abs(found.velocity[1]) if want['gravity'] else math.hypot(*found.velocity), side)
      tally.add('speed', speed == obj_want['speed'])
  tally.add('count', len(result.objects) == want['count'])
  if want['descriptive']:
    tally.add('background', result.background == want['background'])
    tally.add('occluder', result.occluder == want['occluder'])
    if t_len >= 2:
      pan = (int(np.sign(result.pan[0])), int(np.sign(result.pan[1])))
      tally.add('pan', pan == want['pan'])
    if t_len >= 3:
      tally.add('gravity', result.gravity == want['gravity'])
  for event in result.permanence:
    tally.add('permanence', event.passed)
  out = tally.means(ACCURACIES)
  g = world.gravity_accel(result.height) if result.gravity else 0.0
  out['physics_residual'] = _physics_residual(result, None, g)
  out['consistency'] = _mean_consistency(result)
  return out


# ---- batches --------------------------------------------------------------------------------

def aggregate(scores: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
  """Combines per-video scores: accuracies weighted by what each scored, other metrics averaged.

  Returns:
    {metric: value or None} with 'num_videos' and, per accuracy, 'num_<metric>' (how many
    things it scored).
  """
  out: dict[str, Any] = {'num_videos': len(scores)}
  for name in ACCURACIES:
    hits = sum(s[name] * s['weights'][name] for s in scores if s.get(name) is not None)
    count = sum(s['weights'][name] for s in scores if s.get(name) is not None)
    out[name] = hits / count if count else None
    out[f'num_{name}'] = count
  for name in ('physics_residual', 'consistency'):
    values = [s[name] for s in scores if s.get(name) is not None]
    out[name] = float(np.mean(values)) if values else None
  return out


def score_videos(videos: Iterable[Any], records: Iterable[Mapping[str, Any]] | None = None,
                 captions: Iterable[str] | None = None) -> dict[str, Any]:
  """Probes many videos and aggregates their scores against records (truth) or captions.

  Args:
    videos: uint8 videos [T, H, W, 3] (a batch array [B, T, H, W, 3] works too).
    records: world records, one per video; their truth is the reference.
    captions: used when `records` is None; one per video.

  Returns:
    `aggregate` of the per-video scores.
  """
  if (records is None) == (captions is None):
    raise ValueError('score_videos needs exactly one reference: records= (world truth) or captions=.')
  refs = list(records if records is not None else captions)
  videos = list(videos)
  if len(videos) != len(refs):
    raise ValueError(f'score_videos got {len(videos)} videos but {len(refs)} references.')
  scores = []
  for video, ref in zip(videos, refs):
    result = probe_video(video)
    scores.append(score_against_truth(result, ref) if records is not None else score_against_caption(result, ref))
  return aggregate(scores)


__all__ = ['ProbeObject', 'ProbeResult', 'PermanenceEvent', 'probe_video', 'score_against_truth',
           'parse_caption', 'score_against_caption', 'aggregate', 'score_videos', 'horizontal']
