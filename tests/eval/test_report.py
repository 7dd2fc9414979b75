"""Metric tables."""

from vidgen.eval import report


def test_markdown_table_lines_up_and_marks_missing_values():
  table = report.markdown_table({'real': {'color': 1.0, 'shape': 0.9876}, 'noise': {'color': 0.0}},
                                ['color', 'shape'], row_header='videos')
  lines = table.splitlines()
  assert lines[0].split('|')[1].strip() == 'videos'
  assert '0.988' in lines[2] and '–' in lines[3]
  assert len({len(line) for line in lines}) == 1
