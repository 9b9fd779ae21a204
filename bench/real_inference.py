"""Evaluation throughput and accuracy of a fine-tuned real checkpoint: gluonbert (MXNet) vs
HF transformers (torch) vs onnxruntime (plain, optimised, int8).

The models: all-MiniLM-L6-v2 fine-tuned on SST-2 (``gluonbert finetune`` with its defaults,
one epoch on the first ``--train-limit`` training sentences; or ``--model FOLDER``, a
``gluonbert finetune`` output) and BERT-base's geometry with random weights
(``real_finetune.bert_base_folder``; one update on 64 sentences makes it a task folder, its
accuracy is chance). Each is exported as users do it: ``gluonbert export --to hf`` (HF's
``BertForSequenceClassification`` folder), ``gluonbert export`` (ONNX, verified against MXNet)
and ``export/optimize.py`` in the deploy environment (``export/setup-deploy.sh``: onnxruntime's
transformer fusions, then its dynamic int8, smoothed from the first 1,000 SST-2 training
sentences (``--calibration``); those rows are skipped, with the reason, when the
environment cannot be made). Rows, each in a fresh process on the same token ids (SST-2 dev,
encoded once by gluonbert's task code), batches of ``--batch-size``:

- ``gluonbert fp32`` / ``gluonbert default``: ``Task.predict`` as ``gluonbert evaluate`` runs it
  (``hybridize_for_inference``: gluonbert's kernels, padding-free) with ``--amp off`` / its
  default ``--amp auto`` (bf16 on a CPU with AVX-512 BF16 and AMX on, for MiniLM's 384 hidden
  units);
- ``hf fp32`` / ``hf bf16 autocast``: the HF folder under ``torch.no_grad()`` (and
  ``torch.autocast('cpu', dtype=torch.bfloat16)``), batches in file order cut to their longest
  sentence (HF's default ``DataCollatorWithPadding``), as HF users run it;
  ``hf fp32 sorted``: the same on gluonbert's length-sorted batches, to show how
  much of a ratio is the batching (the ratios stay to ``hf fp32``);
- ``onnx plain`` / ``onnx optimised`` / ``onnx int8``: ``export/predict.py``'s ``Predictor`` as
  it serves (onnxruntime of the deploy environment, its session options) on ``model.onnx``,
  ``model.opt.onnx``, ``model.opt.int8.onnx``; the int8 row also reports the share of labels
  that differ from ``onnx optimised``'s (``labels_changed_vs_optimised``), steadier than
  the accuracy difference on 872 sentences.

gluonbert and the ONNX rows batch as they serve: ``gluonbert.tasks.inference.length_batches``,
rows longest first, each batch cut to its longest, outputs back in file order.

One untimed pass over the first two batches, then ``--passes`` timed passes over the whole
set (median kept). Accuracy is each row's argmax against SST-2 dev's labels. Prints one table
per model (ratios to ``hf fp32``) and writes ``bench/results/real_inference.json``.

    python bench/real_inference.py [--models minilm,bert-base] [--model FOLDER]
        [--train-limit 4000] [--batch-size 128] [--passes 2] [--bert-base-limit 256] [--quick]
        [--profile]

``--quick``: a smoke run (MiniLM fine-tuned on 64 sentences, 64 dev sentences, one pass).
``--profile``: after the timed passes, the ONNX rows run one more pass under onnxruntime's
profiler and print (and keep in the JSON) their kernel time by operator type.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import torch_env  # noqa: E402
from harness import gluonbert_command, ratio_table, write_json  # noqa: E402
from real_finetune import bert_base_folder, machine, minilm_folder  # noqa: E402

EXPORT = os.path.join(ROOT, 'export')
DEPLOY_PYTHON = os.path.join(EXPORT, '.venv-deploy', 'bin', 'python')
ROWS = ('gluonbert fp32', 'gluonbert default', 'hf fp32', 'hf fp32 sorted', 'hf bf16 autocast',
        'onnx plain', 'onnx optimised', 'onnx int8')
# the --amp each gluonbert row's worker starts with, as ``gluonbert evaluate --amp``
GLUONBERT_AMP = {'gluonbert fp32': 'off', 'gluonbert default': 'auto'}
BASELINE = 'hf fp32'
COLUMNS = [('accuracy', 'accuracy', 10, '.4f'), ('peak RSS MiB', 'peak_rss_mib', 14, '.0f')]
ONNX_FILES = {'onnx plain': 'model.onnx', 'onnx optimised': 'model.opt.onnx',
              'onnx int8': 'model.opt.int8.onnx'}


def file_order_batches(arrays, batch_size):
    """``(rows, (tokens, segments, valid_lens))`` batches in file order, cut to their longest
    row (what HF's ``DataCollatorWithPadding`` gives by default)."""
    import numpy as np
    tokens, segments, valid_lens = arrays
    for start in range(0, len(tokens), batch_size):
        lens = valid_lens[start:start + batch_size]
        width = int(lens.max())
        yield (np.arange(start, start + len(lens)),
               (tokens[start:start + batch_size, :width],
                segments[start:start + batch_size, :width], lens))


def timed_passes(predict, arrays, spec):
    """One untimed pass over two batches, then ``spec['passes']`` timed passes; the logits of
    the last and the seconds of each."""
    predict([a[:2 * spec['batch_size']] for a in arrays])
    seconds = []
    for _ in range(spec['passes']):
        start = time.perf_counter()
        logits = predict(arrays)
        seconds.append(time.perf_counter() - start)
    return logits, seconds


def load_features(spec):
    import numpy as np
    data = np.load(spec['features'])
    return [data[k] for k in ('tokens', 'segments', 'valid_lens')]


def gluonbert_worker(spec):
    """``gluonbert evaluate``'s prediction: its precision (``--amp``), the task folder
    hybridized for inference, the task's ``predict`` on the encoded features."""
    import mxnet as mx
    from gluonbert.model import hybridize_for_inference
    from gluonbert.pretrained.folders import model_width
    from gluonbert.tasks.base import Features
    from gluonbert.tasks.saved import load_task_model
    from gluonbert.train import mixed_precision
    devices = [mx.cpu()]
    mixed_precision.start(spec['amp'], devices, model_width(spec['model']), quiet=True)
    net, task, _, _, _ = load_task_model(spec['model'], devices)
    hybridize_for_inference(net, devices)

    def predict(arrays):
        return task.predict(net, Features(*arrays), devices, spec['batch_size'])
    return timed_passes(predict, load_features(spec), spec)


def hf_worker(spec):
    """The exported HF folder under ``torch.no_grad()`` (and bf16 autocast), on batches in
    file order, or length-sorted ones (``spec['sorted']``)."""
    import numpy as np
    import torch
    from transformers import BertForSequenceClassification
    from gluonbert.tasks.inference import length_batches, outputs_in_row_order
    torch.set_num_threads(os.cpu_count())
    model = BertForSequenceClassification.from_pretrained(spec['model']).eval()
    autocast = torch.autocast('cpu', dtype=torch.bfloat16, enabled=spec['amp'] == 'bf16')

    plan = length_batches if spec['sorted'] else file_order_batches

    def run(batch):
        tokens, segments, valid_lens = batch
        positions = np.arange(tokens.shape[1])[None]
        mask = torch.from_numpy((positions < valid_lens[:, None]).astype('int64'))
        out = model(input_ids=torch.from_numpy(tokens.astype('int64')),
                    token_type_ids=torch.from_numpy(segments.astype('int64')),
                    attention_mask=mask)
        return [out.logits.float().numpy()]

    def predict(arrays):
        with torch.no_grad(), autocast:
            return outputs_in_row_order(plan(arrays, spec['batch_size']), arrays[0].shape[1],
                                        run)
    return timed_passes(predict, load_features(spec), spec)


def onnx_worker(spec):
    """One of the export's graphs served as ``export/predict.py`` serves it (its
    ``Predictor``: session options, length-sorted batches)."""
    sys.path.insert(0, EXPORT)
    from predict import Predictor, session_options
    from gluonbert.tasks.base import Features
    predictor = Predictor(os.path.dirname(spec['model']), os.path.basename(spec['model']))

    def predict(arrays):
        return predictor.outputs(Features(*arrays), spec['batch_size'])
    logits, seconds = timed_passes(predict, load_features(spec), spec)
    if not spec['profile']:
        return logits, seconds
    import onnxruntime as ort
    options = session_options()
    options.enable_profiling = True
    options.profile_file_prefix = spec['features'] + '.profile'
    predictor.session = ort.InferenceSession(spec['model'], options,
                                             providers=['CPUExecutionProvider'])
    predict(load_features(spec))
    return logits, seconds, kernel_ms(predictor.session.end_profiling())


def kernel_ms(trace):
    """``{operator type: milliseconds}`` of the kernels in onnxruntime's profile ``trace``,
    slowest first."""
    with open(trace) as f:
        events = json.load(f)
    total = {}
    for event in events:
        if event.get('cat') == 'Node' and event['name'].endswith('_kernel_time'):
            op = event['args']['op_name']
            total[op] = total.get(op, 0.0) + event['dur'] / 1e3
    return dict(sorted(total.items(), key=lambda item: -item[1]))


def prepare_worker(spec):
    """SST-2 dev encoded once by gluonbert's task code, as the model's tokenizer reads it."""
    import numpy as np
    from gluonbert.tasks.saved import load_task_model
    _, task, vocab, tokenizer, config = load_task_model(spec['model'])
    examples = task.read(spec['dev'])
    if spec['limit']:
        examples = examples[:spec['limit']]
    features = task.encode(examples, tokenizer, vocab, config['max_len'], config['labels'])
    np.savez(spec['features'], tokens=features.tokens, segments=features.segments,
             valid_lens=features.valid_lens, labels=features.labels)
    return None, [float(np.mean(features.valid_lens))]


WORKERS = {'prepare': prepare_worker, 'gluonbert': gluonbert_worker, 'hf': hf_worker,
           'onnx': onnx_worker}


def run_worker(worker, spec, workdir):
    """``worker`` in a fresh process (gluonbert's, the torch or the deploy environment);
    ``(logits or None, seconds, peak RSS MiB, {operator type: ms} or None)``."""
    path = os.path.join(workdir, f'spec-{worker}.json')
    with open(path, 'w') as f:
        json.dump(spec, f)
    python = {'hf': torch_env.PYTHON, 'onnx': DEPLOY_PYTHON}.get(worker, sys.executable)
    with tempfile.TemporaryFile('w+') as out:
        process = subprocess.Popen([python, __file__, '--worker', worker, path], stdout=out,
                                   stderr=subprocess.STDOUT,
                                   env=dict(os.environ, PYTHONPATH=ROOT))
        _, status, usage = os.wait4(process.pid, 0)  # the rusage of this process alone
        out.seek(0)
        text = out.read()
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f'{worker} worker failed: {text.strip()[-1500:]}')
    result = json.loads(text.strip().splitlines()[-1])
    logits = None
    if result['logits']:
        import numpy as np
        logits = np.load(result['logits'])
    return logits, result['seconds'], usage.ru_maxrss / 1024, result['operators']


