"""Pretraining step time: d2l's ``BERTModel`` + chapter loop vs gluonbert's ``train_bert``.

The chapter's configuration (vocab 20,256, 128 hidden, 256 FFN, 2 heads, 2 blocks, batch 512,
max_len 64, 10 MLM positions per sample) on synthetic batches, each side in fresh processes,
d2l as users run it (defaults) and with ``OMP_NUM_THREADS`` set to the core count. Each step
is timed to its end (update included). Prints a table and writes JSON.

    python bench/pretrain_step.py [--repeats 3] [--steps 8] [--batch-size 512]
"""
import argparse
import sys
import time

from harness import compare, d2l_and_gluonbert, print_table, worker_result, write_json

# Steps left out of the median: graph construction, allocation and oneDNN's kernel
# generation make the first steps several times slower on both sides
WARMUP = 2

CONFIG = dict(vocab_size=20256, num_hiddens=128, ffn_num_hiddens=256, num_heads=2, num_blks=2,
              dropout=0.2, max_len=64, num_preds=10)


def batches(np, batch_size, steps, seed=0):
    rng = np.random.RandomState(seed)
    c = CONFIG
    for _ in range(steps):
        yield (rng.randint(5, c['vocab_size'], (batch_size, c['max_len'])).astype('int32'),
               (np.arange(c['max_len'])[None] >= 32).repeat(batch_size, 0).astype('int32'),
               rng.randint(40, c['max_len'] + 1, (batch_size,)).astype('float32'),
               rng.randint(1, 40, (batch_size, c['num_preds'])).astype('int32'),
               np.ones((batch_size, c['num_preds']), 'float32'),
               rng.randint(0, c['vocab_size'], (batch_size, c['num_preds'])).astype('int32'),
               rng.randint(0, 2, (batch_size,)).astype('int32'))


def run_d2l(batch_size, steps):
    """The chapter's code: d2l.BERTModel, split_and_load, _get_batch_loss_bert, Adam."""
    import numpy as onp
    from mxnet import autograd, gluon, init, np, npx
    import d2l.mxnet as d2l
    npx.set_np()
    c = CONFIG
    net = d2l.BERTModel(c['vocab_size'], c['num_hiddens'], c['ffn_num_hiddens'], c['num_heads'],
                        c['num_blks'], c['dropout'], max_len=c['max_len'])
    devices = [npx.cpu()]
    net.initialize(init.Xavier(), ctx=devices)
    loss = gluon.loss.SoftmaxCELoss()
    trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': 0.01})
    times = []
    for batch in batches(onp, batch_size, steps):
        batch = [np.array(b) for b in batch]
        start = time.perf_counter()
        shards = [gluon.utils.split_and_load(b, devices, even_split=False) for b in batch]
        with autograd.record():
            mlm_ls, nsp_ls, ls = d2l._get_batch_loss_bert(net, loss, c['vocab_size'], *shards)
        for l in ls:
            l.backward()
        trainer.step(1)
        [float(l) for l in mlm_ls + nsp_ls]
        npx.waitall()  # the update too, so that each side's time is its whole step
        times.append(time.perf_counter() - start)
    return times


def run_gluonbert(batch_size, steps):
    import numpy as onp
    import gluonbert  # noqa: F401  (thread settings before mxnet)
    import mxnet as mx
    from mxnet import gluon, init
    from gluonbert import BERTModel
    from gluonbert.train.pretrain import train_bert
    c = CONFIG
    net = BERTModel(c['vocab_size'], c['num_hiddens'], c['ffn_num_hiddens'], c['num_heads'],
                    c['num_blks'], c['dropout'], max_len=c['max_len'])
    net.initialize(init.Xavier())
    stamps = []
    data = [[mx.nd.array(b, dtype=b.dtype) for b in batch]
            for batch in batches(onp, batch_size, steps)]

    def on_step(*_):
        # Losses are read back one step late: after this wait, step i + 1 has finished
        mx.nd.waitall()
        stamps.append(time.perf_counter())

    train_bert(data, net, gluon.loss.SoftmaxCELoss(), c['vocab_size'], [mx.cpu()], steps,
               on_step=on_step, quiet=True)
    return [b - a for a, b in zip(stamps, stamps[1:])]


WORKERS = {'d2l': run_d2l, 'gluonbert': run_gluonbert}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--steps', type=int, default=8)
    parser.add_argument('--batch-size', type=int, default=512)
    parser.add_argument('--worker', choices=sorted(WORKERS))
    args = parser.parse_args()
    if args.worker:
        times = WORKERS[args.worker](args.batch_size, args.steps)
        worker_result(times, WARMUP)
        return
    rows = compare(__file__, d2l_and_gluonbert(), ['--steps', args.steps, '--batch-size', args.batch_size], args.repeats,
                   args.batch_size, 'pairs_per_sec')
    print_table(f'pretraining step, batch {args.batch_size} x {CONFIG["max_len"]}, '
                f'{args.repeats} fresh processes each', rows, 'd2l (defaults)',
                extra=('pairs_per_sec', 'peak_rss_mib'))
    write_json('pretrain_step.json', dict(config=CONFIG, batch_size=args.batch_size,
                                          python=sys.version.split()[0], results=rows))


if __name__ == '__main__':
    main()
