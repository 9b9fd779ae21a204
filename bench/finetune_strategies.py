"""Fine-tuning experiments on real data: what pretraining brings on SNLI, and the fine-tuning
strategies (plain, R-Drop, FGM, model averaging) on SICK over several seeds.

    python bench/finetune_strategies.py --pretrained runs/exp/pretrained [--seeds 0 1 2]

SNLI: train on dev, test on test (the files here), from the pretrained folder and from a random
initialisation of the same architecture. SICK: TRAIN / TEST, one run per strategy and seed;
model averaging averages the plain runs' fine-tuned parameters (all seeds, and each
leave-one-out pair). Prints tables and writes JSON.
"""
import argparse
import itertools
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness import write_json  # noqa: E402

from gluonbert import jobs  # noqa: E402
from gluonbert.cli import finetune_options  # noqa: E402
from gluonbert.options import EvaluateOptions  # noqa: E402
from gluonbert.model import BERTModel  # noqa: E402
from gluonbert.tasks.saved import load_task_model, save_task_model  # noqa: E402
from gluonbert.train.strategies import average_parameters  # noqa: E402


def finetune(args, task, seed, strategy='plain', from_scratch=False, tag=''):
    out = os.path.join(args.out, f'{task}-{strategy}{tag}-seed{seed}')
    opts = finetune_options(args.pretrained, task=task, max_len=args.max_len,
                            batch_size=args.batch_size, epochs=args.epochs, lr=args.lr,
                            strategy=strategy, from_scratch=from_scratch,
                            devices=args.devices, seed=seed, out=out)
    return jobs.finetune(opts)['test']['accuracy'], out


def evaluate(folder, args):
    return jobs.evaluate(EvaluateOptions(model=folder, devices=args.devices))['accuracy']


def averaged(folders, args, name):
    """The test accuracy of the average of the fine-tuned task folders ``folders``, saved as
    the task folder ``name``."""
    nets = [load_task_model(f)[0] for f in folders]
    target, task, vocab, tokenizer, config = load_task_model(folders[0])
    average_parameters(nets, into=target)
    out = os.path.join(args.out, name)
    save_task_model(target, BERTModel(**config['bert']), vocab, tokenizer, out, task,
                    config['labels'], config['max_len'])
    return evaluate(out, args)


def row(values):
    return dict(mean=statistics.mean(values),
                std=statistics.stdev(values) if len(values) > 1 else 0.0, runs=values)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--pretrained', required=True)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--epochs', type=int, default=3)
    parser.add_argument('--lr', type=float, default=1e-4, help='peak lr of AdamW, linear decay')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--max-len', type=int, default=64)
    parser.add_argument('--devices', default='cpu')
    parser.add_argument('--out', default='runs/exp/finetune')
    parser.add_argument('--skip-snli', action='store_true')
    args = parser.parse_args()
    results = {}
    if not args.skip_snli:
        seed = args.seeds[0]
        results['snli'] = {
            'pretrained': finetune(args, 'snli', seed)[0],
            'random init': finetune(args, 'snli', seed, from_scratch=True, tag='-scratch')[0]}
    sick = {}
    plain_folders = []
    for strategy in ('plain', 'rdrop', 'fgm'):
        accuracies = []
        for seed in args.seeds:
            accuracy, folder = finetune(args, 'sick', seed, strategy)
            accuracies.append(accuracy)
            if strategy == 'plain':
                plain_folders.append(folder)
        sick[strategy] = row(accuracies)
    averages = [averaged(list(group), args, f'sick-average-{"-".join(map(str, ids))}')
                for ids, group in zip(itertools.combinations(args.seeds, 2),
                                      itertools.combinations(plain_folders, 2))]
    sick['average of 2 plain runs'] = row(averages)
    sick['average of all plain runs'] = row([averaged(plain_folders, args, 'sick-average-all')])
    results['sick'] = sick
    if 'snli' in results:
        print(f'\nSNLI test accuracy (train on dev), seed {args.seeds[0]}:')
        for name, accuracy in results['snli'].items():
            print(f'  {name:<14}{accuracy:.4f}')
    print(f'\nSICK test accuracy over seeds {args.seeds} ({args.epochs} epochs, lr {args.lr}):')
    print(f'  {"strategy":<28}{"mean":>8}{"std":>8}   runs')
    for name, r in sick.items():
        print(f'  {name:<28}{r["mean"]:>8.4f}{r["std"]:>8.4f}   '
              + ' '.join(f'{v:.4f}' for v in r['runs']))
    write_json('finetune_strategies.json', dict(vars(args), results=results))


if __name__ == '__main__':
    main()
