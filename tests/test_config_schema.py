"""One config schema: every block is a checked dataclass whose defaults are the only defaults."""

import dataclasses
import json
import textwrap

import pytest

from vidgen import config_blocks, config_lib, config_schema
from vidgen.data.pipeline import DataConfig
from vidgen.models.dit import DiTConfig
from vidgen.models.vae import VAEConfig


def _write_config(tmp_path, body):
  path = tmp_path / 'my_config.py'
  path.write_text(textwrap.dedent(body))
  return str(path)


def test_a_misspelt_key_in_a_config_file_fails_at_load(tmp_path):
  path = _write_config(tmp_path, '''
      import ml_collections
      def get_config(arg=None):
        return ml_collections.ConfigDict(dict(model='vae', data=dict(batch_size=2, read_thread=4)))
  ''')
  with pytest.raises(config_lib.ConfigError, match=r"data.read_thread.*Did you mean 'read_threads'"):
    config_lib.load_config(path)


def test_left_out_blocks_and_keys_take_the_dataclass_defaults(tmp_path):
  path = _write_config(tmp_path, '''
      import ml_collections
      def get_config(arg=None):
        return ml_collections.ConfigDict(dict(model='dit', data=dict(batch_size=2)))
  ''')
  config = config_lib.load_config(path, ['data.read_threads=5', 'eval.loss_buckets=3'])
  assert config.data.batch_size == 2 and config.data.read_threads == 5 and config.eval.loss_buckets == 3
  assert config.data.tokenizer.max_length == DataConfig().tokenizer.max_length
  assert config.dit.scan_layers == DiTConfig().scan_layers
  assert config.sample.factorized is False and config.masking.image == 0.0


def test_values_are_checked_after_overrides():
  with pytest.raises(config_lib.ConfigError, match='sample.cfg_scale must be >= 1'):
    config_lib.load_config('experiments/configs/dit_world.py:tiny', ['sample.cfg_scale=0.5'])
  with pytest.raises(config_lib.ConfigError, match='data.world.still_prob is a probability'):
    config_lib.load_config('experiments/configs/dit_world.py:tiny', ['data.world.still_prob=2'])
  with pytest.raises(config_lib.ConfigError, match="parallel.ici names axes \\['model'\\]"):
    config_schema.check(dict(model='vae', parallel=dict(ici=dict(model=2))))
  with pytest.raises(config_lib.ConfigError, match="data.batch_size expects an int; got '16'"):
    config_schema.check(dict(model='vae', data=dict(batch_size='16')))


def test_fields_the_code_derives_cannot_be_set():
  with pytest.raises(config_lib.ConfigError, match='dit.latent_channels cannot be set in a config'):
    config_schema.check(dict(model='dit', dit=dict(latent_channels=8)))
  assert 'latent_channels' not in config_lib.load_config('experiments/configs/dit_world.py:tiny').dit


def test_the_kind_of_config_is_named():
  with pytest.raises(config_lib.ConfigError, match="config.model='gan' names no kind of config"):
    config_schema.check(dict(model='gan'))


def test_an_old_runs_config_json_still_loads(tmp_path):
  """A DiT run saved before masking, sample.factorized, eval.loss_buckets and data.read_threads."""
  old = config_lib.load_config('experiments/configs/dit_world.py:tiny').to_dict()
  del old['masking'], old['sample']['factorized'], old['eval']['loss_buckets'], old['data']['read_threads']
  old['first_frame_prob'] = 0.25
  (tmp_path / 'config.json').write_text(json.dumps(old))
  config = config_lib.read_saved_config(str(tmp_path))
  assert config.masking.image == 0.25 and config.masking.forward == 0.0
  assert config.sample.factorized is False and config.eval.loss_buckets == 10 and config.data.read_threads == 2
  old['data']['bach_size'] = 3
  (tmp_path / 'config.json').write_text(json.dumps(old))
  with pytest.raises(config_lib.ConfigError, match='config.json does not fit the config schema.*data.bach_size'):
    config_lib.read_saved_config(str(tmp_path))


def test_every_block_of_every_kind_is_a_dataclass_with_defaults():
  """No block is a free dict: each field of a run is a scalar or a dataclass that builds with no arguments."""
  def walk(cls, path):
    for field in dataclasses.fields(cls):
      block = config_blocks._block_type(config_blocks.block_fields(cls)[field.name][1])
      if block is not None:
        walk(block, f'{path}.{field.name}')
      else:
        assert field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING, \
            f'{path}.{field.name} has no default'
  for kind, run in config_schema.RUNS.items():
    walk(run, kind)
    assert config_schema.check({'model': kind}).model == kind


def test_dit_xl2_256_names_the_vae_that_vae_256_trains():
  vae = config_lib.load_config('experiments/configs/vae_256.py')
  dit = config_lib.load_config('experiments/configs/dit_xl2_256.py')
  assert dit.vae.to_dict() == vae.vae.to_dict()
  latent = VAEConfig.from_config(vae.vae).latent_shape(vae.data.num_frames, vae.data.height, vae.data.width)
  assert tuple(latent) == (5, 32, 32, 16)  # dit_xl2_256's docstring: 5×32×32×16 latents, 1,280 tokens at 1×2×2
