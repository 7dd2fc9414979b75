"""vidgen.evaluate on a tiny trained run: the files it writes, a report that names every metric, comparisons."""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.video_folders import write_video_folder
from vidgen import config_lib, evaluate
from vidgen.eval import samples_report
from vidgen.generation import Settings
from vidgen.world import metrics as world_metrics

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def evaluation(tiny_dit_run, tmp_path_factory):
  out = str(tmp_path_factory.mktemp('evaluation'))
  features_dir = str(tmp_path_factory.mktemp('features'))
  results = evaluate.evaluate_run(
      tiny_dit_run, num_videos=2, first_video=1, settings=Settings(steps=2, seed=3), batch_size=2, out_dir=out,
      features_dir=features_dir, features_config=config_lib.load_config('experiments/configs/world_features.py:tiny'),
      verbose=False)
  return out, results


def test_writes_the_report_files(evaluation):
  out, _ = evaluation
  for name in ('metrics.json', 'report.md', 'metrics.png', 'loss_by_noise.png', 'training.png', 'contact_sheet.png',
               'features.npz', 'samples/00.mp4', 'samples/01.gif', 'samples/settings.json'):
    assert os.path.exists(os.path.join(out, name)), name


def test_prompts_are_the_captions_of_the_asked_range(evaluation, tiny_dit_run):
  out, results = evaluation
  config = config_lib.read_saved_config(tiny_dit_run)
  records = world_metrics.prompt_records(config.data, 'eval', config.seed, 2, start=1)
  sampled = json.load(open(os.path.join(out, 'samples', 'settings.json')))['prompts']
  assert sampled == [str(r['caption']) for r in records]
  assert results['protocol']['first_video'] == 1 and 'videos 1..2' in results['protocol']['prompts']
  with pytest.raises(ValueError, match='first_video >= 0'):
    evaluate.evaluate_run(tiny_dit_run, num_videos=2, first_video=-1)


def test_every_number_in_the_json_is_in_the_report_with_how_it_was_measured(evaluation):
  out, results = evaluation
  saved = json.load(open(os.path.join(out, 'metrics.json')))
  markdown = open(os.path.join(out, 'report.md')).read()
  table_rows = {line.split('|')[1].strip() for line in markdown.splitlines() if line.startswith('|')}
  header_cells = {c.strip() for line in markdown.splitlines() if line.startswith('|') for c in line.split('|')}
  for row in saved['rows'].values():
    assert row['label'] in header_cells
    assert set(row['metrics']) == set(m.name for m in world_metrics.METRICS)
    for name in row['metrics']:
      assert name in table_rows, name
  for name in saved['eval_loss']['losses']:
    assert name in header_cells, name
  assert 'loss_t0.05' in saved['eval_loss']['losses'] and 'loss_t0.95' in saved['eval_loss']['losses']
  p = saved['protocol']
  how = re.search(r'\*\*How measured\.\*\*(.*)', markdown).group(1)
  for text in (f'{p["num_videos"]} prompts', p['split'], f'{p["sampler"]} sampler', f'{p["steps"]} steps',
               f'guidance {p["cfg_scale"]}', f'seed {p["seed"]}', 'Intervals: 95%'):
    assert text in how, text
  assert p['steps'] == 2 and p['seed'] == 3 and p['checkpoint_step'] == 4
  assert saved['features']['sha256'][:12] in markdown
  assert saved['rows']['real']['metrics']['color']['value'] == 1.0  # real videos: the probe's truth


def test_reference_rows_and_fvd(evaluation):
  _, results = evaluation
  rows = results['rows']
  assert list(rows) == ['generated', 'real', 'vae_reconstruction', 'vae_noise']
  for row in rows.values():
    fvd = row['metrics']['fvd']
    assert fvd['value'] >= 0 and fvd['method'] == 'jackknife'  # 2 videos: too few for its interval


