"""The built-in world: an infinite, deterministic dataset of captioned videos whose truth is known.

Real video datasets cannot be downloaded everywhere, and a research codebase needs data
where the truth is known, so generated videos can be scored (see `vidgen/world/probe.py`).
Sample `i` of a split is a pure function of `(seed, split, i)`.

A video shows 1 to 3 objects (shape, colour, size, direction, speed) on a dark background
with a faint lattice texture. Objects move at constant velocity and bounce elastically off
the walls; optionally gravity pulls them down (they fall and bounce on the floor), a static
grey bar stands in front of them (object permanence), and the camera pans (the texture
scrolls; objects move in screen coordinates).

Coordinates are in pixels, with pixel (i, j) centred at (y=i, x=j), so the canvas spans
[-0.5, H-0.5] x [-0.5, W-0.5] and the centroid of an object's pixels is its centre. An
object's centre is its centroid (a triangle's too), so the probe recovers it by averaging.

Splits: 'train' and 'eval' are disjoint random streams of the same distribution;
'heldout' shows colour/shape pairs (`HELDOUT_PAIRS`) that train and eval never show, at
least one per video.

Records (every source shares the first four keys; the rest are the world's truth, padded to
`MAX_OBJECTS` objects with -1 / 0 / False so Grain can batch them):
  'frames' uint8 [T, H, W, 3]    'caption' str    'fps' float32    'index' int64
  'caption_short' str, 'caption_descriptive' str, 'num_objects' int32,
  'object_color', 'object_shape', 'object_size', 'object_direction', 'object_speed'
      int32 [3]: indices into COLORS, SHAPES, SIZES, DIRECTIONS, SPEEDS (speed -1: still),
  'centers' float32 [T, 3, 2] (y, x), 'visible' bool [T, 3] (some pixel of it shows),
  'bounces' bool [T, 3] (it bounced between frame t-1 and t), 'background' int32 (index into
  BACKGROUNDS), 'gravity' bool, 'occluder' bool, 'pan' int32 [2] (camera dy, dx in pixels per
  frame: frame[t+1][y, x] shows what frame[t][y + dy, x + dx] showed in the background).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import ml_collections
import numpy as np

# ---- vocabularies ---------------------------------------------------------------------------

# Bright object colours, far apart in RGB (the closest pair is > 130 apart), so a colour
# survives blur and noise and identifies its object (colours are distinct within a video).
COLORS: dict[str, tuple[int, int, int]] = {
    'red': (230, 30, 30),
    'green': (30, 200, 30),
    'blue': (40, 60, 255),
    'yellow': (240, 220, 20),
    'magenta': (220, 40, 220),
    'cyan': (30, 220, 230),
    'white': (245, 245, 245),
}
SHAPES: tuple[str, ...] = ('circle', 'square', 'triangle')
# Half-extent of an object as a fraction of min(H, W).
SIZES: dict[str, float] = {'small': 0.12, 'large': 0.2}
# Unit motion (dy, dx); screen y grows downward, so north is up.
DIRECTIONS: dict[str, tuple[int, int]] = {
    'north': (-1, 0), 'northeast': (-1, 1), 'east': (0, 1), 'southeast': (1, 1),
    'south': (1, 0), 'southwest': (1, -1), 'west': (0, -1), 'northwest': (-1, -1),
    'still': (0, 0),
}
# Pixels per frame as a fraction of min(H, W): a fast object crosses the canvas in 20 frames.
SPEEDS: dict[str, float] = {'slow': 0.02, 'fast': 0.05}
# Dark backgrounds, far from every object colour and from the occluder grey.
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    'black': (0, 0, 0),
    'navy': (20, 20, 100),
    'dark green': (10, 80, 30),
    'dark brown': (90, 50, 10),
    'dark purple': (75, 10, 85),
    'dark grey': (55, 55, 55),
}
OCCLUDER_COLOR: tuple[int, int, int] = (128, 128, 128)
# The background lattice (lines every TEXTURE_PERIOD pixels, TEXTURE_DELTA lighter) is what
# makes a camera pan visible. The period is > 2 * the largest pan, so a pan reads unambiguously.
TEXTURE_PERIOD = 8
TEXTURE_DELTA = 24
MAX_PAN = 2
# Downward acceleration in pixels per frame^2, as a fraction of the canvas height.
GRAVITY = 0.025
# The occluder bar's thickness as a fraction of min(H, W): it hides most of a small object
# (never all of one: an object is always partly in view).
OCCLUDER_WIDTH = 0.2
# A bar runs the full length of the canvas, or this fraction of it where a full one has no room.
OCCLUDER_LENGTH = 0.6
MAX_OBJECTS = 3
# The smallest canvas side on which a large object fits with room to move and a small one
# still has a readable shape.
MIN_SIDE = 16
# Colour/shape pairs that only the 'heldout' split shows (one per colour).
HELDOUT_PAIRS: tuple[tuple[str, str], ...] = (
    ('red', 'triangle'), ('green', 'circle'), ('blue', 'square'), ('yellow', 'triangle'),
    ('magenta', 'circle'), ('cyan', 'square'), ('white', 'triangle'))
SPLITS: dict[str, int] = {'train': 0, 'eval': 1, 'heldout': 2}
CAPTION_STYLES = ('short', 'descriptive', 'mixed')

# Every object is in full view, away from walls, other objects and the occluder, for frames
# 0..CLEAR_FRAMES, so its direction can be read from those frames.
CLEAR_FRAMES = 3
_LAYOUT_TRIES = 8  # whole layouts to try, and ...
_POSITION_TRIES = 64  # ... start positions to try at once for each object in one
_OCCLUDER_TRIES = 4  # layouts to try fitting a bar between, before laying one out around a bar

# Caption phrases. probe.parse_caption reads these back, so change both together.
DIRECTION_PHRASES: dict[str, tuple[str, ...]] = {
    'north': ('up', 'upward'),
    'northeast': ('up and to the right', 'diagonally up and right'),
    'east': ('to the right', 'rightward'),
    'southeast': ('down and to the right', 'diagonally down and right'),
    'south': ('down', 'downward'),
    'southwest': ('down and to the left', 'diagonally down and left'),
    'west': ('to the left', 'leftward'),
    'northwest': ('up and to the left', 'diagonally up and left'),
}
SPEED_WORDS: dict[str, tuple[str, ...]] = {'slow': ('slowly',), 'fast': ('quickly', 'fast')}
STILL_PHRASES = ('stays still', 'does not move', 'sits still')
MOVE_VERBS = ('moves', 'slides', 'drifts', 'glides')
PAN_PHRASES: dict[tuple[int, int], str] = {
    (-1, 0): 'up', (-1, 1): 'up and right', (0, 1): 'right', (1, 1): 'down and right',
    (1, 0): 'down', (1, -1): 'down and left', (0, -1): 'left', (-1, -1): 'up and left',
}

COLOR_NAMES = tuple(COLORS)
SIZE_NAMES = tuple(SIZES)
DIRECTION_NAMES = tuple(DIRECTIONS)
SPEED_NAMES = tuple(SPEEDS)
BACKGROUND_NAMES = tuple(BACKGROUNDS)
_HELDOUT = {(COLOR_NAMES.index(c), SHAPES.index(s)) for c, s in HELDOUT_PAIRS}


def gravity_accel(height: int) -> float:
  """Gravity in pixels per frame^2 on a canvas `height` pixels tall."""
  return GRAVITY * height


def object_extents(shape: str, half: float) -> tuple[float, float, float, float]:
  """How far an object reaches from its centre: (up, down, left, right) in pixels.

  A triangle (apex up) has its centroid a third of the way up from its base, so it reaches
  4/3 of its half-extent up and 2/3 down; circles and squares reach `half` every way.
  """
  if shape == 'triangle':
    return 4 * half / 3, 2 * half / 3, half, half
  return half, half, half, half


# ---- spec -----------------------------------------------------------------------------------

def _check_scene_odds(spec: WorldConfig | WorldSpec) -> None:
  if not 1 <= spec.min_objects <= spec.max_objects <= MAX_OBJECTS:
    raise ValueError(
        f'data.world.min_objects={spec.min_objects} and max_objects={spec.max_objects} must satisfy '
        f'1 <= min_objects <= max_objects <= {MAX_OBJECTS}.')
  for name in ('still_prob', 'gravity_prob', 'occluder_prob', 'pan_prob'):
    value = getattr(spec, name)
    if not 0.0 <= value <= 1.0:
      raise ValueError(f'data.world.{name} is a probability and must be in [0, 1], got {value}.')
  if spec.caption_style not in CAPTION_STYLES:
    raise ValueError(f'data.world.caption_style={spec.caption_style!r} is not one of {CAPTION_STYLES}.')


@dataclasses.dataclass(frozen=True)
class WorldConfig:
  """The `data.world` config block: the odds of each kind of scene and each split's size."""
  min_objects: int = 1
  max_objects: int = 3
  still_prob: float = 0.1     # chance that an object does not move
  gravity_prob: float = 0.0   # chance that a video has gravity (objects fall and bounce)
  occluder_prob: float = 0.0  # chance of a static bar that objects pass behind
  pan_prob: float = 0.0       # chance that the camera pans (the textured background scrolls)
  caption_style: str = 'descriptive'  # 'short' | 'descriptive' | 'mixed': which caption is `caption`
  train_size: int = 1_000_000  # the world is infinite; these are the index ranges each split exposes
  eval_size: int = 1_000
  heldout_size: int = 1_000

  def __post_init__(self):
    _check_scene_odds(self)
    for split in SPLITS:
      if getattr(self, f'{split}_size') < 1:
        raise ValueError(f'data.world.{split}_size must be >= 1, got {getattr(self, f"{split}_size")}.')


