"""The shared training loop: data, one jitted step, metrics, evaluation, checkpoints, preemption.

Each model brings a small `Trainer` (how to initialise, what one step computes, how to
evaluate); everything else — resuming from the latest checkpoint with the data iterator,
logging, periodic evaluation, saving on SIGTERM — lives here once.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any, Mapping, Protocol

import grain
import jax
import ml_collections
import numpy as np
from absl import logging
from etils import epath

from vidgen import config_lib
from vidgen.parallel import mesh as mesh_lib
from vidgen.parallel import partition as partition_lib
from vidgen.parallel import rules as rules_lib
from vidgen.parallel import sharding as sharding_lib
from vidgen.train import checkpoint as checkpoint_lib
from vidgen.train import metrics as metrics_lib
from vidgen.train.state import TrainState, param_count


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


def model_inputs(batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """The numeric part of a batch (captions stay on the host)."""
  return {k: v for k, v in batch.items() if np.asarray(v).dtype.kind in 'biuf'}


class _Preemption:
  """Turns SIGTERM (a TPU VM being preempted) into 'save a checkpoint, then stop'."""

  def __init__(self):
    self.requested = False
    self._previous = None
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    logging.warning('SIGTERM received: saving a checkpoint and stopping.')
    self.requested = True

  def restore(self):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


def say(line: str) -> None:
  """Prints on process 0 only: one progress line per run, not one per host."""
  if jax.process_index() == 0:
    print(line, flush=True)


def parallel_of(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """`config.parallel`, or data parallelism over every device for a config without one."""
  return config.parallel if 'parallel' in config else mesh_lib.parallel_config()


def partition(trainer: Trainer, local_batch: Mapping[str, Any],
              devices: Any = None) -> partition_lib.PartitionedTraining:
  """The trainer's init and step, sharded over the mesh of `config.parallel`.

  `local_batch` is this process's share of a batch (arrays or ShapeDtypeStructs); the global
  batch stacks every process's. `devices` default to all; compile-only TPU devices work too.
  """
  config = trainer.config
  parallel = parallel_of(config)
  mesh = mesh_lib.make_mesh(parallel, devices)
  rules = rules_lib.logical_rules(parallel.rules, parallel.extra_rules)
  if hasattr(trainer, 'sharded_dims'):
    sharding_lib.check_model_dims(mesh, rules, **trainer.sharded_dims())
  processes = jax.process_count()
  global_batch = {k: jax.ShapeDtypeStruct((np.shape(v)[0] * processes,) + np.shape(v)[1:],
                                         v.dtype if hasattr(v, 'dtype') else np.asarray(v).dtype)
                  for k, v in local_batch.items()}
  return partition_lib.partition_training(trainer.init_state, trainer.train_step, mesh, rules, global_batch,
                                          config.seed)


def run(trainer: Trainer, workdir: str, *, stop_after: int | None = None) -> TrainState:
  """Trains `trainer` in `workdir`, resuming from its latest checkpoint if it has one.

  Args:
    trainer: the model's trainer; its `config.train` sets num_steps, log_every, eval_every,
      checkpoint_every, keep_checkpoints, async_checkpoints.
    workdir: where config.json, checkpoints/, metrics.jsonl, tensorboard/ and outputs go.
    stop_after: stop (with a checkpoint) after this many steps of this call, as a preempted
      run would; the next call resumes. None trains to `train.num_steps`.

  Returns:
    The final train state.
  """
  config, train = trainer.config, trainer.config.train
  workdir_path = epath.Path(workdir)
  workdir_path.mkdir(parents=True, exist_ok=True)
  if jax.process_index() == 0:
    config_lib.save_config(config, workdir)

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
        f'mesh {mesh_lib.describe(training.mesh)}, rules {parallel_of(config).rules}; workdir {workdir}')

  flops = trainer.flops_per_step() if hasattr(trainer, 'flops_per_step') else None
  writer = metrics_lib.MetricWriter(workdir)
  progress = metrics_lib.Progress(train.num_steps, start)
  preemption = _Preemption()
  pending: list[dict[str, jax.Array]] = []
  step, last_log = start, (start, time.time())
  try:
    while step < train.num_steps:
      state, step_metrics = training.step(state, model_inputs(next(data_iter)))
      step += 1
      pending.append(step_metrics)
      if step % train.log_every == 0 or step == train.num_steps:
        means = {k: np.mean([float(m[k]) for m in pending]) for k in pending[0]}
        pending.clear()
        steps_per_second = (step - last_log[0]) / max(time.time() - last_log[1], 1e-9)
        last_log = (step, time.time())
        if flops:  # analytic model FLOPs (vidgen/models/flops.py) at the measured rate
          means['tflops_per_device'] = flops * steps_per_second / jax.device_count() / 1e12
        writer.write(step, means, prefix='train/')
        say(progress.line(step, means))
      stopping = preemption.requested or (stop_after is not None and step - start >= stop_after)
      if step % train.checkpoint_every == 0 or step == train.num_steps or stopping:
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
