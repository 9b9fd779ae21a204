"""Fine-tuning results on real data for every task, beside a trivial baseline.

Each data set of ``../shared/data`` is fine-tuned with ``gluonbert finetune`` (the job behind
the command line) twice: from a small BERT pretrained by gluonbert on WikiText-2 (the d2l
chapter's architecture; ``--pretrained DIR``, or pretrained here with ``--pretrain-steps``
when DIR is missing) and from the same architecture randomly initialised. The best model on
the dev split (the split given, else every 10th training example held out) is scored on the
test split, beside the task's trivial baseline (majority class, mean score, the most frequent
tag). Prints a table and writes ``bench/results/task_results.json``.

    python bench/task_results.py [--pretrained runs/bench/pretrained] [--epochs 3]
        [--train-limit N] [--eval-limit N] [--data-sets sst-2,sts-b,wnut-17]
"""
import argparse
import contextlib
import io
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
DATA = os.path.join(os.path.dirname(ROOT), 'shared', 'data')

from gluonbert import cli, jobs  # noqa: E402
from harness import write_json  # noqa: E402

# data set -> the finetune options that read it (paths under DATA)
DATA_SETS = {
    'sst-2': dict(task='classification', train='sst-2/train.tsv', test='sst-2/dev.tsv'),
    'sts-b': dict(task='regression', train='sts-b/train.tsv', test='sts-b/dev.tsv',
                  label_column='score'),
    'wnut-17': dict(task='token-classification', train='wnut-17/wnut17train.conll',
                    dev='wnut-17/emerging.dev.conll', test='wnut-17/emerging.test.annotated'),
}
INITS = ('pretrained', 'random')


def pretrained_folder(path, steps, seed):
    """``path``, pretrained here with the chapter's model when it holds no model yet."""
    if not os.path.isfile(os.path.join(path, 'pretrained.params')):
        print(f'pretraining {path} ({steps} steps)', flush=True)
        jobs.pretrain(cli.parse_args(['pretrain', '--steps', str(steps), '--seed', str(seed),
                                      '--out', path]))
    return path


def finetune(pretrained, name, init, args, workdir):
    spec = dict(DATA_SETS[name])
    for split in ('train', 'dev', 'test'):
        if split in spec:
            spec[split] = os.path.join(DATA, spec[split])
    opts = cli.finetune_options(
        pretrained, **spec, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
        max_len=args.max_len, train_limit=args.train_limit, test_limit=args.eval_limit,
        from_scratch=init == 'random', seed=args.seed,
        out=os.path.join(workdir, f'{name}-{init}'))
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()) as log:
        result = jobs.finetune(opts)
    result.update(seconds=time.perf_counter() - start, log=log.getvalue().splitlines()[-8:])
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--pretrained', default=os.path.join(ROOT, 'runs', 'bench',
                                                             'pretrained'))
    parser.add_argument('--pretrain-steps', type=int, default=1000)
    parser.add_argument('--data-sets', default=','.join(DATA_SETS))
    parser.add_argument('--epochs', type=int, default=3)
    parser.add_argument('--lr', type=float, default=1e-4)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--max-len', type=int, default=128)
    parser.add_argument('--train-limit', type=int, default=0, help='first N training '
                        'examples of each data set (0: all)')
    parser.add_argument('--eval-limit', type=int, default=0, help='first N dev and test '
                        'examples (0: all)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default='task_results.json', help='file name under '
                        'bench/results/ (default: %(default)s)')
    args = parser.parse_args()
    names = args.data_sets.split(',')
    unknown = sorted(set(names) - set(DATA_SETS))
    if unknown:
        parser.error(f'--data-sets: unknown {unknown}; expected some of {list(DATA_SETS)}')
    missing = [n for n in names if not os.path.isdir(os.path.join(DATA, n))]
    if missing:
        parser.error(f'{DATA} lacks {missing} (the shared data sets beside the repository)')
    pretrained = pretrained_folder(args.pretrained, args.pretrain_steps, args.seed)
    rows = {}
    with tempfile.TemporaryDirectory() as workdir:
        for name in names:
            rows[name] = {init: finetune(pretrained, name, init, args, workdir)
                          for init in INITS}
            print(table_row(name, rows[name]), flush=True)
    print(table(rows))
    write_json(args.out, dict(settings=vars(args), results=rows))


def _main_value(metrics, key):
    return float('nan') if metrics is None else metrics[key]


def table_row(name, results):
    first = results[INITS[0]]
    key = first['main_metric']
    scores = [_main_value(results[init]['test'] or results[init]['dev'], key if results[init]
                          ['test'] else f'dev_{key}') for init in INITS]
    return (f'| {name} | {first["task"]} | {key} | {first["baseline"][key]:.3f} | '
            + ' | '.join(f'{s:.3f}' for s in scores) + ' |')


def table(rows):
    header = ('| data set | task | metric (test) | trivial baseline | '
              + ' | '.join(INITS) + ' |')
    return '\n'.join([header, '|' + '---|' * (4 + len(INITS))] +
                     [table_row(name, results) for name, results in rows.items()])


if __name__ == '__main__':
    main()
