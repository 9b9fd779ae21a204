"""Few-sample fine-tuning: BERT's Adam without bias correction vs AdamW, with and without
per-layer learning rates.

Zhang et al. (2021, "Revisiting Few-sample BERT Fine-tuning") found BERTAdam's missing bias
correction makes fine-tuning on few samples unstable. Here: a small BERT pretrained by
gluonbert on WikiText-2 (``python -m gluonbert pretrain --steps 300 --batch-size 128``, run
by this script when the folder is missing), fine-tuned on 1,000 real SNLI pairs (a fixed
random sample of the dev split) and evaluated on 2,000 pairs of the test split, for each
optimizer (``bertadam``, ``adamw``) x lr layout (one rate; layer-wise decay 0.8, which
keeps the new output layer at the full rate) x seed (the output layer's initialization,
dropout and batch order). The same architecture randomly initialized is the control: it tells
whether the pretrained encoder helps at all. The spread of the pooled ``<cls>`` features
across examples is printed for each start, since a collapsed encoder (the same ``<cls>``
vector for every input) cannot be fine-tuned in a few hundred updates. Prints the mean,
spread, minimum and maximum test accuracy and writes ``bench/results/fewshot_finetune.json``.

    python bench/fewshot_finetune.py [--seeds 3] [--epochs 5] [--lr 1e-3] [--pretrained DIR]
"""
import argparse
import os
import random
import statistics
import subprocess
import sys
import time

import mxnet as mx
import numpy as np
from mxnet import gluon, init

from gluonbert import BERTClassifier, BERTModel, load_pretrained_model
from gluonbert.data.nli import SNLIBERTDataset, read_snli_infersent
from gluonbert.train.trainer import BERTTrainer
from harness import write_json

SNLI = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data', 'snli-1.0-devtest')
OPTIMIZERS = ('bertadam', 'adamw')
LAYOUTS = {'one lr': {}, 'layer-wise 0.8': {'layerwise_decay': 0.8}}
INITS = ('pretrained', 'random')


def pretrain(folder):
    print(f'pretraining a small BERT into {folder} (300 steps of 128 pairs)', flush=True)
    subprocess.run([sys.executable, '-m', 'gluonbert', 'pretrain', '--steps', '300',
                    '--batch-size', '128', '--out', folder], check=True)


def subset(split, count, seed):
    premises, hypotheses, labels = read_snli_infersent(SNLI, split)
    keep = np.random.RandomState(seed).permutation(len(labels))[:count]
    return ([premises[i] for i in keep], [hypotheses[i] for i in keep],
            [labels[i] for i in keep])


def as_arrays(dataset):
    return (dataset.all_token_ids, dataset.all_segments, dataset.valid_lens, dataset.labels)


def accuracy(net, arrays, batch_size=250):
    correct = 0
    for begin in range(0, len(arrays[3]), batch_size):
        tokens, segments, valid_lens, labels = (a[begin:begin + batch_size] for a in arrays)
        logits = net((mx.nd.array(tokens), mx.nd.array(segments), mx.nd.array(valid_lens)))
        correct += int((logits.argmax(axis=1).asnumpy() == labels).sum())
    return correct / len(arrays[3])


def start_from(folder, start):
    """The pretrained BERT of ``folder``, or (``start='random'``) its architecture freshly
    initialized."""
    bert, _ = load_pretrained_model(folder, dropout=0.1)
    if start == 'random':
        config = dict(bert.config, dropout=0.1)
        bert = BERTModel(**config)
        bert.initialize(init.Xavier())
    return bert


def cls_spread(bert, arrays, count=200):
    """The mean over features of the standard deviation across examples of the pooled
    ``<cls>`` vector: near 0 when the encoder gives every input the same ``<cls>``."""
    tokens, segments, valid_lens = (mx.nd.array(a[:count]) for a in arrays[:3])
    encoded, _, _ = bert(tokens, segments, valid_lens)
    return float(bert.hidden(encoded[:, 0, :]).asnumpy().std(axis=0).mean())


