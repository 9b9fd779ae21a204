"""Does data loading starve the pretraining step? The real WikiText-2 loader against the step.

``load_data_wiki(512, 64, seed=0)`` on the WikiText-2 found as docs/data.md says (set
``GLUONBERT_DATA`` to choose; the seeded preprocessing comes from the cache after the first
run), the chapter's model (vocab from the data, 128 hidden, 256 FFN, 2 heads, 2 blocks,
dropout 0.2). Three workers, each in fresh processes:

- ``loader``: the time to produce one batch: the DataLoader's next batch, then what
  ``train_bert`` does to it before the step (``shard_batch`` onto the device, the MLM weight
  sum read on the host), waited for;
- ``memory``: ``train_bert`` on the loader's first batches, materialized in a list first;
- ``real``: ``train_bert`` on the loader itself, with the time spent in its ``next()`` recorded.

The two training runs see the same batches and are timed the same way: the loop as it runs
(no extra waits), from the report of step 2 to that of the last step, per step. The real run's
extra time per step is what loading costs the loop. The time spent in the loader's ``next()``
inside the loop is no stall by itself: the batch's copy into MXNet (``nd.array``) waits for
the engine, busy with the step already queued.

    python bench/data_loading.py [--steps 10] [--repeats 2] [--batch-size 512] [--num-workers 0]
"""
import argparse
import json
import statistics
import sys
import time

from harness import fresh_runs, peak_rss_mib, write_json

MAX_LEN = 64
SEED = 0
# Reports of steps 1 and 2 (graph construction, allocation, oneDNN's kernel generation) are
# left out
WARMUP = 2


def load(batch_size, num_workers):
    import gluonbert
    return gluonbert.load_data_wiki(batch_size, MAX_LEN, seed=SEED, num_workers=num_workers)


def run_loader(batch_size, num_workers, steps):
    """Seconds per batch, from the loader to arrays on the device, after one warm-up batch."""
    train_iter, _ = load(batch_size, num_workers)  # gluonbert first: threads before mxnet
    import mxnet as mx
    from gluonbert.data.locate import locate_wikitext2
    from gluonbert.train.sharding import shard_batch
    times, batches = [], iter(train_iter)
    for _ in range(steps + 1):
        start = time.perf_counter()
        batch = next(batches)
        shard_batch(batch, [mx.cpu()])
        float(batch[4].asnumpy().sum())
        mx.nd.waitall()
        times.append(time.perf_counter() - start)
    return dict(seconds=statistics.mean(times[1:]), examples=len(train_iter.dataset),
                data_dir=locate_wikitext2())


class TimedLoader:
    """Iterates ``loader`` and records the seconds each ``next()`` takes."""

    def __init__(self, loader):
        self.loader, self.waits = loader, []

    def __iter__(self):
        batches = iter(self.loader)
        while True:
            start = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:
                return
            self.waits.append(time.perf_counter() - start)
            yield batch


def train(data, vocab_size, steps):
    """Seconds per step of ``train_bert`` on ``data``, steps 3 ... steps."""
    import mxnet as mx
    from mxnet import gluon, init
    from gluonbert import BERTModel
    from gluonbert.train.pretrain import train_bert
    net = BERTModel(vocab_size, 128, 256, 2, 2, 0.2, max_len=MAX_LEN)
    net.initialize(init.Xavier())
    stamps = {}

    def on_step(step, *_):
        stamps[step] = time.perf_counter()

    train_bert(data, net, gluon.loss.SoftmaxCELoss(), vocab_size, [mx.cpu()], steps,
               on_step=on_step, quiet=True)
    return (stamps[steps] - stamps[WARMUP]) / (steps - WARMUP)


def run_memory(batch_size, num_workers, steps):
    train_iter, vocab = load(batch_size, num_workers)
    batches = iter(train_iter)
    data = [next(batches) for _ in range(steps)]
    return dict(seconds=train(data, len(vocab), steps))


def run_real(batch_size, num_workers, steps):
    train_iter, vocab = load(batch_size, num_workers)
    timed = TimedLoader(train_iter)
    seconds = train(timed, len(vocab), steps)
    return dict(seconds=seconds, in_loader=statistics.mean(timed.waits[WARMUP:steps]))


WORKERS = {'loader': run_loader, 'memory': run_memory, 'real': run_real}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=10, help='per process, warm-up included')
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument('--batch-size', type=int, default=512)
    parser.add_argument('--num-workers', type=int, default=0)
    parser.add_argument('--worker', choices=sorted(WORKERS))
    args = parser.parse_args()
    if args.steps <= WARMUP:
        parser.error(f'--steps must be more than the {WARMUP} warm-up steps')
    if args.worker:
        result = WORKERS[args.worker](args.batch_size, args.num_workers, args.steps)
        print(json.dumps(dict(result, rss=peak_rss_mib())))
        return
    worker_args = ['--steps', args.steps, '--batch-size', args.batch_size,
                   '--num-workers', args.num_workers]
    runs = {name: [] for name in WORKERS}
    for _ in range(args.repeats):  # interleaved, so that a busy spell hits every worker alike
        for name in WORKERS:
            runs[name] += fresh_runs(__file__, name, worker_args, 1)
    median = {name: statistics.median(r['seconds'] for r in results)
              for name, results in runs.items()}
    in_loader = statistics.median(r['in_loader'] for r in runs['real'])
    rows = [('loader, s/batch', median['loader']),
            ('step on in-memory batches, s/step', median['memory']),
            ('step on the real loader, s/step', median['real']),
            ('  of which in next(loader), s/step', in_loader),
            ('loader share of the step', median['loader'] / median['memory']),
            ('in-memory pairs/s', args.batch_size / median['memory']),
            ('real-loader pairs/s', args.batch_size / median['real']),
            ('real loader / in-memory throughput', median['memory'] / median['real'])]
    examples, data_dir = runs['loader'][0]['examples'], runs['loader'][0]['data_dir']
    print(f'data loading, WikiText-2 ({examples} pairs, {data_dir}), batch '
          f'{args.batch_size} x {MAX_LEN}, num_workers {args.num_workers}, '
          f'{args.steps} steps, {args.repeats} fresh process(es) each (medians)')
    for name, value in rows:
        print(f'{name:<38}{value:>10.4f}')
    write_json('data_loading.json', dict(
        batch_size=args.batch_size, max_len=MAX_LEN, seed=SEED, num_workers=args.num_workers,
        data_dir=data_dir, examples=examples, steps=args.steps, warmup=WARMUP, repeats=args.repeats,
        python=sys.version.split()[0], results={name.strip(): value for name, value in rows},
        runs=runs))


if __name__ == '__main__':
    main()
