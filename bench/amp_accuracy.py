"""bf16 AMP against float32, as a user runs them: speed, peak memory, loss curves, accuracy.

Two runs of the command line, the same seed, one in float32 and one with ``--amp bf16``:
``gluonbert pretrain --steps 300`` (the chapter's model and batch, full WikiText-2), then
``gluonbert finetune --task snli`` (the command line's recipe, SNLI dev to train, test to
score) of that pretrained model in the same precision. Prints the MLM and NSP losses of both
runs side by side (means over ``LOG_EVERY`` steps), the median step time, throughput and peak
RSS of each command, and the SNLI test accuracy; writes JSON and a plot of both loss curves.

    python bench/amp_accuracy.py [--steps 300] [--finetune-args '--max-len 64']
"""
import argparse
import json
import os
import re
import shlex
import tempfile

from harness import RESULTS, check_amp, gluonbert_command, write_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(os.path.dirname(ROOT), 'shared', 'data')
WIKI, SNLI = os.path.join(DATA, 'wikitext-2'), os.path.join(DATA, 'snli-1.0-devtest')
PRECISIONS = {'float32': [], 'bf16 AMP': ['--amp', 'bf16']}
LOG_EVERY = 10  # steps per logged loss (the command line's default)


def run(precision, folder, steps, finetune_args):
    """One precision's pretraining and fine-tuning: a dict of their figures and losses."""
    amp = PRECISIONS[precision]
    pretrained = os.path.join(folder, 'pretrained')
    summary = os.path.join(folder, 'summary.json')
    _, pretrain_seconds, pretrain_rss = gluonbert_command(
        'pretrain', '--steps', steps, '--data-dir', WIKI, '--log-every', LOG_EVERY,
        '--summary', summary, '--out', pretrained, *amp)
    with open(summary) as f:
        pretraining = json.load(f)
    out, finetune_seconds, finetune_rss = gluonbert_command(
        'finetune', '--pretrained', pretrained, '--task', 'snli', '--data-dir', SNLI, '--out',
        os.path.join(folder, 'snli'), *finetune_args, *amp)
    return dict(
        pretrain_seconds=pretrain_seconds, pretrain_peak_rss_mib=pretrain_rss,
        median_step_seconds=pretraining['median_step_seconds'],
        pairs_per_sec=pretraining['samples_per_sec'],
        updates=[log['update'] for log in pretraining['logs']],
        mlm_loss=[log['mlm_loss'] for log in pretraining['logs']],
        nsp_loss=[log['nsp_loss'] for log in pretraining['logs']],
        finetune_seconds=finetune_seconds, finetune_peak_rss_mib=finetune_rss,
        finetune_examples_per_sec=float(re.search(r'([\d.]+) examples/sec', out).group(1)),
        test_accuracy=float(re.search(r'test \(best model\): accuracy ([\d.]+)', out).group(1)))


def print_curves(results):
    names = list(results)
    print(f'{"step":>6}' + ''.join(f'{f"MLM {n}":>16}' for n in names)
          + ''.join(f'{f"NSP {n}":>16}' for n in names))
    for i, step in enumerate(results[names[0]]['updates']):
        print(f'{step:>6}' + ''.join(f'{results[n]["mlm_loss"][i]:>16.3f}' for n in names)
              + ''.join(f'{results[n]["nsp_loss"][i]:>16.3f}' for n in names))


def print_figures(results):
    rows = (('pretraining: median step (s)', 'median_step_seconds', '.3f'),
            ('pretraining: sentence pairs/s', 'pairs_per_sec', '.1f'),
            ('pretraining: peak RSS (MiB)', 'pretrain_peak_rss_mib', '.0f'),
            ('fine-tuning: examples/s', 'finetune_examples_per_sec', '.1f'),
            ('fine-tuning: peak RSS (MiB)', 'finetune_peak_rss_mib', '.0f'),
            ('SNLI test accuracy', 'test_accuracy', '.4f'))
    names = list(results)
    print(f'{"":<32}' + ''.join(f'{n:>14}' for n in names) + f'{"bf16 / fp32":>14}')
    for label, key, form in rows:
        values = [results[n][key] for n in names]
        print(f'{label:<32}' + ''.join(f'{v:>14{form}}' for v in values)
              + f'{values[1] / values[0]:>13.2f}x')


def plot(results, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, key in zip(axes, ('mlm_loss', 'nsp_loss')):
        for name, result in results.items():
            axis.plot(result['updates'], result[key], label=name, linewidth=1)
        axis.set(xlabel='step', ylabel=key.replace('_', ' '))
        axis.legend()
    fig.tight_layout()
    fig.savefig(path)
    print(f'wrote {path}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=300)
    parser.add_argument('--finetune-args', default='',
                        help='added to gluonbert finetune\'s defaults, e.g. "--max-len 64"')
    args = parser.parse_args()
    check_amp(parser, 'bfloat16')
    for folder in (WIKI, SNLI):
        if not os.path.isdir(folder):
            parser.error(f'{folder} not found: this benchmark needs the full data sets')
    results = {}
    with tempfile.TemporaryDirectory(prefix='amp-accuracy-') as scratch:
        for precision in PRECISIONS:
            print(f'{precision}: pretraining {args.steps} steps, then fine-tuning', flush=True)
            results[precision] = run(precision, os.path.join(scratch, precision.split()[0]),
                                     args.steps, shlex.split(args.finetune_args))
    print_curves(results)
    print_figures(results)
    plot(results, os.path.join(RESULTS, 'amp_accuracy.png'))
    write_json('amp_accuracy.json', dict(steps=args.steps, finetune_args=args.finetune_args,
                                         load_average=os.getloadavg(), results=results))


if __name__ == '__main__':
    main()
