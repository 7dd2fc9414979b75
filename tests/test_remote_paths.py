"""Workdirs on Cloud Storage: what evaluation, run loading and the loop read and write goes
through epath, so a gs:// workdir works like a local one. gs:// is faked here by a local folder
(etils' mock_epath), so a missed os.* call on a gs:// path fails these tests."""

import json
import os

import pytest
from etils import epath
from etils.epath import gpath
from etils.epath import testing as epath_testing

from vidgen import config_lib, evaluate, paths, runs
from vidgen.train import metrics, workdir_lock


@pytest.fixture
def fake_gcs(tmp_path, monkeypatch):
  """gs://BUCKET/... is tmp_path/gcs/BUCKET/... for every epath operation."""
  root = tmp_path / 'gcs'
  monkeypatch.setattr(gpath, '_is_tf_installed', lambda: False)  # else epath sends gs:// to tf.io.gfile

  def local(path):
    path = os.fspath(path)
    return str(root / path[len('gs://'):]) if path.startswith('gs://') else path

  def redirect(original, path, *args, **kwargs):
    args = [local(a) if isinstance(a, (str, os.PathLike)) and os.fspath(a).startswith('gs://') else a for a in args]
    return original(local(path), *args, **kwargs)

  def listing(original, path, *args, **kwargs):  # glob and walk give back paths: map them to gs:// again
    out = original(local(path), *args, **kwargs)
    return [os.fspath(p).replace(str(root) + '/', 'gs://') for p in out] if isinstance(out, list) else out

  names = ('copy', 'exists', 'isdir', 'listdir', 'makedirs', 'mkdir', 'open', 'remove', 'rename', 'replace',
           'rmtree', 'stat', 'walk')
  with epath_testing.mock_epath(**{n: redirect for n in names}, glob=listing):
    yield root


def test_paths_helpers_on_gs(fake_gcs):
  assert paths.absolute('gs://b/runs/dit') == 'gs://b/runs/dit'
  assert paths.parent('gs://b/runs/dit') == 'gs://b/runs'
  paths.makedirs('gs://b/runs/dit/checkpoints/12')
  paths.makedirs('gs://b/runs/dit/checkpoints/40')
  assert paths.listdir('gs://b/runs/dit/checkpoints') == ['12', '40']
  assert paths.listdir('gs://b/none') == []
  assert (fake_gcs / 'b/runs/dit/checkpoints/40').is_dir()  # it really went through the fake bucket


def test_evaluate_finds_the_step_and_the_feature_net_of_a_gs_workdir(fake_gcs):
  paths.makedirs('gs://b/runs/dit/checkpoints/1200')
  assert evaluate.checkpoint_step('gs://b/runs/dit') == 1200
  assert evaluate.checkpoint_step('gs://b/runs/none') is None
  assert evaluate.default_features_dir('gs://b/runs/dit') == 'gs://b/runs/world_features'


def test_a_run_config_saves_reads_and_resolves_its_vae_on_gs(fake_gcs):
  vae = config_lib.load_config('experiments/configs/vae_world.py:tiny')
  config_lib.save_config(vae, 'gs://b/runs/vae')
  dit = config_lib.load_config('experiments/configs/dit_world.py:tiny', {'vae_workdir': 'gs://b/old/vae'})
  config_lib.save_config(dit, 'gs://b/runs/dit')
  assert config_lib.read_saved_config('gs://b/runs/vae').vae.to_dict() == vae.vae.to_dict()
  assert json.loads((fake_gcs / 'b/runs/dit/config.json').read_text())['vae_workdir'] == 'gs://b/old/vae'
  # the VAE run moved beside the DiT run: found there, under the same folder name
  assert runs.resolve_vae_workdir('gs://b/old/vae', 'gs://b/runs/dit') == 'gs://b/runs/vae'


def test_the_workdir_lock_and_the_metrics_file_work_on_gs(fake_gcs):
  with workdir_lock.WorkdirLock('gs://b/runs/dit'):
    assert json.loads((fake_gcs / 'b/runs/dit/run.lock').read_text())['pid'] == os.getpid()
  assert not epath.Path('gs://b/runs/dit/run.lock').exists()
  lock = json.loads(json.dumps(workdir_lock.WorkdirLock('gs://b/runs/dit').owner))
  epath.Path('gs://b/runs/dit/run.lock').write_text(json.dumps(dict(lock, pid=os.getppid())))  # a live other run
  with pytest.raises(workdir_lock.WorkdirInUseError, match=f'pid {os.getppid()} on this host'):
    workdir_lock.WorkdirLock('gs://b/runs/dit').acquire()
  epath.Path('gs://b/runs/dit/metrics.jsonl').write_text('{"step": 3, "train/loss": 0.5}\n{"step": 4, "tr')  # cut off
  assert metrics.read_metrics('gs://b/runs/dit') == [{'step': 3, 'train/loss': 0.5}]
