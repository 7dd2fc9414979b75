"""Test set-up: CPU only, and the repo root importable (configs import experiments.configs)."""

import os
import sys

os.environ.setdefault('JAX_PLATFORMS', 'cpu')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402

# Grain's worker processes read absl flags; under pytest nothing parses them.
flags.FLAGS.mark_as_parsed()
