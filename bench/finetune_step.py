"""Fine-tuning step time: d2l's NLI-chapter classifier vs HF transformers vs gluonbert's.

d2l's ``BERTModel`` (the chapter's ``bert.small`` size: 256 hidden, 512 FFN, 4 heads, 2 blocks,
vocab 20,256) under the chapter's ``BERTClassifier`` and ``train_ch13``-style step; HF's
``BertForSequenceClassification`` of the same size (ReLU FFN and dropout 0.1 as in d2l, AdamW,
torch's default threads, in ``bench/.venv-torch``, see ``torch_env.py``; ``--no-torch`` skips
it); gluonbert's ``BERTClassifier`` and ``train_classifier``-style step (hybridized). Batch
32 x 128, synthetic batches, each side in fresh processes, each step timed to its end (update
included). Prints a table and gluonbert's ratio to every other row, and writes JSON.

    python bench/finetune_step.py [--repeats 3] [--steps 10] [--no-torch] [--profile]
                                  [--amp bfloat16]
"""
import argparse
import os
import sys
import time

import torch_env
from harness import (add_amp_option, add_hf_row, amp_environment, check_amp, compare,
                     d2l_and_gluonbert, hf_bert_config, print_speedups, print_table, start_amp,
                     worker_result,
                     write_json)
from op_profile import operator_profile, profiles

# Steps left out of the median: graph construction, allocation and oneDNN's kernel
# generation make the first steps several times slower on both sides
WARMUP = 2

CONFIG = dict(vocab_size=20256, num_hiddens=256, ffn_num_hiddens=512, num_heads=4, num_blks=2,
              dropout=0.1, max_len=512)
BATCH, SEQ_LEN = 32, 128


def batches(np, steps):
    rng = np.random.RandomState(0)
    for _ in range(steps):
        yield ((rng.randint(5, CONFIG['vocab_size'], (BATCH, SEQ_LEN)).astype('int32'),
                (np.arange(SEQ_LEN)[None] >= 64).repeat(BATCH, 0).astype('int32'),
                rng.randint(64, SEQ_LEN + 1, (BATCH,)).astype('float32')),
               rng.randint(0, 3, (BATCH,)).astype('float32'))


def d2l_step():
    """One d2l fine-tuning step on a batch: ``step(X, y)`` (the chapter's code)."""
    from mxnet import autograd, gluon, init, np, npx
    from mxnet.gluon import nn
    import d2l.mxnet as d2l
    npx.set_np()

    class BERTClassifier(nn.Block):  # the d2l chapter's
        def __init__(self, bert):
            super().__init__()
            self.encoder, self.hidden = bert.encoder, bert.hidden
            self.output = nn.Dense(3)

        def forward(self, inputs):
            tokens_X, segments_X, valid_lens_x = inputs
            encoded_X = self.encoder(tokens_X, segments_X, valid_lens_x)
            return self.output(self.hidden(encoded_X[:, 0, :]))

    c = CONFIG
    bert = d2l.BERTModel(c['vocab_size'], c['num_hiddens'], c['ffn_num_hiddens'],
                         c['num_heads'], c['num_blks'], c['dropout'], c['max_len'])
    bert.initialize(init.Xavier())
    net = BERTClassifier(bert)
    net.output.initialize()
    trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': 1e-4})
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    devices = [npx.cpu()]

    def step(X, y):
        X, y = [np.array(x) for x in X], np.array(y)
        Xs, ys = d2l.split_batch_multi_inputs(X, y, devices)
        with autograd.record():
            pred = [net(X_) for X_ in Xs]
            ls = [loss(p, y_) for p, y_ in zip(pred, ys)]
        for l in ls:
            l.backward()
        trainer.step(BATCH, ignore_stale_grad=True)
        sum(float(l.sum()) for l in ls)
        npx.waitall()
    return step


