"""vidgen installs as a package (pip install -e . / from a git URL) with the pins it is tested with."""

import os
import re
import tomllib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _pins(lines):
  return {re.split(r'[=<>\[]', line)[0].lower().replace('_', '-'): line.split('==')[1]
          for line in lines if '==' in line}


def test_pyproject_pins_what_requirements_txt_pins():
  with open(os.path.join(REPO, 'pyproject.toml'), 'rb') as f:
    project = tomllib.load(f)['project']
  declared = project['dependencies'] + [d for extra in project['optional-dependencies'].values() for d in extra]
  with open(os.path.join(REPO, 'requirements.txt')) as f:
    required = [line.split('#')[0].strip() for line in f if line.split('#')[0].strip()]
  assert _pins(declared) == _pins(required)
  assert project['requires-python'] == '>=3.11'


def test_the_package_ships_the_configs_entrypoints_load():
  with open(os.path.join(REPO, 'pyproject.toml'), 'rb') as f:
    include = tomllib.load(f)['tool']['setuptools']['packages']['find']['include']
  assert {'vidgen*', 'experiments*'} <= set(include)
  for folder in ('experiments', 'experiments/configs'):
    assert os.path.exists(os.path.join(REPO, folder, '__init__.py')), folder
