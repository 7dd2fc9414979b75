"""DiT training-step speed: step time, tokens/s, model FLOPs, achieved FLOP/s and MFU on this machine.

  python experiments/benchmarks/dit_step.py [--sizes S,B] [--tokens 64,256] [--tokens_per_step 2048] \
      [--scan] [--repeats 3] [--torch]

MFU is measured against a matmul peak the script measures on the same machine: the best float32
GFLOP/s of square matmuls, measured before and after the cases (and by PyTorch with --torch).
Each measurement is a floor under what this CPU can do, so the highest counts; on a shared VM
they moved by 20% within minutes. MFU says how much of that the DiT step uses. Model FLOPs are
analytic (`vidgen.models.flops.flops_per_step`: 3 × forward matmul FLOPs, attention included). The batch is `tokens_per_step / tokens` (2,048 tokens fill this 2-core
CPU: more runs slower per token). The step is the trainer's: AdamW, params and optimizer state
donated. Blocks run as a Python loop unless --scan (`nn.scan`, the TPU choice: on a CPU the
scanned loop measured 3-20% slower).

Each case runs with XLA's memory-optimized CPU scheduler (`--xla_scheduler memory`, the default
here; `default` measures XLA's own choice). It is an XLA_FLAGS setting, so the trainer runs
without it unless you set it: XLA_FLAGS=--xla_cpu_scheduler_type=CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED.
It ran fewer ops side by side and the B/2 step 3-5% faster; the quickstart's small DiT gained nothing.

Each case (and the PyTorch reference) keeps freed host memory for reuse, as vidgen's entrypoints
do (`vidgen/host_memory.py`: XLA's 3.3 GB temporary buffer of a B/2 step is otherwise faulted in
afresh every step); `--host_malloc system` measures glibc's defaults.

--torch runs the same network and step in PyTorch (`torch_dit_reference.py`, eager) right after
each case and adds its step time and MFU against the same peak: the kind of reference the MFU
goal was set from, on this machine, a minute apart. The peak differs between machines (AVX-512
or not), so the two step times side by side say more than either MFU alone.

Then where the time goes: one step traced with the JAX profiler, XLA's ops summed by kind
(matmuls, attention's batched matmuls, elementwise, layout copies, the optimizer). XLA runs
independent ops side by side, which adds op time; Eigen matmuls (XLA's non-YNNPACK dots, such
as the dense layers' weight gradients) go on working after their traced op ends, which hides
some. So the op times need not add up to the step.

Last, the dots' floor: every dot_general of the step (`flops.dot_generals`: read from its jaxpr,
a scan's body counted once per layer) compiled and timed alone, times how often it runs. Their
FLOPs are the model FLOPs, so the MFU of that time is what a step of nothing but XLA's matmuls
would reach here; the step's time beyond it is the elementwise work, the optimizer and the
matmuls' slowdown in the step.
The floor is timed after the step, a minute or two later: on a VM whose speed moves by 20% within
minutes the difference can come out negative.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

from vidgen import host_memory  # noqa: E402
from vidgen.models import dit as dit_lib  # noqa: E402
from vidgen.models import flops as flops_lib  # noqa: E402

TEXT_LEN = 16
SCHEDULER_FLAGS = {'memory': '--xla_cpu_scheduler_type=CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED', 'default': ''}


def best_time(fn, *args, repeats: int = 5) -> float:
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return min(times)


def matmul_peak() -> float:
  """Best float32 FLOP/s of square matmuls on this machine."""
  best = 0.0
  for n in (512, 1024, 2048):
    a = jax.random.normal(jax.random.key(0), (n, n))
    f = jax.jit(lambda a: a @ a)
    best = max(best, 2 * n ** 3 / best_time(f, a, repeats=10))
  return best


def latent_grid(tokens: int, patch=(1, 2, 2)) -> tuple[int, int, int]:
  """A (T, H, W) latent grid with `tokens` tokens: 4 latent frames, square frames."""
  frames = 4 if tokens >= 16 else 1
  side = int(round((tokens / frames) ** 0.5))
  return frames * patch[0], side * patch[1], side * patch[2]


def train_step_fn(model, optimizer):
  def loss_fn(params, x, t, text, text_mask):
    return jnp.mean((model.apply({'params': params}, x, t, text, text_mask) - x) ** 2)

  def step(params, opt_state, x, t, text, text_mask):
    grads = jax.grad(loss_fn)(params, x, t, text, text_mask)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state
  return jax.jit(step, donate_argnums=(0, 1))  # as the trainer does: updated in place


OP_KINDS = ('matmuls (projections, MLP, adaLN)', 'attention scores and mixing (batched matmuls)',
            'elementwise (norms, GELU, softmax, RoPE, modulation, residuals)', 'layout copies and transposes',
            'optimizer (AdamW) and gradient sums')


def op_kind(fusion: str, op_name: str) -> str:
  """Which of OP_KINDS an XLA op (its fusion name and the op_name JAX gave it) belongs to."""
  if 'jvp(' not in op_name:  # outside the model's forward and backward
    return OP_KINDS[4]
  if fusion.startswith(('ynn_fusion', 'dot', 'xnn_fusion', 'onednn')):
    return OP_KINDS[1] if re.search(r'b[a-z]*h[a-z]*,b[a-z]*->', op_name) else OP_KINDS[0]
  if fusion.startswith(('copy', 'transpose')):
    return OP_KINDS[3]
  return OP_KINDS[2]


def dots_alone(step, args: tuple) -> tuple[float, float]:
  """(seconds, FLOPs) of the step's dot_generals, each compiled and timed alone on this machine.

  A floor under the step's time with the same matmul library: what is left of the step beyond
  it is the elementwise work, the optimizer and the matmuls' own slowdown inside the step."""
  seconds = flops = 0.0
  for (lhs_shape, rhs_shape, dtype, dims, result_dtype), count in flops_lib.dot_generals(step, *args).items():
    lhs = jax.random.normal(jax.random.key(0), lhs_shape, dtype)
    rhs = jax.random.normal(jax.random.key(1), rhs_shape, dtype)
    dot = jax.jit(lambda a, b, dims=dims, result_dtype=result_dtype: jax.lax.dot_general(
        a, b, dims, preferred_element_type=result_dtype))
    seconds += count * best_time(dot, lhs, rhs)
    flops += count * flops_lib.dot_general_flops(lhs_shape, rhs_shape, dims)
  return seconds, float(flops)


