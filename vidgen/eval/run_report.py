"""The evaluation report of a run (report.md + plots), and the side-by-side comparison of runs.

Written for a reader who has never seen the code: every table says how its numbers were
measured, every metric says what it measures, and reference rows (real videos, the VAE's
ceiling, noise) show what good and bad look like on the same prompts.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, Sequence

from vidgen import paths
from vidgen.eval import intervals, plots, report
from vidgen.world import metrics as world_metrics

BAR_METRICS = ('adherence',) + world_metrics.ADHERENCE + ('bounce', 'consistency', 'permanence')
SUMMARY_METRICS = ('adherence',) + world_metrics.ADHERENCE + ('fvd',)


def _estimates(row: Mapping[str, Any]) -> dict[str, intervals.Estimate]:
  return {k: intervals.Estimate.from_dict(v) for k, v in row['metrics'].items()}


def how_measured(protocol: Mapping[str, Any]) -> str:
  """One paragraph: what was sampled, how, and how the intervals were made."""
  p = protocol
  step = f'checkpoint step {p["checkpoint_step"]}' if p.get('checkpoint_step') is not None else 'latest checkpoint'
  factorized = (' in two passes (factorized: the opening latent frame from the text, then the motion given it)'
                if p.get('factorized') else '')
  return (f'**How measured.** {p["num_videos"]} prompts: {p["prompts"]} ({p["caption_style"]} captions, world seed '
          f'{p["world_seed"]}). Generated at {step}{factorized} with the {p["sampler"]} sampler, {p["steps"]} steps, '
          f'guidance {p["cfg_scale"]}, seed {p["seed"]}, {p["num_frames"]} frames of {p["height"]}x{p["width"]}, '
          f'{p["batch_size"]} prompts per batch. Intervals: {p["intervals"]}.')


def summary_table(results: Mapping[str, Any], metrics: Sequence[str] = SUMMARY_METRICS) -> str:
  """The headline table: metrics as rows, the four video sets as columns."""
  columns = {row['label']: _estimates(row) for row in results['rows'].values()}
  return report.estimate_table(columns, metrics)


def _findings(results: Mapping[str, Any]) -> list[str]:
  """A few plain sentences a reader can check against the tables."""
  rows = {k: _estimates(v) for k, v in results['rows'].items()}
  gen, real, vae, noise = (rows[k]['adherence'] for k in ('generated', 'real', 'vae_reconstruction', 'vae_noise'))
  out = []
  if gen.value is not None:
    out.append(f'Generated videos reach prompt adherence {report.format_estimate(gen, False)}, against '
               f'{report.format_estimate(real, False)} for the real videos, {report.format_estimate(vae, False)} '
               f'for real videos passed through the VAE (the best the DiT can do with this decoder) and '
               f'{report.format_estimate(noise, False)} for decoded noise.')
    if vae.high is not None and real.low is not None and vae.high < real.low:
      out.append('The VAE itself loses part of what the probe reads (its row is clearly below the real '
                 'videos): improving the VAE raises the ceiling of every DiT trained on it.')
    if gen.low is not None and noise.high is not None and gen.low > noise.high:
      out.append('Generated videos are clearly better than decoded noise (the intervals do not overlap).')
    elif gen.value is not None:
      out.append('Generated videos are not distinguishable from decoded noise on prompt adherence '
                 '(their intervals overlap).')
  best = max(((m, rows['generated'][m]) for m in world_metrics.ADHERENCE), key=lambda x: x[1].value or -1)
  worst = min(((m, rows['generated'][m]) for m in world_metrics.ADHERENCE), key=lambda x: 2 if x[1].value is None
              else x[1].value)
  if best[1].value is not None and best[1].value == worst[1].value:
    out.append(f'All seven attributes score {report.format_value(float(best[1].value))}.')
  elif best[1].value is not None:
    out.append(f'Best-followed attribute: {best[0]} ({report.format_estimate(best[1], False)}); worst: {worst[0]} '
               f'({report.format_estimate(worst[1], False)}).')
  return out


def write_report(results: Mapping[str, Any], out_dir: str, training_rows: Sequence[Mapping[str, float]] = ()) -> str:
  """Writes metrics.json, report.md and the plots into `out_dir`; returns the report's path."""
  paths.makedirs(out_dir)
  protocol = results['protocol']
  files = {'metrics': 'metrics.json', 'contact_sheet': 'contact_sheet.png', 'samples': 'samples/',
           'features': 'features.npz'}
  columns = {row['label']: _estimates(row) for row in results['rows'].values()}
  files['metrics_plot'] = os.path.basename(plots.metric_bars(
      os.path.join(out_dir, 'metrics.png'), columns, BAR_METRICS,
      f'World metrics, {protocol["num_videos"]} {protocol["split"]} prompts (95% intervals)'))
  losses = results['eval_loss']['losses']
  if any(k.startswith('loss_t') for k in losses):
    files['loss_plot'] = os.path.basename(plots.loss_by_noise(
        os.path.join(out_dir, 'loss_by_noise.png'), losses,
        f'DiT eval loss by noise level, {results["eval_loss"]["num_videos"]} {protocol["split"]} videos'))
  curves = plots.training_curves(os.path.join(out_dir, 'training.png'), training_rows,
                                 'During training (eval/ metrics in metrics.jsonl)')
  if curves:
    files['training_plot'] = os.path.basename(curves)
  results = {**results, 'files': files}
  with paths.open_file(os.path.join(out_dir, 'metrics.json'), 'w') as f:
    json.dump(results, f, indent=2)

  metrics = [m.name for m in world_metrics.METRICS]
  lines = [
      f'# Evaluation of `{protocol["workdir"]}`',
      '',
      how_measured(protocol),
      '',
      *[f'- {s}' for s in _findings(results)],
      '',
      '## Metrics',
      '',
      'Each cell: value [95% interval] (how many things were scored: objects, videos or bounces). '
      '"–": nothing to score (e.g. no object found, or no occluder in any prompt). '
      'Chance: what guessing uniformly among the world\'s options would score.',
      '',
      report.estimate_table(columns, metrics, extra={
          'chance': [report.format_value(world_metrics.BY_NAME[m].chance) for m in metrics],
          'better': ['higher' if world_metrics.BY_NAME[m].higher_is_better else 'lower' for m in metrics],
          'what it measures': [world_metrics.BY_NAME[m].description for m in metrics]}),
      '',
      f'Rows are read by the world probe (vidgen/world/probe.py) and scored against the ground truth of the world '
      f'video each prompt was written from. The reference columns score, for the same prompts: the real videos; '
      f'the real videos encoded and decoded by the run\'s VAE (`{protocol["vae_workdir"]}`); and N(0, 1) noise in '
      f'the DiT\'s latent space decoded by that VAE. fvd: Fréchet video distance to the real videos of the prompts '
      f'in the space of the {results["features"]["description"]} (`{results["features"]["directory"]}`); '
      f'{results["features"]["fvd_reference"]}. FVDs are comparable only between runs that used the same feature '
      f'net (same hash) and the same number of videos.',
      '',
      f'![world metrics]({files["metrics_plot"]})',
      '',
      '## Eval loss by noise level',
      '',
      f'The DiT\'s loss (EMA weights) on the first {results["eval_loss"]["num_videos"]} world '
      f'{results["eval_loss"]["split"]} videos, encoded by the VAE: `loss` with noise levels drawn as in '
      f'training, `loss_tU` at noise level U (0: clean, 1: pure noise) with the same noise for every level. '
      f'Training logs the same numbers as eval/loss_tU.',
      '',
      report.markdown_table({'eval loss': losses}, list(losses), row_header=''),
      '',
  ]
  if 'loss_plot' in files:
    lines += [f'![eval loss by noise level]({files["loss_plot"]})', '']
  lines += ['## During training', '']
  if 'training_plot' in files:
    lines += ['Eval loss and, where the config set eval.num_videos, probe scores of a few sampled videos, '
              'at each evaluation of the run (metrics.jsonl; sampled with eval.sample_steps steps).', '',
              f'![training curves]({files["training_plot"]})', '']
  else:
    lines += ['The run logged no evaluations (train.eval_every = 0).', '']
  lines += [
      '## Samples',
      '',
      f'Each row: a prompt, then its real video | VAE reconstruction | generated video. All {protocol["num_videos"]} '
      f'generated videos are in `{files["samples"]}` (mp4, gif, contact sheet, settings.json).',
      '',
      f'![samples]({files["contact_sheet"]})',
      '',
      f'Files: {", ".join(f"`{v}`" for v in files.values())}.',
      '',
  ]
  path = os.path.join(out_dir, 'report.md')
  with paths.open_file(path, 'w') as f:
    f.write('\n'.join(lines))
  return path


