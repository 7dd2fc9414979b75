"""`vidgen.evaluate --task`: one video-prompting task on world prompts, scored, with reference rows.

Writes into WORKDIR/evaluation/TASK (or `out_dir`): metrics.json, report.md, contact_sheet.png
(given | generated | real, per prompt), samples/ and, for edit, edit_sweep.png (how much of the
source is kept against how well the new prompt is followed, over strengths).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Mapping, Sequence

import numpy as np

from vidgen import paths, prompting, sample
from vidgen.data import video_io
from vidgen.eval import intervals, prompting_eval, report
from vidgen.world import metrics as world_metrics
from vidgen.eval.contact_sheet import save_contact_sheet
from vidgen.generation import TASKS, Settings, Task, VideoGenerator
from vidgen.models import vae as vae_lib

EDIT_STRENGTHS = (0.2, 0.4, 0.6, 0.8, 1.0)
CONTACT_SHEET_ROWS = 8
TARGETS = {  # the targets for the world config that trains in <= 30 minutes
    'i2v': {'color': ('>=', 0.95), 'shape': ('>=', 0.95), 'direction': ('>=', 0.70)},
    'extend_forward': {'new_frames_color': ('>=', 0.95), 'seam_position_error': ('<=', 2.0),
                       'direction_continued': ('>=', 0.80)},
    'extend_backward': {'new_frames_color': ('>=', 0.95), 'seam_position_error': ('<=', 2.0),
                        'direction_continued': ('>=', 0.80)},
    'connect': {'seam_position_error': ('<=', 2.0)},
    'loop': {'seam_over_median_step': ('<=', 1.5)},
    'edit': {'new_color': ('>=', 0.80), 'position_kept_error': ('<=', 2.0)},
}


def given_frames(generator: VideoGenerator, task: str, s: Settings) -> tuple[int, int]:
  """(frames given at the start or end, frames of B) of a task on the run's clip length."""
  if task == 'extend_forward':
    return generator.extension_context(s.num_frames, 'forward', s), 0
  if task == 'extend_backward':
    return generator.extension_context(s.num_frames, 'backward', s), 0
  if task == 'connect':
    return generator.connect_context(s)
  return 0, 0


def task_for_records(task: str, real: np.ndarray, lay: prompting_eval.Layout, context: int, context_b: int,
                     strength: float = 1.0) -> Task:
  """The `Task` giving each real video's frames as the layout says (one medium per prompt)."""
  t = real.shape[1]
  if task == 'i2v':
    return Task('i2v', images=real[:, 0])
  if task == 'extend_forward':
    return Task(task, videos=real[:, :context], new_frames=t - context)
  if task == 'extend_backward':
    return Task(task, videos=real[:, t - context:], new_frames=t - context)
  if task == 'connect':
    return Task('connect', videos=real[:, :context], videos_b=real[:, t - context_b:])
  if task == 'edit':
    return Task('edit', videos=real, strength=strength)
  return Task(task)


def _references(generator: VideoGenerator, task: str, real: np.ndarray, lay: prompting_eval.Layout,
                batch_size: int) -> dict[str, list[np.ndarray]]:
  """Real videos through the VAE with the given frames pasted (ceiling); given frames held still (floor)."""
  if task in ('t2v', 'loop', 'edit'):
    return {'real': list(real)}
  reconstruct = vae_lib.jitted_reconstruct(generator.vae)
  recon = np.concatenate([np.asarray(reconstruct(generator.vae_params, real[i:i + batch_size] / 127.5 - 1.0))
                          for i in range(0, len(real), batch_size)])
  recon = np.where(lay.given[None, :, None, None, None], real, video_io.to_uint8(recon))
  given = np.repeat(lay.given[None], len(real), axis=0)
  return {'real': list(real), 'vae': list(recon), 'held': list(prompting.fill_unknown(real, given))}


ROW_LABELS = {'generated': 'generated', 'real': 'real videos', 'vae': 'real through the VAE (ceiling)',
              'held': 'given frames held still (floor)'}