@dataclasses.dataclass(frozen=True)
class WorldSpec:
  """What the world renders: canvas, length and the odds of each kind of scene (`WorldConfig`)."""
  height: int = 32
  width: int = 32
  num_frames: int = 17
  fps: float = 8.0
  min_objects: int = WorldConfig.min_objects
  max_objects: int = WorldConfig.max_objects
  still_prob: float = WorldConfig.still_prob
  gravity_prob: float = WorldConfig.gravity_prob
  occluder_prob: float = WorldConfig.occluder_prob
  pan_prob: float = WorldConfig.pan_prob
  caption_style: str = WorldConfig.caption_style

  def __post_init__(self):
    side = min(self.height, self.width)
    if side < MIN_SIDE:
      raise ValueError(
          f'The world canvas {self.height}x{self.width} is too small: its shorter side must be at '
          f'least {MIN_SIDE} pixels so a large object ({2 * SIZES["large"]:.1f} of it) fits with room '
          f'to move and a small one keeps a readable shape. Set data.height/data.width to e.g. 32.')
    if self.num_frames < 1:
      raise ValueError(f'data.num_frames must be >= 1 (1 renders an image), got {self.num_frames}.')
    if not self.fps > 0:
      raise ValueError(f'data.fps must be > 0, got {self.fps}.')
    _check_scene_odds(self)

  @classmethod
  def from_config(cls, data_config: ml_collections.ConfigDict) -> WorldSpec:
    """The spec of a `data` config block (canvas on top, the scene's odds in `.world`)."""
    w = data_config.world
    return cls(height=int(data_config.height), width=int(data_config.width),
               num_frames=int(data_config.num_frames), fps=float(data_config.fps),
               min_objects=int(w.min_objects), max_objects=int(w.max_objects),
               still_prob=float(w.still_prob), gravity_prob=float(w.gravity_prob),
               occluder_prob=float(w.occluder_prob), pan_prob=float(w.pan_prob),
               caption_style=str(w.caption_style))


