"""Configs as code: every config loads, overrides are typed, and mistakes fail clearly."""

import glob
import json
import os

import ml_collections
import pytest

from vidgen import config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(p for p in glob.glob(os.path.join(ROOT, 'experiments/configs/*.py'))
                 if not os.path.basename(p).startswith(('_', 'common')))


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
@pytest.mark.parametrize('arg', [None, 'tiny'])
def test_every_config_loads_and_is_locked(path, arg):
  config = config_lib.load_config(path + (f':{arg}' if arg else ''))
  assert isinstance(config.seed, int)
  experiments = [config.vae, config.dit] if config.model == 'quickstart' else [config]
  for experiment in experiments:  # the quickstart holds a VAE and a DiT experiment
    assert experiment.data.batch_size > 0
  with pytest.raises(AttributeError):
    config.datset = 1  # a misspelt key is an error, not a silent new field


def test_overrides_are_parsed_to_the_field_type():
  config = config_lib.load_config('experiments/configs/world.py', [
      'data.batch_size=4', 'data.fps=12', 'data.shuffle=false', 'data.source=folder',
      '--config.data.world.max_objects=2'])
  assert config.data.batch_size == 4 and isinstance(config.data.batch_size, int)
  assert config.data.fps == 12.0 and isinstance(config.data.fps, float)
  assert config.data.shuffle is False
  assert config.data.source == 'folder'
  assert config.data.world.max_objects == 2


def test_none_fields_take_literals():
  config = config_lib.load_config('experiments/configs/world.py', ['data.num_epochs=3'])
  assert config.data.num_epochs == 3


def test_unknown_key_names_the_closest_field():
  with pytest.raises(config_lib.ConfigError, match="Did you mean 'batch_size'"):
    config_lib.load_config('experiments/configs/world.py', ['data.batchsize=4'])
  with pytest.raises(config_lib.ConfigError, match="has no field 'nope'"):
    config_lib.load_config('experiments/configs/world.py', {'nope.x': 1})


def test_wrong_type_is_a_clear_error():
  with pytest.raises(config_lib.ConfigError, match="'data.batch_size' expects an int"):
    config_lib.load_config('experiments/configs/world.py', ['data.batch_size=four'])
  with pytest.raises(config_lib.ConfigError, match='expects a bool'):
    config_lib.load_config('experiments/configs/world.py', ['data.shuffle=maybe'])


def test_bad_spec_errors():
  with pytest.raises(config_lib.ConfigError, match='does not exist'):
    config_lib.load_config('experiments/configs/nope.py')
  with pytest.raises(config_lib.ConfigError, match='python file'):
    config_lib.load_config('world')
  with pytest.raises(ValueError, match='Unknown arg'):
    config_lib.load_config('experiments/configs/world.py:huge')


def test_saved_config_round_trips(tmp_path):
  config = config_lib.load_config('experiments/configs/world.py:tiny', ['data.batch_size=3'])
  path = config_lib.save_config(config, str(tmp_path / 'run'))
  saved = json.loads(open(path).read())
  assert saved['data']['batch_size'] == 3
  restored = config_lib.read_saved_config(str(tmp_path / 'run'))
  assert isinstance(restored, ml_collections.ConfigDict)
  assert restored.data.num_frames == config.data.num_frames
  with pytest.raises(config_lib.ConfigError, match='not a vidgen workdir'):
    config_lib.read_saved_config(str(tmp_path / 'empty'))
