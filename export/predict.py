"""Serve an exported gluonbert head with numpy and onnxruntime only (no MXNet).

    python export/predict.py FOLDER [INPUT | -] [--int8 | --model-file NAME] [--batch-size 32]
                             [--max-len N]

FOLDER is what ``gluonbert export`` (``gluonbert.export.export_onnx``) wrote. Input lines,
by the task of the exported head (blank lines are skipped; ``gluonbert.tasks.serving``):

- classification, regression: ``text`` or ``text_a<TAB>text_b``; output TSV: a header, then
  the label and each label's probability (``p_<label>`` columns), or the score;
- token classification: one sentence per line, words separated by spaces; output CoNLL:
  ``word<TAB>tag`` lines, a blank line after each sentence;
- question answering: ``question<TAB>context``, long contexts windowed with the stride the
  model was trained with; output TSV: ``answer``, ``probability``, ``score``,
  ``start_char``, ``end_char`` (the answer is ``context[start_char:end_char]``);
- multiple choice: ``context<TAB>question<TAB>ending0<TAB>ending1...`` (the question may be
  empty; as many endings on every line); output TSV: ``choice`` (the index of the chosen
  ending), then ``p_0`` ... ``p_<N-1>``.

Text is tokenized by the tokenizer saved with the model (``tokenizer.json``: vocabulary,
lower-casing, accent stripping, WordPiece or whitespace) and encoded by the same code as in
training (``gluonbert.data.tokenization``, ``gluonbert.tasks``, which import no MXNet), with
the task settings saved in the model (question answering: windows and span length), so
serving sees the token ids that training saw. Lines run in batches of ``--batch-size`` rows
of about one length, each cut to its longest row (``gluonbert.tasks.inference``, the plan of
``gluonbert predict``), and are printed in their input order.

``--model-file`` picks the graph: ``model.onnx`` (the default, verified against MXNet at export),
``model.int8.onnx`` (what ``--int8`` serves), or onnxruntime's optimised graphs that
``export/optimize.py`` writes into the folder (``model.opt.onnx``, ``model.opt.int8.onnx``:
the fastest here). All of them are served with the same tokenizer, vocabulary and task settings.
"""
import argparse
import json
import os
import re
import sys

import numpy as np
import onnxruntime as ort

try:
    import gluonbert.tasks  # noqa: F401
except ImportError:  # run from a checkout: gluonbert sits beside export/
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gluonbert.data.tokenization import tokenizer_from_description  # noqa: E402
from gluonbert.data.vocab import Vocab  # noqa: E402
from gluonbert.tasks import SERVED, TaskDataError, rebuilt_task  # noqa: E402
from gluonbert.tasks.inference import length_batches, outputs_in_row_order  # noqa: E402
from gluonbert.tasks.serving import examples_from_lines, read_lines  # noqa: E402

MODEL_FILE, INT8_FILE = 'model.onnx', 'model.int8.onnx'
OPTIONAL_FILES = {  # the graphs an export folder may hold beside model.onnx, and their maker
    INT8_FILE: 'export with quantize=True to get one',
    'model.opt.onnx': 'export/optimize.py writes it into the export folder',
    'model.opt.int8.onnx': 'export/optimize.py writes it into the export folder',
}
MODEL_FILES = (MODEL_FILE, *OPTIONAL_FILES)
SORTED_BATCHES = 64
SERVED_METADATA = ('head', 'task', 'task_settings', 'max_len', 'tokenizer', 'vocab', 'label_names')


