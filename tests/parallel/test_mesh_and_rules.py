"""Mesh sizing, rule presets and the sharding checks: the errors say which numbers disagree."""

import jax
import pytest
from jax.sharding import AbstractMesh, AxisType

from vidgen.parallel import mesh as mesh_lib
from vidgen.parallel import rules as rules_lib
from vidgen.parallel import sharding as sharding_lib


def abstract_mesh(data=1, fsdp=1, tensor=1, sequence=1) -> AbstractMesh:
  return AbstractMesh((data, fsdp, tensor, sequence), mesh_lib.AXES, axis_types=(AxisType.Auto,) * 4)


def test_minus_one_fills_the_remaining_devices():
  assert mesh_lib.resolve_sizes(dict(data=-1, fsdp=4, tensor=1, sequence=1), 32) == (8, 4, 1, 1)
  assert mesh_lib.resolve_sizes(dict(data=2, fsdp=2, tensor=2, sequence=1), 8) == (2, 2, 2, 1)


@pytest.mark.parametrize('sizes, devices, message', [
    (dict(data=2, fsdp=2), 8, 'multiplies to 4, but there are 8 devices'),
    (dict(data=-1, fsdp=3), 8, 'multiply to 3, which does not divide the 8 devices'),
    (dict(data=-1, fsdp=-1), 8, 'more than one axis set to -1'),
    (dict(data=0), 8, 'positive or -1'),
    (dict(model=2), 8, "unknown axes \\['model'\\]"),
])
def test_bad_mesh_sizes_are_clear_errors(sizes, devices, message):
  with pytest.raises(mesh_lib.MeshError, match=message):
    mesh_lib.resolve_sizes(sizes, devices)


def test_make_mesh_on_the_local_device():
  mesh = mesh_lib.make_mesh(mesh_lib.ParallelConfig())
  assert dict(mesh.shape) == dict(data=jax.device_count(), fsdp=1, tensor=1, sequence=1)
  with pytest.raises(mesh_lib.MeshError, match='slices'):
    mesh_lib.make_mesh(mesh_lib.ParallelConfig(dcn=dict(data=2)))


def test_presets_and_extra_rules():
  rules = rules_lib.logical_rules('fsdp_tensor')
  assert rules_lib.mesh_axes_of(rules, 'mlp') == ('tensor',)
  assert rules_lib.mesh_axes_of(rules, 'activation_batch') == ('data', 'fsdp')
  assert rules_lib.mesh_axes_of(rules, 'activation_length') == ()
  overridden = rules_lib.logical_rules('fsdp_tensor', [('mlp', None)])
  assert rules_lib.mesh_axes_of(overridden, 'mlp') == ()
  with pytest.raises(ValueError, match="'zero3' is not a preset"):
    rules_lib.logical_rules('zero3')


def test_global_batch_must_divide_over_data_parallel_devices():
  sharding_lib.check_global_batch(16, abstract_mesh(data=2, fsdp=4))
  with pytest.raises(ValueError, match='batch_size=12 is not divisible by the data-parallel size data×fsdp=2×4=8'):
    sharding_lib.check_global_batch(12, abstract_mesh(data=2, fsdp=4))


def test_heads_and_tokens_must_divide_over_their_axes():
  tensor = rules_lib.logical_rules('fsdp_tensor')
  sharding_lib.check_model_dims(abstract_mesh(tensor=4), tensor, heads=8, tokens=10)
  with pytest.raises(ValueError, match='6 attention heads, which the mesh splits 4 ways over tensor'):
    sharding_lib.check_model_dims(abstract_mesh(tensor=4), tensor, heads=6, tokens=8)
  sequence = rules_lib.logical_rules('fsdp_sequence')
  with pytest.raises(ValueError, match='10 video tokens, which the mesh splits 4 ways over sequence'):
    sharding_lib.check_model_dims(abstract_mesh(sequence=4), sequence, heads=6, tokens=10)
