"""Config blocks as checked dataclasses: each block of a config is one frozen dataclass, kept next to
the code that reads it, and its field defaults are the only defaults that block has.

A config file still builds an `ml_collections.ConfigDict` (overridable from the command line),
but `vidgen/config_schema.py` passes it through these dataclasses when it is loaded: a key no
dataclass has is an error that names it and the nearest field, a missing key takes the field's
default, and each dataclass's `__post_init__` checks its values. This module is the bottom of
that: it imports nothing from vidgen, so any module can define a block.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import types
import typing
from typing import Any, Mapping, TypeVar

import ml_collections
from etils import epath  # gs:// paths work wherever a path is taken

T = TypeVar('T')


class ConfigError(ValueError):
  """A config file, argument or override that cannot be used as given."""


def block_fields(cls: type) -> dict[str, tuple[dataclasses.Field, Any]]:
  """{name: (field, resolved type)} of a block dataclass (annotations may be strings)."""
  hints = typing.get_type_hints(cls)
  return {f.name: (f, hints[f.name]) for f in dataclasses.fields(cls)}


def _as_tuple(value: Any) -> Any:
  """JSON holds tuples as lists (and pairs of pairs as lists of lists)."""
  return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value


def _block_type(kind: Any) -> type | None:
  """The dataclass a field holds (also through `X | None`), or None."""
  if dataclasses.is_dataclass(kind):
    return kind
  inner = [a for a in typing.get_args(kind) if dataclasses.is_dataclass(a)]
  return inner[0] if len(inner) == 1 else None


_SCALARS = {bool: 'a bool', int: 'an int', float: 'a float', str: 'a string'}


def _checked_scalar(value: Any, kind: Any, key: str) -> Any:
  """`value` as the scalar type the field declares (an int is a float too); other types pass."""
  options = typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, types.UnionType) else (kind,)
  if value is None and type(None) in options:
    return None
  scalar = [t for t in options if t in _SCALARS]
  if not scalar:
    return value
  want = scalar[0]
  if want is float and isinstance(value, int) and not isinstance(value, bool):
    return float(value)
  if isinstance(value, want) and not (want is int and isinstance(value, bool)):
    return value
  raise ConfigError(f'Config key {key} expects {_SCALARS[want]}; got {value!r} ({type(value).__name__}).')


def _join(name: str, key: str) -> str:
  return f'{name}.{key}' if name else key


def from_config(cls: type[T], config: Mapping[str, Any] | None, name: str, *, as_config: bool = False) -> T:
  """Builds the block dataclass `cls` from a ConfigDict/dict holding any subset of its fields.

  Nested blocks (fields whose type is a dataclass) are built the same way; `name` is the
  block's dotted path in the config, for error messages. With `as_config` the values come from
  a config file, where a block's DERIVED fields (set by code, e.g. the DiT's latent channels
  from its VAE run) may not appear.
  """
  values = dict(config.items()) if config is not None else {}
  fields = block_fields(cls)
  settable = [k for k in fields if not (as_config and k in getattr(cls, 'DERIVED', ()))]
  unknown = sorted(set(values) - set(settable))
  if unknown:
    derived = [k for k in unknown if k in fields]
    if derived:
      raise ConfigError(f'{", ".join(_join(name, k) for k in derived)} cannot be set in a config: the code sets '
                        f'{"them" if len(derived) > 1 else "it"} when the model is built. Remove '
                        f'{"them" if len(derived) > 1 else "it"} from the config.')
    hints = [h for k in unknown for h in difflib.get_close_matches(k, settable, n=1)]
    raise ConfigError(
        f'Unknown config key{"s" if len(unknown) > 1 else ""} {", ".join(_join(name, k) for k in unknown)}: '
        f'{name or "the config"} ({cls.__name__}) has no such field.'
        + (f' Did you mean {", ".join(map(repr, hints))}?' if hints else '')
        + f' Its fields are: {", ".join(settable)}.')
  kwargs = {}
  for key, value in values.items():
    field, kind = fields[key]
    block = _block_type(kind)
    if block is not None and value is not None and not isinstance(value, block):
      if not isinstance(value, (Mapping, ml_collections.ConfigDict)):
        raise ConfigError(f'{_join(name, key)} is a block of fields ({block.__name__}); got {value!r}.')
      value = from_config(block, value, _join(name, key), as_config=as_config)
    elif isinstance(value, ml_collections.ConfigDict):
      value = value.to_dict()
    elif isinstance(field.default, tuple) or typing.get_origin(kind) is tuple:
      value = _as_tuple(value)
    else:
      value = _checked_scalar(value, kind, _join(name, key))
    kwargs[key] = value
  try:
    return cls(**kwargs)
  except ConfigError:
    raise
  except (TypeError, ValueError) as e:
    where = name or cls.__name__
    raise ConfigError(str(e) if f'{where}.' in str(e) else f'Config block {where}: {e}') from None


def _without_derived(value: Any) -> Any:
  """`dataclasses.asdict` of a block, leaving out each (nested) block's DERIVED fields."""
  if dataclasses.is_dataclass(value):
    derived = getattr(type(value), 'DERIVED', ())
    return {f.name: _without_derived(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name not in derived}
  if isinstance(value, dict):
    return {k: _without_derived(v) for k, v in value.items()}
  return value


def to_config(block: Any) -> ml_collections.ConfigDict:
  """The ConfigDict of a block dataclass as a config file holds it (without DERIVED fields)."""
  return ml_collections.ConfigDict(_without_derived(block))


def save_config(config: ml_collections.ConfigDict, workdir: str) -> str:
  """Writes the config as JSON into the workdir, so a run says exactly what it ran."""
  path = epath.Path(workdir) / 'config.json'
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(config.to_json_best_effort(indent=2, sort_keys=True))
  return os.fspath(path)


def read_config_json(workdir: str) -> dict[str, Any]:
  """The raw `config.json` a run saved into its workdir."""
  path = epath.Path(workdir) / 'config.json'
  if not path.exists():
    raise ConfigError(f'{path} does not exist: {workdir!r} is not a vidgen workdir (no run has started there).')
  try:
    return json.loads(path.read_text())
  except json.JSONDecodeError as e:
    raise ConfigError(f'{path} is not valid JSON ({e}); the run that wrote it was cut off or the file was edited.') from None
