"""Orbax checkpoints of the train state and the Grain iterator: async, keep-N, clear errors.

A checkpoint is `DIR/<step>/{state, data}`: `state` the TrainState (sharded arrays, restorable
onto another mesh by passing abstract arrays with the new shardings), `data` the input
pipeline's iterator state, so a resumed run sees exactly the batches it would have seen.

Nothing is lost to a bad checkpoint: one that cannot be read (truncated or missing files,
garbage metadata) is skipped with a warning naming its step, and the one before it is restored;
a resuming run moves the unreadable one aside (`<step>.unreadable`) so the step can be saved
again. A save that fails (a full disk) is an error naming the step, and the checkpoints before
it stay whole: Orbax writes each into a temporary folder and renames it only when complete.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp
from absl import logging
from etils import epath


class CheckpointError(RuntimeError):
  """A checkpoint that is missing, corrupt, or from a different config."""


class Checkpointer:
  """Saves and restores (state, data iterator) under `directory`, keeping the last `keep`."""

  def __init__(self, directory: str, keep: int = 3, async_save: bool = True, create: bool = True):
    # Orbax needs absolute paths; a relative workdir (runs/x) is relative to where we started.
    self.directory = epath.Path(directory if '://' in str(directory) else os.path.abspath(directory))
    if not create and not self.directory.exists():
      raise CheckpointError(f'No checkpoints at {self.directory}: the directory does not exist.')
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=async_save,
                                             create=create, cleanup_tmp_directories=create))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self.manager.all_steps())

  def save(self, step: int, state: Any, data_iterator: Any = None, *, force: bool = False) -> bool:
    """Starts saving (async); returns False if a checkpoint for `step` already exists.

    Raises:
      CheckpointError: this save, or the asynchronous one before it, failed.
    """
    if step in self.manager.all_steps():
      return False
    items = {'state': ocp.args.StandardSave(state)}
    if data_iterator is not None:
      items['data'] = grain.checkpoint.CheckpointSave(data_iterator)
    with self._save_errors(step):
      return self.manager.save(step, args=ocp.args.Composite(**items), force=force)

  def _steps_on_disk(self) -> list[int]:
    """Complete checkpoints as the directory lists them (the manager's own list can be stale after a failure)."""
    return sorted(int(p.name) for p in self.directory.iterdir() if p.name.isdigit()) if self.directory.exists() else []

  @contextlib.contextmanager
  def _save_errors(self, step: int | None):
    """Turns a failed save into an error that says what is safe (async errors surface later)."""
    try:
      yield
    except CheckpointError:
      raise
    except Exception as error:  # orbax and tensorstore raise many kinds
      full = (isinstance(error, OSError) and error.errno == errno.ENOSPC) or 'No space left' in str(error)
      reason = 'the disk is full (No space left on device)' if full else f'{type(error).__name__}: {str(error)[:300]}'
      good = [s for s in self._steps_on_disk() if s != step]
      raise CheckpointError(
          f'Saving a checkpoint{f" (step {step} or the one before it)" if step is not None else ""} in '
          f'{self.directory} failed: {reason}. '
          + ('Free space there, then run again to resume. ' if full else '')
          + (f'The checkpoints saved before it (steps {good}) are intact.' if good else 'No earlier checkpoint exists.')
      ) from error

  def restore(self, abstract_state: Any, data_iterator: Any = None, step: int | None = None) -> Any:
    """Restores the state (shaped and sharded like `abstract_state`) and, if given, the iterator.

    Leaves of `abstract_state` without a sharding are restored whole onto this process's first
    device; give shardings (e.g. `PartitionedTraining.abstract_state`) to restore onto a mesh.
    Without `step`, the latest readable checkpoint: unreadable later ones are warned about and
    moved aside, so the resumed run can save those steps again.

    Raises:
      CheckpointError: no checkpoint, none readable, or one whose arrays differ from the
        model's (a different config), naming the path and the first arrays that differ.
    """
    items = {'state': ocp.args.StandardRestore(_placed(abstract_state))}
    if data_iterator is not None:
      items['data'] = grain.checkpoint.CheckpointRestore(data_iterator)
    return self._restore(step, items, abstract_state, set_aside=True)['state']

  def restore_subset(self, abstract: dict[str, Any], step: int | None = None) -> dict[str, Any]:
    """Only the named entries of the saved state (e.g. {'ema_params': ..., 'extra': ...}), as inference needs.

    The other entries (optimizer moments, the raw parameters) are never read. Leaves are
    restored with the shardings `abstract` carries. Raises as `restore` does; unreadable
    checkpoints are skipped but left in place (inference does not write to a run).
    """
    restore = ocp.args.PyTreeRestore(item=abstract, restore_args=ocp.checkpoint_utils.construct_restore_args(abstract),
                                     partial_restore=True)
    return self._restore(step, {'state': restore}, abstract, subset=True)['state']

  def _restore(self, step: int | None, items: dict[str, Any], abstract_state: Any, subset: bool = False,
               set_aside: bool = False) -> Any:
    steps = sorted(self.all_steps(), reverse=True) if step is None else [step]
    if not steps:
      raise CheckpointError(f'No checkpoint in {self.directory}: train first, or point at a workdir '
                            'that has a checkpoints/ folder with numbered steps.')
    unreadable = []
    for candidate in steps:
      path = self.directory / str(candidate)
      try:
        restored = self.manager.restore(candidate, args=ocp.args.Composite(**items))
      except Exception as e:  # orbax raises ValueError, FileNotFoundError, tensorstore errors, ...
        differences = self._differences(candidate, abstract_state, subset)
        if differences:
          raise CheckpointError(
              f'The checkpoint {path} was written by a different model config than the one loading it: '
              + '; '.join(differences[:5]) + (f' (and {len(differences) - 5} more)' if len(differences) > 5 else '')
              + '. Load it with the config saved in its workdir (config.json), or start a new workdir.') from e
        unreadable.append((candidate, e))
        logging.warning('The checkpoint at step %d (%s) cannot be read: %s: %s%s', candidate, path,
                        type(e).__name__, str(e)[:300],
                        '; falling back to the one before it.' if candidate != steps[-1] else '.')
        continue
      if unreadable and set_aside:
        self._set_aside([s for s, _ in unreadable])
      return restored
    first_step, first_error = unreadable[0]
    raise CheckpointError(
        f'No checkpoint in {self.directory} can be read (steps {[s for s, _ in unreadable]}); the latest '
        f'(step {first_step}) fails with {type(first_error).__name__}: {str(first_error)[:300]}. Start a new '
        'workdir, or restore a copy of the checkpoints folder.') from first_error

  def _set_aside(self, steps: list[int]) -> None:
    """Renames unreadable step folders to `<step>.unreadable[-time]`: kept for a look, out of the way."""
    for step in steps:
      path = self.directory / str(step)
      target = self.directory / f'{step}.unreadable'
      if target.exists():
        target = self.directory / f'{step}.unreadable-{int(time.time())}'
      path.rename(target)
      logging.warning('Moved the unreadable checkpoint %s to %s.', path, target)
    self.manager.reload()

  def _differences(self, step: int, abstract_state: Any, subset: bool = False) -> list[str]:
    """What differs between the saved arrays and the ones asked for, as readable lines."""
    try:
      saved = self.manager.item_metadata(step)['state']
      saved_tree = getattr(saved, 'tree', saved)
      saved_leaves = {_path_name(p): m for p, m in jax.tree_util.tree_leaves_with_path(saved_tree)}
    except Exception:  # metadata unreadable: the checkpoint is corrupt, not mismatched
      return []
    if not saved_leaves:  # metadata gone: the checkpoint is corrupt, not mismatched
      return []
    wanted = {_path_name(p): a for p, a in jax.tree_util.tree_leaves_with_path(abstract_state)}
    lines = [f'{k} is missing from the checkpoint' for k in wanted if k not in saved_leaves]
    if subset:  # only what was asked for is compared
      saved_leaves = {k: v for k, v in saved_leaves.items() if k.split('/')[0] in abstract_state}
    lines += [f'{k} is in the checkpoint but not in the model' for k in saved_leaves if k not in wanted]
    for k in wanted.keys() & saved_leaves.keys():
      want, have = tuple(getattr(wanted[k], 'shape', ())), tuple(getattr(saved_leaves[k], 'shape', ()) or ())
      if want != have:
        lines.append(f'{k} has shape {have} in the checkpoint but {want} in the model')
    return sorted(lines)

  def wait(self) -> None:
    with self._save_errors(None):
      self.manager.wait_until_finished()

  def close(self) -> None:
    try:
      self.wait()
    finally:
      self.manager.close()


def _placed(abstract_state: Any) -> Any:
  """Arrays with no sharding asked for go whole onto this process's first device (a frozen model
  that every process of a multi-host run holds in full)."""
  local = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])

  def one(x):
    if getattr(x, 'sharding', None) is None and hasattr(x, 'shape'):
      return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=local)
    return x
  return jax.tree.map(one, abstract_state)


def _path_name(path: tuple) -> str:
  """'ema_params/decoder/conv_in/conv/kernel', whether the tree holds dicts or dataclasses."""
  names = (getattr(k, 'key', getattr(k, 'name', getattr(k, 'idx', k))) for k in path)
  return '/'.join(str(n) for n in names)
