"""`vidgen.evaluate --task long --seconds 60`: a minute of video per prompt, scored window by window.

Three curves on the same prompts (world eval clips' captions): the generated long videos
(`VideoGenerator.long`), the real world videos of those clips run on for as long
(`world.render_long`, the ceiling) and windows sampled independently from the text and put
end to end (the floor: what no memory between windows gives). Writes report.md,
metrics.json, coherence.png (each metric against time) and contact_sheet.png (a frame every
5 seconds).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=g-import-not-at-top
import numpy as np  # noqa: E402

from vidgen import paths  # noqa: E402
from vidgen.data import video_io  # noqa: E402
from vidgen.world import scenes as world  # noqa: E402
from vidgen.eval import coherence, intervals, report  # noqa: E402
from vidgen.eval.contact_sheet import save_contact_sheet  # noqa: E402
from vidgen.generation import Settings, VideoGenerator  # noqa: E402

# The targets: the share of windows where each holds, over 60 s.
TARGETS = {'identity': 0.95, 'background': 0.95, 'bounce': 0.90, 'teleport': 0.95, 'permanence': 0.90}
ROWS = ('generated', 'real (ceiling)', 'independent windows (floor)')


def independent_windows(generator: VideoGenerator, prompts: Sequence[str], num_frames: int, s: Settings,
                        batch_size: int) -> np.ndarray:
  """Clips sampled from the text alone, each seeded anew, joined end to end (sharing no frame)."""
  parts, k = [], 0
  while sum(p.shape[1] for p in parts) < num_frames:
    ws = dataclasses.replace(s, seed=s.seed + 1000 + k)
    made = np.concatenate([generator.generate(prompts[i:i + batch_size], ws)
                           for i in range(0, len(prompts), batch_size)])
    parts.append(made if not parts else made[:, 1:])
    k += 1
  return np.concatenate(parts, axis=1)[:, :num_frames]


def evaluate_long(workdir: str, *, seconds: float = 60.0, num_videos: int = 16, first_video: int = 0,
                  split: str = 'eval', overlap: int = 1, settings: Settings = Settings(), batch_size: int = 16,
                  out_dir: str | None = None, floor: bool = True, verbose: bool = True,
                  generator: VideoGenerator | None = None) -> dict[str, Any]:
  """Generates `seconds` of video for world prompts first_video … + num_videos − 1 and scores its coherence."""
  if num_videos < 1 or first_video < 0:
    raise ValueError(f'Evaluation needs num_videos >= 1 and first_video >= 0; got {num_videos} and {first_video}.')
  start = time.time()
  log = print if verbose else (lambda *a, **k: None)
  generator = generator or VideoGenerator.from_workdir(workdir)
  config = generator.config
  fps, ft = float(config.data.fps), generator.vae.config.compression[0]
  num_frames = coherence.seconds_to_frames(seconds, fps, ft)
  s = generator.resolve(settings)
  out_dir = out_dir or os.path.join(workdir, 'evaluation', 'long')
  paths.makedirs(out_dir)
  spec = world.WorldSpec.from_config(config.data)
  indices = range(first_video, first_video + num_videos)
  real = [world.render_long(spec, split, config.seed, i, num_frames) for i in indices]
  prompts = [str(r['caption']) for r in real]
  log(f'[1/3] {num_videos} videos of {num_frames} frames ({(num_frames - 1) / fps:g} s; windows of {s.num_frames} '
      f'frames, overlap {overlap} latent frame(s))', flush=True)
  t = time.time()
  generated = np.concatenate([generator.long(prompts[i:i + batch_size], num_frames, s, overlap=overlap)
                              for i in range(0, num_videos, batch_size)])
  sample_seconds = time.time() - t
  videos = {'generated': generated, 'real (ceiling)': np.stack([r['frames'] for r in real])}
  if floor:
    log('[2/3] the floor: independent windows from the text', flush=True)
    videos['independent windows (floor)'] = independent_windows(generator, prompts, num_frames, s, batch_size)
  log('[3/3] probing each 2 s window', flush=True)
  summaries = {name: coherence.summarize([coherence.score_long_video(v, p, fps) for v, p in zip(vs, prompts)], fps)
               for name, vs in videos.items()}
  protocol = {'task': 'long', 'seconds': (num_frames - 1) / fps, 'num_frames': num_frames, 'num_videos': num_videos,
              'prompts': f'world {split} videos {first_video}..{first_video + num_videos - 1}, their captions',
              'overlap': overlap, 'window_frames': s.num_frames, 'seed': s.seed, 'sampler': s.sampler,
              'steps': s.steps, 'cfg_scale': s.cfg_scale, 'factorized': bool(s.factorized),
              'sample_seconds': round(sample_seconds, 1), 'workdir': paths.absolute(workdir)}
  results = {'protocol': protocol, 'targets': TARGETS,
             'rows': {name: coherence.to_json(sm) for name, sm in summaries.items()}}
  with paths.open_file(os.path.join(out_dir, 'metrics.json'), 'w') as f:
    json.dump(results, f, indent=2)
  coherence_plot(os.path.join(out_dir, 'coherence.png'), summaries)
  every = int(round(5 * fps))
  shown = min(4, num_videos)
  save_contact_sheet(os.path.join(out_dir, 'contact_sheet.png'),
                     [videos[n][i][::every] for i in range(shown) for n in videos],
                     [f'{n}: {prompts[i]}' for i in range(shown) for n in videos], frames_per_row=13)
  for i in range(shown):
    video_io.write_video(os.path.join(out_dir, f'{i:02d}.mp4'), generated[i], fps)
  with paths.open_file(os.path.join(out_dir, 'report.md'), 'w') as f:
    f.write(long_report(results))
  log(f'Done in {time.time() - start:.0f}s: {os.path.join(out_dir, "report.md")}', flush=True)
  return results


def long_report(results: dict[str, Any]) -> str:
  """report.md: the share of windows where each metric holds, per row, and where each curve breaks."""
  p = results['protocol']
  columns = {name: {m: intervals.Estimate.from_dict(e) for m, e in row['overall'].items()} for name, row in results['rows'].items()}
  table = report.estimate_table(columns, coherence.METRICS)
  lines = [f'# Long video: {p["seconds"]:g} s, {p["num_videos"]} prompts', '',
           'Share of 2-second windows where each holds (95% interval, resampling videos; n = windows judged):', '',
           table, '']
  gen = results['rows'].get('generated')
  if gen:
    lines.append('Where the generated curve first falls below its target (per-window share of videos):')
    lines.append('')
    for m, target in results['targets'].items():
      k = coherence.first_break([intervals.Estimate.from_dict(e) for e in gen['by_window'][m]], target)
      overall = gen['overall'][m]['value']
      status = 'no windows judged' if overall is None else (
          f'{overall:.3f} overall, target {target}: ' + ('never below' if k is None else
                                                         f'first below at {gen["time"][k]:g} s (window {k})'))
      lines.append(f'- {m}: {status}')
    lines.append('')
  lines += ['Metrics: ' + '; '.join(f'**{m}** {d}' for m, d in coherence.DESCRIPTIONS.items()) + '.', '',
            f'**How measured.** Prompts: {p["prompts"]}. {p["num_frames"]} frames at '
            f'{(p["num_frames"] - 1) / p["seconds"]:g} fps by windows of {p["window_frames"]} frames, each after the first '
            f'given the last {p["overlap"]} latent frame(s) of the one before; {p["sampler"]} sampler, {p["steps"]} '
            f'steps, guidance {p["cfg_scale"]}, seed {p["seed"]}; sampling took {p["sample_seconds"]:g} s. Real: the '
            'world scenes of those prompts run on for as long. Floor: clips sampled from the text alone, end to end. '
            'coherence.png plots each metric against time.', '']
  return '\n'.join(lines)


def coherence_plot(path: str, summaries: dict[str, dict[str, Any]]) -> str:
  """One panel per metric: the share of videos where it holds, per window, against time."""
  metrics = coherence.METRICS
  fig, axes = plt.subplots(2, 4, figsize=(16, 6.5), sharex=True)
  for ax, metric in zip(axes.flat, metrics):
    for name, sm in summaries.items():
      curve = sm['by_window'][metric]
      t = np.array(sm['time'])
      v = np.array([e.value if e.value is not None else np.nan for e in curve])
      lo = np.array([e.low if e.low is not None else np.nan for e in curve])
      hi = np.array([e.high if e.high is not None else np.nan for e in curve])
      ax.plot(t, v, '.-', label=name)
      ax.fill_between(t, lo, hi, alpha=0.15)
    if metric in TARGETS:
      ax.axhline(TARGETS[metric], color='grey', ls=':', lw=1)
    ax.set_title(metric, fontsize=10)
    ax.set_ylim(-0.02, 1.05)
    ax.grid(alpha=0.3)
  ax = axes.flat[-1]
  for name, sm in summaries.items():
    ax.plot(sm['time'], [np.nan if v is None else v for v in sm['largest_step']], '.-', label=name)
  ax.set_title('largest centre step (px, mean)', fontsize=10)
  ax.grid(alpha=0.3)
  for ax in axes[-1]:
    ax.set_xlabel('time (s)')
  axes.flat[0].legend(fontsize=7)
  fig.tight_layout()
  with paths.local_for_writing(path) as local:
    fig.savefig(local, dpi=100)
  plt.close(fig)
  return path
