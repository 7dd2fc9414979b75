"""The shared loop survives faults: NaN losses, a second run on a workdir, kill -9 at random moments."""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
import pytest

from tests.train import toy_trainer
from vidgen.train import checkpoint as checkpoint_lib
from vidgen.train import loop, metrics, workdir_lock

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POISONED_STEP = 7  # batch size 4: record 26 is in the 7th batch


def test_a_nan_loss_stops_the_run_naming_the_step_and_keeps_the_good_checkpoint(tmp_path):
  workdir = str(tmp_path / 'run')
  trainer = toy_trainer.ToyTrainer(toy_trainer.toy_config(log_every=4, checkpoint_every=3), poison_index=26)
  with pytest.raises(loop.NonFiniteLossError, match=rf'Step {POISONED_STEP}: train/loss is (nan|inf).*checkpoint \(6\)'):
    loop.run(trainer, workdir)
  ckpt = checkpoint_lib.Checkpointer(os.path.join(workdir, 'checkpoints'))
  assert ckpt.all_steps() == [3, 6]  # nothing saved from the poisoned step on
  restored = ckpt.restore(jax.eval_shape(lambda: trainer.init_state(jax.random.key(0), None)))
  assert np.isfinite(np.asarray(restored.params['w'])).all()
  assert not os.path.exists(os.path.join(workdir, workdir_lock.LOCK_FILE))  # released on the error


def test_skip_mode_skips_the_bad_batch_and_counts_it(tmp_path):
  workdir = str(tmp_path / 'run')
  trainer = toy_trainer.ToyTrainer(toy_trainer.toy_config(num_steps=10, log_every=5, on_nonfinite='skip'),
                                   poison_index=26)
  state = loop.run(trainer, workdir)
  assert int(state.step) == 10 and np.isfinite(np.asarray(state.params['w'])).all()
  rows = {r['step']: r for r in metrics.read_metrics(workdir)}
  assert rows[5]['train/skipped_batches'] == 0 and rows[10]['train/skipped_batches'] == 1
  assert np.isfinite(rows[10]['train/loss'])


def _dead_pid() -> int:
  proc = subprocess.Popen([sys.executable, '-c', 'pass'])
  proc.wait()
  return proc.pid


def _write_lock(workdir, host, pid):
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, workdir_lock.LOCK_FILE), 'w') as f:
    json.dump({'host': host, 'pid': pid, 'started': 'earlier'}, f)


def test_a_second_run_on_a_workdir_in_use_refuses_naming_the_first(tmp_path):
  workdir = str(tmp_path / 'run')
  _write_lock(workdir, socket.gethostname(), os.getppid())  # a live process that is not this one
  trainer = toy_trainer.ToyTrainer(toy_trainer.toy_config(num_steps=2))
  with pytest.raises(workdir_lock.WorkdirInUseError, match=rf'in use by another run \(pid {os.getppid()} on this host'):
    loop.run(trainer, workdir)
  _write_lock(workdir, 'tpu-vm-7', 1234)
  with pytest.raises(workdir_lock.WorkdirInUseError, match='pid 1234 on host tpu-vm-7.*If that run is gone, delete'):
    loop.run(trainer, workdir)
  assert not os.path.exists(os.path.join(workdir, 'checkpoints'))  # refused before touching anything


def test_a_stale_lock_is_taken_over_with_a_message(tmp_path, caplog):
  workdir = str(tmp_path / 'run')
  dead = _dead_pid()
  _write_lock(workdir, socket.gethostname(), dead)
  state = loop.run(toy_trainer.ToyTrainer(toy_trainer.toy_config(num_steps=2)), workdir)
  assert int(state.step) == 2
  assert any(f'pid {dead}' in r.getMessage() and 'is gone' in r.getMessage() for r in caplog.records)
  assert not os.path.exists(os.path.join(workdir, workdir_lock.LOCK_FILE))


def _losses(workdir):
  """{step: [every loss logged for it]}: a resumed run logs again the steps after its checkpoint."""
  out = {}
  for row in metrics.read_metrics(workdir):
    if 'train/loss' in row:
      out.setdefault(row['step'], []).append(row['train/loss'])
  return out


def _train(workdir, num_steps, env):
  return subprocess.Popen([sys.executable, '-m', 'tests.train.toy_trainer', workdir, str(num_steps)], cwd=REPO,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_kill_9_at_random_moments_then_resume_gives_the_uninterrupted_losses(tmp_path):
  """Killed (SIGKILL: no handler runs) at seeded random moments, some inside an async checkpoint
  save, the run resumes each time from its last complete checkpoint, and every loss it logs
  equals the uninterrupted run's loss for that step."""
  num_steps = 40
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=REPO,
             JAX_COMPILATION_CACHE_DIR=os.path.join(tempfile.gettempdir(), 'vidgen-test-jax-cache'))
  reference = str(tmp_path / 'reference')
  out, _ = _train(reference, num_steps, env).communicate(timeout=300)
  expected = _losses(reference)
  assert sorted(expected) == list(range(1, num_steps + 1)), out[-2000:]

  workdir = str(tmp_path / 'killed')
  rng = random.Random(0)
  kills = 0
  for attempt in range(8):
    proc = _train(workdir, num_steps, env)
    seen = 0
    target = rng.randint(2, 12)  # steps this attempt runs before the kill, then a random fraction of a step
    for line in proc.stdout:
      if line.startswith('step '):
        seen += 1
        if seen >= target:
          time.sleep(rng.uniform(0.0, 0.05))
          proc.send_signal(signal.SIGKILL)
          kills += 1
          break
    proc.communicate(timeout=300)
    if proc.returncode == 0:
      break
    assert proc.returncode == -signal.SIGKILL
  assert kills >= 3
  final = _train(workdir, num_steps, env)
  out, _ = final.communicate(timeout=300)
  assert final.returncode == 0, out[-3000:]
  got = _losses(workdir)
  assert sorted(got) == list(range(1, num_steps + 1))
  for step, values in got.items():
    np.testing.assert_allclose(values, expected[step] * len(values), rtol=1e-6, err_msg=f'step {step}')
