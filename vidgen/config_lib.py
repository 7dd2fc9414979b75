"""Configs as code: load `experiments/configs/NAME.py[:arg]`, apply `--config.a.b=v` overrides, save.

Every entrypoint and notebook loads configs through `load_config`, so a misspelt key or a
value of the wrong type fails the same way everywhere: early, with a message that names
the key and says what would work.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import os
import sys
from typing import Any, Sequence

import ml_collections
from absl import flags, logging

from vidgen import config_blocks, config_schema
from vidgen.config_blocks import ConfigError

save_config = config_blocks.save_config  # config_lib is the one module entrypoints and notebooks read configs through

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(spec: str, overrides: Sequence[str] | dict[str, Any] = ()) -> ml_collections.ConfigDict:
  """Loads `path.py[:arg]`, calls its `get_config(arg)` and applies overrides.

  Args:
    spec: a config file path, optionally followed by `:arg` (e.g. `experiments/configs/world.py:tiny`).
    overrides: `key=value` strings (as given on the command line, without the `--config.` prefix)
      or a dict `{dotted.key: value}`.

  Returns:
    The config, complete and checked against its schema (vidgen/config_schema.py: every block's
    fields, defaults filled in, values checked), and locked: assigning a key it does not have raises.
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
  config = config_schema.check(config)
  config.lock()
  items = list(overrides.items() if isinstance(overrides, dict) else (split_override(o) for o in overrides))
  for key, value in items:
    set_value(config, key, value)
  if items:  # the overridden values are checked too
    config = config_schema.check(config)
    config.lock()
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


def read_saved_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a run saved into its workdir, migrated to today's schema and checked."""
  values = config_schema.migrate(config_blocks.read_config_json(workdir))
  try:
    return config_schema.check(values)
  except ConfigError as e:
    raise ConfigError(f'{workdir}/config.json does not fit the config schema: {e}') from None


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
