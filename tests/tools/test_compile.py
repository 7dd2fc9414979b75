"""The TPU compile tool: topology names, and a real ahead-of-time compile for a TPU slice."""

import importlib.util

import pytest

from vidgen import config_lib
from vidgen.parallel import topology as topology_lib

HAS_LIBTPU = importlib.util.find_spec('libtpu') is not None


@pytest.mark.parametrize('name, kind, shape, chips', [
    ('v5p-128', 'v5p', '4x4x4', 64), ('v4-32', 'v4', '2x2x4', 16), ('v5e-16', 'v5e', '4x4', 16),
    ('v6e-256', 'v6e', '16x16', 256), ('v5p:2x2x1', 'v5p', '2x2x1', 4),
])
def test_topology_names(name, kind, shape, chips):
  t = topology_lib.parse(name)
  assert (t.kind, t.shape, t.num_chips) == (kind, shape, chips)


@pytest.mark.parametrize('name, message', [
    ('v7-8', 'Unknown TPU topology'), ('v5p-100', 'not a standard v5p slice'),
    ('v5p-127', 'not a multiple of 2'), ('v5e:4x4x4', 'grid has 2 dimensions'),
])
def test_unknown_topologies_are_clear_errors(name, message):
  with pytest.raises(ValueError, match=message):
    topology_lib.parse(name)


@pytest.mark.skipif(not HAS_LIBTPU, reason='needs libtpu (pip install -r requirements-tpu.txt)')
def test_compiles_a_sequence_parallel_dit_for_a_tpu_slice():
  from vidgen.tools import compile as compile_tool
  config = config_lib.load_config('experiments/configs/video_3b_512.py:tiny')
  report = compile_tool.compile_report(config, 'v5p-8')  # 4 chips: fsdp 2 × sequence 2
  assert report['chips'] == 4 and report['mesh'].startswith('data=1 fsdp=2 tensor=1 sequence=2')
  mem = report['memory_per_chip']
  assert report['fits'] and 0 < mem['total'] < mem['hbm'] and mem['arguments'] > 0 and mem['temporaries'] > 0
  # XLA counts every op (text encoder, norms, optimizer) where the analytic count has the DiT's
  # matmuls only; at this tiny width they differ by a small factor, not by orders of magnitude.
  ratio = report['xla_flops_per_chip'] * report['chips'] / report['model_flops_per_step']
  assert 0.8 < ratio < 4, ratio
  assert 0 < report['roofline_mfu'] < 1 and report['roofline_step_seconds'] > 0
  assert 'fits' in compile_tool.format_report(report)


def test_advice_names_the_knob_that_helps():
  from vidgen.tools import compile as compile_tool
  config = config_lib.load_config('experiments/configs/dit_xl2_256.py')
  mem = dict(arguments=10e9, outputs=0, temporaries=150e9, code=0, total=160e9, hbm=95e9)
  tips = compile_tool.advice(dict(fits=False, memory_per_chip=mem), config)
  assert any('--config.dit.remat=full' in t for t in tips)  # the config already uses 'dots'
  mem.update(arguments=150e9, temporaries=10e9)
  config.parallel.rules = 'data_parallel'
  tips = compile_tool.advice(dict(fits=False, memory_per_chip=mem), config)
  assert any('--config.parallel.rules=fsdp' in t for t in tips)