# ---- scenes ---------------------------------------------------------------------------------

@dataclasses.dataclass
class WorldObject:
  """One object's attributes and its whole trajectory."""
  color: int
  shape: int
  size: int
  direction: int
  speed: int  # -1 when still
  extents: tuple[float, float, float, float]  # up, down, left, right
  centers: np.ndarray  # float64 [T, 2] (y, x)
  wall_bounces: np.ndarray  # bool [T]: bounced off a side or the ceiling in (t-1, t]
  floor_bounces: np.ndarray  # bool [T]: bounced on the floor in (t-1, t]
  behind_bar: bool = False  # its centre passes behind the occluder at some frame


@dataclasses.dataclass
class Scene:
  """Everything a sample is, before rendering: enough to caption it without drawing pixels."""
  height: int
  width: int
  num_frames: int
  objects: list[WorldObject]
  background: int
  gravity: bool
  pan: tuple[int, int]
  texture_offset: tuple[int, int]
  occluder: tuple[int, int, int, int] | None  # (y0, y1, x0, x1) pixel rows/cols [y0, y1) x [x0, x1)
  caption_short: str
  caption_descriptive: str
  caption: str


def _check_split(split: str) -> int:
  if split not in SPLITS:
    raise ValueError(f'Unknown world split {split!r}; use one of {tuple(SPLITS)}.')
  return SPLITS[split]


