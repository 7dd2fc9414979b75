"""The Grain input pipeline: any source → clips at the target size → batches for training.

Sources of cached VAE latents (written by vidgen.data.encode_latents) pass their latents
through instead of cutting clips.

source → global shuffle (seeded, reshuffled each epoch) → shard by JAX process →
clip (temporal sampling at the target fps, resize + crop) → scale to [-1, 1] + tokenize →
batch → worker processes and prefetch.

Every random choice comes from Grain's per-element rng, seeded by (config seed, element
index), so the pipeline is a pure function of (seed, index) and its iterator state (saved
with each checkpoint) resumes it exactly.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import TYPE_CHECKING, Any, Iterable

import grain
import jax
import ml_collections
import numpy as np
from PIL import Image

from vidgen.data import sources
from vidgen.data.sources import ArrayRecordConfig, FolderConfig, TfdsConfig
from vidgen.data.tokenizer import TokenizerConfig
from vidgen.world.scenes import WorldConfig

if TYPE_CHECKING:
  from vidgen.data.tokenizer import Tokenizer

# What every pipeline element and batch holds.
VIDEO = 'video'          # float32 [T, H, W, 3] in [-1, 1]
TEXT_IDS = 'text_ids'    # int32 [L]
TEXT_MASK = 'text_mask'  # bool [L]
CAPTION = 'caption'      # str
INDEX = 'index'          # int64: the record's index in its source
# Instead of VIDEO, for sources of cached latents:
LATENT_MEAN = 'latent_mean'      # float32 [T', H', W', C]
LATENT_LOGVAR = 'latent_logvar'  # float32 [T', H', W', C]

_CLIP_STARTS = ('random', 'start', 'center')
_SHORT_CLIP_POLICIES = ('error', 'loop', 'pad')
_CROPS = ('center', 'random')


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """The `data` block: where videos come from and how they are cut, scaled, tokenized and batched."""
  source: str = 'world'     # 'world' | 'folder' | 'array_record' | 'tfds'
  split: str = 'train'      # world: 'train' | 'eval' | 'heldout'; tfds: any split name
  eval_split: str = 'eval'
  # The clip every source is cut to (the world renders at exactly this size).
  num_frames: int = 17
  height: int = 32
  width: int = 32
  fps: float = 8.0
  clip_start: str = 'random'  # 'random' | 'start' | 'center': where the clip starts in a longer video
  short_clip: str = 'error'   # clip shorter than num_frames: 'error' | 'loop' | 'pad' (repeat last frame)
  crop: str = 'center'        # after resizing the short side: 'center' | 'random'
  world: WorldConfig = dataclasses.field(default_factory=WorldConfig)
  folder: FolderConfig = dataclasses.field(default_factory=FolderConfig)
  array_record: ArrayRecordConfig = dataclasses.field(default_factory=ArrayRecordConfig)
  tfds: TfdsConfig = dataclasses.field(default_factory=TfdsConfig)
  keep_in_memory: bool = False  # read each record once, then serve it from memory (small sources, many epochs)
  batch_size: int = 8       # global batch; each JAX process loads batch_size / process_count
  shuffle: bool = True
  num_epochs: int | None = None  # None repeats forever
  num_workers: int = 0      # Grain worker processes (0: load in the main process)
  prefetch: int = 2         # batches buffered per worker
  read_threads: int = 2     # threads reading records in each process
  tokenizer: TokenizerConfig = dataclasses.field(default_factory=TokenizerConfig)

  def __post_init__(self):
    if self.source not in sources.SOURCES:
      raise ValueError(f'data.source={self.source!r} is unknown; use one of {list(sources.SOURCES)}.')
    ClipSpec.from_config(self)  # checks the clip fields
    if self.batch_size < 1:
      raise ValueError(f'data.batch_size must be >= 1, got {self.batch_size}.')
    if self.num_epochs is not None and self.num_epochs < 1:
      raise ValueError(f'data.num_epochs must be >= 1, or None to repeat forever; got {self.num_epochs}.')
    if min(self.num_workers, self.prefetch, self.read_threads) < 0:
      raise ValueError('data.num_workers, prefetch and read_threads must be >= 0; got '
                       f'{self.num_workers}, {self.prefetch}, {self.read_threads}.')


@dataclasses.dataclass(frozen=True)
class ClipSpec:
  """The clip every video is cut to, and the policies for videos that do not fit it."""
  num_frames: int
  height: int
  width: int
  fps: float
  clip_start: str = 'random'
  short_clip: str = 'error'
  crop: str = 'center'

  def __post_init__(self):
    if self.num_frames < 1 or self.height < 1 or self.width < 1:
      raise ValueError(f'data.num_frames/height/width must be >= 1, got {self.num_frames}/{self.height}/{self.width}.')
    if self.fps <= 0:
      raise ValueError(f'data.fps must be > 0, got {self.fps}.')
    for name, value, allowed in (('clip_start', self.clip_start, _CLIP_STARTS),
                                 ('short_clip', self.short_clip, _SHORT_CLIP_POLICIES),
                                 ('crop', self.crop, _CROPS)):
      if value not in allowed:
        raise ValueError(f'data.{name}={value!r} is not one of {allowed}.')

  @classmethod
  def from_config(cls, data_config: ml_collections.ConfigDict | DataConfig) -> 'ClipSpec':
    return cls(num_frames=data_config.num_frames, height=data_config.height, width=data_config.width,
               fps=float(data_config.fps), clip_start=data_config.clip_start,
               short_clip=data_config.short_clip, crop=data_config.crop)


def clip_frame_indices(num_source_frames: int, source_fps: float, spec: ClipSpec,
                       rng: np.random.Generator, index: int = -1) -> np.ndarray:
  """Which source frames make the clip: `spec.num_frames` frames `source_fps / spec.fps` apart."""
  stride = source_fps / spec.fps if source_fps > 0 else 1.0
  offsets = np.round(np.arange(spec.num_frames) * stride).astype(np.int64)
  last_start = num_source_frames - 1 - int(offsets[-1])
  if last_start < 0:
    if spec.short_clip == 'error':
      raise ValueError(
          f'Video {index} has {num_source_frames} frames at {source_fps:g} fps; a clip of '
          f'{spec.num_frames} frames at {spec.fps:g} fps needs {int(offsets[-1]) + 1}. Use shorter clips '
          f'(data.num_frames), a higher data.fps, or data.short_clip=loop|pad.')
    if spec.short_clip == 'loop':
      return offsets % num_source_frames
    return np.minimum(offsets, num_source_frames - 1)  # 'pad': hold the last frame
  if spec.clip_start == 'start':
    start = 0
  elif spec.clip_start == 'center':
    start = last_start // 2
  else:
    start = int(rng.integers(0, last_start + 1))
  return start + offsets


def resize_and_crop(frames: np.ndarray, height: int, width: int, crop: str,
                    rng: np.random.Generator) -> np.ndarray:
  """Scales so the video covers (height, width) keeping its aspect ratio, then crops."""
  t, h, w, _ = frames.shape
  if (h, w) == (height, width):
    return frames
  scale = max(height / h, width / w)
  new_h, new_w = max(height, math.ceil(h * scale - 1e-6)), max(width, math.ceil(w * scale - 1e-6))
  if (new_h, new_w) != (h, w):
    frames = np.stack([np.asarray(Image.fromarray(f).resize((new_w, new_h), Image.BICUBIC,
                                                               reducing_gap=None)) for f in frames])
  if crop == 'random':
    top = int(rng.integers(0, new_h - height + 1))
    left = int(rng.integers(0, new_w - width + 1))
  else:
    top, left = (new_h - height) // 2, (new_w - width) // 2
  return frames[:, top:top + height, left:left + width]


class MakeClip(grain.transforms.RandomMap):
  """Temporal sampling and spatial resize/crop of one record, then scaling and tokenizing."""

  def __init__(self, spec: ClipSpec, tokenizer: Tokenizer | None, max_length: int, overflow: str):
    self.spec = spec
    self.tokenizer = tokenizer
    self.max_length = max_length
    self.overflow = overflow

  def random_map(self, record: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    if LATENT_MEAN in record:  # cached VAE latents (vidgen.data.encode_latents): already clips
      out = {LATENT_MEAN: np.asarray(record[LATENT_MEAN], np.float32),
             LATENT_LOGVAR: np.asarray(record[LATENT_LOGVAR], np.float32)}
    else:
      out = {VIDEO: self._clip(record, rng)}
    caption = str(record.get('caption', ''))
    out.update({CAPTION: caption, INDEX: np.int64(record.get('index', -1))})
    if self.tokenizer is not None:
      ids, mask = self.tokenizer.encode(caption, self.max_length, self.overflow)
      out[TEXT_IDS], out[TEXT_MASK] = ids[0], mask[0]
    return out

  def _clip(self, record: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    frames = record['frames']
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
      raise ValueError(f'Record {record.get("index")} has frames {frames.dtype}{list(frames.shape)}; '
                       'sources must yield uint8 [T, H, W, 3].')
    indices = clip_frame_indices(frames.shape[0], float(record.get('fps', self.spec.fps)), self.spec, rng,
                                 int(record.get('index', -1)))
    frames = resize_and_crop(frames[indices], self.spec.height, self.spec.width, self.spec.crop, rng)
    return frames.astype(np.float32) / 127.5 - 1.0


def make_dataset(config: ml_collections.ConfigDict, split: str | None = None, *,
                 tokenizer: Tokenizer | None = None, process_index: int | None = None,
                 process_count: int | None = None, source: Any = None,
                 shuffle: bool | None = None, num_epochs: int | None = -1) -> grain.IterDataset:
  """Builds the pipeline for `config.data` (a full experiment config with `.seed` and `.data`).

  Args:
    config: experiment config; reads `config.seed` and `config.data`.
    split: source split; default `config.data.split`.
    tokenizer: tokenizes captions into `text_ids`/`text_mask`; None leaves them out (VAE training).
    process_index, process_count: this process's shard; default JAX's.
    source: a ready random-access source; default `sources.make_source(config.data, split, seed)`.
    shuffle: default `config.data.shuffle`.
    num_epochs: None repeats forever; -1 takes `config.data.num_epochs`.

  Returns:
    A Grain IterDataset of batches of `batch_size / process_count` elements; `iter()` it and
    save/restore the iterator's `get_state()`/`set_state()` to resume exactly.
  """
  data = config.data
  split = split or data.split
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  if data.batch_size % process_count:
    raise ValueError(f'data.batch_size={data.batch_size} is not divisible by the {process_count} JAX processes.')
  spec = ClipSpec.from_config(data)
  if source is None:
    source = sources.make_source(data, split, config.seed)
  if len(source) == 0:
    raise ValueError(f'The {data.source!r} source for split {split!r} is empty.')
  shuffle = data.shuffle if shuffle is None else shuffle
  num_epochs = data.num_epochs if num_epochs == -1 else num_epochs

  ds = grain.MapDataset.source(source)
  if shuffle:
    ds = ds.shuffle(seed=config.seed)
  ds = ds.repeat(num_epochs)  # reshuffles every epoch
  ds = ds[process_index::process_count]
  ds = ds.random_map(MakeClip(spec, tokenizer, data.tokenizer.max_length, data.tokenizer.overflow),
                     seed=config.seed)
  ds = ds.batch(data.batch_size // process_count, drop_remainder=True)
  it = ds.to_iter_dataset(grain.ReadOptions(num_threads=max(1, data.read_threads),
                                            prefetch_buffer_size=max(1, data.prefetch)))
  if data.num_workers > 0:
    it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=data.num_workers,
                                                     per_worker_buffer_size=max(1, data.prefetch)))
  return it


def source_captions(config: ml_collections.ConfigDict, limit: int) -> Iterable[str]:
  """Up to `limit` captions of the training split, to train a tokenizer on."""
  source = sources.make_source(config.data, config.data.split, config.seed)
  fast = getattr(source, 'caption', None)  # the world can caption without rendering
  for i in range(min(limit, len(source))):
    yield fast(i) if callable(fast) else str(source[i]['caption'])


def make_tokenizer(config: ml_collections.ConfigDict, workdir: str | None) -> Tokenizer:
  """Loads `data.tokenizer.model_path`, or the run's saved tokenizer, or trains one on the source."""
  from vidgen.data import tokenizer as tokenizer_lib
  tok = config.data.tokenizer
  return tokenizer_lib.tokenizer_from_config(
      tok, lambda: source_captions(config, tok.train_examples), workdir)


def make_eval_dataset(config: ml_collections.ConfigDict, split: str | None = None, *,
                      tokenizer: Tokenizer | None = None, **data_overrides: Any) -> grain.IterDataset:
  """One pass over `split` (default `data.eval_split`) in order, clips from each video's start.

  The same batches every time and on every host (evaluation is not sharded); `data_overrides`
  change fields of `config.data` (e.g. num_frames=1 to evaluate images).
  """
  config = copy.deepcopy(config)
  config.unlock()
  config.data.update(dict(num_workers=0, clip_start='start', crop='center', **data_overrides))
  return make_dataset(config, split or config.data.eval_split, tokenizer=tokenizer, shuffle=False,
                      num_epochs=1, process_index=0, process_count=1)


__all__ = ['ClipSpec', 'MakeClip', 'make_dataset', 'make_eval_dataset', 'make_tokenizer', 'clip_frame_indices',
           'resize_and_crop', 'source_captions']
