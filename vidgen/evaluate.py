"""Evaluates a trained text-to-video run: how good its videos are, in numbers with intervals.

  python -m vidgen.evaluate --workdir runs/dit_world [--split eval|heldout] [--num_videos 64] \
      [--steps S --cfg_scale G --sampler euler --seed 0 --[no]factorized] [--features_dir DIR] [--out DIR]
  python -m vidgen.evaluate --compare runs/dit_a runs/dit_b ... [--split eval] [--out runs/comparison]
  python -m vidgen.evaluate --workdir runs/dit_world --task i2v|extend_forward|extend_backward|connect|loop|edit

`--task` scores one video-prompting task instead (vidgen/eval/prompting_eval.py says what each
is given and how it is scored); its report goes to WORKDIR/evaluation/TASK.

Samples a video for each of a fixed prompt set (world videos 0 … N−1 of the split, their
captions as prompts), scores them with the world probe against each prompt's ground truth,
and scores three reference sets the same way: the real videos (upper bound), the real videos
through the run's VAE (the VAE's ceiling: the DiT cannot beat its decoder), and pure latent
noise through the VAE (the floor). Adds the Fréchet video distance in the world feature
net's space (vidgen/world/features.py; trained on first use into --features_dir) and the
DiT's loss by noise level on those held-out videos. Writes into WORKDIR/evaluation/SPLIT
(or --out): metrics.json, report.md, metrics.png, loss_by_noise.png, training.png (if the
run logged evaluations), contact_sheet.png, features.npz and samples/.

A run whose eval data is not the world (trained on a folder of videos, shards, TFDS) gets the
evaluators that need no world truth instead: the eval loss on its held-out videos and a
contact sheet of sampled prompts (vidgen/eval/samples_report.py), in WORKDIR/evaluation/samples.

`--compare` reads the metrics.json of each run (a run's workdir, its evaluation folder, or the
file) and writes one table and plot of the runs side by side.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Sequence

import numpy as np
from absl import app, flags, logging

from vidgen import config_lib, entrypoint, host_memory, paths, runs, sample
from vidgen.data import video_io
from vidgen.eval import frechet, long_report, prompting_report, run_report, samples_report
from vidgen.world import metrics as world_metrics, train_features
from vidgen.eval.contact_sheet import save_contact_sheet
from vidgen.world.features import as_float_video
from vidgen.generation import Settings, VideoGenerator
from vidgen.models import vae as vae_lib
from vidgen.train import dit_trainer
from vidgen.train import metrics as metrics_lib
from vidgen.train.state import TrainState

FLAGS = flags.FLAGS
# The video sets of every report: key, and what the report calls it.
ROWS = {
    'generated': 'generated',
    'real': 'real videos (upper bound)',
    'vae_reconstruction': 'real through the VAE (its ceiling)',
    'vae_noise': 'noise through the VAE (floor)',
}
CONTACT_SHEET_ROWS = 8
LOSS_BUCKETS = 10  # noise-level buckets of the eval loss, whatever the run's config logs


def checkpoint_step(workdir: str) -> int | None:
  """The step of the run's latest checkpoint (the weights evaluated)."""
  steps = [int(d) for d in paths.listdir(os.path.join(workdir, 'checkpoints')) if d.isdigit()]
  return max(steps) if steps else None


def default_features_dir(workdir: str) -> str:
  """The feature net beside the run (runs/dit_a and runs/dit_b share runs/world_features)."""
  return os.path.join(paths.parent(workdir), 'world_features')


def _batched(fn, items: np.ndarray, batch_size: int) -> list[np.ndarray]:
  return [v for i in range(0, len(items), batch_size) for v in video_io.to_uint8(fn(items[i:i + batch_size]))]


def reference_videos(generator: VideoGenerator, real: np.ndarray, seed: int,
                     batch_size: int) -> dict[str, list[np.ndarray]]:
  """Real videos through the VAE (encode mean, decode), and N(0, 1) latent noise decoded by it.

  The noise is drawn in the DiT's normalised latent space, so it is what the sampler starts
  from (independent per value, as with the default noise prior), decoded as if it were a
  finished sample.
  """
  reconstruct = vae_lib.jitted_reconstruct(generator.vae)
  recon = _batched(lambda v: reconstruct(generator.vae_params, as_float_video(v)), real, batch_size)
  latent = generator.vae.config.latent_shape(*real.shape[1:4])
  z = np.random.default_rng(seed).standard_normal((len(real),) + tuple(latent)).astype(np.float32)
  noise = _batched(lambda x: generator.decode(x / generator.latent_scale + generator.latent_shift), z, batch_size)
  return {'vae_reconstruction': recon, 'vae_noise': noise}


