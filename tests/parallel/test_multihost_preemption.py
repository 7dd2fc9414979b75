"""SIGTERM on one host of a two-process run: both processes stop at one agreed step and save once."""

import os
import re
import signal
import subprocess
import sys
import tempfile

from tests.parallel.test_multihost import free_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_sigterm_on_one_process_stops_both_at_one_step_with_one_checkpoint(tmp_path):
  workdir = str(tmp_path / 'run')
  env = dict(os.environ, JAX_PLATFORMS='cpu', XLA_FLAGS='--xla_force_host_platform_device_count=2', PYTHONPATH=REPO,
             JAX_COMPILATION_CACHE_DIR=os.path.join(tempfile.gettempdir(), 'vidgen-test-jax-cache'))
  port = free_port()
  procs = [subprocess.Popen([sys.executable, '-m', 'tests.train.toy_trainer', workdir, '100000', str(port), '2', str(i)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for i in range(2)]
  logs = ['', '']
  try:
    for line in procs[0].stdout:  # process 0 prints the progress lines
      logs[0] += line
      if line.startswith('step 5/'):
        procs[1].send_signal(signal.SIGTERM)  # only the other process is told
        break
    for i, p in enumerate(procs):
      logs[i] += p.communicate(timeout=300)[0]
  finally:
    for p in procs:
      p.kill()
  for i, p in enumerate(procs):
    assert p.returncode == 0, f'process {i}:\n{logs[i][-3000:]}'
  stops = [int(re.search(r'process \d stopped at step (\d+)', log).group(1)) for log in logs]
  assert stops[0] == stops[1] and 5 <= stops[0] < 100000, stops
  saved = sorted(d for d in os.listdir(os.path.join(workdir, 'checkpoints')) if d.isdigit())
  assert saved == [str(stops[0])]
