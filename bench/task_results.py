"""Fine-tuning results on real data for every task, beside a trivial baseline.

Each data set of ``../shared/data`` is fine-tuned with ``gluonbert finetune`` (the job behind
the command line) twice: from a small BERT pretrained by gluonbert on WikiText-2 (the d2l
chapter's architecture; ``--pretrained DIR``, or pretrained here with ``--pretrain-steps``
when DIR is missing) and from the same architecture randomly initialised. The best model on
the dev split (the split given, else every 10th training example held out) is scored on the
test split, beside the task's trivial baseline (majority class, mean score, the most frequent
tag, the context's first words, the ending index most often right). SQuAD v1.1 and Cosmos QA
come as one labelled file each (their dev sets): they are split here into train, dev and test
files (``gluonbert.tasks.group_splits``: SQuAD by article title, Cosmos QA by context, so no
passage is on two sides) in a temporary folder. Where a task needs them, a data set sets its
own options over the command line's (SQuAD: BERT's max_len 384 and doc_stride 128, which the
1000 positions ``gluonbert pretrain`` builds allow; Cosmos QA: max_len 256; WNUT-17: 20
epochs, since three stop before the model tags any entity). STS-B, SQuAD and Cosmos QA are raw
text, which d2l's whitespace tokenizer (made for pre-tokenized WikiText) maps to ``<unk>``
wherever punctuation touches a word: they fine-tune with ``--split-punctuation``; SST-2 and
WNUT-17 come tokenized. The table shows the share of unknown training tokens. Prints a table
and writes ``bench/results/task_results.json``.

    python bench/task_results.py [--pretrained runs/bench/pretrained] [--epochs 3] [--amp bf16]
        [--train-limit N] [--eval-limit N] [--data-sets sst-2,sts-b,wnut-17,squad-1.1,cosmos-qa]
"""
import argparse
import contextlib
import io
import os
import re
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
# The shared data sets: $GLUONBERT_DATA, else ../shared/data beside the repository
DATA = os.environ.get('GLUONBERT_DATA') or os.path.join(os.path.dirname(ROOT), 'shared', 'data')

from gluonbert import cli, jobs  # noqa: E402
from gluonbert.tasks.group_splits import split_file  # noqa: E402
from harness import write_json  # noqa: E402

SPLITS = ('train', 'dev', 'test')
# data set -> the finetune options that read it (paths under DATA), set over the command
# line's; ``split``: its one labelled file, split into the train, dev and test files (a table
# by the column ``by``, SQuAD JSON by article title)
DATA_SETS = {
    'sst-2': dict(task='classification', train='sst-2/train.tsv', test='sst-2/dev.tsv'),
    'sts-b': dict(task='regression', train='sts-b/train.tsv', test='sts-b/dev.tsv',
                  label_column='score', split_punctuation=True),
    'wnut-17': dict(task='token-classification', train='wnut-17/wnut17train.conll',
                    dev='wnut-17/emerging.dev.conll', test='wnut-17/emerging.test.annotated',
                    epochs=20),
    'squad-1.1': dict(task='question-answering', split='squad-1.1/dev-v1.1.json', max_len=384,
                      doc_stride=128, split_punctuation=True),
    'cosmos-qa': dict(task='multiple-choice', split='cosmos-qa/valid.csv', by='context',
                      max_len=256, split_punctuation=True),
}
INITS = ('pretrained', 'random')


def data_set_names(parser, value):
    """The names of ``--data-sets`` (comma-separated), each a known data set found in DATA;
    else the parser's error."""
    names = value.split(',')
    unknown = sorted(set(names) - set(DATA_SETS))
    if unknown:
        parser.error(f'--data-sets: unknown {unknown}; expected some of {list(DATA_SETS)}')
    missing = [n for n in names if not os.path.isdir(os.path.join(DATA, n))]
    if missing:
        parser.error(f'{DATA} lacks {missing} (the shared data sets beside the repository)')
    return names


def pretrained_folder(path, steps, seed, amp):
    """``path``, pretrained here with the chapter's model when it holds no model yet."""
    if not os.path.isfile(os.path.join(path, 'pretrained.params')):
        print(f'pretraining {path} ({steps} steps)', flush=True)
        jobs.pretrain(cli.parse_args(['pretrain', '--steps', str(steps), '--seed', str(seed),
                                      '--out', path] + (['--amp', amp] if amp else [])))
    return path


