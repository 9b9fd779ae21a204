"""``python -m gluonbert.distributed.pretrain``: BERT pretraining as one worker of a job, or
alone.

    python -m gluonbert.distributed.pretrain --contexts cpu:0,cpu:1 --steps 50
    python -m gluonbert.distributed.launch -n 2 -s 2 -- \\
        python -m gluonbert.distributed.pretrain --steps 50 --checkpoint-dir runs/dist

Every worker draws the same global batches (WikiText-2 in a seeded order, or synthetic
batches of the chapter's shape) and trains on its slice; the KVStore (``dist_sync`` under the
launcher, ``device`` alone) sums the gradients, so the run equals one process on the whole
batches. Only rank 0 prints and writes checkpoints (``BERTTrainer``'s exact, pickle-free
ones). ``--resume`` continues from the newest checkpoint with any number of workers or
contexts: a checkpoint holds the number of updates, which is also the position in the
sequence of global batches. A worker that completes no step for ``--timeout`` seconds (a dead
peer on another host) exits with status 124.
"""
import argparse
import json
import os
import sys
import time

import mxnet as mx
from mxnet import gluon, init

from ..atomic import atomic_write
from ..data import load_data_wiki
from ..devices import parse_devices
from ..model import BERTModel
from ..option_types import (max_len, non_negative_int, positive_float, positive_int,
                            probability, seed)
from ..train.checkpoint import save_pretrained
from ..train.pretrain import PretrainingObjective
from ..train.trainer import BERTTrainer
from .batches import synthetic_pretraining_batch, worker_slice
from .parallel import DataParallel, PretrainingLoss
from .watchdog import Watchdog

# The d2l chapter's pretraining: vocabulary of WikiText-2 (~20k), 128 hidden, 2 blocks
CHAPTER = dict(vocab_size=20256, num_hiddens=128, ffn_num_hiddens=256, num_heads=2,
               num_blks=2, dropout=0.2, max_len=64, batch_size=512, lr=0.01)


def global_batches(opts, start, vocab_size=None, train_iter=None):
    """The global batches from step ``start`` on, the same in every process."""
    if train_iter is None:
        for step in range(start, opts.steps):
            yield synthetic_pretraining_batch(step, opts.batch_size, vocab_size=vocab_size,
                                              max_len=opts.max_len, seed=opts.seed)
        return
    if len(train_iter) == 0:
        raise ValueError(f'the data has fewer examples than --batch-size {opts.batch_size}')
    step = 0
    while step < opts.steps:  # epoch after epoch, in the loader's seeded order
        for batch in train_iter:
            if step >= start:
                yield batch
            step += 1
            if step == opts.steps:
                return


def _rank0_slice_losses(report, batch, rank, num_workers):
    """Rank 0's mean MLM and NSP losses over its own slice (the report's terms are divided by
    the global batch's totals)."""
    mlm_term, nsp_term = report.local_sums()
    mine = worker_slice(batch, rank, num_workers)
    global_preds = float(_host(batch[4]).sum()) + 1e-8
    local_preds = float(_host(mine[4]).sum()) + 1e-8
    return mlm_term * global_preds / local_preds, nsp_term * report.batch_size / report.samples


def _host(array):
    return array.asnumpy() if hasattr(array, 'asnumpy') else array


