"""The shared training loop: data, one jitted step, metrics, evaluation, checkpoints, preemption.

Each model brings a small `Trainer` (how to initialise, what one step computes, how to
evaluate); everything else — resuming from the latest checkpoint with the data iterator,
logging, periodic evaluation, saving on SIGTERM — lives here once.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from typing import Any, Mapping, Protocol

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from etils import epath
from jax.experimental import multihost_utils

from vidgen import config_blocks
from vidgen.parallel import distributed
from vidgen.parallel import mesh as mesh_lib
from vidgen.parallel import partition as partition_lib
from vidgen.parallel import rules as rules_lib
from vidgen.parallel import sharding as sharding_lib
from vidgen.train import checkpoint as checkpoint_lib
from vidgen.train import metrics as metrics_lib
from vidgen.train import workdir_lock
from vidgen.train.state import TrainState, param_count


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """The `train` block: how long to train and how often to log, evaluate and checkpoint."""
  num_steps: int = 1000
  log_every: int = 50
  eval_every: int = 500       # 0 turns periodic evaluation off
  checkpoint_every: int = 500
  keep_checkpoints: int = 3
  async_checkpoints: bool = True
  on_nonfinite: str = 'stop'  # a NaN/inf metric: 'stop' (naming the step and metric) | 'skip' the batch, counted


  def __post_init__(self):
    if self.num_steps < 1 or self.log_every < 1 or self.checkpoint_every < 1 or self.keep_checkpoints < 1:
      raise ValueError('train.num_steps, log_every, checkpoint_every and keep_checkpoints must be >= 1; got '
                       f'{self.num_steps}, {self.log_every}, {self.checkpoint_every}, {self.keep_checkpoints}.')
    if self.eval_every < 0:
      raise ValueError(f'train.eval_every must be >= 0 (0: off), got {self.eval_every}.')
    if self.on_nonfinite not in ('stop', 'skip'):
      raise ValueError(f"train.on_nonfinite={self.on_nonfinite!r}: use 'stop' or 'skip'.")


class Trainer(Protocol):
  """What a model's trainer provides to the shared loop."""

  config: ml_collections.ConfigDict

  def dataset(self) -> grain.IterDataset:
    """The training input pipeline."""

  def init_state(self, rng: jax.Array, batch: Mapping[str, Any]) -> TrainState:
    """A fresh state, parameters boxed with logical axes (pure: jitted sharded by the loop)."""

  def train_step(self, state: TrainState, batch: Mapping[str, Any],
                 rng: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimisation step (pure: jitted once by the loop)."""

  def evaluate(self, state: TrainState, step: int, workdir: str) -> dict[str, float]:
    """Host-side evaluation; may write files into the workdir."""

  # Optional:
  #   prepare_state(state) -> state: called once on a fresh (not restored) state.
  #   sharded_dims() -> {'heads': int, 'tokens': int}: checked against the mesh before compiling.
  #   flops_per_step() -> float: analytic model FLOPs of one step, for TFLOP/s in the logs.
  #   eval_data() -> str: which data `evaluate` reads, in words (printed when the run starts).


def model_inputs(batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """The numeric part of a batch (captions stay on the host)."""
  return {k: v for k, v in batch.items() if np.asarray(v).dtype.kind in 'biuf'}


class _Preemption:
  """Turns SIGTERM (a TPU VM being preempted) into 'save a checkpoint, then stop'.

  With several processes every one must stop at the same step and save together (a process that
  stops alone leaves the others hanging in a collective). JAX's preemption sync manager does
  that: each process calls `reached_preemption_sync_point(step)` every step; once any of them
  got SIGTERM, all of them see True at one agreed step. One process alone handles the signal here.
  """

  def __init__(self):
    self.requested = False
    self._previous = None
    self._agreed = distributed.preemption_sync_available()
    if not self._agreed and threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    logging.warning('SIGTERM received: saving a checkpoint and stopping.')
    self.requested = True

  def should_stop(self, step: int) -> bool:
    """Whether to save and stop after `step` (the same answer on every process)."""
    if self._agreed and multihost_utils.reached_preemption_sync_point(step):
      logging.warning('Preempted: every process saves at step %d and stops.', step)
      self.requested = True
    return self.requested

  def restore(self):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


class NonFiniteLossError(FloatingPointError):
  """A training metric became NaN or inf; the run stopped without saving that state."""


def _first_nonfinite(pending: list[dict[str, Any]], first_step: int) -> tuple[int, str, float] | None:
  """(step, metric, value) of the first NaN/inf among the per-step metrics `pending`."""
  for i, metrics in enumerate(pending):
    for name, value in metrics.items():
      value = float(value)
      if not np.isfinite(value):
        return first_step + i, name, value
  return None


def skip_nonfinite_steps(train_step: Any) -> Any:
  """`train_step` that keeps the previous state when a metric of the step is NaN or inf
  (`train.on_nonfinite=skip`), counting the step in metric `skipped` (1 for a skipped step)."""
  def step(state, batch, rng):
    new_state, metrics = train_step(state, batch, rng)
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in metrics.values()]))
    kept = jax.tree.map(lambda new, old: jnp.where(finite, new, old), new_state, state)
    kept = kept.replace(step=new_state.step)
    return kept, dict(metrics, skipped=1.0 - finite.astype(jnp.float32))
  return step


def say(line: str) -> None:
  """Prints on process 0 only: one progress line per run, not one per host."""
  if jax.process_index() == 0:
    print(line, flush=True)


def partition(trainer: Trainer, local_batch: Mapping[str, Any],
              devices: Any = None) -> partition_lib.PartitionedTraining:
  """The trainer's init and step, sharded over the mesh of `config.parallel`.

  `local_batch` is this process's share of a batch (arrays or ShapeDtypeStructs); the global
  batch stacks every process's. `devices` default to all; compile-only TPU devices work too.
  """
  config = trainer.config
  parallel = config.parallel
  mesh = mesh_lib.make_mesh(parallel, devices)
  rules = rules_lib.logical_rules(parallel.rules, parallel.extra_rules)
  if hasattr(trainer, 'sharded_dims'):
    sharding_lib.check_model_dims(mesh, rules, **trainer.sharded_dims())
  processes = jax.process_count()
  global_batch = {k: jax.ShapeDtypeStruct((np.shape(v)[0] * processes,) + np.shape(v)[1:],
                                         v.dtype if hasattr(v, 'dtype') else np.asarray(v).dtype)
                  for k, v in local_batch.items()}
  train_step = skip_nonfinite_steps(trainer.train_step) if config.train.on_nonfinite == 'skip' else trainer.train_step
  return partition_lib.partition_training(trainer.init_state, train_step, mesh, rules, global_batch, config.seed)


def run(trainer: Trainer, workdir: str, *, stop_after: int | None = None) -> TrainState:
  """Trains `trainer` in `workdir`, resuming from its latest checkpoint if it has one.

  Args:
    trainer: the model's trainer; its `config.train` (TrainConfig) sets the steps, the logging,
      evaluation and checkpoint cadence, and what a NaN/inf metric does.
    workdir: where config.json, checkpoints/, metrics.jsonl, tensorboard/ and outputs go. One run
      at a time: a second run on a workdir in use refuses (vidgen/train/workdir_lock.py).
    stop_after: stop (with a checkpoint) after this many steps of this call, as a preempted
      run would; the next call resumes. None trains to `train.num_steps`.

  Returns:
    The final train state.

  Raises:
    NonFiniteLossError: a metric became NaN/inf with `train.on_nonfinite='stop'`; the last
      checkpoint saved is one from before it.
    checkpoint.CheckpointError: a checkpoint could not be saved (e.g. the disk is full) or none
      could be restored.
  """
  lock = workdir_lock.WorkdirLock(workdir) if jax.process_index() == 0 else None
  if lock is not None:
    lock.acquire()
  try:
    return _run(trainer, workdir, stop_after)
  finally:
    if lock is not None:
      lock.release()


def _run(trainer: Trainer, workdir: str, stop_after: int | None) -> TrainState:
  config, train = trainer.config, trainer.config.train
  workdir_path = epath.Path(workdir)
  workdir_path.mkdir(parents=True, exist_ok=True)
  if jax.process_index() == 0:
    config_blocks.save_config(config, workdir)

  data_iter = iter(trainer.dataset())
  fresh = data_iter.get_state()
  first_batch = model_inputs(next(data_iter))  # shapes for init; then rewind
  data_iter.set_state(fresh)
  training = partition(trainer, first_batch)

  ckpt = checkpoint_lib.Checkpointer(str(workdir_path / 'checkpoints'), keep=train.keep_checkpoints,
                                     async_save=train.async_checkpoints)
  if ckpt.latest_step() is not None:
    state = ckpt.restore(training.abstract_state, data_iter)
    say(f'Resumed from {ckpt.directory} at step {int(state.step)}.')
  else:
    state = training.init()
    if hasattr(trainer, 'prepare_state'):  # e.g. statistics of the data the state must carry
      state = training.place(trainer.prepare_state(state))
  start = int(state.step)
  say(f'{type(trainer).__name__}: {param_count(state.params):,} parameters; steps {start} → {train.num_steps}; '
      f'mesh {mesh_lib.describe(training.mesh)}, rules {config.parallel.rules}; workdir {workdir}')

  if train.eval_every and hasattr(trainer, 'eval_data'):
    say(f'Evaluates every {train.eval_every} steps on {trainer.eval_data()}.')
  flops = trainer.flops_per_step() if hasattr(trainer, 'flops_per_step') else None
  writer = metrics_lib.MetricWriter(workdir)
  progress = metrics_lib.Progress(train.num_steps, start)
  preemption = _Preemption()
  pending: list[dict[str, jax.Array]] = []  # per-step metrics since the last log
  step, last_log, skipped = start, (start, time.time()), 0

  def check_finite():
    """Stops before a NaN/inf state is logged as fine or saved (train.on_nonfinite='stop')."""
    if train.on_nonfinite == 'stop':
      bad = _first_nonfinite(pending, step - len(pending) + 1)
      if bad is not None:
        raise NonFiniteLossError(
            f'Step {bad[0]}: train/{bad[1]} is {bad[2]}. The run stopped without saving this state; its last '
            f'checkpoint ({ckpt.latest_step()}) is from before. Lower optim.lr or raise optim.grad_clip, check '
            'the data, or set train.on_nonfinite=skip to skip such batches (counted in train/skipped_batches).')

  try:
    while step < train.num_steps:
      state, step_metrics = training.step(state, model_inputs(next(data_iter)))
      step += 1
      pending.append(step_metrics)
      if step % train.log_every == 0 or step == train.num_steps:
        check_finite()
        values = {k: np.array([float(m[k]) for m in pending]) for k in pending[0]}
        skipped += int(values.pop('skipped', np.zeros(1)).sum())
        means = {k: float(np.mean(v[np.isfinite(v)])) if np.isfinite(v).any() else float('nan')
                 for k, v in values.items()}
        if train.on_nonfinite == 'skip':
          means['skipped_batches'] = skipped
        pending.clear()
        steps_per_second = (step - last_log[0]) / max(time.time() - last_log[1], 1e-9)
        last_log = (step, time.time())
        if flops:  # analytic model FLOPs (vidgen/models/flops.py) at the measured rate
          means['tflops_per_device'] = flops * steps_per_second / jax.device_count() / 1e12
        writer.write(step, means, prefix='train/')
        say(progress.line(step, means))
      stopping = preemption.should_stop(step) or (stop_after is not None and step - start >= stop_after)
      if step % train.checkpoint_every == 0 or step == train.num_steps or stopping:
        check_finite()
        ckpt.save(step, state, data_iter)
      if train.eval_every and (step % train.eval_every == 0 or step == train.num_steps):
        ckpt.wait()
        t0 = time.time()
        eval_metrics = trainer.evaluate(state, step, workdir)
        writer.write(step, eval_metrics, prefix='eval/')
        say(f'eval at step {step} ({time.time() - t0:.0f}s): '
            + ', '.join(f'{k} {v:.4g}' for k, v in eval_metrics.items()))
      if stopping:
        logging.warning('Stopped at step %d; run again with the same workdir to resume.', step)
        break
  finally:
    preemption.restore()
    writer.close()
    ckpt.close()
  return state
