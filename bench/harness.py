"""What every benchmark shares: runs in fresh processes, min/median/max, a table, JSON.

A benchmark script calls ``fresh_runs`` to run one of its own workers (``--worker NAME``) in
new Python processes, since MXNet fixes its thread settings at import; each worker prints one
JSON object as its last line.
"""
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')


def fresh_runs(script, worker, args=(), repeats=3, env=None):
    """The JSON results of ``repeats`` fresh runs of ``script --worker worker *args``."""
    results = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, script, '--worker', worker, *map(str, args)],
                             check=True, capture_output=True, text=True,
                             env=None if env is None else dict(os.environ, **env)).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def worker_result(times, warmup, **extra):
    """The last line a worker prints: the median of ``times`` after ``warmup``, peak RSS and
    any ``extra`` values."""
    if len(times) <= warmup:
        raise SystemExit(f'{len(times)} timed steps, {warmup} of them warm-up: run more steps')
    print(json.dumps(dict(seconds=statistics.median(times[warmup:]), rss=peak_rss_mib(),
                          **extra)))


# The environment variable that tells a gluonbert worker to run under AMP (``start_amp``)
AMP_VARIABLE = 'GLUONBERT_BENCH_AMP'
OURS = 'gluonbert (defaults)'


def d2l_and_gluonbert(amp=None):
    """The usual comparison: d2l as users run it, d2l with OMP_NUM_THREADS set to the core
    count, gluonbert with its defaults and, with ``amp``, gluonbert under AMP beside it (see
    ``add_amp_option``). ``{name: (worker, extra environment)}``."""
    cores = str(len(os.sched_getaffinity(0)))
    runs = {'d2l (defaults)': ('d2l', None),
            f'd2l (OMP_NUM_THREADS={cores})': ('d2l', {'OMP_NUM_THREADS': cores}),
            OURS: ('gluonbert', None)}
    if amp:
        runs[amp_row(amp)] = ('gluonbert', amp_environment(amp))
    return runs


def add_hf_row(runs, no_torch):
    """Put HF transformers' row (``'hf'`` worker, in ``bench/.venv-torch``) into ``runs``
    before gluonbert's rows, which stay last; returns why it was skipped, or None."""
    import torch_env
    ours = {name: run for name, run in runs.items() if run[0] == 'gluonbert'}
    for name in ours:
        del runs[name]
    skipped = '--no-torch' if no_torch else None
    if not no_torch:
        try:
            torch_env.torch_python()
            runs['hf transformers (torch)'] = ('hf', None)
        except RuntimeError as e:
            skipped = str(e)
    if skipped:
        print(f'hf transformers (torch) skipped: {skipped}')
    runs.update(ours)
    return skipped


def hf_bert_config(c, **options):
    """HF's ``BertConfig`` of the bench config ``c`` (d2l's sizes, ReLU FFN, its dropout);
    ``options`` such as ``num_labels`` go to ``BertConfig`` too. Runs in the torch venv."""
    from transformers import BertConfig
    return BertConfig(vocab_size=c['vocab_size'], hidden_size=c['num_hiddens'],
                      num_hidden_layers=c['num_blks'], num_attention_heads=c['num_heads'],
                      intermediate_size=c['ffn_num_hiddens'], hidden_act='relu',
                      hidden_dropout_prob=c['dropout'], attention_probs_dropout_prob=c['dropout'],
                      max_position_embeddings=c['max_len'], type_vocab_size=2, **options)


def amp_row(amp):
    return f'gluonbert ({amp} AMP)'


def add_amp_option(parser):
    parser.add_argument('--amp', choices=['bfloat16'],
                        help="add a row of gluonbert under bfloat16 AMP (oneDNN; needs "
                             "AVX-512) beside its float32 row; the others stay float32")


def check_amp(parser, amp):
    """Exit with status 2 and the reason when AMP in ``amp`` cannot run here. Asked in a fresh
    process: importing gluonbert here would hand its thread settings to every worker."""
    if not amp:
        return
    why = subprocess.run(
        [sys.executable, '-c', 'from gluonbert.train.mixed_precision import '
         'cpu_bfloat16_support as s; print(s()[1])'],
        check=True, capture_output=True, text=True).stdout.strip()
    if why:
        parser.exit(2, f'{parser.prog}: --amp={amp} is not available: {why}\n')


def amp_environment(amp):
    """The environment of a gluonbert worker under AMP in ``amp`` (None: float32)."""
    return {AMP_VARIABLE: amp} if amp else {}


