"""Configs as code: load `experiments/configs/NAME.py[:arg]`, apply `--config.a.b=v` overrides, save.

Every entrypoint and notebook loads configs through `load_config`, so a misspelt key or a
value of the wrong type fails the same way everywhere: early, with a message that names
the key and says what would work.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import json
import os
import sys
from typing import Any, Sequence

import ml_collections
from absl import flags, logging

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ConfigError(ValueError):
  """A config file, argument or override that cannot be used as given."""


def load_config(spec: str, overrides: Sequence[str] | dict[str, Any] = ()) -> ml_collections.ConfigDict:
  """Loads `path.py[:arg]`, calls its `get_config(arg)` and applies overrides.

  Args:
    spec: a config file path, optionally followed by `:arg` (e.g. `experiments/configs/world.py:tiny`).
    overrides: `key=value` strings (as given on the command line, without the `--config.` prefix)
      or a dict `{dotted.key: value}`.

  Returns:
    The config, locked: assigning a key it does not have raises.
  """
  path, _, arg = spec.partition(':')
  if not path.endswith('.py'):
    raise ConfigError(f'--config must name a python file such as experiments/configs/world.py[:tiny], got {spec!r}.')
  if not os.path.exists(path) and os.path.exists(os.path.join(_REPO_ROOT, path)):
    path = os.path.join(_REPO_ROOT, path)
  if not os.path.exists(path):
    raise ConfigError(f'Config file {path!r} does not exist (from --config={spec!r}).')
  if _REPO_ROOT not in sys.path:  # configs import experiments.configs.common
    sys.path.insert(0, _REPO_ROOT)
  module_spec = importlib.util.spec_from_file_location(f'_vidgen_config_{abs(hash(path))}', path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  if not hasattr(module, 'get_config'):
    raise ConfigError(f'Config file {path!r} has no get_config(arg=None) function.')
  config = module.get_config(arg or None)
  if not isinstance(config, ml_collections.ConfigDict):
    raise ConfigError(f'{path}:get_config must return an ml_collections.ConfigDict, got {type(config).__name__}.')
  config.lock()
  items = overrides.items() if isinstance(overrides, dict) else (split_override(o) for o in overrides)
  for key, value in items:
    set_value(config, key, value)
  return config


def split_override(override: str) -> tuple[str, str]:
  """'key=value' (as on the command line, `--config.` prefix allowed) → (key, value)."""
  key, sep, value = override.partition('=')
  if not sep:
    raise ConfigError(f'Override {override!r} must look like key=value, e.g. data.batch_size=4.')
  return key.removeprefix('--').removeprefix('config.'), value


def set_value(config: ml_collections.ConfigDict, dotted_key: str, value: Any) -> None:
  """Sets `config[dotted_key] = value`, parsing strings to the existing field's type."""
  *parents, leaf = dotted_key.split('.')
  node, walked = config, []
  for name in parents + [leaf]:
    if not isinstance(node, ml_collections.ConfigDict) or name not in node:
      where = '.'.join(walked) or 'the config'
      fields = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
      hint = difflib.get_close_matches(name, fields, n=1)
      raise ConfigError(
          f'Unknown config key {dotted_key!r}: {where} has no field {name!r}.'
          + (f' Did you mean {hint[0]!r}?' if hint else '')
          + (f' Its fields are: {", ".join(fields)}.' if fields else ''))
    if name != leaf:
      node = node[name]
      walked.append(name)
  current = node[leaf]
  parsed = _parse(value, current, dotted_key) if isinstance(value, str) else value
  try:
    with node.ignore_type() if current is None else _nullcontext():
      node[leaf] = parsed
  except TypeError as e:
    raise ConfigError(f'Config key {dotted_key!r} is a {type(current).__name__}; cannot set it to {value!r} ({e}).') from None


class _nullcontext:
  def __enter__(self):
    return self

  def __exit__(self, *exc):
    return False


