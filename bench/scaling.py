"""Data-parallel scaling: sentence pairs per second on 1, 2 and 4 contexts of one process, and
on 1 and 2 local ``dist_sync`` workers, with the efficiency against one context.

The chapter's pretraining configuration (vocabulary 20,256, 128 hidden, 256 FFN, 2 heads, 2
blocks, dropout 0.2, max_len 64, global batch 512) on synthetic batches, run by
``python -m gluonbert pretrain --synthetic`` in fresh processes: alone with
``--devices cpu:0,...`` (KVStore ``device``), or under ``python -m
gluonbert.distributed.launch -n N -s 1`` (KVStore ``dist_sync``, one server).

CPU contexts share the machine's cores, so splitting cannot speed up; what the efficiency
shows is what splitting costs. To measure that cost alone, every CPU run is confined to the
same cores (``--cores``, default core 0) with the same number of threads: OMP_NUM_THREADS is
the core count divided by the contexts (or the workers), at least 1. The first step (graph
construction) is left out; the rate is the batch over the median step time, the best of
``--repeats`` interleaved runs.

On a machine shared with other jobs the wall clock favours the runs with more processes or
threads (the kernel shares a busy core per thread), so the CPU time is measured too: the CPU
seconds of the whole process tree (workers, servers, scheduler, launcher) for ``--steps``
steps minus those of a one-step run of the same configuration, per timed step. Pairs per
CPU-second is what splitting costs, whatever else runs. ``--contexts gpu`` runs the same
configurations on ``gpu:0,gpu:1,...``, unconfined (the CPU measure is then not meaningful).

    python bench/scaling.py [--steps 6] [--batch-size 512] [--repeats 2] [--cores 0]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile

from harness import write_json

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRETRAIN = [sys.executable, '-m', 'gluonbert', 'pretrain', '--synthetic', '--log-every', '1000']
LAUNCH = [sys.executable, '-m', 'gluonbert.distributed.launch', '--timeout', '1800']


def contexts(kind, count):
    return ','.join(f'{kind}:{i}' for i in range(count))


def runs(kind):
    """``{name: (command prefix, contexts, workers)}``: every configuration measured."""
    table = {f'{n} context{"s" if n > 1 else ""}': ([], contexts(kind, n), 1)
             for n in (1, 2, 4)}
    for workers in (1, 2):
        # One device per worker: worker i of a GPU machine would take gpu:i
        table[f'{workers} dist_sync worker{"s" if workers > 1 else ""}'] = (
            LAUNCH + ['-n', str(workers), '-s', '1', '--'], contexts(kind, 1), workers)
    return table


def confinement(cores, parallel):
    """``(preexec_fn, env)`` running a process on ``cores`` with a thread budget of one per
    core shared by ``parallel`` contexts (the launcher divides by its workers itself)."""
    if cores is None:
        return None, dict(os.environ)
    env = dict(os.environ, OMP_NUM_THREADS=str(max(1, len(cores) // parallel)))
    return (lambda: os.sched_setaffinity(0, cores)), env


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(prefix, device_list, workers, steps, batch_size, cores):
    """The rank-0 summary of one run, with the CPU seconds of its whole process tree."""
    parallel = 1 if workers > 1 else len(device_list.split(','))
    preexec, env = confinement(cores, parallel)
    if workers > 1:
        env.pop('OMP_NUM_THREADS', None)
    with tempfile.TemporaryDirectory() as folder:
        summary = os.path.join(folder, 'summary.json')
        command = prefix + PRETRAIN + ['--devices', device_list, '--steps', str(steps),
                                       '--batch-size', str(batch_size), '--summary', summary,
                                       '--checkpoint-dir', os.path.join(folder, 'checkpoints'),
                                       '--checkpoint-every', '0']
        before = children_cpu_seconds()
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env,
                              preexec_fn=preexec)
        cpu_seconds = children_cpu_seconds() - before
        if done.returncode != 0:
            raise RuntimeError(f'{" ".join(command)} failed:\n{done.stdout}\n{done.stderr}')
        with open(summary) as f:
            return dict(json.load(f), cpu_seconds=cpu_seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--steps', type=int, default=6, help='at least 2')
    parser.add_argument('--batch-size', type=int, default=512)
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument('--contexts', choices=['cpu', 'gpu'], default='cpu')
    parser.add_argument('--cores', default='0',
                        help='cpu: comma-separated cores every run is confined to, or "all"')
    opts = parser.parse_args()
    cores = None
    if opts.contexts == 'cpu':
        cores = (sorted(os.sched_getaffinity(0)) if opts.cores == 'all'
                 else [int(core) for core in opts.cores.split(',')])
    results = {}
    for repeat in range(opts.repeats):
        for name, (prefix, device_list, workers) in runs(opts.contexts).items():
            one_step = measure(prefix, device_list, workers, 1, opts.batch_size, cores)
            summary = measure(prefix, device_list, workers, opts.steps, opts.batch_size, cores)
            cpu_per_step = (summary['cpu_seconds'] - one_step['cpu_seconds']) / (opts.steps - 1)
            row = dict(contexts=device_list, workers=workers,
                       median_step_seconds=summary['median_step_seconds'],
                       samples_per_sec=summary['samples_per_sec'],
                       cpu_seconds_per_step=cpu_per_step,
                       samples_per_cpu_second=opts.batch_size / cpu_per_step,
                       step_seconds=summary['step_seconds'])
            print(f'{name} (run {repeat + 1}): {row["samples_per_sec"]:.1f} pairs/s, '
                  f'{row["samples_per_cpu_second"]:.1f} pairs/CPU-s', flush=True)
            best = results.setdefault(name, row)
            for key in ('samples_per_sec', 'samples_per_cpu_second'):
                best[key] = max(best[key], row[key])
            best['median_step_seconds'] = opts.batch_size / best['samples_per_sec']
            best['cpu_seconds_per_step'] = opts.batch_size / best['samples_per_cpu_second']
    base = results['1 context']
    for row in results.values():
        row['efficiency'] = row['samples_per_sec'] / base['samples_per_sec']
        row['cpu_efficiency'] = row['samples_per_cpu_second'] / base['samples_per_cpu_second']
    where = f'cores {cores}' if cores is not None else 'GPUs'
    print(f'\nData-parallel scaling: chapter pretraining config, global batch '
          f'{opts.batch_size}, {opts.steps} steps (first left out), best of {opts.repeats}, '
          f'{where}')
    print(f'{"run":<22}{"step (s)":>9}{"pairs/s":>9}{"vs 1 ctx":>10}{"CPU-s/step":>12}'
          f'{"pairs/CPU-s":>13}{"vs 1 ctx":>10}')
    for name, row in results.items():
        print(f'{name:<22}{row["median_step_seconds"]:>9.3f}{row["samples_per_sec"]:>9.1f}'
              f'{row["efficiency"]:>9.2f}x{row["cpu_seconds_per_step"]:>12.3f}'
              f'{row["samples_per_cpu_second"]:>13.1f}{row["cpu_efficiency"]:>9.2f}x')
    write_json('scaling.json', dict(config='chapter pretraining (vocab 20256, 128 hidden, '
                                           '256 FFN, 2 heads, 2 blocks, dropout 0.2, max_len 64)',
                                    batch_size=opts.batch_size, steps=opts.steps,
                                    repeats=opts.repeats, cores=cores,
                                    python=sys.version.split()[0], results=results))


if __name__ == '__main__':
    main()