def data_files(name, workdir, seed):
    """``{split: path}`` of the data set's files: its own, or those split here from its one
    labelled file into ``workdir``."""
    spec = DATA_SETS[name]
    if 'split' not in spec:
        return {split: os.path.join(DATA, spec[split]) for split in SPLITS if split in spec}
    path = os.path.join(DATA, spec['split'])
    folder = os.path.join(workdir, f'{name}-splits')
    counts = split_file(path, folder, spec.get('by', 'context'), seed=seed)
    print(f'{name}: {path} split into ' + ', '.join(f'{split} {count}' for split, count in
                                                    counts.items()), flush=True)
    extension = os.path.splitext(path)[1]
    return {split: os.path.join(folder, split + extension) for split in SPLITS}


def finetune(pretrained, name, files, init, args, workdir):
    options = dict(epochs=args.epochs, max_len=args.max_len, train_limit=args.train_limit,
                   test_limit=args.eval_limit, from_scratch=init == 'random', seed=args.seed,
                   amp=args.amp, out=os.path.join(workdir, f'{name}-{init}'))
    # the command line's defaults (its recipe) unless given
    options.update({key: getattr(args, key) for key in ('lr', 'batch_size')
                    if getattr(args, key) is not None})
    options.update({key: value for key, value in DATA_SETS[name].items()
                    if key not in SPLITS + ('split', 'by')}, **files)
    opts = cli.finetune_options(pretrained, **options)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()) as log:
        result = jobs.finetune(opts)
    unknown = re.search(r'^([\d.]+)% of the training tokens are unknown', log.getvalue(), re.M)
    result.update(seconds=time.perf_counter() - start, log=log.getvalue().splitlines()[-8:],
                  unknown_share=float(unknown.group(1)) / 100)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--pretrained', default=os.path.join(ROOT, 'runs', 'bench',
                                                             'pretrained'))
    parser.add_argument('--pretrain-steps', type=int, default=1000)
    parser.add_argument('--data-sets', default=','.join(DATA_SETS))
    parser.add_argument('--epochs', type=int, default=3)
    parser.add_argument('--lr', type=float, help="default: gluonbert finetune's")
    parser.add_argument('--batch-size', type=int, help="default: gluonbert finetune's")
    parser.add_argument('--amp', choices=['bf16'], help='pretrain (when it does) and '
                        'fine-tune every data set, both inits, under bf16 AMP')
    parser.add_argument('--max-len', type=int, default=128,
                        help='(default: %(default)s; squad-1.1 and cosmos-qa set their own)')
    parser.add_argument('--train-limit', type=int, default=0, help='first N training '
                        'examples of each data set (0: all)')
    parser.add_argument('--eval-limit', type=int, default=0, help='first N dev and test '
                        'examples (0: all)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default='task_results.json', help='file name under '
                        'bench/results/ (default: %(default)s)')
    args = parser.parse_args()
    names = data_set_names(parser, args.data_sets)
    pretrained = pretrained_folder(args.pretrained, args.pretrain_steps, args.seed, args.amp)
    rows = {}
    with tempfile.TemporaryDirectory() as workdir:
        for name in names:
            files = data_files(name, workdir, args.seed)
            rows[name] = {init: finetune(pretrained, name, files, init, args, workdir)
                          for init in INITS}
            print(table_row(name, rows[name]), flush=True)
    print(table(rows))
    write_json(args.out, dict(settings=vars(args),
                              data_sets={name: DATA_SETS[name] for name in names},
                              results=rows))


def _main_value(metrics, key):
    return float('nan') if metrics is None else metrics[key]


def table_row(name, results):
    first = results[INITS[0]]
    key = first['main_metric']
    scores = [_main_value(results[init]['test'] or results[init]['dev'], key if results[init]
                          ['test'] else f'dev_{key}') for init in INITS]
    return (f'| {name} | {first["task"]} | {first["unknown_share"]:.1%} | {key} | '
            f'{first["baseline"][key]:.3f} | ' + ' | '.join(f'{s:.3f}' for s in scores) + ' |')


def table(rows):
    header = ('| data set | task | unknown tokens | metric (test) | trivial baseline | '
              + ' | '.join(INITS) + ' |')
    return '\n'.join([header, '|' + '---|' * (5 + len(INITS))] +
                     [table_row(name, results) for name, results in rows.items()])


if __name__ == '__main__':
    main()
