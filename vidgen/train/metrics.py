"""Metrics out of a run: TensorBoard event files, a JSONL file, and a progress line."""

from __future__ import annotations

import json
import os
import time
from typing import Any, Mapping

import jax
import numpy as np
from etils import epath


class MetricWriter:
  """Writes scalars to `workdir/tensorboard` and `workdir/metrics.jsonl` (process 0 only)."""

  def __init__(self, workdir: str):
    self.enabled = jax.process_index() == 0
    self.path = epath.Path(workdir) / 'metrics.jsonl'
    self._tb = None
    if self.enabled:
      from tensorboardX import SummaryWriter
      self.path.parent.mkdir(parents=True, exist_ok=True)
      self._tb = SummaryWriter(os.fspath(epath.Path(workdir) / 'tensorboard'))

  def write(self, step: int, scalars: Mapping[str, Any], prefix: str = '') -> dict[str, float]:
    values = {f'{prefix}{k}': float(np.asarray(v)) for k, v in scalars.items()}
    if self.enabled:
      for k, v in values.items():
        self._tb.add_scalar(k, v, step)
      with self.path.open('a') as f:
        f.write(json.dumps({'step': int(step), **values}) + '\n')
    return values

  def flush(self) -> None:
    if self._tb is not None:
      self._tb.flush()

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


def read_metrics(workdir: str) -> list[dict[str, float]]:
  """All rows of a run's metrics.jsonl, in order. A run killed mid-write leaves a partial line,
  which is skipped (the resumed run writes that step again)."""
  path = epath.Path(workdir) / 'metrics.jsonl'
  if not path.exists():
    return []
  rows = []
  for line in path.read_text().splitlines():
    try:
      rows.append(json.loads(line))
    except json.JSONDecodeError:
      continue  # blank or cut off by a kill
  return rows


class Progress:
  """A one-line report every few steps: step, the main losses, steps/s and time left."""

  def __init__(self, total_steps: int, first_step: int = 0):
    self.total, self.last_step, self.last_time = total_steps, first_step, time.time()

  def line(self, step: int, scalars: Mapping[str, float]) -> str:
    now = time.time()
    rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
    self.last_step, self.last_time = step, now
    eta = (self.total - step) / rate if rate > 0 else float('nan')
    shown = ' | '.join(f'{k} {v:.4g}' for k, v in scalars.items())
    return f'step {step}/{self.total} | {shown} | {rate:.2f} steps/s | eta {eta / 60:.1f} min'