_COMPARED = ('protocol.split', 'protocol.num_videos', 'protocol.first_video', 'protocol.seed', 'protocol.sampler',
             'protocol.steps', 'protocol.cfg_scale', 'protocol.factorized', 'protocol.num_frames', 'protocol.height',
             'protocol.width', 'features.sha256')
# What reports written before a key existed measured.
_DEFAULTS = {'protocol.factorized': False, 'protocol.first_video': 0}


def _get(d: Mapping[str, Any], dotted: str) -> Any:
  for k in dotted.split('.'):
    d = d.get(k, {}) if isinstance(d, Mapping) else {}
  return d if d != {} else _DEFAULTS.get(dotted)


def write_comparison(runs: Mapping[str, Mapping[str, Any]], out_dir: str) -> str:
  """comparison.md, .json and .png: the generated rows of several runs side by side; returns the markdown."""
  paths.makedirs(out_dir)
  columns = {name: _estimates(r['rows']['generated']) for name, r in runs.items()}
  first = next(iter(runs.values()))
  columns['real videos (first run)'] = _estimates(first['rows']['real'])
  metrics = [m.name for m in world_metrics.METRICS]
  differ = []
  for key in _COMPARED:
    values = {name: _get(r, key) for name, r in runs.items()}
    if len({json.dumps(v) for v in values.values()}) > 1:
      differ.append(f'{key.split(".")[-1]} ({", ".join(f"{n}: {v}" for n, v in values.items())})')
  how = '; '.join(f'{name}: {how_measured(r["protocol"]).removeprefix("**How measured.** ")}'
                  for name, r in runs.items())
  lines = ['# Comparison of runs', '',
           'Each cell: value [95% interval] (how many things were scored). Two runs differ clearly on a metric '
           'when their intervals do not overlap.', '']
  if differ:
    lines += [f'**Caution: the runs were measured differently** in {"; ".join(differ)}. Compare with care.', '']
  lines += [report.estimate_table(columns, metrics), '', '![comparison](comparison.png)', '',
            f'How measured: {how}', '']
  markdown = '\n'.join(lines)
  plots.metric_bars(os.path.join(out_dir, 'comparison.png'), columns, BAR_METRICS,
                    'Generated videos of each run (95% intervals)')
  with paths.open_file(os.path.join(out_dir, 'comparison.md'), 'w') as f:
    f.write(markdown)
  with paths.open_file(os.path.join(out_dir, 'comparison.json'), 'w') as f:
    json.dump({'runs': {n: {'protocol': r['protocol'], 'features': r.get('features'),
                            'generated': r['rows']['generated']['metrics']} for n, r in runs.items()},
               'differences': differ}, f, indent=2)
  return markdown
