"""One run per workdir: a second run started on a workdir in use refuses, naming the first.

Two runs writing one workdir would interleave checkpoints and metrics and lose both. The run's
first process writes `WORKDIR/run.lock` (host, pid, start time) and removes it on exit; a lock
whose process is gone (killed with -9, a crashed VM on this host) is stale and taken over with
a message. A lock held from another host cannot be checked from here: it refuses, and says to
delete the file if that run is gone. On a local disk the lock is created atomically (O_EXCL),
so two runs started at once cannot both take it.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time

from absl import logging
from etils import epath

LOCK_FILE = 'run.lock'


class WorkdirInUseError(RuntimeError):
  """Another live run holds the workdir."""


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except OSError as e:
    return e.errno == errno.EPERM  # exists, owned by someone else
  return True


class WorkdirLock:
  """Held while a run trains in `workdir`; use as a context manager."""

  def __init__(self, workdir: str):
    self.path = epath.Path(workdir) / LOCK_FILE
    self.owner = {'host': socket.gethostname(), 'pid': os.getpid(), 'started': time.strftime('%Y-%m-%d %H:%M:%S')}
    self.held = False

  def acquire(self) -> None:
    if self.path.exists():
      try:
        other = json.loads(self.path.read_text())
        host, pid = str(other['host']), int(other['pid'])
      except (ValueError, KeyError, TypeError):
        logging.warning('%s is unreadable; taking the workdir over.', self.path)
      else:
        same_host = host == self.owner['host']
        if same_host and pid == os.getpid():
          pass  # this process already holds it (a notebook training twice)
        elif same_host and not _alive(pid):
          logging.warning('Taking over %s: the run that held it (pid %d on %s, started %s) is gone.',
                          self.path, pid, host, other.get('started', '?'))
        else:
          where = 'this host' if same_host else f'host {host}'
          raise WorkdirInUseError(
              f'{self.path.parent} is in use by another run (pid {pid} on {where}, started '
              f'{other.get("started", "?")}). Wait for it to finish, stop it, or train in another --workdir. '
              + ('' if same_host else f'If that run is gone, delete {self.path}.'))
      self.path.unlink(missing_ok=True)
    self.path.parent.mkdir(parents=True, exist_ok=True)
    if '://' in str(self.path):
      self.path.write_text(json.dumps(self.owner))
    else:
      try:
        fd = os.open(os.fspath(self.path), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
      except FileExistsError:
        raise WorkdirInUseError(f'{self.path.parent} was taken by another run starting at the same moment '
                                f'({self.path}); train in another --workdir.') from None
      with os.fdopen(fd, 'w') as f:
        f.write(json.dumps(self.owner))
    self.held = True

  def release(self) -> None:
    if not self.held:
      return
    try:
      if json.loads(self.path.read_text()).get('pid') == self.owner['pid']:
        self.path.unlink()
    except (OSError, ValueError):
      pass  # already gone
    self.held = False

  def __enter__(self) -> 'WorkdirLock':
    self.acquire()
    return self

  def __exit__(self, *exc) -> None:
    self.release()