def evaluate_task(workdir: str, task: str, *, split: str = 'eval', num_videos: int = 64, first_video: int = 0,
                  settings: Settings = Settings(), batch_size: int = 16, out_dir: str | None = None,
                  strengths: Sequence[float] = EDIT_STRENGTHS, verbose: bool = True,
                  generator: VideoGenerator | None = None) -> dict[str, Any]:
  """Runs `task` on world videos first_video … first_video + num_videos − 1; writes and returns its metrics."""
  if task not in TASKS or task == 't2v':
    raise ValueError(f'--task {task!r}: choose one of {TASKS[1:]} (t2v is vidgen.evaluate without --task).')
  if first_video < 0 or num_videos < 1:
    raise ValueError(f'Evaluation needs num_videos >= 1 and first_video >= 0; got {num_videos} and {first_video}.')
  start = time.time()
  log = print if verbose else (lambda *a, **k: None)
  generator = generator or VideoGenerator.from_workdir(workdir)
  config = generator.config
  s = generator.resolve(settings)
  out_dir = out_dir or os.path.join(workdir, 'evaluation', task)
  paths.makedirs(out_dir)
  records = world_metrics.prompt_records(config.data, split, config.seed, num_videos, start=first_video)
  real = np.stack([r['frames'] for r in records])
  context, context_b = given_frames(generator, task, s)
  lay = prompting_eval.layout(task, s.num_frames, context, context_b)
  prompts = [str(r['caption']) for r in records]
  rows: dict[str, dict[str, intervals.Estimate]] = {}
  sweep = {}
  if task == 'edit':
    edited = [prompting_eval.edited_prompt(r) for r in records]
    prompts, truth = [p for p, _ in edited], [r for _, r in edited]
    for strength in strengths:
      log(f'  edit at strength {strength:g}', flush=True)
      made = sample.sample_to_files(generator, prompts, s, os.path.join(out_dir, f'samples_{strength:g}'),
                                    batch_size, verbose, task_for_records(task, real, lay, 0, 0, strength))
      sweep[strength] = made
      rows[f'strength {strength:g}'] = prompting_eval.score_task(task, made, truth, lay, sources=list(real))
    generated = sweep[0.6 if 0.6 in sweep else strengths[-1]]
  else:
    log(f'[1/2] {task}: {num_videos} videos for world {split} prompts ({s.steps} steps, guidance {s.cfg_scale})',
        flush=True)
    generated = sample.sample_to_files(generator, prompts, s, os.path.join(out_dir, 'samples'), batch_size,
                                       verbose, task_for_records(task, real, lay, context, context_b))
    log('[2/2] probing', flush=True)
    ft = generator.vae.config.compression[0]
    rows['generated'] = prompting_eval.score_task(task, generated, records, lay, ft=ft)
    for name, videos in _references(generator, task, real, lay, batch_size).items():
      rows[ROW_LABELS[name]] = prompting_eval.score_task(task, videos, records, lay, ft=ft)
    rows = {ROW_LABELS.get(k, k): v for k, v in rows.items()}
  protocol = {'task': task, 'split': split, 'num_videos': num_videos, 'first_video': first_video,
              'prompts': f'world {split} videos {first_video}..{first_video + num_videos - 1}, their captions'
                         + (' with the first object\'s colour changed' if task == 'edit' else ''),
              'given_frames': [int(i) for i in np.flatnonzero(lay.given)], 'num_frames': s.num_frames,
              'seed': s.seed, 'sampler': s.sampler, 'steps': s.steps, 'cfg_scale': s.cfg_scale,
              'factorized': bool(s.factorized) and task == 'loop', 'workdir': paths.absolute(workdir),
              **({'strengths': list(strengths)} if task == 'edit' else {})}
  results = {'protocol': protocol, 'rows': {k: {m: e.to_dict() for m, e in v.items()} for k, v in rows.items()},
             'targets': {m: list(t) for m, t in TARGETS.get(task, {}).items()}}
  with paths.open_file(os.path.join(out_dir, 'metrics.json'), 'w') as f:
    json.dump(results, f, indent=2)
  _contact_sheet(os.path.join(out_dir, 'contact_sheet.png'), task, real, generated, lay, prompts)
  if task == 'edit':
    _edit_plot(os.path.join(out_dir, 'edit_sweep.png'), rows, strengths)
  with paths.open_file(os.path.join(out_dir, 'report.md'), 'w') as f:
    f.write(task_report(results))
  log(f'Done in {time.time() - start:.0f}s: {os.path.join(out_dir, "report.md")}', flush=True)
  return results