def fine_tune(folder, train, test, start, optimizer, layout, seed, args):
    """Test accuracy and mean training loss of the last epoch of one run."""
    random.seed(seed)
    np.random.seed(seed)
    mx.random.seed(seed)
    bert = start_from(folder, start)
    net = BERTClassifier(bert)
    net.output.initialize(init.Xavier())
    net.hybridize(static_alloc=True, static_shape=True)
    updates = args.epochs * (len(train[3]) // args.batch_size)
    trainer = BERTTrainer(net, optimizer, lr=args.lr, wd=0.01, schedule='linear',
                          warmup_steps=updates // 10, num_training_steps=updates, seed=seed,
                          quiet=True, **LAYOUTS[layout])
    loss_fn = gluon.loss.SoftmaxCELoss()
    order_rng = np.random.RandomState(seed)
    for _ in range(args.epochs):
        order, losses = order_rng.permutation(len(train[3])), []
        for begin in range(0, len(order) - args.batch_size + 1, args.batch_size):
            index = order[begin:begin + args.batch_size]
            tokens, segments, valid_lens, labels = (mx.nd.array(a[index]) for a in train)
            with mx.autograd.record():
                loss = loss_fn(net((tokens, segments, valid_lens)), labels).sum()
            trainer.backward(loss)
            trainer.step(args.batch_size)
            losses.append(float(loss.asnumpy()) / args.batch_size)
    return accuracy(net, test), statistics.mean(losses)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--pretrained', default='runs/fewshot/pretrained')
    parser.add_argument('--seeds', type=int, default=3)
    parser.add_argument('--epochs', type=int, default=5)
    parser.add_argument('--batch-size', type=int, default=25)
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument('--inits', nargs='+', choices=INITS, default=list(INITS))
    parser.add_argument('--train-size', type=int, default=1000)
    parser.add_argument('--test-size', type=int, default=2000)
    parser.add_argument('--max-len', type=int, default=48)
    args = parser.parse_args()
    if not os.path.isfile(os.path.join(args.pretrained, 'pretrained.params')):
        pretrain(args.pretrained)
    _, vocab = load_pretrained_model(args.pretrained)
    train = as_arrays(SNLIBERTDataset(subset('dev', args.train_size, 0), args.max_len, vocab))
    test = as_arrays(SNLIBERTDataset(subset('test', args.test_size, 0), args.max_len, vocab))
    majority = max(np.bincount(test[3].astype(int))) / len(test[3])
    spreads = {}
    for start in args.inits:
        mx.random.seed(0)
        spreads[start] = cls_spread(start_from(args.pretrained, start), train)
        print(f'{start} encoder: pooled <cls> spread across examples {spreads[start]:.2e}')
    runs, clock = [], time.perf_counter()
    conditions = [(start, optimizer, layout) for start in args.inits
                  for optimizer in OPTIMIZERS for layout in LAYOUTS]
    for start, optimizer, layout in conditions:
        for seed in range(args.seeds):
            acc, loss = fine_tune(args.pretrained, train, test, start, optimizer, layout, seed,
                                  args)
            runs.append(dict(start=start, optimizer=optimizer, layout=layout, seed=seed,
                             accuracy=acc, final_train_loss=loss))
            print(f'{start:<11}{optimizer:<9} {layout:<15} seed {seed}: test accuracy '
                  f'{acc:.4f}, last-epoch train loss {loss:.4f}', flush=True)
    rows = []
    print(f'\nSNLI, {args.train_size} training pairs, {args.test_size} test pairs (majority class '
          f'{majority:.3f}); {args.epochs} epochs, batch {args.batch_size}, lr {args.lr}, '
          f'linear schedule with 10% warmup, wd 0.01, {args.seeds} seeds')
    print(f'{"start":<11}{"optimizer":<10}{"lr layout":<16}{"mean":>8}{"std":>8}{"min":>8}'
          f'{"max":>8}{"train loss":>12}')
    for condition in conditions:
        chosen = [r for r in runs if (r['start'], r['optimizer'], r['layout']) == condition]
        accs = [r['accuracy'] for r in chosen]
        row = dict(zip(('start', 'optimizer', 'layout'), condition),
                   mean=statistics.mean(accs),
                   std=statistics.stdev(accs) if len(accs) > 1 else 0.0, min=min(accs),
                   max=max(accs),
                   train_loss=statistics.mean(r['final_train_loss'] for r in chosen))
        rows.append(row)
        print(f'{row["start"]:<11}{row["optimizer"]:<10}{row["layout"]:<16}{row["mean"]:>8.4f}'
              f'{row["std"]:>8.4f}{row["min"]:>8.4f}{row["max"]:>8.4f}{row["train_loss"]:>12.4f}')
    elapsed = time.perf_counter() - clock
    print(f'{len(runs)} fine-tuning runs in {elapsed:.0f} s')
    write_json('fewshot_finetune.json', dict(config=vars(args), majority_class=majority,
                                             cls_spread=spreads, summary=rows, runs=runs,
                                             seconds=elapsed))


if __name__ == '__main__':
    main()