def gluonbert_step():
    """One gluonbert fine-tuning step on a batch: ``step(X, y)``, the training engine's step
    as ``train_classifier`` and ``gluonbert finetune`` run it."""
    import gluonbert
    import mxnet as mx
    from mxnet import gluon, init
    from gluonbert.train.engine import Engine
    from gluonbert.train.finetune import ClassificationLoss
    c = CONFIG
    bert = gluonbert.BERTModel(c['vocab_size'], c['num_hiddens'], c['ffn_num_hiddens'],
                               c['num_heads'], c['num_blks'], c['dropout'], c['max_len'])
    bert.initialize(init.Xavier())
    net = gluonbert.BERTClassifier(bert)
    net.output.initialize()
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': 1e-4})
    engine = Engine(ClassificationLoss(net, gluon.loss.SoftmaxCrossEntropyLoss()), trainer,
                    [mx.cpu()])

    def step(X, y):
        engine.step((*X, y))
        mx.nd.waitall()
    return step


def hf_step():
    """One HF ``BertForSequenceClassification`` step on a batch: ``step(X, y)``."""
    import torch
    from transformers import BertForSequenceClassification
    c = CONFIG
    config = hf_bert_config(c, num_labels=3)
    net = BertForSequenceClassification(config).train()
    trainer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    positions = torch.arange(SEQ_LEN)[None]

    def step(X, y):
        tokens, segments, valid_lens = (torch.from_numpy(x) for x in X)
        mask = (positions < valid_lens[:, None]).long()
        loss = net(input_ids=tokens.long(), token_type_ids=segments.long(), attention_mask=mask,
                   labels=torch.from_numpy(y).long()).loss
        trainer.zero_grad()
        loss.backward()
        trainer.step()
        loss.item()
    return step


def run_worker(make_step, steps, profile_steps):
    """Time ``steps`` steps, each to its end; then profile ``profile_steps`` more."""
    import numpy as onp
    step = make_step()
    data = list(batches(onp, steps + profile_steps))
    times = []
    for X, y in data[:steps]:
        start = time.perf_counter()
        step(X, y)
        times.append(time.perf_counter() - start)
    operators = None
    if profile_steps:
        rest = iter(data[steps:])
        operators = operator_profile(lambda: step(*next(rest)), profile_steps)
    worker_result(times, WARMUP, operators=operators)


WORKERS = {'d2l': d2l_step, 'hf': hf_step, 'gluonbert': gluonbert_step}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--no-torch', action='store_true', help='skip the HF transformers row')
    parser.add_argument('--profile', action='store_true',
                        help="then profile the MXNet sides' steps by operator (one more "
                             "process each)")
    parser.add_argument('--profile-steps', type=int, default=0, help=argparse.SUPPRESS)
    add_amp_option(parser)
    parser.add_argument('--worker', choices=sorted(WORKERS))
    args = parser.parse_args()
    if args.worker == 'hf' and not torch_env.active():
        os.execv(torch_env.PYTHON, [torch_env.PYTHON, *sys.argv])
    if args.worker:
        if args.worker == 'gluonbert':
            start_amp()
        run_worker(WORKERS[args.worker], args.steps, args.profile_steps)
        return
    check_amp(parser, args.amp)
    runs = d2l_and_gluonbert(args.amp)
    skipped = add_hf_row(runs, args.no_torch)
    rows = compare(__file__, runs, ['--steps', args.steps], args.repeats, BATCH,
                   'examples_per_sec')
    print_table(f'fine-tuning step, BERTClassifier, batch {BATCH} x {SEQ_LEN}, '
                f'{args.repeats} fresh processes each', rows, 'd2l (defaults)',
                extra=('examples_per_sec', 'peak_rss_mib'))
    speedups = print_speedups(rows, args.amp)
    payload = dict(config=CONFIG, batch=BATCH, seq_len=SEQ_LEN, python=sys.version.split()[0],
                   amp=args.amp, results=rows, gluonbert_speedup=speedups,
                   hf_skipped=skipped)
    if args.profile:
        payload['profiles'] = profiles(__file__, [name for name in WORKERS if name != 'hf'],
                                       ['--steps', WARMUP + 1], env=amp_environment(args.amp))
    write_json('finetune_step.json', payload)


if __name__ == '__main__':
    main()
