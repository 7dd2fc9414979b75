"""Running a vidgen command: what a user got wrong is one clear line, not a traceback.

Errors that name their own fix (a config key, a missing run or checkpoint, a workdir in use, a
loss gone NaN, an unreadable video) end the command with `error: <message>` and exit status 1;
anything else is a bug in vidgen and keeps its traceback.
"""

from __future__ import annotations

import sys
from typing import Callable

from absl import app

from vidgen.config_blocks import ConfigError
from vidgen.data.video_io import VideoReadError
from vidgen.train.checkpoint import CheckpointError
from vidgen.train.loop import NonFiniteLossError
from vidgen.train.workdir_lock import WorkdirInUseError

USER_ERRORS = (ConfigError, CheckpointError, WorkdirInUseError, NonFiniteLossError, VideoReadError,
               FileNotFoundError)


def run(main: Callable[[list[str]], None], **app_run_kwargs) -> None:
  """`absl.app.run(main)`, printing the errors above as one line each."""
  def guarded(argv):
    try:
      return main(argv)
    except USER_ERRORS as e:
      print(f'error: {e}', file=sys.stderr, flush=True)
      sys.exit(1)
  app.run(guarded, **app_run_kwargs)
