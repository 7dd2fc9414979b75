"""SIGTERM (a preempted TPU VM) makes a real training process save a checkpoint and exit; the
same command then resumes from it."""

import os
import re
import signal
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def train_command(workdir: str, num_steps: int) -> list[str]:
  return [sys.executable, '-m', 'vidgen.train', '--config', 'experiments/configs/vae_world.py:tiny',
          '--workdir', workdir, f'--config.train.num_steps={num_steps}', '--config.train.log_every=1',
          '--config.train.checkpoint_every=100000', '--config.train.eval_every=0']


def test_sigterm_saves_a_checkpoint_and_the_run_resumes(tmp_path):
  workdir = str(tmp_path / 'run')
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             JAX_COMPILATION_CACHE_DIR=os.path.join(tempfile.gettempdir(), 'vidgen-test-jax-cache'))
  proc = subprocess.Popen(train_command(workdir, 100000), cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
  lines = []
  try:
    for line in proc.stdout:
      lines.append(line)
      if line.startswith('step 3/'):
        proc.send_signal(signal.SIGTERM)
        break
    rest, _ = proc.communicate(timeout=300)
  finally:
    proc.kill()
  output = ''.join(lines) + rest
  assert proc.returncode == 0, output[-3000:]
  saved = [int(d) for d in os.listdir(os.path.join(workdir, 'checkpoints')) if d.isdigit()]
  assert len(saved) == 1 and 3 <= saved[0] < 100000, (saved, output[-2000:])
  assert f'Stopped at step {saved[0]}' in output

  resumed = subprocess.run(train_command(workdir, saved[0] + 2), cwd=REPO, env=env, capture_output=True,
                           text=True, timeout=300)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert re.search(rf'Resumed from .* at step {saved[0]}\.', resumed.stdout)
  assert f'step {saved[0] + 2}/{saved[0] + 2}' in resumed.stdout
