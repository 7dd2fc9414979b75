"""Multi-host start-up: one JAX process per host, joined before anything touches a device.

On a Cloud TPU pod slice `--distributed` is enough (JAX finds the coordinator and the
process ids from the TPU metadata). Elsewhere — several processes on one machine, a GPU or CPU
cluster — pass the coordinator explicitly, by flags or the environment:

    --coordinator_address=HOST:PORT --num_processes=N --process_id=I
    JAX_COORDINATOR_ADDRESS=HOST:PORT JAX_NUM_PROCESSES=N JAX_PROCESS_ID=I
"""

from __future__ import annotations

import os

import jax
from absl import flags, logging
from jax._src import distributed as jax_distributed  # the preemption sync manager has no public accessor

_DEFINED = False


def define_flags() -> None:
  """--distributed, --coordinator_address, --num_processes, --process_id (idempotent)."""
  global _DEFINED
  if _DEFINED:
    return
  _DEFINED = True
  flags.DEFINE_bool('distributed', False, 'Join a multi-host run (auto-detected on Cloud TPU pods).')
  flags.DEFINE_string('coordinator_address', None, 'host:port of process 0 (implies --distributed).')
  flags.DEFINE_integer('num_processes', None, 'Number of processes in the run.')
  flags.DEFINE_integer('process_id', None, 'This process\'s index in [0, num_processes).')


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, auto: bool = False) -> bool:
  """Joins the run described by the arguments or the JAX_* environment; False when single-process.

  Raises:
    ValueError: a coordinator without the process count and id (or the other way round).
  """
  env = os.environ
  coordinator_address = coordinator_address or env.get('JAX_COORDINATOR_ADDRESS')
  num_processes = num_processes if num_processes is not None else _int_env('JAX_NUM_PROCESSES')
  process_id = process_id if process_id is not None else _int_env('JAX_PROCESS_ID')
  explicit = (coordinator_address, num_processes, process_id)
  if any(v is not None for v in explicit) and any(v is None for v in explicit):
    raise ValueError(f'A multi-process run needs all of coordinator_address, num_processes and process_id; got '
                     f'{coordinator_address!r}, {num_processes!r}, {process_id!r}.')
  if coordinator_address is None and not auto:
    return False
  if process_id is not None and not 0 <= process_id < num_processes:
    raise ValueError(f'process_id={process_id} is not in [0, num_processes={num_processes}).')
  jax.distributed.initialize(coordinator_address, num_processes, process_id)
  logging.info('Process %d of %d; %d local / %d global devices.', jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count())
  return True


def initialize_from_flags() -> bool:
  """`initialize` with the flags of `define_flags`."""
  f = flags.FLAGS
  return initialize(f.coordinator_address, f.num_processes, f.process_id, auto=f.distributed)


def _int_env(name: str) -> int | None:
  value = os.environ.get(name)
  return int(value) if value else None


def preemption_sync_available() -> bool:
  """Whether JAX's preemption sync manager runs (several processes joined with the preemption
  service on, JAX's default): then `multihost_utils.reached_preemption_sync_point` lets every
  process agree on the step to save at after any of them got SIGTERM."""
  return jax.process_count() > 1 and jax_distributed.global_state.preemption_sync_manager is not None