def evaluate_run(workdir: str, *, split: str = 'eval', num_videos: int = 64, first_video: int = 0,
                 settings: Settings = Settings(), batch_size: int = 16, out_dir: str | None = None,
                 features_dir: str | None = None, samples_dir: str | None = None, features_config: Any = None,
                 verbose: bool = True) -> dict[str, Any]:
  """Evaluates the DiT run in `workdir`; writes the report and returns what metrics.json holds.

  The prompts are world videos first_video … first_video + num_videos − 1 of `split`: keep the
  default 0 for the reported numbers and pick settings on another range (e.g. first_video=128),
  so the choice is not made on the prompts it is reported on. `features_config` trains the
  feature net when `features_dir` has none (default: experiments/configs/world_features.py).
  """
  if first_video < 0 or num_videos < 1:
    raise ValueError(f'Evaluation needs num_videos >= 1 and first_video >= 0; got {num_videos} and {first_video}.')
  start = time.time()
  log = print if verbose else (lambda *a, **k: None)
  lap = lambda: log(f'  {time.time() - start:.0f}s so far', flush=True)
  out_dir = out_dir or os.path.join(workdir, 'evaluation', split)
  samples_dir = samples_dir or os.path.join(out_dir, 'samples')
  paths.makedirs(out_dir)
  model, params, extra, config, _ = runs.load_dit(workdir)
  trainer = dit_trainer.DiTTrainer(config, workdir)
  del model  # the trainer builds the same model around the same tokenizer
  generator = trainer.generator(params, extra)
  generator.workdir = workdir
  s = generator.resolve(settings)
  protocol = {
      'split': split, 'num_videos': num_videos, 'first_video': first_video,
      'prompts': f'world {split} videos {first_video}..{first_video + num_videos - 1}, their captions',
      'caption_style': config.data.world.caption_style, 'seed': s.seed, 'sampler': s.sampler, 'steps': s.steps,
      'cfg_scale': s.cfg_scale, 'factorized': bool(s.factorized), 'num_frames': s.num_frames, 'height': s.height,
      'width': s.width,
      'batch_size': batch_size, 'checkpoint_step': checkpoint_step(workdir), 'workdir': paths.absolute(workdir),
      'vae_workdir': paths.absolute(config.vae_workdir), 'world_seed': config.seed,
      'intervals': '95%: Wilson score for accuracies; percentile bootstrap over videos (1000 resamples, seed 0) '
                   'for means and adherence (the mean of its attributes\' Wilson bounds where every video scores '
                   'alike); jackknife over videos for FVD',
  }
  if (s.num_frames, s.height, s.width) != (config.data.num_frames, config.data.height, config.data.width):
    raise ValueError('Evaluation compares generated videos with real ones of the run\'s clip size '
                     f'{config.data.num_frames}x{config.data.height}x{config.data.width}; leave the size unset.')

  log(f'[1/4] sampling {num_videos} videos for world {split} prompts ({s.sampler}, {s.steps} steps, '
      f'guidance {s.cfg_scale}, seed {s.seed}{", factorized" if s.factorized else ""})', flush=True)
  records = world_metrics.prompt_records(config.data, split, config.seed, num_videos, start=first_video)
  prompts = [str(r['caption']) for r in records]
  videos = {'generated': sample.sample_to_files(generator, prompts, s, samples_dir, batch_size,
                                                show_progress=verbose)}
  real = np.stack([r['frames'] for r in records])
  videos['real'] = list(real)
  videos.update(reference_videos(generator, real, s.seed, batch_size))

  lap()
  log('[2/4] probing every video against its prompt\'s truth', flush=True)
  rows = {name: world_metrics.summarize(world_metrics.score_videos(videos[name], records)) for name in ROWS}

  lap()
  log('[3/4] Fréchet video distance in the world feature net\'s space', flush=True)
  extractor = train_features.load_or_train(features_dir or default_features_dir(workdir), features_config)
  other_real = np.stack([r['frames'] for r in world_metrics.prompt_records(config.data, split, config.seed,
                                                                          num_videos, start=first_video + num_videos)])
  features = {name: extractor.embed(v) for name, v in videos.items()}
  features['real_other'] = extractor.embed(other_real)
  for name in ROWS:
    compared = features['real_other'] if name == 'real' else features[name]
    rows[name]['fvd'] = frechet.frechet_with_interval(compared, features['real'])
  with paths.open_file(os.path.join(out_dir, 'features.npz'), 'wb') as f:
    np.savez(f, **features)

  lap()
  log('[4/4] eval loss by noise level on the same held-out videos', flush=True)
  state = TrainState(step=np.int32(0), params=params, opt_state=None, ema_params=params, extra=extra)
  loss_batches = max(1, num_videos // config.data.batch_size)
  losses = trainer.eval_losses(state, split=split, num_batches=loss_batches, source='world', num_buckets=LOSS_BUCKETS)

  results = {
      'protocol': protocol,
      'features': {'directory': paths.absolute(extractor.directory), 'sha256': extractor.sha256,
                   'description': extractor.description,
                   'fvd_reference': f'the {num_videos} real videos of the prompts; the real row compares '
                                    f'{num_videos} other real videos of the split (the floor at this size)'},
      'rows': {name: {'label': label, 'metrics': {k: e.to_dict() for k, e in rows[name].items()}}
               for name, label in ROWS.items()},
      'eval_loss': {'split': split, 'num_videos': loss_batches * config.data.batch_size,
                    'losses': losses},
  }
  _contact_sheet(os.path.join(out_dir, 'contact_sheet.png'), videos, prompts)
  run_report.write_report(results, out_dir, metrics_lib.read_metrics(workdir))
  log(f'Done in {time.time() - start:.0f}s: {os.path.join(out_dir, "report.md")}', flush=True)
  return results


def _contact_sheet(path: str, videos: dict[str, list[np.ndarray]], prompts: Sequence[str]) -> str:
  """Each row: a prompt, then frames of its real video | VAE reconstruction | generated video."""
  n = min(CONTACT_SHEET_ROWS, len(prompts))
  gap = lambda v: np.full(v.shape[:2] + (2, 3), 255, np.uint8)
  rows = [np.concatenate([videos['real'][i], gap(videos['real'][i]), videos['vae_reconstruction'][i],
                          gap(videos['real'][i]), videos['generated'][i]], axis=2) for i in range(n)]
  captions = [f'{i}: {p}  (real | VAE | generated)' for i, p in enumerate(prompts[:n])]
  return save_contact_sheet(path, rows, captions, frames_per_row=6, frame_size=200, caption_width=260)


def find_metrics(path: str, split: str = 'eval') -> str:
  """metrics.json of a run's workdir, of an evaluation folder, or the file itself."""
  for candidate in (path, os.path.join(path, 'metrics.json'),
                    os.path.join(path, 'evaluation', split, 'metrics.json')):
    if os.path.isfile(candidate):
      return candidate
  raise FileNotFoundError(f'No evaluation found for {path}: run `python -m vidgen.evaluate --workdir {path} '
                          f'--split {split}` first (it writes {path}/evaluation/{split}/metrics.json).')


def on_world(workdir: str) -> bool:
  """Whether a run is evaluated on world data (its eval.data_source, else its data.source)."""
  config = config_lib.read_saved_config(workdir)
  return (config.eval.data_source or config.data.source) == 'world'


def compare_runs(run_paths: Sequence[str], out_dir: str, split: str = 'eval') -> str:
  """Writes comparison.md/.json/.png for the evaluated runs at `run_paths`; returns the markdown."""
  if len(run_paths) < 2:
    raise ValueError('--compare needs at least two runs (workdirs or metrics.json files).')
  runs = {}
  for path in run_paths:
    name = os.path.normpath(path)
    runs[name] = json.load(paths.open_file(find_metrics(path, split)))
  return run_report.write_comparison(runs, out_dir)


def main(argv):
  host_memory.keep_freed_memory(restart=True)  # restarts once with GLIBC_TUNABLES if JAX threads already allocated
  if not any(a.startswith(('--verbosity', '-v', '--v=')) for a in sys.argv):
    logging.set_verbosity(logging.WARNING)  # checkpoint libraries' INFO lines drown the progress
  if FLAGS.compare:
    markdown = compare_runs(argv[1:], FLAGS.out or 'runs/comparison', FLAGS.split)
    print(markdown)
    print(f'\nWrote comparison.md, comparison.json and comparison.png to {FLAGS.out or "runs/comparison"}')
    return
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments {argv[1:]} (runs to compare go after --compare).')
  if not FLAGS.workdir:
    raise app.UsageError('--workdir (a trained DiT run) is required, or --compare DIR1 DIR2 ...')
  settings = Settings(steps=FLAGS.steps, cfg_scale=FLAGS.cfg_scale, sampler=FLAGS.sampler, seed=FLAGS.seed,
                      factorized=FLAGS.factorized)
  if not on_world(FLAGS.workdir):
    if FLAGS.task not in (None, 't2v') or FLAGS.seconds is not None:
      raise app.UsageError(f'{FLAGS.workdir} is evaluated on its own data, not the world: --task and --seconds score '
                           'with the world probe; run without them for its eval loss and a contact sheet.')
    results = samples_report.evaluate_samples(
        FLAGS.workdir, num_videos=FLAGS.num_videos if FLAGS['num_videos'].present else 16, settings=settings,
        batch_size=FLAGS.batch_size, out_dir=FLAGS.out)
    print('\n' + samples_report.samples_report(results))
    return
  if FLAGS.task == 'long' or FLAGS.seconds is not None:
    if FLAGS.task not in (None, 'long'):
      raise app.UsageError(f'--seconds goes with --task long (a long video per prompt), not --task {FLAGS.task}.')
    if FLAGS.seconds is not None and not FLAGS.seconds > 0:
      raise app.UsageError(f'--seconds must be > 0; got {FLAGS.seconds:g}.')
    try:
      results = long_report.evaluate_long(FLAGS.workdir, seconds=FLAGS.seconds or 60.0, split=FLAGS.split,
                                          num_videos=FLAGS.num_videos if FLAGS['num_videos'].present else 16,
                                          first_video=FLAGS.first_video, overlap=FLAGS.overlap, settings=settings, batch_size=FLAGS.batch_size,
                                          out_dir=FLAGS.out)
    except ValueError as e:
      raise app.UsageError(str(e)) from None
    print('\n' + long_report.long_report(results))
    return
  if FLAGS.task and FLAGS.task != 't2v':
    strengths = tuple(float(v) for v in FLAGS.strengths) if FLAGS.strengths else prompting_report.EDIT_STRENGTHS
    if any(not 0 < v <= 1 for v in strengths):
      raise app.UsageError(f'--strengths must each be in (0, 1]; got {list(strengths)}.')
    results = prompting_report.evaluate_task(FLAGS.workdir, FLAGS.task, split=FLAGS.split,
                                             num_videos=FLAGS.num_videos, first_video=FLAGS.first_video,
                                             settings=settings, batch_size=FLAGS.batch_size, out_dir=FLAGS.out,
                                             strengths=strengths)
    print('\n' + prompting_report.task_report(results))
    return
  results = evaluate_run(FLAGS.workdir, split=FLAGS.split, num_videos=FLAGS.num_videos,
                         first_video=FLAGS.first_video, settings=settings,
                         batch_size=FLAGS.batch_size, out_dir=FLAGS.out, features_dir=FLAGS.features_dir)
  out = FLAGS.out or os.path.join(FLAGS.workdir, 'evaluation', FLAGS.split)
  print('\n' + run_report.summary_table(results))
  print(f'\nReport: {os.path.join(out, "report.md")}')


if __name__ == '__main__':
  flags.DEFINE_string('workdir', None, 'A trained DiT run.')
  flags.DEFINE_enum('split', 'eval', ['eval', 'heldout'], 'World split of the prompts (heldout: colour-shape '
                    'pairs training never shows).')
  flags.DEFINE_integer('num_videos', 64, 'Prompts sampled and scored (world videos F..F+N-1 of the split).')
  flags.DEFINE_integer('first_video', 0, 'F, the first of them: the reported numbers use 0; choose settings on '
                       'another range (e.g. 128) so they are not picked on the prompts they are reported on.')
  flags.DEFINE_integer('steps', None, 'Sampler steps; default: the run\'s config.sample.steps.')
  flags.DEFINE_float('cfg_scale', None, 'Classifier-free guidance scale; default: the run\'s.')
  flags.DEFINE_string('sampler', None, 'euler | heun (flow), ddim | ddpm (DDPM); default: the run\'s.')
  flags.DEFINE_integer('seed', 0, 'Sampling seed.')
  flags.DEFINE_boolean('factorized', None, 'Two passes: the opening latent frame, then the motion given it; '
                       'default: the run\'s config.sample.factorized.')
  flags.DEFINE_integer('batch_size', 16, 'Prompts sampled together.')
  flags.DEFINE_string('features_dir', None, 'World feature net for FVD; default WORKDIR/../world_features '
                      '(trained there on first use).')
  flags.DEFINE_string('out', None, 'Output folder; default WORKDIR/evaluation/SPLIT (runs/comparison for --compare).')
  flags.DEFINE_enum('task', None, list(prompting_report.TASKS) + ['long'], 'Score one task: t2v (the default '
                    'report), a video-prompting task (i2v, extend_forward, extend_backward, connect, loop, edit) or '
                    'long (--seconds of video per prompt, coherence window by window).')
  flags.DEFINE_float('seconds', None, 'long: seconds of video per prompt (default 60).')
  flags.DEFINE_integer('overlap', 1, 'long: latent frames each window is given from the one before.')
  flags.DEFINE_list('strengths', None, 'edit: the SDEdit strengths swept (default 0.2,0.4,0.6,0.8,1.0).')
  flags.DEFINE_bool('compare', False, 'Compare evaluated runs: python -m vidgen.evaluate --compare DIR1 DIR2 ...')
  entrypoint.run(main)
