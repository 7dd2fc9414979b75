"""Train a model: python -m vidgen.train --config experiments/configs/NAME.py[:arg] --workdir DIR.

Resumes from the latest checkpoint in DIR when there is one. `--config.a.b=value` overrides.
Multi-host: add --distributed on a Cloud TPU pod, or --coordinator_address/--num_processes/
--process_id elsewhere (vidgen/parallel/distributed.py), and run the same command on every host.
"""

from absl import app, flags

from vidgen import config_lib, entrypoint, host_memory
from vidgen.parallel import distributed
from vidgen.train.trainers import train_and_evaluate

config_lib.define_flags()
distributed.define_flags()


def main(argv):
  del argv
  host_memory.keep_freed_memory(restart=True)  # restarts once with GLIBC_TUNABLES if JAX threads already allocated
  if not flags.FLAGS.workdir:
    raise app.UsageError('--workdir is required.')
  distributed.initialize_from_flags()
  train_and_evaluate(config_lib.config_from_flags(), flags.FLAGS.workdir)


if __name__ == '__main__':
  entrypoint.run(main, flags_parser=config_lib.parse_flags_with_overrides)