def test_compare_flags_runs_measured_differently(evaluation, tmp_path):
  out, _ = evaluation
  other = tmp_path / 'other'
  shutil.copytree(out, other)
  saved = json.load(open(other / 'metrics.json'))
  saved['protocol']['steps'] = 30
  saved['protocol']['factorized'] = True
  saved['protocol']['first_video'] = 128
  json.dump(saved, open(other / 'metrics.json', 'w'))
  markdown = evaluate.compare_runs([out, str(other)], str(tmp_path / 'cmp'))
  assert 'measured differently' in markdown and 'steps' in markdown and 'factorized (' in markdown
  assert 'first_video (' in markdown
  assert 'in two passes' in markdown  # the factorized run's how-measured line says so
  for name in ('comparison.md', 'comparison.json', 'comparison.png'):
    assert os.path.exists(tmp_path / 'cmp' / name)
  for metric in world_metrics.METRICS:
    assert f'| {metric.name} ' in markdown
  same = evaluate.compare_runs([out, out], str(tmp_path / 'same'))
  assert 'measured differently' not in same


def test_cli_compare_and_its_errors(evaluation, tmp_path):
  out, _ = evaluation
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  run = lambda *args: subprocess.run([sys.executable, '-m', 'vidgen.evaluate', *args], capture_output=True, text=True,
                                     env=env)
  ok = run('--compare', out, out, '--out', str(tmp_path / 'cmp'))
  assert ok.returncode == 0, ok.stderr
  assert '| adherence' in ok.stdout and os.path.exists(tmp_path / 'cmp' / 'comparison.md')
  one = run('--compare', out)
  assert one.returncode != 0 and 'at least two runs' in one.stderr
  with pytest.raises(FileNotFoundError, match='python -m vidgen.evaluate --workdir'):
    evaluate.compare_runs([out, str(tmp_path)], str(tmp_path / 'cmp2'))


# vidgen.evaluate --task: each video-prompting task scored with its reference rows.

TASK_METRICS = {
    'i2v': ('color', 'shape', 'direction'),
    'extend_forward': ('seam_position_error', 'direction_continued', 'new_frames_color'),
    'extend_backward': ('seam_position_error', 'direction_continued', 'new_frames_color'),
    'connect': ('seam_position_error', 'no_jump', 'new_frames_color'),
    'loop': ('seam_over_median_step', 'seamless'),
    'edit': ('new_color', 'position_kept_error', 'psnr_to_source'),
}


@pytest.fixture(scope='module')
def generator(tiny_dit_run):
  from vidgen.generation import VideoGenerator
  return VideoGenerator.from_workdir(tiny_dit_run)


@pytest.mark.parametrize('task', list(TASK_METRICS))
def test_each_task_writes_its_report_with_reference_rows(task, tiny_dit_run, generator, tmp_path):
  from vidgen.eval import prompting_report
  results = prompting_report.evaluate_task(tiny_dit_run, task, num_videos=2, settings=Settings(steps=1),
                                           batch_size=2, out_dir=str(tmp_path), strengths=(0.5, 1.0),
                                           verbose=False, generator=generator)
  rows = results['rows']
  if task == 'edit':
    assert list(rows) == ['strength 0.5', 'strength 1']
    assert os.path.exists(tmp_path / 'edit_sweep.png')
    assert rows['strength 0.5']['psnr_to_source']['value'] > rows['strength 1']['psnr_to_source']['value'] - 3
  elif task == 'loop':
    assert set(rows) == {'generated', 'real videos'}
    assert rows['real videos']['seam_over_median_step']['value'] > 1.0  # real clips do not loop
  else:
    assert set(rows) == {'generated', 'real videos', 'real through the VAE (ceiling)',
                         'given frames held still (floor)'}
  for metric in TASK_METRICS[task]:
    assert metric in rows[next(iter(rows))], metric
  if task.startswith('extend') or task == 'connect':
    real = rows['real videos']
    assert real['seam_position_error']['value'] < 1.0  # the probe reads the truth back within a pixel
  for name in ('metrics.json', 'report.md', 'contact_sheet.png'):
    assert os.path.exists(tmp_path / name), name
  report = open(tmp_path / 'report.md').read()
  assert report.startswith(f'# {task}') and 'How measured' in report
  given = results['protocol']['given_frames']
  assert given == {'i2v': [0], 'extend_forward': list(range(5)), 'extend_backward': list(range(1, 9)),
                   'connect': [0, 5, 6, 7, 8], 'loop': [], 'edit': []}[task]


