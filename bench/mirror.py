"""Does MXNet's backward mirroring save memory in gluonbert's pretraining step?

MXNet's FAQ says ``MXNET_BACKWARD_DO_MIRROR=1`` recomputes feature maps in the backward pass
instead of keeping them, saving 30-50% of memory for about 5% of speed. In MXNet 1.9.1 only
the symbolic executor (``Module``, ``Symbol.bind``) reads it (``graph_executor.cc``); a
hybridized Gluon block's ``CachedOp`` and imperative autograd build their backward graphs
without a mirror function, so gluonbert, which trains through them, keeps every feature
map whatever the variable says. ``MXNET_MEMORY_OPT``, its successor, exists only from MXNet
2.0. This benchmark checks that on the step: gluonbert's ``train_bert`` on seq_scaling's
synthetic batches (the d2l chapter's width, 4 blocks, 256 positions, 16,384 tokens per
batch), in fresh processes with the variable unset and set, for step time and peak RSS.

    python bench/mirror.py [--repeats 3] [--steps 6] [--layers 4] [--seq-len 256]
"""
import argparse
import statistics
import sys

from harness import fresh_runs, worker_result, write_json
from seq_scaling import WARMUP, run_gluonbert

SETTINGS = {'default': None,
            'MXNET_BACKWARD_DO_MIRROR=1': {'MXNET_BACKWARD_DO_MIRROR': '1'},
            'MXNET_MEMORY_OPT=1': {'MXNET_MEMORY_OPT': '1'}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--steps', type=int, default=6, help='per process, warm-up included')
    parser.add_argument('--layers', type=int, default=4)
    parser.add_argument('--seq-len', type=int, default=256)
    parser.add_argument('--tokens-per-batch', type=int, default=16384)
    parser.add_argument('--worker', choices=['gluonbert'], help=argparse.SUPPRESS)
    parser.add_argument('--cell', type=int, nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps <= WARMUP:
        parser.error(f'--steps must be more than the {WARMUP} warm-up steps')
    if args.worker:
        worker_result(run_gluonbert(*args.cell, args.steps), 0)
        return
    batch_size = max(1, args.tokens_per_batch // args.seq_len)
    cell = [args.layers, args.seq_len, batch_size]
    print(f'gluonbert pretraining step, {args.layers} blocks, batch {batch_size} x '
          f'{args.seq_len}, {args.repeats} fresh process(es) per setting')
    print(f'{"setting":<30}{"s/step":>10}{"peak RSS MiB":>14}')
    rows = {}
    for name, env in SETTINGS.items():
        results = fresh_runs(__file__, 'gluonbert', ['--steps', args.steps, '--cell', *cell],
                             args.repeats, env)
        rows[name] = dict(seconds=statistics.median(r['seconds'] for r in results),
                          peak_rss_mib=max(r['rss'] for r in results), environment=env)
        print(f'{name:<30}{rows[name]["seconds"]:>10.4f}{rows[name]["peak_rss_mib"]:>14.0f}',
              flush=True)
    write_json('mirror.json', dict(layers=args.layers, seq_len=args.seq_len,
                                   batch_size=batch_size, steps=args.steps, warmup=WARMUP,
                                   repeats=args.repeats, python=sys.version.split()[0],
                                   rows=rows))


if __name__ == '__main__':
    main()