def finetuned_models(args, workdir, data):
    """``{model: gluonbert task folder}``: MiniLM fine-tuned on SST-2 (or ``--model``), and
    BERT-base's random geometry after one update."""
    minilm = minilm_folder()
    train, dev = (os.path.join(data, 'sst-2', f'{s}.tsv') for s in ('train', 'dev'))
    sources = {'minilm': (minilm, args.train_limit), 'bert-base': (None, 64)}
    folders = {}
    for model in args.models:
        if model == 'minilm' and args.model:
            folders[model] = args.model
            continue
        pretrained, limit = sources[model]
        pretrained = pretrained or bert_base_folder(minilm)
        out = os.path.join(workdir, f'{model}-sst2')
        start = time.perf_counter()
        gluonbert_command('finetune', '--pretrained', pretrained, '--task', 'classification',
                          '--train', train, '--dev', dev, '--epochs', 1, '--train-limit', limit,
                          '--test-limit', 64, '--out', out)
        print(f'{model}: fine-tuned on {limit} SST-2 sentences in '
              f'{time.perf_counter() - start:.0f} s', flush=True)
        folders[model] = out
    return folders


def calibration_file(data, workdir, count=1000):
    """The first ``count`` SST-2 training sentences, one per line: what ``export/optimize.py
    --calibration`` reads (as ``export/predict.py`` does) to smooth the int8 model."""
    from gluonbert.tasks.sentences import read_text_examples
    examples = read_text_examples(os.path.join(data, 'sst-2', 'train.tsv'))[:count]
    path = os.path.join(workdir, 'calibration.txt')
    with open(path, 'w', encoding='utf-8') as f:
        f.writelines(example.texts[0] + '\n' for example in examples)
    return path


