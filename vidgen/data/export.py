"""Write any vidgen source to ArrayRecord shards, so training reads records instead of decoding video.

  python -m vidgen.data.export --config experiments/configs/world.py --out /data/world \
      --split train --num_records 100000 --records_per_shard 1000 [--config.data.x=y ...]

writes DIR/{split}-00000-of-000NN.array_record ... and DIR/{split}.json (count, shards, keys,
the data config). Train on them with
  --config.data.source=array_record --config.data.array_record.pattern="DIR/train-*.array_record"
and evaluate on a split of their own (`--split eval`) with
  --config.data.array_record.eval_pattern="DIR/eval-*.array_record"
(without one, data.array_record.eval_fraction of the training records are held out).

Records are the source's records exactly (every key, dtype and shape), one `.npz` blob each
(see `sources.encode_record`); a folder's unreadable videos are left out.
"""

from __future__ import annotations

import glob
import json
import math
import os
import time
from typing import Any

from absl import app
from absl import flags
from absl import logging
import ml_collections
import numpy as np

from vidgen import config_lib, entrypoint
from vidgen.data import sources

FLAGS = flags.FLAGS


def shard_name(split: str, shard: int, num_shards: int) -> str:
  return f'{split}-{shard:05d}-of-{num_shards:05d}.array_record'


def export(config: ml_collections.ConfigDict, out: str, split: str | None = None, num_records: int | None = None,
           records_per_shard: int = 1000, overwrite: bool = False) -> dict[str, Any]:
  """Writes records 0..num_records-1 of the config's source (`config.data`) to ArrayRecord shards in `out`.

  Args:
    config: an experiment config; its `data` block builds the source, `seed` seeds the world.
    out: the output folder (created if missing).
    split: the split to export; default `config.data.split`.
    num_records: how many records, from index 0; default all of the source.
    records_per_shard: records in each shard file.
    overwrite: replace shards of this split already in `out` (otherwise that is an error).

  Returns:
    The summary also written to `out/{split}.json`.
  """
  split = split or config.data.split
  source = sources.make_source(config.data, split, config.seed)
  total = len(source)
  num_records = total if num_records is None else num_records
  if not 1 <= num_records <= total:
    raise ValueError(f'num_records must be between 1 and {total} (the size of {source!r}); got {num_records}.')
  if records_per_shard < 1:
    raise ValueError(f'records_per_shard must be at least 1; got {records_per_shard}.')
  os.makedirs(out, exist_ok=True)
  existing = sorted(glob.glob(os.path.join(glob.escape(out), f'{glob.escape(split)}-*-of-*.array_record')))
  if existing and not overwrite:
    raise FileExistsError(f'{out} already holds {len(existing)} {split!r} shards (e.g. {existing[0]}); '
                          'pass --overwrite to replace them, or choose another --out.')
  for path in existing:
    os.remove(path)

  writer = ShardWriter(out, split, num_records, records_per_shard)
  skips_substitutes = getattr(source, 'substitutes_unreadable', False)
  skipped = 0
  with writer:
    for i in range(num_records):
      record = source[i]
      if skips_substitutes and int(record['index']) != i:  # video i is unreadable: leave it out
        skipped += 1
        continue
      writer.write(record)
  return writer.finish(num_skipped=skipped, source=config.data.source,
                       data_config=json.loads(config.data.to_json_best_effort()))


