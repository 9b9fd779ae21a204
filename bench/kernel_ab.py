"""Kernels on vs off, A/B in one process: gluonbert's step with all of ``gluonbert.ops`` against
the same step with some kernels switched off (MXNet's own operators in their place).

The two models are built alike and trained on the same synthetic batches, one step of each in
turn, so that load from other processes slows both alike; prints each side's median step time
and their ratio, and with ``--profile`` the operator profile of each side. For quick checks on
a shared machine; ``finetune_step.py`` and ``pretrain_step.py`` give the official numbers.

    python bench/kernel_ab.py [--workload finetune|pretrain] [--off gb_attention gb_dropout]
                              [--steps 8] [--profile]
"""
import argparse
import contextlib
import os
import statistics
import sys
import time

WARMUP = 2  # steps left out: graph construction and oneDNN's kernel generation


def finetune_step():
    """``(step(batch), batches(n))``: ``finetune_step.py``'s gluonbert step, bert.small size,
    32 x 128."""
    import numpy as onp
    import finetune_step
    step = finetune_step.gluonbert_step()
    return (lambda batch: step(*batch)), (lambda n: list(finetune_step.batches(onp, n)))


def pretrain_step():
    """``(step(batch), batches(n))``: one ``train_bert`` step of the chapter's configuration
    (batch 512 x 64), without its loop's bookkeeping."""
    import mxnet as mx
    import numpy as onp
    from mxnet import autograd, gluon, init
    import pretrain_step as bench
    from gluonbert import BERTModel
    from gluonbert.train.pretrain import PretrainingObjective
    c = bench.CONFIG
    net = BERTModel(c['vocab_size'], c['num_hiddens'], c['ffn_num_hiddens'], c['num_heads'],
                    c['num_blks'], c['dropout'], max_len=c['max_len'])
    net.initialize(init.Xavier())
    objective = PretrainingObjective(net, gluon.loss.SoftmaxCELoss(), c['vocab_size'])
    objective.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': 0.01})

    def step(batch):
        batch = [mx.nd.array(b, dtype=b.dtype) for b in batch]
        with autograd.record():
            mlm, weights, nsp = objective(*batch)
            loss = mlm / (batch[4].sum() + 1e-8) + nsp / batch[0].shape[0]
        loss.backward()
        trainer.step(1)
        mx.nd.waitall()  # the update too, so that profiles of the two sides do not mix
    return step, lambda n: list(bench.batches(onp, 512, n))


WORKLOADS = {'finetune': finetune_step, 'pretrain': pretrain_step}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--workload', choices=sorted(WORKLOADS), default='finetune')
    parser.add_argument('--off', nargs='+', default=['gb_attention', 'gb_dropout'],
                        help='kernels the B side runs without (default: gb_attention '
                             'gb_dropout)')
    parser.add_argument('--steps', type=int, default=8, help='steps of each side')
    parser.add_argument('--profile', action='store_true',
                        help='then profile 2 more steps of each side by operator')
    args = parser.parse_args()
    if args.steps <= WARMUP:
        parser.exit(2, f'kernel_ab.py: --steps={args.steps}; expected more than {WARMUP}\n')
    if args.profile:  # time every operator, not bulk segments (read when MXNet starts)
        os.environ['MXNET_EXEC_BULK_EXEC_TRAIN'] = '0'
    import gluonbert  # noqa: F401  (thread settings before MXNet starts)
    import mxnet as mx
    from gluonbert import ops
    import op_profile
    try:
        off = ops.disabled(*args.off)
    except ValueError as error:
        parser.exit(2, f'kernel_ab.py: --off: {error}\n')
    if not ops.enabled():
        parser.exit(2, f'kernel_ab.py: the kernels are not in use: {ops.status()}\n')
    make = WORKLOADS[args.workload]
    sides = {'all kernels': contextlib.nullcontext(), f'without {" ".join(args.off)}': off}
    steps, batches = {}, None
    for name, context in sides.items():
        with context:  # models are traced at their first step
            step, make_batches = make()
            batches = batches or make_batches(args.steps + (2 if args.profile else 0))
            step(batches[0])
        steps[name] = step
    times = {name: [] for name in steps}
    for batch in batches[1:args.steps]:
        for name, step in steps.items():
            mx.nd.waitall()
            start = time.perf_counter()
            step(batch)
            mx.nd.waitall()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t[WARMUP - 1:]) for name, t in times.items()}
    (a, ta), (b, tb) = medians.items()
    print(f'{args.workload} step, {args.steps - WARMUP} steps each, alternating, one process')
    for name, seconds in medians.items():
        print(f'  {name:<40}{1000 * seconds:>9.1f} ms')
    print(f'  {a} is {tb / ta:.2f}x as fast')
    if args.profile:
        for name, step in steps.items():
            rest = iter(batches[args.steps:])
            op_profile.print_profile(f'\n{name}', op_profile.operator_profile(
                lambda: step(next(rest)), 2))


if __name__ == '__main__':
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
