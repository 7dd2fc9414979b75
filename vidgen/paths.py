"""Paths that may be local or remote (gs://...): every file vidgen writes or reads goes through here
or through `etils.epath`, so a workdir on Cloud Storage works like a local one.

Writers that need a real file (ffmpeg, Pillow, matplotlib) write into a local temporary file
that is then copied to the remote path; readers get a local copy.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import Iterator

from etils import epath

PathLike = str | os.PathLike


def is_remote(path: PathLike) -> bool:
  return '://' in os.fspath(path)


@contextlib.contextmanager
def local_for_writing(path: PathLike) -> Iterator[str]:
  """A local file path to write; afterwards it is at `path` (parent folders created)."""
  path = os.fspath(path)
  if not is_remote(path):
    parent = os.path.dirname(path)
    if parent:
      os.makedirs(parent, exist_ok=True)
    yield path
    return
  with tempfile.TemporaryDirectory(prefix='vidgen_out_') as tmp:
    local = os.path.join(tmp, os.path.basename(path))
    yield local
    target = epath.Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(local, 'rb') as src, target.open('wb') as dst:
      shutil.copyfileobj(src, dst)


@contextlib.contextmanager
def local_for_reading(path: PathLike) -> Iterator[str]:
  """A local file with the contents of `path` (itself, when it is local)."""
  path = os.fspath(path)
  if not is_remote(path):
    yield path
    return
  source = epath.Path(path)  # opening a missing file raises FileNotFoundError
  with tempfile.TemporaryDirectory(prefix='vidgen_in_') as tmp:
    local = os.path.join(tmp, os.path.basename(path))
    with source.open('rb') as src, open(local, 'wb') as dst:
      shutil.copyfileobj(src, dst)
    yield local


def absolute(path: PathLike) -> str:
  """`os.path.abspath` for local paths; a remote path (gs://...) is absolute already."""
  return os.fspath(path) if is_remote(path) else os.path.abspath(path)


def parent(path: PathLike) -> str:
  """The folder holding `path`, local or remote (gs://bucket/runs/a → gs://bucket/runs)."""
  return os.fspath(epath.Path(absolute(path)).parent)


def listdir(path: PathLike) -> list[str]:
  """The names in folder `path` ([] when it does not exist), local or remote."""
  p = epath.Path(path)
  return sorted(c.name for c in p.iterdir()) if p.is_dir() else []


def exists(path: PathLike) -> bool:
  return epath.Path(path).exists()


def makedirs(path: PathLike) -> None:
  epath.Path(path).mkdir(parents=True, exist_ok=True)


def open_file(path: PathLike, mode: str = 'r'):
  """`open` for local or remote paths (writing creates the parent folders)."""
  p = epath.Path(path)
  if any(c in mode for c in 'wa'):
    p.parent.mkdir(parents=True, exist_ok=True)
  return p.open(mode)
