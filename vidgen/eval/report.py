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