def session_options(threads=None):
    """The onnxruntime options a ``Predictor`` serves with: every graph optimization, warnings
    off, ``threads`` intra-op threads (default: onnxruntime's, one per physical core)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    return options


class ExportFolderError(ValueError):
    """The folder is not a usable export, or does not fit the request."""


class Predictor:
    """An exported head with its vocabulary, labels, tokenizer, max_len and task settings,
    read from ``folder``; ``predict(examples)`` gives the output lines of a batch."""

    def __init__(self, folder, model_file=MODEL_FILE, max_len=None, threads=None):
        if model_file not in MODEL_FILES:
            raise ExportFolderError(f'model_file={model_file!r}: expected one of '
                                    f'{", ".join(MODEL_FILES)}')
        path = os.path.join(folder, model_file)
        if not os.path.isfile(path):
            if model_file == MODEL_FILE or not os.path.isfile(os.path.join(folder, MODEL_FILE)):
                raise ExportFolderError(f'{path} not found: {folder!r} is not a gluonbert ONNX '
                                        f'export folder')
            raise ExportFolderError(f'{path} not found: {OPTIONAL_FILES[model_file]}')
        try:
            self.session = ort.InferenceSession(path, session_options(threads),
                                                providers=['CPUExecutionProvider'])
        except Exception as error:  # onnxruntime's Fail, InvalidProtobuf...: no common base
            code = re.search(r'\[ONNXRuntimeError\] : \d+ : (\w+)', str(error))
            raise ExportFolderError(
                f'{path} ({os.path.getsize(path)} bytes) is not a model onnxruntime can load '
                f'({code.group(1) if code else type(error).__name__}: empty, truncated or not '
                f'ONNX); export it again with gluonbert export') from None
        meta = _served_metadata(path, self.session.get_modelmeta().custom_metadata_map)
        task_name = str(meta.get('task')).replace('_', '-')  # exports say token_classification
        if task_name not in SERVED:
            raise ExportFolderError(f"{path} holds a {meta.get('head')} "
                                    f"(task {meta.get('task')!r}); predict.py serves "
                                    f"{', '.join(SERVED)} heads")
        self.exported_max_len = meta['max_len']
        self.vocab = Vocab.from_tokens(_matching_json(folder, 'vocab.json', meta['vocab']))
        self.label_names = meta['label_names']
        if self.label_names is not None:
            self.label_names = _matching_json(folder, 'labels.json', self.label_names)
        if not meta.get('tokenizer'):
            raise ExportFolderError(f'{path} records no tokenizer (its vocabulary lacks d2l\'s '
                                    f'special tokens and none was given to export_onnx), so '
                                    f'text cannot be tokenized as in training')
        description = _matching_json(folder, 'tokenizer.json', meta['tokenizer'])
        self.tokenizer = tokenizer_from_description(description, self.vocab)
        self.max_len = self.exported_max_len if max_len is None else max_len
        if not 5 <= self.max_len <= self.exported_max_len:
            raise ExportFolderError(
                f'max_len={self.max_len}: expected 5 to {self.exported_max_len}, the max_len '
                f'the model was exported and verified for (room for <cls>, <sep>, <sep> and '
                f'one token of each sentence)')
        try:
            self.task = rebuilt_task(task_name, meta.get('task_settings'), self.max_len)
        except ValueError as error:
            raise ExportFolderError(f'{path}: task_settings at max_len={self.max_len}: '
                                    f'{error}') from None
        self.output_names = [output.name for output in self.session.get_outputs()]

    def examples(self, numbered_lines, source):
        """Examples of ``(line number, line)`` pairs; blank lines skipped."""
        return examples_from_lines(self.task, numbered_lines, source)

    def predict(self, examples, batch_size=32):
        """The output lines of ``examples``, in their order."""
        features = self.task.encode(examples, self.tokenizer, self.vocab, self.max_len,
                                    self.label_names)
        return self.task.output_lines(examples, features, self.outputs(features, batch_size))

    def outputs(self, features, batch_size=32):
        """The model's outputs on every row of ``features`` (a tuple for several outputs), in
        the rows' order, computed in batches of rows of about one length
        (``gluonbert.tasks.inference.length_batches``, as ``gluonbert predict`` batches)."""
        def run(batch):
            return self.session.run(self.output_names, {
                name: array.astype(np.int64)
                for name, array in zip(('tokens', 'segments', 'valid_lens'), batch)})
        return outputs_in_row_order(length_batches(features.inputs, batch_size),
                                    features.tokens.shape[-1], run, self.task.token_pad)

    def header(self, examples):
        """The first output line for ``examples``, or None."""
        return self.task.output_header(self.label_names, examples)


def _served_metadata(path, metadata_map):
    """The export's metadata that serving reads, decoded from JSON; keys of other tools
    (onnxruntime's quantizer adds ``onnx.infer``) are left alone."""
    try:
        return {key: json.loads(value) for key, value in metadata_map.items()
                if key in SERVED_METADATA}
    except ValueError as error:
        raise ExportFolderError(f'{path}: its metadata_props are not the JSON values '
                                f'gluonbert export writes ({error})') from None


def _matching_json(folder, name, embedded):
    """The JSON file ``name`` of ``folder``, which must equal what the model embeds."""
    path = os.path.join(folder, name)
    try:
        with open(path, encoding='utf-8') as f:
            value = json.load(f)
    except (OSError, ValueError) as error:
        raise ExportFolderError(f'{path}: cannot read it ({error})') from None
    if value != embedded:
        raise ExportFolderError(f'{path} differs from the {name[:-5]} embedded in the model '
                                f'(metadata_props); the folder mixes files of two exports')
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('folder', help='the folder written by gluonbert export')
    parser.add_argument('input', nargs='?', default='-',
                        help='file of input lines (default: stdin); see the format above')
    graph = parser.add_mutually_exclusive_group()
    graph.add_argument('--int8', action='store_const', dest='model_file', const=INT8_FILE,
                       default=MODEL_FILE,
                       help=f'serve {INT8_FILE} (the same as --model-file {INT8_FILE})')
    graph.add_argument('--model-file', choices=list(MODEL_FILES), default=MODEL_FILE,
                       help='the graph of the folder to serve (default: %(default)s)')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--max-len', type=int, default=None,
                        help='truncate inputs to this many tokens (default and maximum: the '
                             'exported max_len)')
    parser.add_argument('--threads', type=int, default=None,
                        help="onnxruntime intra-op threads (default: onnxruntime's, one per "
                             "physical core; docs/export-and-serving.md measures both)")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f'--batch-size {args.batch_size}: expected at least 1')
    try:
        predictor = Predictor(args.folder, args.model_file, args.max_len, args.threads)
        source = 'stdin' if args.input == '-' else args.input
        if args.input == '-':
            data = sys.stdin.buffer.read()
        else:
            with open(args.input, 'rb') as f:
                data = f.read()
        examples = predictor.examples(read_lines(data, source), source)
    except (ExportFolderError, TaskDataError, OSError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    header = predictor.header(examples)
    if header is not None:
        print(header)
    # Lines are batched by length within chunks of SORTED_BATCHES batches: enough to group
    # them, while a long input is encoded a chunk at a time and printed as it goes
    chunk = args.batch_size * SORTED_BATCHES
    for start in range(0, len(examples), chunk):
        for line in predictor.predict(examples[start:start + chunk], args.batch_size):
            print(line)
    return 0


if __name__ == '__main__':
    sys.exit(main())