def start_amp():
    """In a gluonbert worker, before its model is built: AMP as its row asks (``AMP_VARIABLE``;
    unset: float32)."""
    amp = os.environ.get(AMP_VARIABLE)
    if amp:
        from gluonbert.train import mixed_precision
        mixed_precision.enable(amp)


def compare(script, runs, args, repeats, items, rate_name):
    """Run each of ``runs`` (``{name: (worker, env)}``) ``repeats`` times in fresh processes;
    rows of time summaries, ``rate_name`` (``items`` per median time) and peak RSS."""
    rows = {}
    for name, (worker, env) in runs.items():
        results = fresh_runs(script, worker, args, repeats, env)
        times = [r['seconds'] for r in results]
        rows[name] = dict(summary(times), **{rate_name: items / statistics.median(times)},
                          peak_rss_mib=max(r['rss'] for r in results))
    return rows


def summary(values):
    return dict(min=min(values), median=statistics.median(values), max=max(values))


def peak_rss_mib():
    """This process's peak resident memory in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_speedups(rows, amp):
    """gluonbert's speed-up over every other row, and AMP's over float32; ``{name: ratio}``."""
    others = [name for name in rows if not name.startswith('gluonbert')]
    speedups = {name: rows[name]['median'] / rows[OURS]['median'] for name in others}
    for name, ratio in speedups.items():
        print(f'gluonbert speed-up over {name}: {ratio:.2f}x')
    if amp:
        ratio = rows[OURS]['median'] / rows[amp_row(amp)]['median']
        speedups[f'{amp} AMP over float32'] = ratio
        print(f'gluonbert under {amp} AMP: {ratio:.2f}x its float32 step, peak RSS '
              f'{rows[amp_row(amp)]["peak_rss_mib"]:.0f} vs {rows[OURS]["peak_rss_mib"]:.0f} MiB')
    return speedups


def print_table(title, rows, baseline, unit='s', extra=()):
    """``rows``: {name: summary dict (+ extra keys)}; ratios are baseline median / median."""
    print(title)
    width = max(26, *(len(name) + 2 for name in rows))
    header = f'{"run":<{width}}{"min":>9}{"median":>9}{"max":>9}{"speed-up":>10}'
    widths = [max(14, len(name) + 2) for name in extra]
    header += ''.join(f'{name:>{w}}' for name, w in zip(extra, widths))
    print(header + f'   ({unit})')
    base = rows[baseline]['median']
    for name, row in rows.items():
        line = (f'{name:<{width}}{row["min"]:>9.4f}{row["median"]:>9.4f}{row["max"]:>9.4f}'
                f'{base / row["median"]:>9.2f}x')
        line += ''.join(f'{row[key]:>{w}.1f}' for key, w in zip(extra, widths))
        print(line)


def ratio_table(title, rows, baseline, columns):
    """``title``, then a line per row of ``rows`` ({name: dict with ``examples_per_sec``}):
    its examples/s, their ratio to the ``baseline`` row's ('-' without one), then
    ``columns``, each ``(header, key, width, format)`` (``format``: '.0f', '' for text)."""
    lines = [title, f'{"run":<20}{"examples/s":>12}{"x " + baseline:>11}' +
             ''.join(f'{header:>{width}}' for header, _, width, _ in columns)]
    base = rows.get(baseline, {}).get('examples_per_sec')
    for name, row in rows.items():
        ratio = f'{row["examples_per_sec"] / base:.2f}x' if base else '-'
        lines.append(f'{name:<20}{row["examples_per_sec"]:>12.1f}{ratio:>11}' +
                     ''.join(f'{row[key]:>{width}{form}}' for _, key, width, form in columns))
    return '\n'.join(lines)


def gluonbert_command(*args, env=None):
    """Run ``python -m gluonbert ARGS`` from the repository root, as a user would;
    ``(stdout, seconds, peak RSS in MiB)``. Raises RuntimeError with its error on failure."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryFile('w+') as out, tempfile.TemporaryFile('w+') as err:
        start = time.perf_counter()
        process = subprocess.Popen([sys.executable, '-m', 'gluonbert', *map(str, args)],
                                   cwd=root, stdout=out, stderr=err, text=True,
                                   env=dict(os.environ, PYTHONPATH=root, **(env or {})))
        _, status, usage = os.wait4(process.pid, 0)  # the rusage of this process alone
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode:
        raise RuntimeError(f'gluonbert {args[0]} failed: {stderr.strip()[-800:]}')
    return stdout, seconds, usage.ru_maxrss / 1024


def write_json(name, payload):
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, name)
    with open(path, 'w') as f:
        json.dump(payload, f, indent=1)
    print(f'wrote {path}')