def _parse(raw: str, current: Any, key: str) -> Any:
  """Parses a command-line string into the type of the field it replaces."""
  def fail(kind):
    return ConfigError(f'Config key {key!r} expects {kind} (it is {current!r}); got {raw!r}.')
  if isinstance(current, bool):
    if raw.lower() in ('true', '1', 'yes'):
      return True
    if raw.lower() in ('false', '0', 'no'):
      return False
    raise fail('a bool (true/false)')
  if isinstance(current, int):
    try:
      return int(raw)
    except ValueError:
      raise fail('an int') from None
  if isinstance(current, float):
    try:
      return float(raw)
    except ValueError:
      raise fail('a float') from None
  if isinstance(current, str):
    return raw
  try:
    value = ast.literal_eval(raw)
  except (ValueError, SyntaxError):
    if current is None:
      return raw
    raise fail(f'a python literal of type {type(current).__name__}') from None
  if current is not None and isinstance(current, (tuple, list)):
    if not isinstance(value, (tuple, list)):
      raise fail('a tuple such as (1,2)')
    return type(current)(value)
  return value


def save_config(config: ml_collections.ConfigDict, workdir: str) -> str:
  """Writes the config as JSON into the workdir, so a run says exactly what it ran."""
  from etils import epath  # gs:// paths work wherever a path is taken.
  path = epath.Path(workdir) / 'config.json'
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(config.to_json_best_effort(indent=2, sort_keys=True))
  return os.fspath(path)


def read_saved_config(workdir: str) -> ml_collections.ConfigDict:
  """Reads the config a run saved into its workdir."""
  from etils import epath
  path = epath.Path(workdir) / 'config.json'
  if not path.exists():
    raise ConfigError(f'{path} does not exist: {workdir!r} is not a vidgen workdir (no run has started there).')
  return migrate(ml_collections.ConfigDict(json.loads(path.read_text())))


def migrate(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A saved config in today's schema: runs saved by older versions of vidgen still load.

  * `first_frame_prob` (clips whose first latent frame is given) became `masking.image`; a DiT
    run saved before either has `masking` with nothing given.
  """
  if config.get('model') == 'dit' and 'masking' not in config:
    from vidgen.diffusion import masking  # pylint: disable=g-import-not-at-top (masking imports this module)
    values = config.to_dict()
    values['masking'] = masking.masking_config(image=values.pop('first_frame_prob', 0.0)).to_dict()
    config = ml_collections.ConfigDict(values)
  return config


# ---- command-line integration -------------------------------------------------------------

def define_flags() -> None:
  """Defines --config and --workdir; call at import time of an entrypoint."""
  flags.DEFINE_string('config', None, 'Config file, e.g. experiments/configs/world.py[:tiny].')
  flags.DEFINE_string('workdir', None, 'Directory for checkpoints, logs and outputs (local or gs://).')


_OVERRIDES: list[str] = []


def parse_flags_with_overrides(argv: list[str]) -> list[str]:
  """absl `flags_parser` that pulls `--config.a.b=v` out before absl sees them."""
  rest = []
  args = iter(argv)
  for arg in args:
    if arg.startswith('--config.'):
      if '=' not in arg:  # --config.a.b value
        arg = f'{arg}={next(args, "")}'
      _OVERRIDES.append(arg[len('--config.'):])
    else:
      rest.append(arg)
  parsed = flags.FLAGS(rest)
  if not any(a.startswith(('--verbosity', '-v', '--v=')) for a in rest):
    logging.set_verbosity(logging.WARNING)  # libraries' INFO lines drown the progress; --verbosity=0 shows them
  return parsed


def config_from_flags() -> ml_collections.ConfigDict:
  """The config named by --config with the command line's --config.* overrides applied."""
  if not flags.FLAGS.config:
    raise ConfigError('--config is required, e.g. --config experiments/configs/world.py:tiny')
  return load_config(flags.FLAGS.config, _OVERRIDES)


def overrides() -> list[str]:
  """The command line's --config.* overrides (for entrypoints whose --config has a default)."""
  return list(_OVERRIDES)


def dataclass_from_config(cls: type, config: Any, name: str) -> Any:
  """Builds the dataclass `cls` from a ConfigDict/dict holding any subset of its fields.

  An unknown key is an error naming the config block (`name`) and the fields it takes; lists
  become tuples where the field's default is a tuple (configs saved as JSON hold lists).
  """
  import dataclasses  # pylint: disable=g-import-not-at-top
  values = dict(config.items()) if hasattr(config, 'items') else dict(config)
  fields = {f.name: f for f in dataclasses.fields(cls)}
  unknown = sorted(set(values) - set(fields))
  if unknown:
    raise ConfigError(f'Unknown {name} config keys {unknown}; {cls.__name__} takes {sorted(fields)}.')
  for key, value in values.items():
    if isinstance(fields[key].default, tuple) and isinstance(value, list):
      values[key] = tuple(value)
  return cls(**values)