def _fold(p: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
  """Positions of free motion `p` reflected into [lo, hi], and the reflection count so far."""
  span = hi - lo
  if span <= 0:
    return np.full_like(p, lo), np.zeros(p.shape, np.int64)
  u = np.mod(p - lo, 2 * span)
  folded = lo + np.where(u <= span, u, 2 * span - u)
  return folded, np.floor((p - lo) / span).astype(np.int64)


def _bounced(count: np.ndarray) -> np.ndarray:
  """bool [T]: the reflection count changed between frame t-1 and t."""
  out = np.zeros(count.shape, bool)
  out[1:] = count[1:] != count[:-1]
  return out


def _fall(y0: float, floor: float, g: float, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Height of an object dropped from rest at y0 that bounces elastically on `floor`."""
  d = max(floor - y0, 0.0)
  if d <= 0 or g <= 0:
    return np.full(t.shape, floor), np.zeros(t.shape, bool)
  t1 = math.sqrt(2 * d / g)  # first impact
  vi = g * t1
  period = 2 * t1
  s = np.mod(t - t1, period)
  y = np.where(t < t1, y0 + 0.5 * g * t * t, floor - (vi * s - 0.5 * g * s * s))
  impacts = np.where(t < t1, 0, np.floor((t - t1) / period).astype(np.int64) + 1)
  return y, _bounced(impacts)


def _apart(a: np.ndarray, b: np.ndarray, gap: float) -> np.ndarray:
  """Whether boxes a and b ([..., 4] as y0, y1, x0, x1; broadcast) are `gap` apart, per box."""
  return ((a[..., 1] + gap <= b[..., 0]) | (b[..., 1] + gap <= a[..., 0])
          | (a[..., 3] + gap <= b[..., 2]) | (b[..., 3] + gap <= a[..., 2]))


def _box(centers: np.ndarray, ext: tuple[float, float, float, float]) -> np.ndarray:
  """Bounding boxes [..., 4] (y0, y1, x0, x1) of an object at centres [..., 2]."""
  up, down, left, right = ext
  return np.stack([centers[..., 0] - up, centers[..., 0] + down, centers[..., 1] - left, centers[..., 1] + right], -1)


def _motion_params(spec: WorldSpec, shape: int, size: int, direction: int, speed: int, gravity: bool):
  """An object's extents, velocity (vy, vx) and the ranges its start centre may take.

  The ranges keep it off the walls for frames 0..CLEAR_FRAMES (and, with gravity, leave it
  room to fall visibly), so its first moves show its direction.
  """
  h, w, side = spec.height, spec.width, min(spec.height, spec.width)
  ext = object_extents(SHAPES[shape], SIZES[SIZE_NAMES[size]] * side)
  up, down, left, right = ext
  lo_y, hi_y, lo_x, hi_x = -0.5 + up, h - 0.5 - down, -0.5 + left, w - 0.5 - right
  dy, dx = DIRECTIONS[DIRECTION_NAMES[direction]]
  v = 0.0 if speed < 0 else SPEEDS[SPEED_NAMES[speed]] * side
  norm = math.hypot(dy, dx) or 1.0
  vy, vx = (0.0 if gravity else v * dy / norm), (v * dx if gravity else v * dx / norm)
  m = CLEAR_FRAMES
  x_range = (lo_x + max(0.0, -vx * m), hi_x - max(0.0, vx * m))
  if gravity:
    drop = max(0.5 * gravity_accel(h) * m * m, 0.25 * (hi_y - lo_y)) + 1e-6
    y_range = (lo_y, hi_y - drop)
  else:
    y_range = (lo_y + max(0.0, -vy * m), hi_y - max(0.0, vy * m))
  return ext, (vy, vx), y_range, x_range, (lo_y, hi_y, lo_x, hi_x)


def _early_centers(starts: np.ndarray, velocity: tuple[float, float], gravity: float) -> np.ndarray:
  """Centres [..., CLEAR_FRAMES + 1, 2] over the first frames (no bounce happens there) from starts [..., 2]."""
  t = np.arange(CLEAR_FRAMES + 1, dtype=np.float64)
  y = starts[..., 0, None] + velocity[0] * t + 0.5 * gravity * t * t
  x = starts[..., 1, None] + velocity[1] * t
  return np.stack([y, x], -1)


def _trajectory(start: tuple[float, float], velocity: tuple[float, float], bounds, gravity: float,
                num_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Centres [T, 2], wall bounces [T] and floor bounces [T] of an object from its start."""
  t = np.arange(num_frames, dtype=np.float64)
  lo_y, hi_y, lo_x, hi_x = bounds
  x, x_count = _fold(start[1] + velocity[1] * t, lo_x, hi_x)
  if gravity > 0:
    y, floor = _fall(start[0], hi_y, gravity, t)
    walls = _bounced(x_count)
  else:
    y, y_count = _fold(start[0] + velocity[0] * t, lo_y, hi_y)
    floor, walls = np.zeros(t.shape, bool), _bounced(x_count) | _bounced(y_count)
  return np.stack([y, x], -1), walls, floor


@functools.lru_cache(maxsize=32)
def _occluder_candidates(h: int, w: int) -> np.ndarray:
  """Every bar an HxW canvas can hold: int [M, 4] (y0, y1, x0, x1), full-length or not, off the edges."""
  thick = max(2, round(OCCLUDER_WIDTH * min(h, w)))
  out = []
  for vertical in (True, False):
    across, along = (w, h) if vertical else (h, w)
    for length in dict.fromkeys([along, round(OCCLUDER_LENGTH * along)]):
      s, a = np.meshgrid(np.arange(1, across - thick), np.arange(0, along - length + 1), indexing='ij')
      s, a = s.ravel(), a.ravel()
      if vertical:
        out.append(np.stack([a, a + length, s, s + thick], -1))
      else:
        out.append(np.stack([s, s + thick, a, a + length], -1))
  return np.concatenate(out)


def _occluder_box(spec: WorldSpec, rng: np.random.Generator, objects: list[WorldObject] | None = None
                  ) -> tuple[int, int, int, int] | None:
  """A bar, vertical or horizontal, the full length of the canvas or OCCLUDER_LENGTH of it.

  Given objects, the bar must stay 2 px clear of them in frames 0..CLEAR_FRAMES, and lies
  across the path of a moving one where it can (None if no place is clear). Without objects,
  it goes in the middle part of the canvas, where objects on either side that move across it
  go behind it and come out.
  """
  h, w = spec.height, spec.width
  thick = max(2, round(OCCLUDER_WIDTH * min(h, w)))
  if objects is None:
    vertical = bool(rng.integers(2))
    across = w if vertical else h
    start = int(rng.integers(round(0.2 * across), round(0.8 * across) - thick + 1))
    return (0, h, start, start + thick) if vertical else (start, start + thick, 0, w)
  boxes = _occluder_candidates(h, w)
  bars = boxes.astype(np.float64) - 0.5  # pixel rows y0..y1-1 span [y0 - 0.5, y1 - 0.5]
  ok = np.ones(len(boxes), bool)
  crosses = np.zeros(len(boxes), bool)
  for o in objects:
    early = _box(o.centers[:CLEAR_FRAMES + 1], o.extents)  # [F, 4]
    ok &= np.all(_apart(early[None], bars[:, None], 2.0), axis=1)
    c = o.centers[None]  # [1, T, 2]
    inside = ((c[..., 0] > bars[:, None, 0]) & (c[..., 0] < bars[:, None, 1])
              & (c[..., 1] > bars[:, None, 2]) & (c[..., 1] < bars[:, None, 3]))
    crosses |= inside.any(1)
  pool = np.nonzero(ok & crosses)[0]
  if not len(pool):
    pool = np.nonzero(ok)[0]
  if not len(pool):
    return None
  return tuple(int(v) for v in boxes[pool[int(rng.integers(len(pool)))]])


def _behind(obj: WorldObject, box: tuple[int, int, int, int]) -> bool:
  """Whether the object's centre is behind the bar at some frame (it is then mostly hidden)."""
  y0, y1, x0, x1 = box
  c = obj.centers
  inside = (c[:, 0] > y0 - 0.5) & (c[:, 0] < y1 - 0.5) & (c[:, 1] > x0 - 0.5) & (c[:, 1] < x1 - 0.5)
  return bool(inside.any())


def _place_objects(spec: WorldSpec, attributes: list[list[int]], gravity: float,
                   rng: np.random.Generator, num_frames: int,
                   occluder: tuple[int, int, int, int] | None) -> list[WorldObject]:
  """Start positions with every object 2 px clear of the others and of the bar for frames 0..CLEAR_FRAMES.

  An object that finds no room at its size is made small. Several whole layouts are tried
  and the one that keeps the most objects, then the most sizes, wins (without a bar the
  first object always fits; a crowded canvas may show fewer objects than asked for).
  """
  obstacles = []
  if occluder is not None:
    y0, y1, x0, x1 = occluder
    obstacles.append(np.array([y0 - 0.5, y1 - 0.5, x0 - 0.5, x1 - 0.5]))
  small = SIZE_NAMES.index('small')
  best, best_score = [], (-1, -1)
  for _ in range(_LAYOUT_TRIES):
    layout = []
    for color, shape, size, direction, speed in attributes:
      for try_size in dict.fromkeys([size, small]):
        ext, velocity, y_range, x_range, bounds = _motion_params(
            spec, shape, try_size, direction, speed, gravity > 0)
        starts = rng.uniform((y_range[0], x_range[0]), (y_range[1], x_range[1]), size=(_POSITION_TRIES, 2))
        boxes = _box(_early_centers(starts, velocity, gravity), ext)  # [N, F, 4]
        ok = np.ones(_POSITION_TRIES, bool)
        for other in [o[1] for o in layout] + obstacles:
          ok &= np.all(_apart(boxes, other, 2.0), axis=-1)
        if ok.any():
          k = int(ok.argmax())
          layout.append(((color, shape, try_size, direction, speed), boxes[k], ext, tuple(starts[k]),
                         velocity, bounds, try_size == size))
          break
    if not layout or layout[0][0][:2] != tuple(attributes[0][:2]):
      continue  # the first object (the held-out one, in that split) must be in every layout
    score = (len(layout), sum(item[-1] for item in layout))
    if score > best_score:
      best, best_score = layout, score
    if best_score == (len(attributes), len(attributes)):
      break
  objects = []
  for (color, shape, size, direction, speed), _, ext, start, velocity, bounds, _ in best:
    centers, walls, floor = _trajectory(start, velocity, bounds, gravity, num_frames)
    objects.append(WorldObject(color, shape, size, direction, speed, ext, centers, walls, floor))
  return objects


def make_scene(spec: WorldSpec, split: str, seed: int, index: int) -> Scene:
  """The scene of sample `index` of `split`: a pure function of its arguments."""
  split_id = _check_split(split)
  rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, split_id, int(index)])
  num_frames = spec.num_frames
  moving = num_frames > 1
  gravity = bool(rng.random() < spec.gravity_prob) and num_frames > 2
  use_occluder = bool(rng.random() < spec.occluder_prob)
  pan_on = bool(rng.random() < spec.pan_prob) and moving
  pan_dir = list(PAN_PHRASES)[int(rng.integers(len(PAN_PHRASES)))]
  pan_mag = int(rng.integers(1, MAX_PAN + 1))
  pan = (pan_dir[0] * pan_mag, pan_dir[1] * pan_mag) if pan_on else (0, 0)
  texture_offset = (int(rng.integers(TEXTURE_PERIOD)), int(rng.integers(TEXTURE_PERIOD)))
  background = int(rng.integers(len(BACKGROUNDS)))

  n = int(rng.integers(spec.min_objects, spec.max_objects + 1))
  colors = [int(c) for c in rng.choice(len(COLORS), size=n, replace=False)]
  heldout_slot = int(rng.integers(n)) if split == 'heldout' else -1
  shapes = []
  for k, c in enumerate(colors):
    if k == heldout_slot:
      shapes.append(next(s for cc, s in _HELDOUT if cc == c))
    elif split == 'heldout':
      shapes.append(int(rng.integers(len(SHAPES))))
    else:
      allowed = [s for s in range(len(SHAPES)) if (c, s) not in _HELDOUT]
      shapes.append(allowed[int(rng.integers(len(allowed)))])
  if heldout_slot > 0:  # place the held-out object first, so it always fits
    order = [heldout_slot] + [k for k in range(n) if k != heldout_slot]
    colors, shapes = [colors[k] for k in order], [shapes[k] for k in order]

  attributes = []
  for color, shape in zip(colors, shapes):
    size = int(rng.integers(len(SIZES)))
    if rng.random() < spec.still_prob:
      direction, speed = DIRECTION_NAMES.index('still'), -1
    else:
      direction = (DIRECTION_NAMES.index(['east', 'west'][int(rng.integers(2))]) if gravity
                   else int(rng.integers(8)))
      speed = int(rng.integers(len(SPEEDS)))
    attributes.append([color, shape, size, direction, speed])
  g = gravity_accel(spec.height) if gravity else 0.0
  objects = _place_objects(spec, attributes, g, rng, num_frames, None)
  occluder = None
  for _ in range(_OCCLUDER_TRIES if use_occluder else 0):
    occluder = _occluder_box(spec, rng, objects)
    if occluder is not None:
      break
    objects = _place_objects(spec, attributes, g, rng, num_frames, None)
  if use_occluder and occluder is None:  # no room for a bar between them: lay them out around one
    occluder = _occluder_box(spec, rng)
    objects = _place_objects(spec, attributes, g, rng, num_frames, occluder)
    if not objects:
      occluder = None
      objects = _place_objects(spec, attributes, g, rng, num_frames, None)
  for obj in objects:
    obj.behind_bar = occluder is not None and _behind(obj, occluder)
  scene = Scene(spec.height, spec.width, num_frames, objects, background, gravity, pan,
                texture_offset, occluder, '', '', '')
  scene.caption_short = _short_caption(scene, rng)
  scene.caption_descriptive = _descriptive_caption(scene, rng)
  style = spec.caption_style
  if style == 'mixed':
    style = ('short', 'descriptive')[int(rng.integers(2))]
  scene.caption = scene.caption_short if style == 'short' else scene.caption_descriptive
  return scene


