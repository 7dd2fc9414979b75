"""Every notebook in colab/ runs top to bottom, in a fresh kernel, on the parameters it ships (STYLE 10).

Each notebook has a cell tagged `parameters` whose CONFIG is a `:tiny` config; the test keeps it
and only points WORKDIR at a fresh temporary folder, so a run left in the notebook's default
WORKDIR (which the quickstart would resume) cannot change what the test runs.
"""

import glob
import os

import jax
import nbformat
import pytest
from nbclient import NotebookClient

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(REPO_ROOT, 'colab', '*.ipynb')))


def _parameters_cell(nb: nbformat.NotebookNode) -> int:
  tagged = [i for i, c in enumerate(nb.cells) if 'parameters' in c.get('metadata', {}).get('tags', [])]
  assert len(tagged) == 1, 'A notebook needs exactly one cell tagged "parameters" (CONFIG, WORKDIR).'
  return tagged[0]


def _kernel_env() -> dict[str, str]:
  """CPU only, and the test suite's compilation cache, so programs compiled by other tests are reused."""
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  if jax.config.jax_compilation_cache_dir:
    env['JAX_COMPILATION_CACHE_DIR'] = jax.config.jax_compilation_cache_dir
    env['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = str(jax.config.jax_persistent_cache_min_compile_time_secs)
  return env


def test_there_are_notebooks():
  assert NOTEBOOKS, 'colab/ has no notebooks.'


@pytest.mark.parametrize('path', NOTEBOOKS, ids=os.path.basename)
def test_notebook_runs(path, tmp_path):
  nb = nbformat.read(path, as_version=4)
  nbformat.validate(nb)
  assert not any(c.get('outputs') for c in nb.cells if c.cell_type == 'code'), 'Commit notebooks without outputs.'
  i = _parameters_cell(nb)
  assert ":tiny'" in nb.cells[i].source, 'The shipped CONFIG must be a :tiny config, so CI runs it quickly.'
  nb.cells.insert(i + 1, nbformat.v4.new_code_cell(f'WORKDIR = {str(tmp_path / "workdir")!r}  # injected by the test'))
  # The kernel starts in colab/, as Jupyter would start it for a notebook opened there; the
  # notebook's path cell moves to the repo root. 'python3' is the kernel ipykernel provides for
  # the interpreter running the tests.
  client = NotebookClient(nb, kernel_name='python3', timeout=900, startup_timeout=120,
                          resources={'metadata': {'path': os.path.dirname(path)}})
  client.execute(env=_kernel_env())  # raises CellExecutionError, with the cell and traceback, if any cell fails
