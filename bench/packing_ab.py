"""Packed vs padded fine-tuning steps of all-MiniLM-L6-v2, A/B in one process.

Two copies of ``gluonbert finetune``'s model, trainer and engine (``--amp off``) train on the
same batches of a ``real_finetune`` setting (``sst-2``: SST-2 sentences at their own lengths,
batch 64; ``128``; ``384``), a step of each in turn (the order flipping every round), so that
the load of a shared machine falls on both alike: one computes on packed tokens
(``gluonbert.model.packing``, the heads' default), the other inside ``packing.padded()``.
The first ``--warmup`` rounds are left out. Prints examples/s of each and their ratio (of the
sums and the median of the per-round ratios).

    python bench/packing_ab.py [--setting sst-2] [--rounds 10] [--warmup 2] [--multiple 16]

``--multiple``: the batches' cut, rounded up to a multiple of it (``LongestInBatch``).
"""
import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import real_finetune  # noqa: E402


def engine_for(folder, kind, batch, max_len, workdir):
    """``gluonbert finetune``'s engine for a fresh MiniLM head, as ``real_finetune`` builds it."""
    import mxnet as mx
    from mxnet import init
    from gluonbert import cli, jobs
    from gluonbert.pretrained.folders import load_pretrained_folder
    from gluonbert.tasks import get_task
    from gluonbert.train.engine import Engine
    opts = cli.parse_args(['finetune', '--pretrained', folder, '--task', kind,
                           '--batch-size', str(batch), '--max-len', str(max_len),
                           '--lr', str(real_finetune.LR),
                           '--weight-decay', str(real_finetune.WEIGHT_DECAY),
                           '--warmup-ratio', str(real_finetune.WARMUP_RATIO), '--epochs', '1',
                           '--amp', 'off', '--out', os.path.join(workdir, 'unused')])
    devices = [mx.cpu()]
    bert, _, _, _ = load_pretrained_folder(opts.pretrained, dropout=opts.dropout,
                                           devices=devices)
    task = get_task(kind)
    net = task.head(bert, [0, 1] if kind == 'classification' else None)
    net.output.initialize(init.Xavier(), ctx=devices)
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = jobs._finetune_trainer(net, opts, 1000, bert.config['num_hiddens'], None)
    return Engine(task.objective(net), trainer, devices)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--setting', default='sst-2', choices=sorted(real_finetune.SETTINGS))
    parser.add_argument('--rounds', type=int, default=10, help='timed steps of each')
    parser.add_argument('--warmup', type=int, default=2, help='untimed first rounds')
    parser.add_argument('--multiple', type=int, default=16)
    args = parser.parse_args()
    import numpy as np
    import mxnet as mx
    from gluonbert.model import packing
    from gluonbert.train.batches import LongestInBatch
    kind, batch, max_len, real = real_finetune.SETTINGS[args.setting]
    folder = real_finetune.minilm_folder()
    data = os.environ.get('GLUONBERT_DATA', os.path.join(os.path.dirname(os.path.dirname(HERE)),
                                                         'shared', 'data'))
    with tempfile.TemporaryDirectory() as workdir:
        spec = dict(kind=kind, batch=batch, max_len=max_len, real=real, folder=folder,
                    data=data, steps=args.warmup + args.rounds,
                    out=os.path.join(workdir, 'features.npz'))
        mean_len = real_finetune.prepare_worker(spec)['mean_valid_len']
        features = np.load(spec['out'])
        arrays = tuple(features[k] for k in ('tokens', 'segments', 'valid_lens', 'labels'))
        batches = list(LongestInBatch(arrays, batch, shuffle=False, sequence_arrays=(0, 1),
                                      lengths=2, multiple=args.multiple))
        modes = {'packed': contextlib.nullcontext, 'padded': packing.padded}
        engines = {name: engine_for(folder, kind, batch, max_len, workdir) for name in modes}
    seconds = {name: [] for name in modes}
    for i, step_batch in enumerate(batches):
        for name in (list(modes) if i % 2 == 0 else list(modes)[::-1]):
            start = time.perf_counter()
            with modes[name]():
                engines[name].step(step_batch)
            mx.nd.waitall()
            if i >= args.warmup:
                seconds[name].append(time.perf_counter() - start)
    examples = sum(len(b[0]) for b in batches[args.warmup:])
    print(f'{args.setting}: batch {batch}, mean length {mean_len:.1f}, cut to a multiple of '
          f'{args.multiple}; {args.rounds} steps each; load average {os.getloadavg()[0]:.1f}')
    for name in modes:
        print(f'{name:<8}{examples / sum(seconds[name]):8.1f} examples/s')
    ratios = [a / b for a, b in zip(seconds['padded'], seconds['packed'])]
    print(f'packed / padded: {sum(seconds["padded"]) / sum(seconds["packed"]):.2f}x '
          f'(median of the rounds {statistics.median(ratios):.2f}x)')


if __name__ == '__main__':
    main()