def train(opts):
    """Run the job's share of this process; returns rank 0's summary dict (None elsewhere)."""
    contexts = parse_devices(opts.contexts)
    kvstore = opts.kvstore or ('dist_sync' if os.environ.get('DMLC_ROLE') else 'device')
    train_iter = vocab = None
    if opts.data == 'wiki':
        train_iter, vocab = load_data_wiki(opts.batch_size, opts.max_len, opts.data_dir,
                                           seed=opts.seed)
    vocab_size = len(vocab) if vocab is not None else opts.vocab_size
    mx.random.seed(opts.seed)
    net = BERTModel(vocab_size, opts.num_hiddens, opts.ffn_num_hiddens, opts.num_heads,
                    opts.num_blks, opts.dropout)  # d2l's 1000 positions; data padded to max_len
    net.initialize(init.Xavier(), ctx=contexts)
    parallel = DataParallel(net, contexts, kvstore, connect_timeout=opts.timeout)
    chief = parallel.is_chief
    trainer = BERTTrainer(net, opts.optimizer, lr=opts.lr, wd=0.0, seed=opts.seed,
                          kvstore=parallel.kvstore, checkpoint_dir=opts.checkpoint_dir,
                          quiet=True)
    start = 0
    if opts.resume:
        if opts.checkpoint_dir is None:
            raise ValueError('--resume needs --checkpoint-dir')
        position = trainer.load(required=True)
        start = 0 if position is None else position['step']
    objective = PretrainingObjective(net, gluon.loss.SoftmaxCELoss(), vocab_size)
    objective.hybridize(static_alloc=True, static_shape=True)
    loss = PretrainingLoss(objective)
    if chief:
        print(f'{parallel.num_workers} worker(s) x {contexts}, kvstore {kvstore}, global '
              f'batch {opts.batch_size}, steps {start + 1}..{opts.steps}'
              + (f' (resumed from step {start})' if start else ''), flush=True)
    step_seconds, step = [], start
    with Watchdog(opts.timeout, f'step {start + 1} to complete') as watchdog:
        for step, batch in enumerate(global_batches(opts, start, vocab_size, train_iter),
                                     start + 1):
            began = time.perf_counter()
            report = parallel.step(trainer, batch, loss)  # BERTTrainer waits for the update
            step_seconds.append(time.perf_counter() - began)
            watchdog.beat(f'step {step + 1} to complete')
            if chief and (step % opts.log_every == 0 or step == opts.steps):
                mlm, nsp = _rank0_slice_losses(report, batch, parallel.rank,
                                               parallel.num_workers)
                share = (f" (rank 0's {report.samples} of {report.batch_size} pairs)"
                         if parallel.num_workers > 1 else '')
                print(f'step {step}/{opts.steps}: MLM loss {mlm:.3f}, NSP loss {nsp:.3f}'
                      f'{share}', flush=True)
            if chief and opts.checkpoint_dir and opts.checkpoint_every \
                    and step % opts.checkpoint_every == 0 and step < opts.steps:
                trainer.save({'step': step})
        mx.nd.waitall()
    if not chief:
        return None
    if opts.checkpoint_dir and step > start:
        print(f'checkpoint: {trainer.save({"step": step})}', flush=True)
    if opts.out and vocab is not None:
        save_pretrained(net, vocab, opts.out, config=net.config)
        print(f'saved {opts.out}/', flush=True)
    # The first step builds the graphs: left out of the throughput
    timed = sorted(step_seconds[1:])
    median = timed[len(timed) // 2] if timed else None
    summary = dict(num_workers=parallel.num_workers, contexts=[str(c) for c in contexts],
                   kvstore=kvstore, batch_size=opts.batch_size, start_step=start, steps=step,
                   step_seconds=step_seconds, median_step_seconds=median,
                   samples_per_sec=opts.batch_size / median if median else None)
    if opts.summary:
        atomic_write(opts.summary, lambda tmp: _write_json(tmp, summary))
    if median:
        print(f'{summary["samples_per_sec"]:.1f} sentence pairs/sec (median step '
              f'{median:.3f} s, first step left out)', flush=True)
    return summary


def _write_json(path, value):
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(value, f, indent=1)


def _parser():
    parser = argparse.ArgumentParser(prog='python -m gluonbert.distributed.pretrain',
                                     description=__doc__.split('\n\n')[0])
    d = CHAPTER
    parser.add_argument('--contexts', default='cpu',
                        help='this worker\'s devices: cpu, gpu, cpu:0,cpu:1, gpu:0,gpu:1')
    parser.add_argument('--kvstore', choices=['device', 'local', 'dist_sync',
                                              'dist_device_sync'],
                        help='default: dist_sync under the launcher, else device')
    parser.add_argument('--data', choices=['synthetic', 'wiki'], default='synthetic',
                        help='synthetic batches of the chapter\'s shape, or WikiText-2')
    parser.add_argument('--data-dir', help='wiki: the folder of wiki.train.tokens')
    parser.add_argument('--vocab-size', type=positive_int, default=d['vocab_size'],
                        help='synthetic: the vocabulary size')
    parser.add_argument('--num-hiddens', type=positive_int, default=d['num_hiddens'])
    parser.add_argument('--ffn-num-hiddens', type=positive_int, default=d['ffn_num_hiddens'])
    parser.add_argument('--num-heads', type=positive_int, default=d['num_heads'])
    parser.add_argument('--num-blks', type=positive_int, default=d['num_blks'])
    parser.add_argument('--dropout', type=probability, default=d['dropout'])
    parser.add_argument('--max-len', type=max_len, default=d['max_len'])
    parser.add_argument('--batch-size', type=positive_int, default=d['batch_size'],
                        help='the global batch, split across workers and contexts')
    parser.add_argument('--steps', type=positive_int, default=50)
    parser.add_argument('--optimizer', default='adam',
                        help='adam (d2l\'s), adamw, bertadam or an MXNet optimizer')
    parser.add_argument('--lr', type=positive_float, default=d['lr'])
    parser.add_argument('--seed', type=seed, default=0)
    parser.add_argument('--checkpoint-dir', help='rank 0 writes checkpoints here')
    parser.add_argument('--checkpoint-every', type=non_negative_int, default=0,
                        help='updates between checkpoints (0: only at the end)')
    parser.add_argument('--resume', action='store_true',
                        help='continue from the newest checkpoint in --checkpoint-dir')
    parser.add_argument('--timeout', type=positive_float, default=300.0,
                        help='seconds without a completed step (or to join the job) before '
                        'this worker exits with status 124')
    parser.add_argument('--log-every', type=positive_int, default=10)
    parser.add_argument('--out', help='wiki: rank 0 writes a d2l-style pretrained folder here')
    parser.add_argument('--summary', help='rank 0 writes a JSON summary (throughput) here')
    return parser


def main(argv=None):
    opts = _parser().parse_args(argv)
    try:
        train(opts)
    except (ValueError, OSError) as error:  # OSError: an unwritable --out, a full disk
        print(f'error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