class ShardWriter:
  """Writes records to `out/{split}-KKKKK-of-NNNNN.array_record` shards, then a JSON summary.

  Record i goes to shard i // records_per_shard; `num_records` fixes the shard count up front.
  """

  def __init__(self, out: str, split: str, num_records: int, records_per_shard: int):
    from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
    self._module = array_record_module
    self.out, self.split, self.num_records, self.records_per_shard = out, split, num_records, records_per_shard
    self.num_shards = math.ceil(num_records / records_per_shard)
    self.names = [shard_name(split, k, self.num_shards) for k in range(self.num_shards)]
    self.counts = [0] * self.num_shards
    self.keys: dict[str, dict[str, Any]] = {}
    self._seen = 0
    self._writer = None
    self._shard = -1
    self._start = time.time()

  def __enter__(self) -> 'ShardWriter':
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def write(self, record: dict[str, Any]) -> None:
    shard = min(self._seen // self.records_per_shard, self.num_shards - 1)
    if shard != self._shard:
      self.close()
      self._writer = self._module.ArrayRecordWriter(os.path.join(self.out, self.names[shard]), 'group_size:1')
      self._shard = shard
    self._writer.write(sources.encode_record(record))
    self.counts[shard] += 1
    self._seen += 1
    _update_key_specs(self.keys, record)
    if self._seen % max(1, self.num_records // 10) == 0 or self._seen == self.num_records:
      logging.info('Wrote %d/%d records (%.1f records/s).', self._seen, self.num_records,
                   self._seen / (time.time() - self._start))

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
      self._writer = None

  def finish(self, **extra: Any) -> dict[str, Any]:
    """Closes the last shard and writes `out/{split}.json`; returns that summary."""
    self.close()
    for k in range(self._shard + 1, self.num_shards):  # shards no record reached still exist, empty
      self._module.ArrayRecordWriter(os.path.join(self.out, self.names[k]), 'group_size:1').close()
    summary = {
        'split': self.split,
        'num_records': sum(self.counts),
        'num_shards': self.num_shards,
        'records_per_shard': self.records_per_shard,
        'shards': [{'file': name, 'num_records': count} for name, count in zip(self.names, self.counts)],
        'pattern': os.path.join(self.out, f'{self.split}-*-of-{self.num_shards:05d}.array_record'),
        'format': 'one numpy .npz blob per record: vidgen.data.sources.decode_record(bytes) '
                  'or np.load(io.BytesIO(bytes))',
        'keys': self.keys,
        **extra,
    }
    with open(os.path.join(self.out, f'{self.split}.json'), 'w') as f:
      json.dump(summary, f, indent=2)
    logging.info('Wrote %d records in %d shards to %s.', summary['num_records'], self.num_shards, self.out)
    return summary


def _update_key_specs(specs: dict[str, dict[str, Any]], record: dict[str, Any]) -> None:
  """Tracks each key's dtype and shape over records; a dimension that varies becomes None."""
  for key, value in record.items():
    array = np.asarray(value)
    dtype = 'str' if array.dtype.kind == 'U' else array.dtype.name
    spec = specs.setdefault(key, {'dtype': dtype, 'shape': list(array.shape)})
    if spec['dtype'] != dtype:
      spec['dtype'] = 'mixed'
    if spec['shape'] is not None:
      if len(spec['shape']) != array.ndim:
        spec['shape'] = None
      else:
        spec['shape'] = [d if d == e else None for d, e in zip(spec['shape'], array.shape)]


def _define_flags() -> None:
  config_lib.define_flags()
  flags.DEFINE_string('out', None, 'Output folder for the shards and their JSON summary (required).')
  flags.DEFINE_string('split', None, 'Split to export (default: the config\'s data.split).')
  flags.DEFINE_integer('num_records', None, 'Records to export from index 0 (default: all of the source).')
  flags.DEFINE_integer('records_per_shard', 1000, 'Records per shard file.')
  flags.DEFINE_bool('overwrite', False, 'Replace shards of this split already in --out.')


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  if not FLAGS.out:
    raise app.UsageError('--out is required: the folder to write the shards into.')
  export(config_lib.config_from_flags(), FLAGS.out, FLAGS.split, FLAGS.num_records, FLAGS.records_per_shard,
         FLAGS.overwrite)


if __name__ == '__main__':
  _define_flags()  # here, not at import, so tests and notebooks can import export() freely
  entrypoint.run(main, flags_parser=config_lib.parse_flags_with_overrides)