def profile(step, args: tuple, hlo_text: str) -> dict[str, float]:
  """Seconds of XLA op time per kind in one traced step (ops that overlap both count)."""
  op_names = dict(re.findall(r'%([\w.-]+) = .*?op_name="([^"]*)"', hlo_text))
  with tempfile.TemporaryDirectory() as logdir:
    jax.profiler.start_trace(logdir)
    jax.block_until_ready(step(*args))
    jax.profiler.stop_trace()
    traces = glob.glob(os.path.join(logdir, '**', '*.trace.json.gz'), recursive=True)
    if not traces:
      raise RuntimeError(f'The JAX profiler wrote no trace under {logdir}.')
    with gzip.open(traces[0]) as f:
      events = json.load(f)['traceEvents']
  seconds = collections.Counter()
  for event in events:
    name = event.get('name', '')
    if event.get('ph') == 'X' and name in op_names:
      seconds[op_kind(name, op_names[name])] += event['dur'] / 1e6
  return {kind: seconds[kind] for kind in OP_KINDS}


def run_case(size: str, tokens: int, tokens_per_step: int, scan: bool, repeats: int) -> dict:
  """Times and profiles one DiT train step; returns its row."""
  batch = max(1, tokens_per_step // tokens)
  config = dit_lib.DiTConfig(size=size, patch=(1, 2, 2), latent_channels=4, text_width=256, scan_layers=scan)
  model = dit_lib.DiT(config)
  t_, h, w = latent_grid(tokens)
  inputs = dit_lib.example_inputs(config, batch=batch, num_frames=t_, height=h, width=w, text_len=TEXT_LEN)
  params = nn.unbox(model.init(jax.random.key(0), inputs['x'][:1], inputs['t'][:1], inputs['text'][:1],
                               inputs['text_mask'][:1]))['params']
  num_params = dit_lib.count_params(params)
  optimizer = optax.adamw(1e-4)
  state = (params, optimizer.init(params))
  step = train_step_fn(model, optimizer)
  x = jax.random.normal(jax.random.key(1), inputs['x'].shape)
  data = (x, inputs['t'], inputs['text'], inputs['text_mask'])
  state = step(*state, *data)  # compiles
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    state = jax.block_until_ready(step(*state, *data))
    times.append(time.perf_counter() - start)
  hlo = step.lower(*state, *data).compile().as_text()
  dot_seconds, dot_flops = dots_alone(step, (*state, *data))
  return dict(name=f'{size}/2 ({num_params / 1e6:.0f}M)', tokens=config.num_tokens(t_, h, w), batch=batch,
              seconds=min(times), flops=flops_lib.flops_per_step(config, batch, t_, h, w, TEXT_LEN),
              parts=profile(step, (*state, *data), hlo), dot_seconds=dot_seconds, dot_flops=dot_flops)


def run_torch_reference(size: str, tokens: str, tokens_per_step: int, repeats: int) -> dict:
  """The same step in PyTorch, in a fresh process (`torch_dit_reference.py`); its row."""
  script = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'torch_dit_reference.py')
  command = [sys.executable, script, '--case', f'{size}:{tokens}', '--tokens_per_step', str(tokens_per_step),
             '--repeats', str(repeats)]
  done = subprocess.run(command, capture_output=True, text=True)
  if done.returncode:
    raise SystemExit(f'The PyTorch reference failed (--torch needs `pip install torch`):\n{done.stderr[-2000:]}')
  return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--sizes', default='S,B')
  parser.add_argument('--tokens', default='64,256')
  parser.add_argument('--tokens_per_step', type=int, default=2048, help='batch = tokens_per_step / tokens')
  parser.add_argument('--scan', action='store_true', help='nn.scan over blocks (default: a Python loop)')
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--xla_scheduler', choices=sorted(SCHEDULER_FLAGS), default='memory',
                      help="XLA's CPU scheduler for the cases (memory: memory-optimized; default: XLA's own)")
  parser.add_argument('--host_malloc', choices=('reuse', 'system'), default='reuse',
                      help="reuse: freed host memory kept, as vidgen's entrypoints run (vidgen/host_memory.py); "
                           "system: glibc's defaults. The PyTorch reference runs the same way")
  parser.add_argument('--torch', action='store_true',
                      help='after each case, time the same step in PyTorch (torch_dit_reference.py; needs torch)')
  parser.add_argument('--case', help=argparse.SUPPRESS)  # SIZE:TOKENS, run in a fresh process by main
  args = parser.parse_args()
  if args.case:
    host_memory.keep_freed_memory()  # as the trainer does (VIDGEN_HOST_MALLOC, set by the parent, decides)
    size, tokens = args.case.split(':')
    print(json.dumps(run_case(size, int(tokens), args.tokens_per_step, args.scan, args.repeats)))
    return

  peaks = [matmul_peak()]
  os.environ[host_memory.ENV_VAR] = args.host_malloc  # for the cases and the PyTorch reference
  env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} {SCHEDULER_FLAGS[args.xla_scheduler]}".strip())
  rows, torch_rows = [], []
  for size in args.sizes.split(','):
    for tokens in args.tokens.split(','):
      # A fresh process per case: one run after another in the same process ran up to 10% slower.
      command = [sys.executable, os.path.abspath(__file__), '--case', f'{size}:{tokens}', '--repeats',
                 str(args.repeats), '--tokens_per_step', str(args.tokens_per_step)] + (['--scan'] if args.scan else [])
      out = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
      rows.append(json.loads(out.strip().splitlines()[-1]))
      print(f'{size}/2 at {tokens} tokens: step {rows[-1]["seconds"]:.3f} s', file=sys.stderr, flush=True)
      if args.torch:  # right after the JAX case, so both see the machine in the same state
        torch_rows.append(run_torch_reference(size, tokens, args.tokens_per_step, args.repeats))
        peaks.append(torch_rows[-1]['torch_peak'])
  peaks.append(matmul_peak())
  # Every peak measured is a floor under what this CPU can do: MFU is against the highest.
  peak = max(peaks)

  print(f'{os.cpu_count()} CPUs; jax {jax.__version__}; float32 matmul peak {peak / 1e9:.1f} GFLOP/s (the best of '
        f'{", ".join(f"{p / 1e9:.1f}" for p in peaks)} measured before, {"between, " if args.torch else ""}and after '
        f'the cases); blocks {"scanned" if args.scan else "in a Python loop"}; {args.xla_scheduler} XLA scheduler; '
        f'host malloc: {args.host_malloc}; each case in a fresh process\n')
  print('| DiT | tokens | batch | step s | tokens/s | model GFLOP/step | GFLOP/s | MFU |' +
        (' PyTorch step s | PyTorch MFU |' if args.torch else ''))
  print('|---|---|---|---|---|---|---|---|' + '---|---|' * args.torch)
  for i, row in enumerate(rows):
    rate = row['flops'] / row['seconds']
    line = (f"| {row['name']} | {row['tokens']} | {row['batch']} | {row['seconds']:.3f} | "
            f"{row['batch'] * row['tokens'] / row['seconds']:.0f} | {row['flops'] / 1e9:.1f} | {rate / 1e9:.1f} | "
            f'{rate / peak:.0%} |')
    if torch_rows:
      ref = torch_rows[i]
      line += f" {ref['seconds']:.3f} | {ref['flops'] / ref['seconds'] / peak:.0%} |"
    print(line)
  if torch_rows:
    ref = torch_rows[0]
    print(f"\nPyTorch {ref['torch']} ({ref['threads']} threads, eager, torch_dit_reference.py): the same network "
          'and step, run after each case; its square-matmul peaks are among those above.')
  print('\nWhere the time goes (XLA op time per kind in one traced step, share of all op time):\n')
  for row in rows:
    parts = row['parts']
    total = sum(parts.values())
    shown = '; '.join(f'{k} {v / total:.0%}' for k, v in parts.items())
    print(f"- {row['name'].split()[0]}, {row['tokens']} tokens × {row['batch']}: step {row['seconds'] * 1000:.0f} ms, "
          f'op time {total * 1000:.0f} ms: {shown}')
  print("\nThe dots' floor (each of the step's dot_generals compiled and timed alone, times how often it runs; "
        'a step of nothing else would reach the MFU shown):\n')
  for row in rows:
    dots = row['dot_seconds']
    print(f"- {row['name'].split()[0]}, {row['tokens']} tokens: dots alone {dots:.3f} s "
          f"({row['dot_flops'] / dots / 1e9:.1f} GFLOP/s, {row['flops'] / dots / peak:.0%} MFU); "
          f"the step {row['seconds']:.3f} s ({row['seconds'] - dots:+.3f} s)")


if __name__ == '__main__':
  main()