# ---- captions -------------------------------------------------------------------------------

def _join(parts: list[str], sep_last: str = ' and ') -> str:
  if len(parts) == 1:
    return parts[0]
  return ', '.join(parts[:-1]) + sep_last + parts[-1]


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
  return options[int(rng.integers(len(options)))]


def _short_caption(scene: Scene, rng: np.random.Generator) -> str:
  names = [f'{COLOR_NAMES[o.color]} {SHAPES[o.shape]}' for o in scene.objects]
  if rng.integers(2):
    names = ['a ' + n for n in names]
  return _join(names)


def _object_clause(scene: Scene, obj: WorldObject, rng: np.random.Generator) -> str:
  name = f'a {SIZE_NAMES[obj.size]} {COLOR_NAMES[obj.color]} {SHAPES[obj.shape]}'
  if scene.num_frames == 1:
    return name
  direction = DIRECTION_NAMES[obj.direction]
  if direction == 'still':
    motion = 'falls straight down' if scene.gravity else _pick(rng, STILL_PHRASES)
  else:
    move = (f'{_pick(rng, MOVE_VERBS)} {_pick(rng, SPEED_WORDS[SPEED_NAMES[obj.speed]])} '
            f'{_pick(rng, DIRECTION_PHRASES[direction])}')
    motion = f'falls while it {move}' if scene.gravity else move
  hits = []
  if obj.wall_bounces.any():
    hits.append(_pick(rng, ('the wall', 'the edge')))
  if obj.floor_bounces.any():
    hits.append('the floor')
  if hits:
    motion += (' and bounces off ' if hits[0] != 'the floor' else ' and bounces on ') + ' and '.join(hits)
  if obj.behind_bar:
    motion += ' and passes behind the grey bar'
  return f'{name} {motion}'


