"""Serve an exported gluonbert sentence-pair head with numpy and onnxruntime only (no MXNet).

    python export/predict.py FOLDER [PAIRS.tsv | -] [--int8] [--batch-size 32] [--max-len N]

FOLDER is what ``gluonbert.export.export_onnx`` wrote. Each input line is
``premise<TAB>hypothesis`` (blank lines are skipped); pairs are tokenized exactly as d2l's
NLI chapter trains (``SNLIBERTDataset``): lowercase, whitespace split, '<unk>' for unknown
tokens, the pair truncated from its longer side to max_len - 3 tokens, then
``<cls> premise <sep> hypothesis <sep>`` with segments 0 then 1. Output is TSV on stdout: a
header, then per pair the predicted label and the probability of each label (classification)
or the score (regression).
"""
import argparse
import json
import os
import sys

import numpy as np
import onnxruntime as ort

MODEL_FILE, INT8_FILE = 'model.onnx', 'model.int8.onnx'
SPECIALS = ('<unk>', '<pad>', '<cls>', '<sep>')
TASKS = ('classification', 'regression')


class ExportFolderError(ValueError):
    """The folder is not a usable export, or does not fit the request."""


class InputFormatError(ValueError):
    """An input line that is not ``premise<TAB>hypothesis``; names the source and line."""


class Predictor:
    """An exported pair head with its vocabulary, labels and max_len, read from ``folder``."""

    def __init__(self, folder, int8=False, max_len=None, threads=None):
        path = os.path.join(folder, INT8_FILE if int8 else MODEL_FILE)
        if not os.path.isfile(path):
            hint = ' (export with quantize=True to get one)' if int8 else ''
            raise ExportFolderError(f'{path} not found: {folder!r} is not a gluonbert ONNX '
                                    f'export folder{hint}')
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
        meta = {k: json.loads(v) for k, v in
                self.session.get_modelmeta().custom_metadata_map.items()}
        if meta.get('task') not in TASKS:
            raise ExportFolderError(f"{path} holds a {meta.get('head')} "
                                    f"(task {meta.get('task')!r}); predict.py serves "
                                    f"sentence-pair {' and '.join(TASKS)} heads")
        if not meta.get('tokenization'):
            raise ExportFolderError(f'{path}: the vocabulary lacks d2l\'s special tokens '
                                    f'{SPECIALS}, so its pairs cannot be tokenized as d2l does')
        self.task, self.exported_max_len = meta['task'], meta['max_len']
        self.vocab = _matching_json(folder, 'vocab.json', meta['vocab'])
        self.label_names = meta['label_names']
        if self.label_names is not None:
            self.label_names = _matching_json(folder, 'labels.json', self.label_names)
        self.max_len = self.exported_max_len if max_len is None else max_len
        if not 5 <= self.max_len <= self.exported_max_len:
            raise ExportFolderError(
                f'max_len={self.max_len}: expected 5 to {self.exported_max_len}, the max_len '
                f'the model was exported and verified for (room for <cls>, <sep>, <sep> and '
                f'one token of each sentence)')
        self.token_to_idx = {token: idx for idx, token in enumerate(self.vocab)}
        self.output_name = self.session.get_outputs()[0].name

    def encode(self, premise, hypothesis):
        """Token ids and segments of one pair, as d2l's ``SNLIBERTDataset``."""
        p_tokens, h_tokens = premise.lower().split(), hypothesis.lower().split()
        # Reserve slots for '<cls>', '<sep>' and '<sep>'; pop from the longer sentence
        while len(p_tokens) + len(h_tokens) > self.max_len - 3:
            if len(p_tokens) > len(h_tokens):
                p_tokens.pop()
            else:
                h_tokens.pop()
        tokens = ['<cls>'] + p_tokens + ['<sep>'] + h_tokens + ['<sep>']
        segments = [0] * (len(p_tokens) + 2) + [1] * (len(h_tokens) + 1)
        unk = self.token_to_idx['<unk>']
        return [self.token_to_idx.get(token, unk) for token in tokens], segments

    def batch(self, pairs):
        """``{'tokens', 'segments', 'valid_lens'}`` int64 arrays, padded to the longest pair."""
        encoded = [self.encode(p, h) for p, h in pairs]
        width = max(len(ids) for ids, _ in encoded)
        tokens = np.full((len(encoded), width), self.token_to_idx['<pad>'], dtype=np.int64)
        segments = np.zeros((len(encoded), width), dtype=np.int64)
        for row, (ids, segs) in enumerate(encoded):
            tokens[row, :len(ids)], segments[row, :len(segs)] = ids, segs
        lens = np.array([len(ids) for ids, _ in encoded], dtype=np.int64)
        return {'tokens': tokens, 'segments': segments, 'valid_lens': lens}

    def predict(self, pairs):
        """Per pair: (label, probabilities) for classification, (None, score) for regression."""
        output = self.session.run([self.output_name], self.batch(pairs))[0].astype(np.float64)
        if self.task == 'regression':
            return [(None, float(score)) for score in output.reshape(-1)]
        probs = np.exp(output - output.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        return [(self.label_names[int(row.argmax())], row) for row in probs]

    def header(self):
        if self.task == 'regression':
            return (self.label_names or ['score'])[0]
        return '\t'.join(['label'] + [f'p_{name}' for name in self.label_names])


def _matching_json(folder, name, embedded):
    """The JSON file ``name`` of ``folder``, which must equal what the model embeds."""
    path = os.path.join(folder, name)
    with open(path, encoding='utf-8') as f:
        value = json.load(f)
    if value != embedded:
        raise ExportFolderError(f'{path} differs from the {name[:-5]} embedded in the model '
                                f'(metadata_props); the folder mixes files of two exports')
    return value


def read_pairs(lines, source):
    """``(premise, hypothesis)`` from ``premise<TAB>hypothesis`` lines; blank lines skipped."""
    pairs = []
    for number, line in enumerate(lines, 1):
        line = line.rstrip('\r\n')
        if not line.strip():
            continue
        fields = line.split('\t')
        if len(fields) != 2:
            raise InputFormatError(f'{source}, line {number}: expected premise<TAB>hypothesis '
                                   f'(one tab), found {len(fields) - 1} tabs: {line[:60]!r}')
        pairs.append((fields[0], fields[1]))
    return pairs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('folder', help='the folder written by gluonbert.export.export_onnx')
    parser.add_argument('pairs', nargs='?', default='-',
                        help='TSV file of premise<TAB>hypothesis lines (default: stdin)')
    parser.add_argument('--int8', action='store_true', help='use model.int8.onnx')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--max-len', type=int, default=None,
                        help='truncate pairs to this many tokens (default and maximum: the '
                             'exported max_len)')
    parser.add_argument('--threads', type=int, default=None, help='onnxruntime intra-op threads')
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f'--batch-size {args.batch_size}: expected at least 1')
    try:
        predictor = Predictor(args.folder, args.int8, args.max_len, args.threads)
        if args.pairs == '-':
            pairs = read_pairs(sys.stdin, 'stdin')
        else:
            with open(args.pairs, encoding='utf-8') as f:
                pairs = read_pairs(f, args.pairs)
    except (ExportFolderError, InputFormatError, OSError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    print(predictor.header())
    for start in range(0, len(pairs), args.batch_size):
        for label, values in predictor.predict(pairs[start:start + args.batch_size]):
            if label is None:
                print(f'{values:.6f}')
            else:
                print('\t'.join([label] + [f'{p:.6f}' for p in values]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
