"""Own-corpus pretraining: d2l's word vocabulary against a learned WordPiece vocabulary.

WikiText-2 train (as docs/data.md says it is found, or ``--corpus``) goes through the corpus
pipeline (``gluonbert.data.preprocess``: one document per line, BERT's packing, 5% of the
documents held out with fixed masks) twice, each in a fresh process:

- ``words``: d2l's word vocabulary (words seen 5 times or more, BERT's basic tokenization);
- ``wordpiece``: a WordPiece vocabulary of ``--vocab-size`` (30k) learned from the corpus
  with HF's ``tokenizers``.

Each run prints the vocabulary's size and unknown rate, the time to build the vocabulary and
to preprocess, the training throughput in (non-padding) tokens per second over ``--steps``
updates of the chapter's model (after two warm-up steps), the peak RSS, and the validation
MLM loss, perplexity and accuracies after that fixed budget. The two perplexities are over
different units (words against pieces) and compare only roughly.

    python bench/pretrain_corpus.py [--steps 300] [--batch-size 64] [--max-len 128]
        [--vocab-size 30000] [--corpus FILE] [--smoke]
"""
import argparse
import json
import os
import sys
import tempfile
import time

from harness import fresh_runs, peak_rss_mib, write_json

# The chapter's model
MODEL = dict(num_hiddens=128, ffn_num_hiddens=256, num_heads=2, num_blks=2, dropout=0.2)
WARMUP = 2


def default_corpus():
    from gluonbert.data.locate import TRAIN_FILE, locate_wikitext2
    return os.path.join(locate_wikitext2(download=False), TRAIN_FILE)


def run(args):
    import mxnet as mx
    import numpy as np
    from mxnet import gluon, init

    from gluonbert import BERTModel
    from gluonbert.data.corpus import CorpusSource
    from gluonbert.data.corpus_vocab import corpus_vocab
    from gluonbert.data.preprocess import PreprocessSettings, describe, preprocess
    from gluonbert.data.shards import ShardedDataset
    from gluonbert.train.pretrain import train_bert
    from gluonbert.train.pretrain_validation import evaluate_pretraining

    sources = [CorpusSource(args.corpus, doc_per_line=True)]
    start = time.perf_counter()
    vocab, tokenizer = corpus_vocab(
        sources, learn_size=args.vocab_size if args.worker == 'wordpiece' else None)
    vocab_seconds = time.perf_counter() - start
    folder = os.path.join(tempfile.mkdtemp(prefix='pretrain_corpus-'), 'data')
    settings = PreprocessSettings(max_len=args.max_len, valid_fraction=0.05)
    start = time.perf_counter()
    meta = preprocess(sources, vocab, tokenizer, folder, settings, progress=False)
    preprocess_seconds = time.perf_counter() - start
    print('\n'.join(describe(meta)), file=sys.stderr)
    train, valid = ShardedDataset(folder), ShardedDataset(folder, 'valid')

    order = np.random.default_rng(0).permutation(len(train))
    batches = [order[i:i + args.batch_size]
               for i in range(0, len(order) - args.batch_size + 1, args.batch_size)]
    tokens = [float(train[b][2].sum()) for b in batches[:args.steps + WARMUP]]

    class Batches:
        def __iter__(self):
            for indices in batches:
                yield tuple(mx.nd.array(a) for a in train[indices])

    mx.random.seed(0)
    net = BERTModel(len(vocab), max_len=args.max_len, **MODEL)
    net.initialize(init.Xavier())
    trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': 1e-3})
    stamps = []
    train_bert(Batches(), net, gluon.loss.SoftmaxCELoss(), len(vocab), [mx.cpu()],
               args.steps + WARMUP, trainer=trainer, quiet=True,
               on_step=lambda *_: stamps.append(time.perf_counter()))
    mx.nd.waitall()
    # Steps are reported one late; time from the warm-up's last report to the last one
    seconds = stamps[-1] - stamps[WARMUP - 1]
    metrics = evaluate_pretraining(net, valid, [mx.cpu()])
    print(json.dumps(dict(vocab_size=len(vocab), unknown_rate=meta['vocab']['unknown_rate'],
                          vocab_seconds=vocab_seconds, preprocess_seconds=preprocess_seconds,
                          train_examples=len(train), valid_examples=len(valid),
                          tokens_per_sec=sum(tokens[WARMUP:]) / seconds, rss=peak_rss_mib(),
                          **metrics)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--worker', choices=['words', 'wordpiece'])
    parser.add_argument('--steps', type=int, default=300)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--max-len', type=int, default=128)
    parser.add_argument('--vocab-size', type=int, default=30000)
    parser.add_argument('--corpus', help='a text file, one document per line (default: '
                        'WikiText-2 train)')
    parser.add_argument('--smoke', action='store_true', help='a quick check that the script '
                        'runs: the embedded WikiText slice, 2 steps, a 2k vocabulary')
    args = parser.parse_args()
    if args.smoke:
        from gluonbert.data import embedded_slice_dir
        args.corpus = os.path.join(embedded_slice_dir(), 'wiki.train.tokens')
        args.steps, args.vocab_size, args.max_len = 2, 2000, 64
    args.corpus = args.corpus or default_corpus()
    if args.worker:
        return run(args)
    forwarded = ['--steps', args.steps, '--batch-size', args.batch_size, '--max-len',
                 args.max_len, '--vocab-size', args.vocab_size, '--corpus', args.corpus]
    rows = {name: fresh_runs(__file__, name, forwarded, repeats=1)[0]
            for name in ('words', 'wordpiece')}
    print(f'{args.corpus}: {args.steps} updates of batch {args.batch_size}, max_len '
          f'{args.max_len}')
    columns = ('vocab_size', 'unknown_rate', 'vocab_seconds', 'preprocess_seconds',
               'tokens_per_sec', 'rss', 'mlm_loss', 'perplexity', 'mlm_accuracy',
               'nsp_accuracy')
    print(f'{"vocabulary":<12}' + ''.join(f'{c:>19}' for c in columns))
    for name, row in rows.items():
        print(f'{name:<12}' + ''.join(f'{row[c]:>19.4g}' for c in columns))
    if not args.smoke:
        write_json('pretrain_corpus.json', dict(args=vars(args), rows=rows))


if __name__ == '__main__':
    main()