def _descriptive_caption(scene: Scene, rng: np.random.Generator) -> str:
  clauses = [_object_clause(scene, o, rng) for o in scene.objects]
  objects = clauses[0] + ''.join(f'{_pick(rng, (", while ", ", and ", "; "))}{c}' for c in clauses[1:])
  background = f'a {BACKGROUND_NAMES[scene.background]} background'
  if scene.occluder is not None:
    background += ' with a grey bar'
  pan = ''
  if scene.pan != (0, 0):
    sign = (int(np.sign(scene.pan[0])), int(np.sign(scene.pan[1])))
    pan = f' {_pick(rng, ("as", "while"))} the camera pans {PAN_PHRASES[sign]}'
  form = int(rng.integers(3))
  if form == 0:
    return f'{objects} on {background}{pan}'
  if form == 1:
    return f'on {background}, {objects}{pan}'
  return f'{objects}{pan}, on {background}'


# ---- rendering ------------------------------------------------------------------------------

def _object_masks(obj: WorldObject, height: int, width: int) -> np.ndarray:
  """bool [T, H, W]: the pixels whose centres lie inside the object."""
  half = SIZES[SIZE_NAMES[obj.size]] * min(height, width)
  dy = np.arange(height, dtype=np.float32)[None, :, None] - obj.centers[:, 0, None, None].astype(np.float32)
  dx = np.arange(width, dtype=np.float32)[None, None, :] - obj.centers[:, 1, None, None].astype(np.float32)
  shape = SHAPES[obj.shape]
  if shape == 'circle':
    return dy * dy + dx * dx <= half * half
  if shape == 'square':
    return (np.abs(dy) <= half) & (np.abs(dx) <= half)
  top = 4 * half / 3
  return (dy >= -top) & (dy <= 2 * half / 3) & (np.abs(dx) <= (dy + top) * 0.5)


