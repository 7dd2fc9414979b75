"""Plots for evaluation reports (matplotlib, Agg backend: PNG files, no display needed)."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=g-import-not-at-top
import numpy as np  # noqa: E402

from vidgen import paths  # noqa: E402
from vidgen.eval import intervals  # noqa: E402


def _error_bars(estimates: Sequence[intervals.Estimate]) -> tuple[np.ndarray, np.ndarray]:
  values = np.array([e.value if e.value is not None else np.nan for e in estimates], np.float64)
  low = np.array([e.value - e.low if e.low is not None else 0.0 for e in estimates], np.float64)
  high = np.array([e.high - e.value if e.high is not None else 0.0 for e in estimates], np.float64)
  return values, np.stack([np.clip(low, 0, None), np.clip(high, 0, None)])


def metric_bars(path: str, rows: Mapping[str, Mapping[str, intervals.Estimate]], metrics: Sequence[str],
                title: str) -> str:
  """Grouped bars: one group per metric, one bar per row (video set or run), 95% intervals as whiskers."""
  fig, ax = plt.subplots(figsize=(min(16.0, 4.0 + 0.2 * len(metrics) * max(1, len(rows))), 4))
  width = 0.8 / max(1, len(rows))
  x = np.arange(len(metrics))
  for i, (name, row) in enumerate(rows.items()):
    values, err = _error_bars([row.get(m, intervals.Estimate.missing()) for m in metrics])
    ax.bar(x + (i - (len(rows) - 1) / 2) * width, np.nan_to_num(values), width, yerr=err, capsize=2, label=name)
  ax.set_xticks(x, metrics, rotation=30, ha='right')
  ax.set_ylabel('accuracy (95% interval)')
  ax.set_ylim(0, 1.05)
  ax.set_title(title, fontsize=10)
  ax.legend(fontsize=8, loc='upper left', bbox_to_anchor=(1.0, 1.0))
  fig.tight_layout()
  with paths.local_for_writing(path) as local:  # local or gs://
    fig.savefig(local, dpi=110)
  plt.close(fig)
  return path


def loss_by_noise(path: str, losses: Mapping[str, float], title: str) -> str:
  """Eval loss against noise level, from {'loss_t0.05': ..., ...}."""
  points = sorted((float(k[len('loss_t'):]), v) for k, v in losses.items() if k.startswith('loss_t'))
  fig, ax = plt.subplots(figsize=(6, 3.5))
  ax.plot([p[0] for p in points], [p[1] for p in points], 'o-')
  ax.set_xlabel('noise level t (0: clean, 1: pure noise)')
  ax.set_ylabel('eval loss')
  ax.set_title(title, fontsize=10)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  with paths.local_for_writing(path) as local:  # local or gs://
    fig.savefig(local, dpi=110)
  plt.close(fig)
  return path


def training_curves(path: str, rows: Sequence[Mapping[str, float]], title: str) -> str | None:
  """Eval loss and probe adherence over training steps from metrics.jsonl rows; None if nothing was logged."""
  loss = [(r['step'], r['eval/loss']) for r in rows if 'eval/loss' in r]
  probes = sorted({k for r in rows for k in r if k.startswith('eval/probe/')})
  if not loss and not probes:
    return None
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
  if loss:
    axes[0].plot(*zip(*loss), 'o-')
  axes[0].set_xlabel('training step')
  axes[0].set_ylabel('eval loss')
  axes[0].grid(alpha=0.3)
  for k in probes:
    points = [(r['step'], r[k]) for r in rows if k in r]
    axes[1].plot(*zip(*points), 'o-' if k.endswith('adherence') else '.--', label=k[len('eval/probe/'):],
                 linewidth=2.5 if k.endswith('adherence') else 1)
  axes[1].set_xlabel('training step')
  axes[1].set_ylabel('probe score')
  axes[1].set_ylim(-0.02, 1.02)
  axes[1].grid(alpha=0.3)
  if probes:
    axes[1].legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.0, 1.0))
  else:
    axes[1].text(0.5, 0.5, 'no probe evaluation during training\n(eval.num_videos = 0)', ha='center', va='center',
                 transform=axes[1].transAxes)
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  with paths.local_for_writing(path) as local:  # local or gs://
    fig.savefig(local, dpi=110)
  plt.close(fig)
  return path
