"""Where a training step's time goes: MXNet's operator profile, grouped and per step.

MXNet runs a hybridized graph in bulk segments, which the profiler reports as one entry;
``MXNET_EXEC_BULK_EXEC_TRAIN=0`` (set by the caller before MXNet is imported) makes it time
every operator. Used by the benchmarks' ``--profile`` option.
"""
import json
import os
import re
import tempfile

# Profiler entries that are waiting or set-up, not computation
NOT_OPERATORS = {'WaitForVar', 'ResourceParallelRandomSetSeed'}

# Operator name patterns, first match wins; the rest is "other"
GROUPS = (('dense layers (oneDNN GEMM)', r'FullyConnected|gb_dense'),
          ('fused attention (gb_attention, all of it)', r'gb_attention'),
          ('attention matmuls', r'interleaved_matmul|batch_dot'),
          ('LayerNorm', r'LayerNorm|layer_norm'),
          ('dropout', r'Dropout|gb_dropout'),
          ('loss (softmax cross-entropy)', r'softmax_ce|log_softmax|pick'),
          ('softmax', r'softmax'),
          ('optimizer update', r'_update$'),
          ('embedding lookups', r'Embedding|take'),
          ('activations', r'Activation|relu|LeakyReLU'))


def operator_profile(step, steps):
    """Run ``step()`` ``steps`` times under MXNet's profiler; ``{operator: ms per step}``."""
    start()
    for _ in range(steps):
        step()
    return collect(steps)


def start():
    """Start recording, for loops that ``operator_profile`` cannot drive (``train_bert``)."""
    from mxnet import profiler
    # Only the aggregate is read; the trace MXNet also writes goes to the temporary folder
    profiler.set_config(profile_all=True, aggregate_stats=True,
                        filename=os.path.join(tempfile.gettempdir(), 'gluonbert-profile.json'))
    profiler.set_state('run')


def collect(steps):
    """Stop recording (after all work finished); ``{operator: ms per step}`` over ``steps``."""
    from mxnet import profiler
    profiler.set_state('stop')
    stats = json.loads(profiler.dumps(reset=True, format='json'))
    return {name: entry['Total'] / steps for name, entry in stats['Time']['operator'].items()
            if name not in NOT_OPERATORS}


def grouped(per_operator):
    """``{group: ms per step}`` by ``GROUPS``, largest first."""
    totals = {}
    for name, ms in per_operator.items():
        group = next((g for g, pattern in GROUPS if re.search(pattern, name)), 'other')
        totals[group] = totals.get(group, 0.0) + ms
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def print_profile(title, per_operator, top=12):
    total = sum(per_operator.values())
    print(f'{title}: {total:.1f} ms of operator time per step')
    for heading, rows in (('by group', grouped(per_operator)),
                          (f'top {top} operators', dict(sorted(
                              per_operator.items(), key=lambda item: -item[1])[:top]))):
        print(f'  {heading}')
        for name, ms in rows.items():
            print(f'    {name:<44}{ms:>9.1f} ms {100 * ms / total:>6.1f}%')


def profiles(script, workers, args, steps=3, env=None):
    """Profile each of ``workers`` in a fresh process with bulk execution off (and ``env``);
    print and return ``{worker: {operator: ms per step}}``."""
    from harness import fresh_runs
    result = {}
    for worker in workers:
        run, = fresh_runs(script, worker, [*args, '--profile-steps', steps], repeats=1,
                          env=dict(env or {}, MXNET_EXEC_BULK_EXEC_TRAIN='0'))
        result[worker] = run['operators']
        print_profile(f'\n{worker}', run['operators'])
    return result