def test_task_flag_errors():
  from vidgen.eval import prompting_report
  with pytest.raises(ValueError, match="--task 't2v': choose one of"):
    prompting_report.evaluate_task('unused', 't2v')


def test_long_task_writes_coherence_over_time_with_both_reference_curves(tiny_dit_run, generator, tmp_path):
  from vidgen.eval import coherence, long_report
  results = long_report.evaluate_long(tiny_dit_run, seconds=4, num_videos=2, settings=Settings(steps=1),
                                      batch_size=2, out_dir=str(tmp_path), verbose=False, generator=generator)
  assert results['protocol']['num_frames'] == 33 and results['protocol']['seconds'] == 4
  rows = results['rows']
  assert list(rows) == list(long_report.ROWS)
  for row in rows.values():
    assert set(row['overall']) == set(coherence.METRICS) and len(row['by_window']['holds']) == 2
  assert rows['real (ceiling)']['overall']['background']['value'] == 1.0  # (16×16: too small to read shapes)
  for name in ('metrics.json', 'report.md', 'coherence.png', 'contact_sheet.png', '00.mp4'):
    assert os.path.exists(tmp_path / name), name
  assert open(tmp_path / 'report.md').read().startswith('# Long video: 4 s, 2 prompts')


def test_long_task_cli_errors(tiny_dit_run):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  result = subprocess.run([sys.executable, '-m', 'vidgen.evaluate', '--workdir', tiny_dit_run, '--task', 'i2v',
                           '--seconds', '4'], capture_output=True, text=True, env=env)
  assert result.returncode != 0 and '--seconds goes with --task long' in result.stderr
  assert 'Traceback' not in result.stderr


def test_a_run_on_its_own_videos_is_evaluated_by_loss_and_samples(tiny_dit_run, tmp_path):
  run = tmp_path / 'my_dit'
  shutil.copytree(tiny_dit_run, run, ignore=shutil.ignore_patterns('evaluation', 'samples'))
  config = json.loads((run / 'config.json').read_text())
  config['data'].update(source='folder')
  config['data']['folder'].update(path=write_video_folder(tmp_path / 'train', 3),
                                  eval_path=write_video_folder(tmp_path / 'eval', 2))
  config['eval']['data_source'] = ''
  (run / 'config.json').write_text(json.dumps(config))
  assert not evaluate.on_world(str(run))
  results = samples_report.evaluate_samples(str(run), num_videos=2, settings=Settings(steps=1), batch_size=2,
                                            verbose=False)
  out = run / 'evaluation' / 'samples'
  assert results['protocol']['eval_data'] == f'held-out folder data at {tmp_path / "eval"}'
  assert results['prompts'] == ['a large red square number 0', 'a large red square number 1']
  assert np.isfinite(results['eval_loss']['losses']['loss']) and 'loss_t0.95' in results['eval_loss']['losses']
  assert sorted(os.listdir(out / 'samples'))[:2] == ['00.gif', '00.mp4'] and (out / 'samples' / 'contact_sheet.png').exists()
  markdown = (out / 'report.md').read_text()
  assert f'held-out folder data at {tmp_path / "eval"}' in markdown and 'No probe scores' in markdown
  result = subprocess.run([sys.executable, '-m', 'vidgen.evaluate', '--workdir', str(run), '--task', 'i2v'],
                          cwd=REPO, capture_output=True, text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert result.returncode == 1 and 'evaluated on its own data, not the world' in result.stderr