def task_table(results: Mapping[str, Any]) -> str:
  """Metrics as rows, the generated and reference sets (or edit strengths) as columns."""
  columns = {name: {m: intervals.Estimate.from_dict(e) for m, e in row.items()}
             for name, row in results['rows'].items()}
  metrics = list(next(iter(results['rows'].values())))
  return report.estimate_table(columns, metrics)


def task_report(results: Mapping[str, Any]) -> str:
  p = results['protocol']
  lines = [f'# {p["task"]}', '', task_table(results), '',
           f'**How measured.** {p["num_videos"]} prompts: {p["prompts"]}. Given pixel frames {p["given_frames"]} of '
           f'{p["num_frames"]}; {p["sampler"]} sampler, {p["steps"]} steps, guidance {p["cfg_scale"]}, seed '
           f'{p["seed"]}. Intervals: 95%, Wilson for shares, bootstrap over videos for medians and means. '
           'Definitions: vidgen/eval/prompting_eval.py.', '']
  row = results['rows'].get('generated') or results['rows'].get('strength 0.6')
  for metric, (op, target) in results['targets'].items():
    value = (row or {}).get(metric, {}).get('value')
    met = None if value is None else (value >= target if op == '>=' else value <= target)
    lines.append(f'- target {metric} {op} {target:g}: {report.format_value(value)} '
                 f'({"met" if met else "missed" if met is not None else "not measured"})')
  return '\n'.join(lines) + '\n'


def _contact_sheet(path: str, task: str, real: np.ndarray, generated: Sequence[np.ndarray],
                   lay: prompting_eval.Layout, prompts: Sequence[str]) -> str:
  n = min(CONTACT_SHEET_ROWS, len(prompts))
  rows, captions = [], []
  other = 'source' if task == 'edit' else 'real'
  for i in range(n):
    made = np.asarray(generated[i])
    if len(real[i]) != len(made):  # a loop: longer than the clip it closes
      rows.append(made)
      captions.append(f'{i}: {prompts[i]}  (the loop)')
      continue
    gap = np.full(made.shape[:1] + made.shape[1:2] + (2, 3), 255, np.uint8)
    rows.append(np.concatenate([made, gap, real[i]], axis=2))
    captions.append(f'{i}: {prompts[i]}  (generated | {other})')
  return save_contact_sheet(path, rows, captions, frames_per_row=9, frame_size=160, caption_width=260)


def _edit_plot(path: str, rows: Mapping[str, Mapping[str, intervals.Estimate]], strengths: Sequence[float]) -> str:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  kept = [rows[f'strength {s:g}']['psnr_to_source'].value for s in strengths]
  color = [rows[f'strength {s:g}']['new_color'].value for s in strengths]
  fig, ax = plt.subplots(figsize=(5, 4))
  ax.plot(kept, color, 'o-')
  for s, x, y in zip(strengths, kept, color):
    ax.annotate(f'{s:g}', (x, y), textcoords='offset points', xytext=(4, 4))
  ax.set_xlabel('PSNR to the source (dB): how much is kept')
  ax.set_ylabel('new colour found: the new prompt followed')
  ax.set_title('SDEdit strength sweep')
  fig.tight_layout()
  with paths.open_file(path, 'wb') as f:
    fig.savefig(f, format='png', dpi=100)
  plt.close(fig)
  return path
