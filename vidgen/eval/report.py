"""Tables of metrics that read well in a terminal and in markdown."""

from __future__ import annotations

from typing import Any, Mapping, Sequence


def format_value(value: Any) -> str:
  if value is None:
    return '–'
  if isinstance(value, float):
    return f'{value:.3f}' if abs(value) < 100 else f'{value:.1f}'
  return str(value)


def markdown_table(rows: Mapping[str, Mapping[str, Any]], columns: Sequence[str],
                   row_header: str = '') -> str:
  """A markdown table: one row per entry of `rows`, one column per name in `columns`."""
  header = [row_header] + list(columns)
  body = [[name] + [format_value(metrics.get(c)) for c in columns] for name, metrics in rows.items()]
  widths = [max(len(str(r[i])) for r in [header] + body) for i in range(len(header))]
  line = lambda cells: '| ' + ' | '.join(str(c).ljust(w) for c, w in zip(cells, widths)) + ' |'
  return '\n'.join([line(header), '|' + '|'.join('-' * (w + 2) for w in widths) + '|'] + [line(r) for r in body])


def format_estimate(estimate: Any, with_n: bool = True) -> str:
  """'0.625 [0.503, 0.734] (64)': value, 95% interval, and how many things were scored; '–' if not measured."""
  if estimate is None or estimate.value is None:
    return '–'
  text = format_value(float(estimate.value))
  if estimate.low is not None and estimate.high is not None:
    text += f' [{format_value(float(estimate.low))}, {format_value(float(estimate.high))}]'
  if with_n:
    text += f' ({estimate.n})'
  return text


def estimate_table(columns: Mapping[str, Mapping[str, Any]], metrics: Sequence[str],
                   extra: Mapping[str, Sequence[str]] | None = None, row_header: str = 'metric') -> str:
  """A markdown table with one row per metric and one column per set of estimates.

  `extra` adds plain columns (e.g. {'what it measures': [...]}) with one entry per metric.
  """
  extra = extra or {}
  rows = {}
  for i, m in enumerate(metrics):
    rows[m] = {name: format_estimate(col.get(m)) for name, col in columns.items()}
    rows[m].update({name: values[i] for name, values in extra.items()})
  return markdown_table(rows, list(columns) + list(extra), row_header=row_header)
