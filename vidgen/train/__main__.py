"""Train a model: python -m vidgen.train --config experiments/configs/NAME.py[:arg] --workdir DIR.

Resumes from the latest checkpoint in DIR when there is one. `--config.a.b=value` overrides.
"""

from absl import app, flags

from vidgen import config_lib
from vidgen.train.trainers import train_and_evaluate

config_lib.define_flags()


def main(argv):
  del argv
  if not flags.FLAGS.workdir:
    raise app.UsageError('--workdir is required.')
  train_and_evaluate(config_lib.config_from_flags(), flags.FLAGS.workdir)


if __name__ == '__main__':
  app.run(main, flags_parser=config_lib.parse_flags_with_overrides)
