"""How closely onnxruntime matches MXNet, per head type, through ``export_onnx``.

Every head over one d2l-``bert.small``-sized BERT (2 blocks, 256 hidden, 4 heads, 512 FFN,
the vocabulary of gluonbert's embedded SNLI slice, random weights), exported and verified by
``export_onnx`` on random batches (lengths 1 to max_len, batch sizes 1 to 5) and on real SNLI
test pairs; prints the max abs difference of each head's outputs (also beyond float32
resolution, which the export's tolerance bounds) and of its dynamic-int8 model; writes JSON.

    python bench/onnx_heads.py [--max-len 128]
"""
import argparse
import os
import sys
import tempfile

import gluonbert
import mxnet as mx
from mxnet import init

from gluonbert.data.nli import LABELS, SNLIBERTDataset, embedded_snli_dir, read_snli_infersent
from gluonbert.export import export_onnx
from gluonbert.model.heads import (BERTForMultipleChoice, BERTForQuestionAnswering,
                                   BERTForSequenceClassification, BERTForTokenClassification)
from harness import write_json

SMALL = dict(num_hiddens=256, ffn_num_hiddens=512, num_heads=4, num_blks=2, dropout=0.1)
HEADS = {  # name: (head of a bert, label names, takes pair examples)
    'BERTClassifier (d2l)': (lambda bert: gluonbert.BERTClassifier(bert, 3), LABELS, True),
    'sequence classification': (lambda bert: BERTForSequenceClassification(bert, 3), LABELS,
                                True),
    'regression': (lambda bert: BERTForSequenceClassification(bert, 1), ('relatedness',), True),
    'token classification': (lambda bert: BERTForTokenClassification(bert, 5),
                             ('O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC'), True),
    'question answering': (lambda bert: BERTForQuestionAnswering(bert), None, True),
    'multiple choice': (lambda bert: BERTForMultipleChoice(bert), None, False),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--max-len', type=int, default=128)
    args = parser.parse_args()
    dev = read_snli_infersent(embedded_snli_dir(), 'dev')
    test = read_snli_infersent(embedded_snli_dir(), 'test')
    vocab = SNLIBERTDataset(dev, args.max_len).vocab
    data = SNLIBERTDataset(tuple(column[:64] for column in test), args.max_len, vocab)
    examples = (data.all_token_ids, data.all_segments, data.valid_lens)
    mx.random.seed(0)
    bert = gluonbert.BERTModel(len(vocab), **SMALL, max_len=args.max_len)
    bert.initialize(init.Xavier())
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, (make, labels, pairs) in HEADS.items():
            head = make(bert)
            head.output.initialize(init.Xavier())
            report = export_onnx(head, os.path.join(folder, str(len(rows))), vocab, labels,
                                 args.max_len, examples=examples if pairs else None,
                                 quantize=True)
            shapes = sorted({'x'.join(map(str, b['shape'])) for b in report.verification.batches})
            rows[name] = dict(outputs=list(report.outputs), max_abs_diff=report.max_abs_diff,
                              beyond_float32=report.verification.max_beyond_float32,
                              int8_max_abs_diff=report.int8_max_abs_diff, batches=shapes)
    print(f'max |onnxruntime - MXNet| per head, bert.small size, random weights, max_len '
          f'{args.max_len}')
    print(f'{"head":<26}{"outputs":<28}{"float32":>10}{"beyond fp32":>13}{"int8":>10}')
    for name, row in rows.items():
        print(f'{name:<26}{", ".join(row["outputs"]):<28}{row["max_abs_diff"]:>10.1e}'
              f'{row["beyond_float32"]:>13.1e}{row["int8_max_abs_diff"]:>10.1e}')
    write_json('onnx_heads.json', dict(config=dict(SMALL, vocab_size=len(vocab),
                                                   max_len=args.max_len),
                                       python=sys.version.split()[0], heads=rows))


if __name__ == '__main__':
    main()
