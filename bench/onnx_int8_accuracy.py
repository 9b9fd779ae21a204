"""What dynamic int8 quantization costs on real SNLI: accuracy and speed of the two exports.

A d2l-``bert.small``-sized classifier (2 blocks, 256 hidden, 4 heads, 512 FFN; from a
pretrained folder with ``--pretrained``, else from random initialization) is fine-tuned briefly
on SNLI dev (the full train split is not available here), as the d2l chapter does
(``SNLIBERTDataset``, Adam, cross-entropy), exported with ``quantize=True`` and real test
pairs as verification examples, and the three are scored on the whole SNLI test split: MXNet,
onnxruntime on ``model.onnx``, onnxruntime on ``model.int8.onnx``. Prints the accuracies,
the int8 accuracy delta, how often the two exports agree, and their speed on the test split;
writes JSON.

    python bench/onnx_int8_accuracy.py [--epochs 2] [--max-len 64] [--pretrained FOLDER]
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

import gluonbert
import mxnet as mx
import numpy as np
from mxnet import autograd, gluon, init

from gluonbert.data.nli import LABELS, SNLIBERTDataset, read_snli_infersent
from gluonbert.export import export_onnx, inference_session
from harness import write_json

SNLI = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'shared', 'data',
                    'snli-1.0-devtest')
SMALL = dict(num_hiddens=256, ffn_num_hiddens=512, num_heads=4, num_blks=2, dropout=0.1)
BATCH = 64


def classifier(args, train):
    """The classifier and its vocabulary: pretrained, or fresh with the data's vocabulary."""
    if args.pretrained:
        bert, vocab = gluonbert.load_pretrained_model(args.pretrained, dropout=SMALL['dropout'])
    else:
        vocab = SNLIBERTDataset(train, args.max_len).vocab  # d2l: min_freq 5, reserved tokens
        mx.random.seed(args.seed)
        bert = gluonbert.BERTModel(len(vocab), **SMALL, max_len=args.max_len)
        bert.initialize(init.Xavier())
    net = gluonbert.BERTClassifier(bert, len(LABELS))
    net.output.initialize(init.Xavier())
    return net, vocab


def fine_tune(net, dataset, epochs, lr):
    loader = gluon.data.DataLoader(dataset, BATCH, shuffle=True)
    trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': lr})
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    net.hybridize(static_alloc=True)
    for epoch in range(epochs):
        start, total, count = time.perf_counter(), 0.0, 0
        for (tokens, segments, valid_lens), labels in loader:
            with autograd.record():
                l = loss(net((tokens, segments, valid_lens)), labels)
            l.backward()
            trainer.step(labels.shape[0])
            total, count = total + float(l.sum().asscalar()), count + labels.shape[0]
        print(f'epoch {epoch + 1}: loss {total / count:.3f} ({time.perf_counter() - start:.0f} s)')


def mxnet_predictions(net, data):
    out = []
    for start in range(0, len(data), 256):
        batch = (data.all_token_ids[start:start + 256], data.all_segments[start:start + 256],
                 data.valid_lens[start:start + 256])
        out.append(net(tuple(mx.nd.array(a, dtype=a.dtype) for a in batch)).asnumpy())
    return np.concatenate(out).argmax(axis=1)


def onnx_predictions(path, data):
    """Predicted labels and seconds, batches of 256 cut to their longest pair (as served)."""
    session = inference_session(path)
    out, start_time = [], time.perf_counter()
    for start in range(0, len(data), 256):
        lens = data.valid_lens[start:start + 256].astype(np.int64)
        width = int(lens.max())
        feeds = {'tokens': data.all_token_ids[start:start + 256, :width].astype(np.int64),
                 'segments': data.all_segments[start:start + 256, :width].astype(np.int64),
                 'valid_lens': lens}
        out.append(session.run(None, feeds)[0])
    return np.concatenate(out).argmax(axis=1), time.perf_counter() - start_time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--epochs', type=int, default=2)
    parser.add_argument('--max-len', type=int, default=64)
    parser.add_argument('--lr', type=float, default=1e-4)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--pretrained', help='a pretrained folder (vocab.json, pretrained.params)')
    parser.add_argument('--data', default=SNLI, help='SNLI in the InferSent format')
    args = parser.parse_args()
    train, test = read_snli_infersent(args.data, 'dev'), read_snli_infersent(args.data, 'test')
    net, vocab = classifier(args, train)
    train_data = SNLIBERTDataset(train, args.max_len, vocab)
    test_data = SNLIBERTDataset(test, args.max_len, vocab)
    fine_tune(net, train_data, args.epochs, args.lr)
    labels = np.asarray(test_data.labels)
    folder = tempfile.mkdtemp(prefix='onnx-int8-')
    try:
        examples = (test_data.all_token_ids[:64], test_data.all_segments[:64],
                    test_data.valid_lens[:64])
        report = export_onnx(net, os.path.join(folder, 'snli'), vocab, LABELS, args.max_len,
                             examples=examples, quantize=True)
        print(report)
        mxnet_pred = mxnet_predictions(net, test_data)
        fp32_pred, fp32_s = onnx_predictions(os.path.join(folder, 'snli', 'model.onnx'),
                                             test_data)
        int8_pred, int8_s = onnx_predictions(os.path.join(folder, 'snli', 'model.int8.onnx'),
                                             test_data)
    finally:
        shutil.rmtree(folder)
    accuracy = {name: float((pred == labels).mean()) for name, pred in
                (('mxnet', mxnet_pred), ('onnx_fp32', fp32_pred), ('onnx_int8', int8_pred))}
    agreement = float((fp32_pred == int8_pred).mean())
    print(f'SNLI test ({len(labels)} pairs), max_len {args.max_len}, '
          f'{"pretrained " + args.pretrained if args.pretrained else "random init"}, '
          f'{args.epochs} epochs on dev')
    print(f'{"model":<22}{"accuracy":>10}{"seconds":>10}{"pairs/s":>10}')
    print(f'{"MXNet":<22}{accuracy["mxnet"]:>10.4f}')
    for name, seconds in (('onnx_fp32', fp32_s), ('onnx_int8', int8_s)):
        print(f'{"onnxruntime " + name[5:]:<22}{accuracy[name]:>10.4f}{seconds:>10.2f}'
              f'{len(labels) / seconds:>10.0f}')
    delta = accuracy['onnx_int8'] - accuracy['onnx_fp32']
    print(f'int8 accuracy delta {delta:+.4f}; int8 and fp32 agree on {agreement:.2%} of pairs; '
          f'int8 {fp32_s / int8_s:.2f}x the speed of fp32')
    write_json('onnx_int8_accuracy.json', dict(
        config=dict(SMALL, max_len=args.max_len, epochs=args.epochs, lr=args.lr,
                    pretrained=args.pretrained, seed=args.seed, batch=BATCH),
        test_pairs=len(labels), accuracy=accuracy, int8_accuracy_delta=delta,
        int8_fp32_agreement=agreement, seconds=dict(onnx_fp32=fp32_s, onnx_int8=int8_s),
        export_max_abs_diff=report.max_abs_diff, int8_max_abs_diff=report.int8_max_abs_diff,
        python=sys.version.split()[0]))


if __name__ == '__main__':
    main()
