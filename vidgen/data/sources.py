"""Random-access video sources for Grain: a folder of video files, ArrayRecord shards, TFDS.

Every source yields the same record, a dict of numpy values, so the pipeline never asks
where a video came from:

  'frames'   uint8 [T, H, W, 3] at the source's native size and length
  'caption'  str
  'fps'      np.float32 scalar, the native frame rate
  'index'    np.int64 scalar, the record's index in this source (`source[r['index']]` gives `r`)

The world source adds ground-truth keys. Cutting clips to the target fps and frame count,
and resizing, is the pipeline's job, not the source's.

Sources are plain picklable objects with `__len__` and `__getitem__`: Grain ships them to
its worker processes, so they hold paths and open files lazily.
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import hashlib
import io
import json
import math
import os
import threading
import zipfile
from typing import Any, Mapping, Sequence

from absl import logging
import ml_collections
import numpy as np

from vidgen.data import video_io
from vidgen.world import scenes as world

SOURCES = ('world', 'folder', 'array_record', 'tfds')


DEFAULT_EVAL_FRACTION = 0.02


def _check_fraction(block: str, fraction: float) -> None:
  if not 0.0 <= fraction < 1.0:
    raise ValueError(f'data.{block}.eval_fraction={fraction} must be in [0, 1).')


@dataclasses.dataclass(frozen=True)
class FolderConfig:
  """The `data.folder` block: a folder of video files and their captions, and its held-out split."""
  path: str = ''      # folder of .mp4/.webm/.gif files
  captions: str = ''  # JSONL ({"file": ..., "caption": ...}) or CSV (file,caption); default: PATH/captions.jsonl
  eval_path: str = ''       # a folder of held-out videos; '': hold out eval_fraction of PATH's files
  eval_captions: str = ''   # the eval folder's captions file; default: EVAL_PATH/captions.jsonl
  eval_fraction: float = DEFAULT_EVAL_FRACTION  # files held out by a hash of their name (`held_out`)

  def __post_init__(self):
    _check_fraction('folder', self.eval_fraction)


@dataclasses.dataclass(frozen=True)
class ArrayRecordConfig:
  """The `data.array_record` block: shards written by `vidgen.data.export` or `encode_latents`."""
  pattern: str = ''   # e.g. /data/world-*.array_record
  eval_pattern: str = ''    # shards of held-out records; '': hold out eval_fraction of PATTERN's records
  eval_fraction: float = DEFAULT_EVAL_FRACTION  # records held out by a hash of their index (`held_out`)

  def __post_init__(self):
    _check_fraction('array_record', self.eval_fraction)


@dataclasses.dataclass(frozen=True)
class TfdsConfig:
  """The `data.tfds` block: a prepared TFDS dataset, read through `tfds.data_source`."""
  name: str = ''
  data_dir: str = ''
  video_key: str = 'video'
  caption_key: str = 'caption'
  fps: float = 8.0    # the dataset's frame rate, when its records do not say


def _check_index(index: Any, length: int, source: object) -> int:
  index = int(index)
  if not 0 <= index < length:
    raise IndexError(f'Index {index} is out of range for {source!r}, which has {length} records.')
  return index


# ---- a folder of video files --------------------------------------------------------------

class VideoFolderSource:
  """The videos in a folder, each with a caption from a JSONL or CSV file.

  The caption file decides which videos are records and in what order: JSONL with one
  `{"file": "a.mp4", "caption": "..."}` per line, or CSV with a header `file,caption`.
  `file` is relative to the folder (or absolute). A video may be listed more than once.

  A video that cannot be decoded does not stop training: its record is replaced by the
  next readable one in order (so the result is deterministic), the file is logged once,
  and `num_skipped` counts such files in this process.
  """

  substitutes_unreadable = True  # an unreadable file's record is the next readable one's

  def __init__(self, path: str | os.PathLike, captions: str | os.PathLike | None = None):
    path = os.fspath(path)
    if not path:
      raise ValueError('VideoFolderSource needs a folder of videos: set --config.data.folder.path=/path/to/videos.')
    if not os.path.isdir(path):
      raise FileNotFoundError(f'Video folder {path!r} does not exist or is not a folder (data.folder.path).')
    self._path = path
    self._captions_path = _find_caption_file(path, captions)
    self._files, self._captions = _read_caption_file(self._captions_path, path)
    self._unreadable: set[str] = set()

  @property
  def num_skipped(self) -> int:
    """How many distinct files this process found unreadable (and skipped) so far."""
    return len(self._unreadable)

  @property
  def files(self) -> list[str]:
    """The video path of each record, in order."""
    return list(self._files)

  def __len__(self) -> int:
    return len(self._files)

  def __getitem__(self, index: int) -> dict[str, Any]:
    index = _check_index(index, len(self), self)
    n = len(self._files)
    for offset in range(n):
      j = (index + offset) % n
      file = self._files[j]
      if file in self._unreadable:
        continue
      try:
        frames, fps = video_io.read_video(file)
      except (video_io.VideoReadError, FileNotFoundError) as e:
        self._unreadable.add(file)
        logging.warning('Skipping unreadable video %s (record %d; replaced by the next readable record): %s',
                        file, j, e)
        continue
      return {'frames': frames, 'caption': self._captions[j], 'fps': np.float32(fps), 'index': np.int64(j)}
    raise video_io.VideoReadError(
        f'None of the {n} videos listed in {self._captions_path} can be decoded; see the warnings above '
        'for each file. Check that they are valid .mp4/.webm/.gif files (e.g. play one with ffplay).')

  def __repr__(self) -> str:
    return f'VideoFolderSource({self._path!r}, captions={self._captions_path!r}, {len(self)} videos)'


def _find_caption_file(folder: str, captions: str | os.PathLike | None) -> str:
  if captions:
    captions = os.fspath(captions)
    if not os.path.isfile(captions):
      raise FileNotFoundError(f'Caption file {captions!r} does not exist (data.folder.captions).')
    return captions
  candidates = [os.path.join(folder, 'captions.jsonl'), os.path.join(folder, 'captions.csv')]
  for candidate in candidates:
    if os.path.isfile(candidate):
      return candidate
  with os.scandir(folder) as entries:
    has_videos = any(e.name.lower().endswith(video_io.VIDEO_EXTENSIONS) for e in entries)
  if not has_videos:
    raise FileNotFoundError(
        f'Video folder {folder!r} has no video files ({", ".join(video_io.VIDEO_EXTENSIONS)}) and no caption file.')
  raise FileNotFoundError(
      f'No caption file for the videos in {folder!r}: looked for {candidates[0]} and {candidates[1]}. '
      'Write one line {"file": "a.mp4", "caption": "..."} per video to captions.jsonl '
      '(or a CSV with columns file,caption), or name the file with --config.data.folder.captions=PATH.')


def _read_caption_file(captions_path: str, folder: str) -> tuple[list[str], list[str]]:
  """Parses (video paths, captions) and checks that every video exists."""
  try:
    return _parse_caption_file(captions_path, folder)
  except UnicodeDecodeError as e:
    raise ValueError(f'{captions_path} is not UTF-8 text ({e.reason} at byte {e.start}): save the caption file '
                     'as UTF-8.') from None


def _parse_caption_file(captions_path: str, folder: str) -> tuple[list[str], list[str]]:
  ext = os.path.splitext(captions_path)[1].lower()
  rows: list[tuple[str, Any, Any]] = []  # (where, file, caption)
  with open(captions_path, encoding='utf-8', newline='') as f:
    if ext in ('.jsonl', '.json'):
      for line_number, line in enumerate(f, 1):
        if not line.strip():
          continue
        where = f'{captions_path}:{line_number}'
        try:
          item = json.loads(line)
        except json.JSONDecodeError as e:
          raise ValueError(f'{where}: not valid JSON ({e}); '
                           'each line must be {"file": ..., "caption": ...}.') from None
        if not isinstance(item, dict) or 'file' not in item or 'caption' not in item:
          raise ValueError(f'{where}: each line must be a JSON object with "file" and "caption"; '
                           f'got {line.strip()[:200]}')
        rows.append((where, item['file'], item['caption']))
    elif ext == '.csv':
      reader = csv.DictReader(f)
      if not reader.fieldnames or not {'file', 'caption'} <= set(reader.fieldnames):
        raise ValueError(f'{captions_path}: a caption CSV needs a header row with columns file,caption; '
                         f'got {reader.fieldnames}.')
      for row in reader:
        rows.append((f'{captions_path}:{reader.line_num}', row['file'], row['caption']))
    else:
      raise ValueError(f'Caption file {captions_path!r} must end in .jsonl or .csv.')
  files, captions = [], []
  for where, file, caption in rows:
    if not isinstance(file, str) or not file or not isinstance(caption, str):
      raise ValueError(f'{where}: "file" must be a non-empty string and "caption" a string; got {file!r}, {caption!r}.')
    if not file.lower().endswith(video_io.VIDEO_EXTENSIONS):
      raise ValueError(f'{where}: {file!r} is not a video file; vidgen reads {", ".join(video_io.VIDEO_EXTENSIONS)}.')
    video_path = os.path.join(folder, file)
    if not os.path.isfile(video_path):
      raise FileNotFoundError(f'{where} names {file!r}, but {video_path} does not exist. '
                              'Fix the caption file or add the video.')
    files.append(video_path)
    captions.append(caption)
  if not files:
    raise ValueError(f'Caption file {captions_path} lists no videos; add one line per video.')
  return files, captions


# ---- ArrayRecord shards -------------------------------------------------------------------

def encode_record(record: Mapping[str, Any]) -> bytes:
  """Serializes a record to .npz bytes: every value keeps its dtype and shape, strings stay strings.

  The format is numpy's own (`np.load(io.BytesIO(data))` reads it anywhere) and holds no
  pickles, so reading a record never runs code. It is stored uncompressed: ArrayRecord
  compresses each record (zstd) already.
  """
  buffer = io.BytesIO()
  with zipfile.ZipFile(buffer, 'w', zipfile.ZIP_STORED) as archive:
    for key, value in record.items():
      if not isinstance(key, str) or not key:
        raise ValueError(f'Record keys must be non-empty strings; got {key!r}.')
      array = np.asarray(value)
      if array.dtype.hasobject:
        raise ValueError(f'Record key {key!r} holds {type(value).__name__} of dtype object; only numpy arrays '
                         'of a fixed dtype, numbers and strings can be stored. Convert it first.')
      with archive.open(key + '.npy', 'w', force_zip64=True) as f:
        np.lib.format.write_array(f, array, allow_pickle=False)
  return buffer.getvalue()


# numpy parses each .npy header with ast.literal_eval, and CPython 3.11's AST constructor is not
# thread-safe (python/cpython#106905): Grain's prefetch threads decoding records at once can fail
# with "SystemError: AST constructor recursion depth mismatch". Records decode one at a time.
_DECODE_LOCK = threading.Lock()


def decode_record(data: bytes) -> dict[str, Any]:
  """Inverse of `encode_record`: 0-d arrays come back as numpy scalars, 0-d strings as str."""
  record = {}
  with _DECODE_LOCK, np.load(io.BytesIO(data), allow_pickle=False) as npz:
    for key in npz.files:
      array = npz[key]
      if array.ndim == 0:
        kind = array.dtype.kind
        array = str(array) if kind == 'U' else bytes(array[()]) if kind == 'S' else array[()]
      record[key] = array
  return record


def _expand_pattern(pattern: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
  patterns = [pattern] if isinstance(pattern, (str, os.PathLike)) else list(pattern)
  paths = []
  for p in patterns:
    p = os.fspath(p)
    if os.path.isdir(p):
      p = os.path.join(p, '*.array_record')
    has_wildcard = any(c in p for c in '*?[')
    matches = sorted(glob.glob(p)) if has_wildcard else [p] if os.path.isfile(p) else []
    paths.extend(matches)
  if not paths:
    raise FileNotFoundError(
        f'ArrayRecord pattern {pattern!r} matches no files. Write shards with '
        '`python -m vidgen.data.export --config ... --out DIR`, then set '
        '--config.data.array_record.pattern="DIR/train-*.array_record".')
  return paths


class ArrayRecordSource:
  """Records written by `vidgen.data.export` into ArrayRecord shards (a glob, a folder or a list).

  Each record is `.npz` bytes (see `encode_record`), decoded back to numpy values with the
  dtypes and shapes they were written with. 'index' is the record's position in these
  shards (the export writes a source's records in order, so it is also the original index).
  """

  def __init__(self, pattern: str | os.PathLike | Sequence[str | os.PathLike]):
    import grain  # pylint: disable=g-import-not-at-top
    self._pattern = pattern
    self._paths = _expand_pattern(pattern)
    self._source = grain.sources.ArrayRecordDataSource(self._paths)

  @property
  def paths(self) -> list[str]:
    return list(self._paths)

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> dict[str, Any]:
    index = _check_index(index, len(self), self)
    return self._decode(self._source[index], index)

  def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
    indices = [_check_index(i, len(self), self) for i in indices]
    return [self._decode(data, i) for data, i in zip(self._source.__getitems__(indices), indices)]

  def _decode(self, data: bytes, index: int) -> dict[str, Any]:
    try:
      record = decode_record(data)
    except (ValueError, zipfile.BadZipFile, OSError) as e:
      raise ValueError(f'Record {index} of {self._pattern!r} is not a vidgen record ({e}); '
                       'ArrayRecordSource reads shards written by vidgen.data.export.') from e
    record['index'] = np.int64(index)
    return record

  def __repr__(self) -> str:
    return f'ArrayRecordSource({self._pattern!r}, {len(self._paths)} shards)'


# ---- in memory ------------------------------------------------------------------------------


class InMemorySource:
  """Another source whose records are read and decoded once, then kept in memory.

  For a small source read over many epochs: the quickstart's 2,000 cached latent clips are
  30 MB, and decoding a record from its shard (about 1.2 ms) cost the 2-core CPU about 7% of
  each DiT step. Records are kept as the wrapped source returns them, with arrays made
  read-only, so nothing downstream can change what a later epoch reads.
  """

  def __init__(self, source: Any):
    self._source = source
    self._records: dict[int, dict[str, Any]] = {}

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> dict[str, Any]:
    index = _check_index(index, len(self), self)
    record = self._records.get(index)
    if record is None:
      record = {k: _read_only(v) for k, v in self._source[index].items()}
      self._records[index] = record
    return dict(record)

  def __repr__(self) -> str:
    return f'InMemorySource({self._source!r}, {len(self._records)} of {len(self)} records read)'


def _read_only(value: Any) -> Any:
  if isinstance(value, np.ndarray):
    value = value.view()
    value.flags.writeable = False
  return value


# ---- TFDS ---------------------------------------------------------------------------------

class TfdsSource:
  """A TFDS dataset with a video feature, read by random access through `tfds.data_source`.

  The dataset must be prepared in the ArrayRecord file format, e.g.
  `tfds build NAME --file_format=array_record --data_dir=DIR`. TFDS videos carry no frame
  rate, so `fps` (data.tfds.fps) says what it is. `caption_key` may name a Text feature,
  a ClassLabel (its label name becomes the caption) or be '' for no captions.
  """

  def __init__(self, name: str, split: str, data_dir: str | None = None, video_key: str = 'video',
               caption_key: str = 'caption', fps: float = 8.0):
    if not name:
      raise ValueError('TfdsSource needs a dataset name: set --config.data.tfds.name=NAME.')
    if not math.isfinite(fps) or fps <= 0:
      raise ValueError(f'data.tfds.fps must be the dataset\'s positive frame rate; got {fps}.')
    self._name, self._split, self._data_dir = name, split, data_dir or None
    self._video_key, self._caption_key, self._fps = video_key, caption_key, float(fps)
    self._ds = None
    features = self._open().dataset_info.features
    for key, what in ((video_key, 'video_key'), (caption_key, 'caption_key')):
      if key and key not in features:
        raise KeyError(f'TFDS dataset {name!r} has no feature {key!r} (data.tfds.{what}); '
                       f'its features are: {", ".join(sorted(features.keys()))}.')
    self._label_names = getattr(features[caption_key], 'names', None) if caption_key else None
    self._length = len(self._ds)

  def _open(self):
    if self._ds is None:
      import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
      try:
        self._ds = tfds.data_source(self._name, split=self._split, data_dir=self._data_dir, download=False)
      except Exception as e:  # TFDS raises many types; say what was asked and how to prepare it.
        reason = (str(e).strip().splitlines() or [''])[0][:300]  # the first line; some list every dataset
        raise ValueError(
            f'Cannot open TFDS dataset {self._name!r}, split {self._split!r}, data_dir {self._data_dir!r}: '
            f'{type(e).__name__}: {reason} The dataset must already be prepared '
            'in the ArrayRecord format: '
            f'tfds build {self._name} --file_format=array_record --data_dir=DIR.') from e
    return self._ds

  def __len__(self) -> int:
    return self._length

  def __getitem__(self, index: int) -> dict[str, Any]:
    index = _check_index(index, len(self), self)
    example = self._open()[index]
    frames = np.asarray(example[self._video_key])
    if frames.ndim == 4 and frames.shape[-1] == 1:
      frames = np.repeat(frames, 3, axis=-1)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
      raise ValueError(f'TFDS feature {self._video_key!r} of {self._name!r} must be a uint8 video [T, H, W, 3]; '
                       f'got {frames.dtype} {frames.shape}. Set data.tfds.video_key to its video feature.')
    caption = example[self._caption_key] if self._caption_key else ''
    if self._label_names is not None:
      caption = self._label_names[int(caption)]
    elif isinstance(caption, (bytes, np.bytes_)):
      caption = caption.decode('utf-8')
    return {'frames': frames, 'caption': str(caption), 'fps': np.float32(self._fps), 'index': np.int64(index)}

  def __getstate__(self) -> dict[str, Any]:
    state = self.__dict__.copy()
    state['_ds'] = None  # reopened lazily in the process that reads
    return state

  def __repr__(self) -> str:
    return f'TfdsSource({self._name!r}, split={self._split!r}, data_dir={self._data_dir!r}, {len(self)} videos)'


# ---- from config --------------------------------------------------------------------------

def held_out(key: str, fraction: float) -> bool:
  """Whether the record named `key` is in the held-out split: a hash of the name, so a record
  stays on its side when files are added or the machine changes."""
  bucket = int.from_bytes(hashlib.sha256(key.encode('utf-8')).digest()[:8], 'big') % 1_000_000
  return bucket < fraction * 1_000_000


class SubsetSource:
  """Records `indices` of another source, renumbered from 0 (one side of a held-out split)."""

  def __init__(self, source: Any, indices: Sequence[int], description: str):
    self._source = source
    self._indices = list(indices)
    self._position = {j: i for i, j in enumerate(self._indices)}
    self.description = description

  @property
  def substitutes_unreadable(self) -> bool:
    return getattr(self._source, 'substitutes_unreadable', False)

  def __len__(self) -> int:
    return len(self._indices)

  def __getitem__(self, index: int) -> dict[str, Any]:
    index = _check_index(index, len(self), self)
    record = dict(self._source[self._indices[index]])
    # source[r['index']] is r: a folder's stand-in for an unreadable video keeps its own index (-1: not on this side)
    record['index'] = np.int64(self._position.get(int(record['index']), -1))
    return record

  def __repr__(self) -> str:
    return f'SubsetSource({self.description}, {len(self)} records)'


def split_source(source: Any, names: Sequence[str], split: str, fraction: float, block: str) -> SubsetSource:
  """The `split` side of `source` ('train': the records not held out; any other split: those held out)."""
  if split != 'train' and fraction <= 0:
    raise ValueError(
        f'data.{block} has no held-out split for {split!r}: set data.{block}.'
        f'{"eval_path" if block == "folder" else "eval_pattern"} to held-out data, or data.{block}.eval_fraction > 0 '
        'to hold out a share of the training data (evaluating on training data would flatter the model).')
  out = [i for i, name in enumerate(names) if held_out(name, fraction) == (split != 'train')]
  side = 'training side' if split == 'train' else 'held-out side'
  description = f'the {side} of {block} data with {fraction:.0%} held out by name hash ({len(out)} of {len(names)})'
  if not out:
    raise ValueError(f'{description[0].upper()}{description[1:]} is empty: raise data.{block}.eval_fraction, '
                     'or give held-out data of its own.')
  return SubsetSource(source, out, description)


def make_source(data_config: ml_collections.ConfigDict, split: str, seed: int):
  """The source named by `data_config.source`, for `split`.

  'world' serves its train/eval/heldout splits from `seed`; 'tfds' reads the TFDS split of
  that name. 'folder' and 'array_record' are one set of videos: split 'train' is the part not
  held out; any other split reads `eval_path`/`eval_pattern` when given, else the records held
  out by a hash of their name (`eval_fraction`; 0 holds out nothing, and asking for an eval
  split is then an error). With `data_config.keep_in_memory` each record is read once and then
  served from memory (`InMemorySource`).
  """
  source = _make_source(data_config, split, seed)
  return InMemorySource(source) if data_config.keep_in_memory else source


def describe_split(data_config: ml_collections.ConfigDict, split: str) -> str:
  """Which data `split` of the config's source is, in words (for reports)."""
  kind = data_config.source
  if kind in ('world', 'tfds'):
    return f'the {kind} source\'s {split!r} split'
  c = data_config[kind]
  separate = c.eval_path if kind == 'folder' else c.eval_pattern
  if split != 'train' and separate:
    return f'held-out {kind} data at {separate}'
  side = 'training' if split == 'train' else 'held-out'
  return f'the {side} side of {kind} data with {c.eval_fraction:.0%} held out by name hash'


def _make_source(data_config: ml_collections.ConfigDict, split: str, seed: int):
  kind = data_config.source
  if kind == 'world':
    return world.make_source(data_config, split, seed)
  if kind == 'folder':
    c = data_config.folder
    if split != 'train' and c.eval_path:
      return VideoFolderSource(c.eval_path, c.eval_captions or None)
    source = VideoFolderSource(c.path, c.captions or None)
    if split == 'train' and (c.eval_path or c.eval_fraction == 0):
      return source
    names = [os.path.relpath(f, c.path) for f in source.files]  # where the folder lives does not move a file
    return split_source(source, names, split, c.eval_fraction, 'folder')
  if kind == 'array_record':
    c = data_config.array_record
    if split != 'train' and c.eval_pattern:
      return ArrayRecordSource(c.eval_pattern)
    if not c.pattern:
      raise ValueError('data.source is array_record but data.array_record.pattern is empty: set '
                       '--config.data.array_record.pattern="DIR/train-*.array_record".')
    source = ArrayRecordSource(c.pattern)
    if split == 'train' and (c.eval_pattern or c.eval_fraction == 0):
      return source
    return split_source(source, [str(i) for i in range(len(source))], split, c.eval_fraction, 'array_record')
  if kind == 'tfds':
    c = data_config.tfds
    return TfdsSource(c.name, split, c.data_dir or None, c.video_key, c.caption_key, c.fps)
  raise ValueError(f'Unknown data.source {kind!r}; use one of: {", ".join(SOURCES)}.')