def _texture(scene: Scene) -> np.ndarray:
  """bool [T, H, W]: the lattice lines, scrolled by the camera."""
  t = np.arange(scene.num_frames)[:, None]
  rows = (np.arange(scene.height)[None] + scene.texture_offset[0] + scene.pan[0] * t) % TEXTURE_PERIOD == 0
  cols = (np.arange(scene.width)[None] + scene.texture_offset[1] + scene.pan[1] * t) % TEXTURE_PERIOD == 0
  return rows[:, :, None] | cols[:, None, :]


def render_scene(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
  """Draws a scene: uint8 frames [T, H, W, 3] and per-object visibility bool [T, n]."""
  bg = np.array(BACKGROUNDS[BACKGROUND_NAMES[scene.background]], np.int16)
  frames = np.empty((scene.num_frames, scene.height, scene.width, 3), np.uint8)
  frames[:] = bg.astype(np.uint8)
  frames[_texture(scene)] = np.clip(bg + TEXTURE_DELTA, 0, 255).astype(np.uint8)
  masks = [_object_masks(o, scene.height, scene.width) for o in scene.objects]
  for obj, mask in zip(scene.objects, masks):
    frames[mask] = COLORS[COLOR_NAMES[obj.color]]
  covered = np.zeros(frames.shape[:3], bool)
  if scene.occluder is not None:
    y0, y1, x0, x1 = scene.occluder
    frames[:, y0:y1, x0:x1] = OCCLUDER_COLOR
    covered[:, y0:y1, x0:x1] = True
  visible = np.zeros((scene.num_frames, len(masks)), bool)
  for k in reversed(range(len(masks))):  # later objects are drawn on top
    visible[:, k] = np.any(masks[k] & ~covered, axis=(1, 2))
    covered |= masks[k]
  return frames, visible


def scene_record(scene: Scene, index: int, fps: float) -> dict[str, Any]:
  """The record of a scene (see the module docstring for its keys)."""
  frames, visible = render_scene(scene)
  t, n = scene.num_frames, len(scene.objects)

  def ints(field):
    out = np.full(MAX_OBJECTS, -1, np.int32)
    out[:n] = [getattr(o, field) for o in scene.objects]
    return out

  centers = np.zeros((t, MAX_OBJECTS, 2), np.float32)
  vis = np.zeros((t, MAX_OBJECTS), bool)
  bounces = np.zeros((t, MAX_OBJECTS), bool)
  for k, obj in enumerate(scene.objects):
    centers[:, k] = obj.centers
    bounces[:, k] = obj.wall_bounces | obj.floor_bounces
  vis[:, :n] = visible
  return {
      'frames': frames,
      'caption': scene.caption,
      'fps': np.float32(fps),
      'index': np.int64(index),
      'caption_short': scene.caption_short,
      'caption_descriptive': scene.caption_descriptive,
      'num_objects': np.int32(n),
      'object_color': ints('color'),
      'object_shape': ints('shape'),
      'object_size': ints('size'),
      'object_direction': ints('direction'),
      'object_speed': ints('speed'),
      'centers': centers,
      'visible': vis,
      'bounces': bounces,
      'background': np.int32(scene.background),
      'gravity': np.bool_(scene.gravity),
      'occluder': np.bool_(scene.occluder is not None),
      'pan': np.array(scene.pan, np.int32),
  }


def render(spec: WorldSpec, split: str, seed: int, index: int) -> dict[str, Any]:
  """Sample `index` of `split`: a record, a pure function of (spec, split, seed, index)."""
  return scene_record(make_scene(spec, split, seed, index), index, spec.fps)


def continue_scene(scene: Scene, spec: WorldSpec, num_frames: int) -> Scene:
  """The same scene run for `num_frames`: each object keeps its start, velocity and walls.

  Long videos for reference (vidgen/eval/coherence.py): the opening frames are the scene's
  own, and the same physics (constant velocity, elastic bounces, gravity, the bar, the pan)
  carries on for as long as asked. The captions stay the clip's: they say how the video
  starts, which is what a model trained on the clips is prompted with.
  """
  if num_frames < 1:
    raise ValueError(f'num_frames must be >= 1, got {num_frames}.')
  g = gravity_accel(spec.height) if scene.gravity else 0.0
  objects = []
  for obj in scene.objects:
    _, velocity, _, _, bounds = _motion_params(spec, obj.shape, obj.size, obj.direction, obj.speed, scene.gravity)
    centers, walls, floor = _trajectory(tuple(obj.centers[0]), velocity, bounds, g, num_frames)
    objects.append(dataclasses.replace(obj, centers=centers, wall_bounces=walls, floor_bounces=floor))
  return dataclasses.replace(scene, num_frames=num_frames, objects=objects)


def render_long(spec: WorldSpec, split: str, seed: int, index: int, num_frames: int) -> dict[str, Any]:
  """Record `index` of `split` continued to `num_frames` (`continue_scene`): its first
  `spec.num_frames` frames are `render(spec, split, seed, index)`'s, its caption that clip's."""
  scene = make_scene(spec, split, seed, index)
  return scene_record(continue_scene(scene, spec, num_frames), index, spec.fps)


# ---- Grain source ---------------------------------------------------------------------------

class WorldSource:
  """A Grain random-access source of world records: `size` samples of one split.

  Holds only the spec and numbers, so it pickles cheaply to Grain's worker processes.
  """

  def __init__(self, spec: WorldSpec, split: str = 'train', seed: int = 0, size: int = 1_000_000):
    _check_split(split)
    if size < 0:
      raise ValueError(f'WorldSource size must be >= 0, got {size}.')
    self.spec, self.split, self.seed, self.size = spec, split, int(seed), int(size)

  def __len__(self) -> int:
    return self.size

  def _check(self, index: Any) -> int:
    index = int(index)
    if index < 0:
      index += self.size
    if not 0 <= index < self.size:
      raise IndexError(f'Index {index} is out of range for {self!r}, which has {self.size} records.')
    return index

  def __getitem__(self, index: int) -> dict[str, Any]:
    return render(self.spec, self.split, self.seed, self._check(index))

  def caption(self, index: int) -> str:
    """The caption of record `index`, without rendering its frames (for tokenizer training)."""
    return make_scene(self.spec, self.split, self.seed, self._check(index)).caption

  def __repr__(self) -> str:
    return f'WorldSource({self.spec!r}, split={self.split!r}, seed={self.seed}, size={self.size})'


def make_source(data_config: ml_collections.ConfigDict, split: str, seed: int) -> WorldSource:
  """The world source of `split` for a `data` config block (sizes from `.world`)."""
  _check_split(split)
  size = int(data_config.world[f'{split}_size'])
  return WorldSource(WorldSpec.from_config(data_config), split, seed, size)


__all__ = [
    'COLORS', 'SHAPES', 'SIZES', 'DIRECTIONS', 'SPEEDS', 'BACKGROUNDS', 'OCCLUDER_COLOR',
    'HELDOUT_PAIRS', 'SPLITS', 'WorldConfig', 'WorldSpec', 'Scene', 'WorldObject', 'make_scene', 'render_scene',
    'scene_record', 'render', 'continue_scene', 'render_long', 'WorldSource', 'make_source', 'gravity_accel', 'object_extents',
]