def exports(model, folder, workdir, calibration):
    """``({row: model path}, {row: why skipped})`` for the HF and ONNX rows of ``folder``;
    ``calibration``: ``optimize.py``'s ``--calibration`` file."""
    paths, skipped = {'gluonbert fp32': folder, 'gluonbert default': folder}, {}
    try:
        torch_env.torch_python()
        hf = os.path.join(workdir, f'{model}-hf')
        gluonbert_command('export', '--model', folder, '--to', 'hf', '--out', hf)
        paths['hf fp32'] = paths['hf fp32 sorted'] = paths['hf bf16 autocast'] = hf
    except RuntimeError as e:
        skipped.update({row: str(e) for row in ROWS if row.startswith('hf')})
    onnx = os.path.join(workdir, f'{model}-onnx')
    gluonbert_command('export', '--model', folder, '--out', onnx)
    setup = subprocess.run(['bash', os.path.join(EXPORT, 'setup-deploy.sh')],
                           capture_output=True, text=True)
    why = None
    if setup.returncode:
        why = f'export/setup-deploy.sh failed: {setup.stderr.strip()[-300:]}'
    else:
        done = subprocess.run([DEPLOY_PYTHON, os.path.join(EXPORT, 'optimize.py'), onnx,
                               '--calibration', calibration], capture_output=True, text=True)
        if done.returncode:
            why = f'export/optimize.py failed: {done.stderr.strip()[-300:]}'
    for row, name in ONNX_FILES.items():
        if why:
            skipped[row] = why
        else:
            paths[row] = os.path.join(onnx, name)
    return paths, skipped


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', default='minilm,bert-base')
    parser.add_argument('--model', help='a fine-tuned MiniLM SST-2 folder to use instead of '
                        'fine-tuning one')
    parser.add_argument('--train-limit', type=int, default=4000,
                        help='SST-2 sentences MiniLM is fine-tuned on (default: %(default)s)')
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--passes', type=int, default=2, help='timed passes per row')
    parser.add_argument('--bert-base-limit', type=int, default=256,
                        help='dev sentences BERT-base predicts (0: all)')
    parser.add_argument('--rows', default=','.join(ROWS))
    parser.add_argument('--quick', action='store_true', help='smoke run (see above)')
    parser.add_argument('--profile', action='store_true',
                        help="the ONNX rows' kernel time by operator type (see above)")
    parser.add_argument('--out', default='real_inference.json')
    parser.add_argument('--worker', choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument('spec', nargs='?', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        import numpy as np
        with open(args.spec) as f:
            spec = json.load(f)
        logits, seconds, *operators = WORKERS[args.worker](spec)
        path = None
        if logits is not None:
            path = spec['features'] + f'.{os.getpid()}.logits.npy'
            np.save(path, logits)
        print(json.dumps(dict(logits=path, seconds=seconds,
                              operators=operators[0] if operators else None)))
        return
    args.models = args.models.split(',')
    row_names = args.rows.split(',')
    for option, values, known in (('--models', args.models, ('minilm', 'bert-base')),
                                  ('--rows', row_names, ROWS)):
        unknown = sorted(set(values) - set(known))
        if unknown:
            parser.error(f'{option}: unknown {unknown}; expected some of {list(known)}')
    dev_limit = {'minilm': 0, 'bert-base': args.bert_base_limit}
    if args.quick:
        args.models, args.train_limit, args.passes = ['minilm'], 64, 1
        dev_limit['minilm'] = 64
    data = os.environ.get('GLUONBERT_DATA', os.path.join(os.path.dirname(ROOT), 'shared',
                                                         'data'))
    dev = os.path.join(data, 'sst-2', 'dev.tsv')
    results, skipped = {}, {}
    import numpy as np
    with tempfile.TemporaryDirectory() as workdir:
        folders = finetuned_models(args, workdir, data)
        calibration = calibration_file(data, workdir)
        for model, folder in folders.items():
            paths, skipped[model] = exports(model, folder, workdir, calibration)
            for row, why in skipped[model].items():
                print(f'{model} {row} skipped: {why}')
            features = os.path.join(workdir, f'{model}-dev.npz')
            _, (mean_len,), _, _ = run_worker('prepare', dict(model=folder, dev=dev,
                                                           limit=dev_limit[model],
                                                           features=features), workdir)
            labels = np.load(features)['labels']
            rows, row_logits = {}, {}
            for row in row_names:
                if row not in paths:
                    continue
                worker = row.split()[0]
                amp = GLUONBERT_AMP.get(row, 'bf16' if 'bf16' in row else None)
                spec = dict(model=paths[row], features=features, batch_size=args.batch_size,
                            passes=args.passes, amp=amp, sorted=row.endswith('sorted'),
                            profile=args.profile)
                logits, seconds, rss, operators = run_worker(worker, spec, workdir)
                row_logits[row] = logits
                rows[row] = dict(examples_per_sec=len(labels) / statistics.median(seconds),
                                 accuracy=float(np.mean(logits.argmax(1) == labels)),
                                 peak_rss_mib=rss, seconds=seconds)
                print(f'{model} {row}: {rows[row]["examples_per_sec"]:.1f} examples/s, '
                      f'accuracy {rows[row]["accuracy"]:.4f}', flush=True)
                if operators:
                    rows[row]['operators_ms'] = operators
                    total = sum(operators.values())
                    print('\n'.join(f'    {op:<28}{ms:9.1f} ms {ms / total:6.1%}'
                                    for op, ms in list(operators.items())[:12]), flush=True)
            if {'onnx optimised', 'onnx int8'} <= set(row_logits):
                changed = float(np.mean(row_logits['onnx int8'].argmax(1)
                                        != row_logits['onnx optimised'].argmax(1)))
                rows['onnx int8']['labels_changed_vs_optimised'] = changed
                print(f'{model} onnx int8: {changed:.2%} of the labels differ from onnx '
                      f'optimised (float32)', flush=True)
            results[model] = dict(folder=folder if model == 'minilm' and args.model else None,
                                  dev_sentences=len(labels), mean_valid_len=mean_len,
                                  rows=rows)
            print(ratio_table(f'\n{model}: SST-2 dev, {len(labels)} sentences (mean length '
                              f'{mean_len:.0f} tokens), batch {args.batch_size}', rows,
                              BASELINE, COLUMNS) + '\n', flush=True)
    for model, result in results.items():
        print(ratio_table(f'{model} ({result["dev_sentences"]} sentences)', result['rows'],
                          BASELINE, COLUMNS))
    write_json(args.out, dict(machine=machine(), settings=vars(args), skipped=skipped,
                              results=results))


if __name__ == '__main__':
    main()
