"""Time to accuracy: SNLI test accuracy against wall-clock time, d2l's chapters vs gluonbert.

For each pretraining budget (minutes of pretraining steps), in fresh processes:
- d2l: the book's chapter code on d2l's own functions (``_WikiTextDataset``, ``BERTModel``,
  ``_get_batch_loss_bert``, ``train_ch13``): pretraining at batch 512, max_len 64, Adam lr
  0.01, stopped when the budget is spent; then the NLI chapter's fine-tuning of that model
  (dropout 0.1, the chapter's ``BERTClassifier``, 5 epochs, lr 1e-4, batch 512, max_len 128);
- gluonbert: ``python -m gluonbert pretrain`` with its defaults for as many steps as fit the
  budget (at the rate of a short calibration run), then ``python -m gluonbert finetune`` with
  its defaults plus ``--finetune-args`` (default ``--max-len 64``);
- gluonbert with a recipe: the same pretrained model, fine-tuned with ``--recipe`` added to
  the defaults, to test candidate defaults;
- gluonbert under bf16 AMP: both commands with ``--amp bf16`` (on CPUs with AVX-512), as many
  pretraining steps as fit the budget at bf16's own rate.
Full WikiText-2 and SNLI dev (train) / test from ``../shared/data``. Prints accuracy against
the pretraining, fine-tuning and total seconds (each with its data preparation, model set-up
and saving, as a command counts them; the budget bounds the training steps alone), and writes
JSON. ``--quick`` is a smoke run (9 seconds or 4 steps of pretraining, 640 SNLI pairs, one
epoch; about 2 minutes).

    python bench/time_to_accuracy.py [--budgets 5,15,22] [--paths d2l,gluonbert,bf16,recipe]
        [--finetune-args '...'] [--recipe '...'] [--quick]
"""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

from harness import check_amp, gluonbert_command, write_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(os.path.dirname(ROOT), 'shared', 'data')
WIKI, SNLI = os.path.join(DATA, 'wikitext-2'), os.path.join(DATA, 'snli-1.0-devtest')
# The d2l pretraining chapter's model and data; the NLI chapter's fine-tuning
D2L_PRETRAIN = dict(num_hiddens=128, ffn_num_hiddens=256, num_heads=2, num_blks=2,
                    dropout=0.2, batch_size=512, max_len=64, lr=0.01)
D2L_FINETUNE = dict(dropout=0.1, batch_size=512, max_len=128, epochs=5, lr=1e-4)
RECIPE = '--max-len 64'
# gluonbert's paths: (row name, options of both commands, fine-tuned with the recipe)
GLUONBERT_PATHS = {'gluonbert': ('gluonbert defaults', [], False),
                   'bf16': ('gluonbert --amp bf16', ['--amp', 'bf16'], False),
                   'recipe': ('gluonbert recipe', [], True)}
CALIBRATION_STEPS = 30
# Quick mode: pretraining minutes, SNLI pairs (train and test), WikiText-2 paragraphs for d2l
# and gluonbert's pretraining steps (no calibration run)
QUICK = dict(budget_minutes=0.15, pairs=640, paragraphs=1500, batch_size=64, epochs=1,
             gluonbert_steps=4)


def d2l_worker(minutes, quick):
    """The d2l chapters' pretraining (for ``minutes``) and NLI fine-tuning; returns a dict."""
    from mxnet import autograd, gluon, init, npx
    from mxnet.gluon import nn
    import d2l.mxnet as d2l
    from gluonbert.data.nli import SNLIBERTDataset, load_snli
    npx.set_np()
    p, f = D2L_PRETRAIN, dict(D2L_FINETUNE)
    start = time.perf_counter()
    # d2l.load_data_wiki, reading the local files instead of downloading them
    paragraphs = d2l._read_wiki(WIKI)
    if quick:
        paragraphs = paragraphs[:QUICK['paragraphs']]
    train_set = d2l._WikiTextDataset(paragraphs, p['max_len'])
    train_iter = gluon.data.DataLoader(train_set, p['batch_size'], shuffle=True,
                                       num_workers=d2l.get_dataloader_workers())
    vocab = train_set.vocab
    devices = d2l.try_all_gpus() or [npx.cpu()]  # d2l 1.0.3 returns [] without a GPU
    net = d2l.BERTModel(len(vocab), p['num_hiddens'], p['ffn_num_hiddens'], p['num_heads'],
                        p['num_blks'], p['dropout'], max_len=512)
    net.initialize(init.Xavier(), ctx=devices)
    loss = gluon.loss.SoftmaxCELoss()
    prepared = time.perf_counter()
    # The chapter's train_bert loop, stopped by the clock instead of a step count
    trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': p['lr']})
    steps, mlm, nsp = 0, [], []
    while time.perf_counter() - prepared < minutes * 60:
        for batch in train_iter:
            shards = [gluon.utils.split_and_load(b, devices, even_split=False) for b in batch]
            with autograd.record():
                mlm_ls, nsp_ls, ls = d2l._get_batch_loss_bert(net, loss, len(vocab), *shards)
            for l in ls:
                l.backward()
            trainer.step(1)
            mlm.append(sum(float(l) for l in mlm_ls) / len(mlm_ls))
            nsp.append(sum(float(l) for l in nsp_ls) / len(nsp_ls))
            steps += 1
            if time.perf_counter() - prepared >= minutes * 60:
                break
    pretrained = time.perf_counter()
    # The NLI chapter: load the pretrained BERT with dropout 0.1, then train_ch13
    bert = d2l.BERTModel(len(vocab), p['num_hiddens'], p['ffn_num_hiddens'], p['num_heads'],
                         p['num_blks'], f['dropout'], max_len=512)
    with tempfile.TemporaryDirectory(prefix='d2l-bert-') as scratch:
        params = os.path.join(scratch, 'pretrained.params')
        net.save_parameters(params)
        bert.load_parameters(params, ctx=devices)

    class BERTClassifier(nn.Block):  # the chapter's
        def __init__(self, bert):
            super().__init__()
            self.encoder = bert.encoder
            self.hidden = bert.hidden
            self.output = nn.Dense(3)

        def forward(self, inputs):
            tokens_X, segments_X, valid_lens_x = inputs
            encoded_X = self.encoder(tokens_X, segments_X, valid_lens_x)
            return self.output(self.hidden(encoded_X[:, 0, :]))

    if quick:
        f.update(batch_size=QUICK['batch_size'], epochs=QUICK['epochs'], max_len=64)
    train_data, test_data = load_snli(SNLI)
    if quick:
        train_data, test_data = (tuple(c[:QUICK['pairs']] for c in d)
                                 for d in (train_data, test_data))
    train_iter = gluon.data.DataLoader(SNLIBERTDataset(train_data, f['max_len'], vocab),
                                       f['batch_size'], shuffle=True)
    test_iter = gluon.data.DataLoader(SNLIBERTDataset(test_data, f['max_len'], vocab),
                                      f['batch_size'])
    classifier = BERTClassifier(bert)
    classifier.output.initialize(ctx=devices)
    trainer = gluon.Trainer(classifier.collect_params(), 'adam', {'learning_rate': f['lr']})
    # train_ch13's live plot cannot be drawn in a script here (matplotlib 3.7.2's pyplot fails
    # against the installed IPython); training is unchanged without it
    d2l.Animator = _NoPlot
    finetune_start = time.perf_counter()
    d2l.train_ch13(classifier, train_iter, test_iter, gluon.loss.SoftmaxCrossEntropyLoss(),
                   trainer, f['epochs'], devices, d2l.split_batch_multi_inputs)
    finetuned = time.perf_counter()
    accuracy = d2l.evaluate_accuracy_gpus(classifier, test_iter, d2l.split_batch_multi_inputs)
    tenth = max(1, steps // 10)
    # Seconds as the gluonbert commands count them: data, model and loop (and saving)
    return dict(pretrain_steps=steps, data_seconds=prepared - start,
                pretrain_loop_seconds=pretrained - prepared,
                pretrain_seconds=pretrained - start, finetune_seconds=finetuned - pretrained,
                finetune_loop_seconds=finetuned - finetune_start,
                total_seconds=finetuned - start,
                final_mlm_loss=sum(mlm[-tenth:]) / tenth if mlm else None,
                final_nsp_loss=sum(nsp[-tenth:]) / tenth if nsp else None,
                test_accuracy=float(accuracy))


class _NoPlot:
    """Stands in for ``d2l.Animator``: takes its points and draws nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def add(self, *args):
        pass


def gluonbert_steps_per_second(folder, steps, options):
    """Pretraining steps per second of ``gluonbert pretrain`` with its defaults and
    ``options``, from a short run's own throughput line (data loading left out)."""
    sys.path.insert(0, ROOT)
    from gluonbert.cli import build_parser
    batch_size = build_parser().parse_args(['pretrain']).batch_size
    out, _, _ = gluonbert_command('pretrain', '--steps', steps, '--data-dir', WIKI,
                                  '--out', os.path.join(folder, 'calibration'), *options)
    return float(re.search(r'([\d.]+) sentence pairs/sec', out).group(1)) / batch_size


def gluonbert_pretrain(folder, steps, options):
    out, seconds, _ = gluonbert_command('pretrain', '--steps', steps, '--data-dir', WIKI,
                                        '--out', folder, *options)
    nsp = re.search(r'NSP loss ([\d.]+)', out)
    return dict(pretrain_steps=steps, pretrain_seconds=seconds,
                final_nsp_loss=float(nsp.group(1)) if nsp else None)


def gluonbert_finetune(pretrained, folder, extra):
    out, seconds, _ = gluonbert_command('finetune', '--pretrained', pretrained, '--data-dir',
                                        SNLI, '--out', folder, *extra)
    accuracy = float(re.search(r'test \(best model\): accuracy ([\d.]+)', out).group(1))
    return dict(finetune_seconds=seconds, finetune_args=' '.join(extra),
                test_accuracy=accuracy)


def run_budget(minutes, paths, rates, finetune_args, recipe, quick, folder):
    """``{path: result}`` for one pretraining budget; ``rates`` are the pretraining steps per
    second of each set of gluonbert options (a tuple)."""
    rows = {}
    if 'd2l' in paths:
        done = subprocess.run([sys.executable, __file__, '--worker', 'd2l', '--minutes',
                               str(minutes)] + (['--quick'] if quick else []),
                              capture_output=True, text=True,
                              env=dict(os.environ, PYTHONPATH=ROOT, MPLBACKEND='Agg'))
        if done.returncode:
            raise RuntimeError(f'd2l worker failed: {done.stderr.strip()[-800:]}')
        rows['d2l chapters'] = json.loads(done.stdout.strip().splitlines()[-1])
    quick_args = (['--train-limit', QUICK['pairs'], '--test-limit', QUICK['pairs'],
                   '--epochs', QUICK['epochs']] if quick else [])
    pretrained = {}  # options -> (folder, pretraining figures), shared by paths alike
    for path in [p for p in GLUONBERT_PATHS if p in paths]:
        name, options, with_recipe = GLUONBERT_PATHS[path]
        if tuple(options) not in pretrained:
            model = os.path.join(folder, f'pretrained-{minutes}-{path}')
            steps = (QUICK['gluonbert_steps'] if quick
                     else round(minutes * 60 * rates[tuple(options)]))
            pretrained[tuple(options)] = model, gluonbert_pretrain(model, steps, options)
        model, pretraining = pretrained[tuple(options)]
        extra = [*finetune_args, *(recipe if with_recipe else []), *options, *quick_args]
        result = dict(pretraining, **gluonbert_finetune(
            model, os.path.join(folder, f'{path}-{minutes}'), list(map(str, extra))))
        result['total_seconds'] = result['pretrain_seconds'] + result['finetune_seconds']
        rows[name] = result
    return rows


def print_rows(results):
    print(f'{"budget":>7} {"path":<22}{"pretrain":>10}{"steps":>7}{"fine-tune":>11}'
          f'{"total":>9}{"SNLI test acc":>15}   (seconds)')
    for budget in results:
        for name, row in budget['rows'].items():
            print(f'{budget["budget_minutes"]:>6}m {name:<22}{row["pretrain_seconds"]:>10.0f}'
                  f'{row["pretrain_steps"]:>7}{row["finetune_seconds"]:>11.0f}'
                  f'{row["total_seconds"]:>9.0f}{row["test_accuracy"]:>15.3f}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--budgets', default='5,15,22',
                        help='minutes of pretraining, comma-separated (default: %(default)s)')
    parser.add_argument('--paths', default='d2l,gluonbert,bf16',
                        help='any of d2l, gluonbert, bf16, recipe (default: %(default)s)')
    parser.add_argument('--finetune-args', default='',
                        help='added to every gluonbert finetune (default: none)')
    parser.add_argument('--recipe', default=RECIPE,
                        help='gluonbert finetune options of the recipe row (default: '
                             '%(default)s)')
    parser.add_argument('--quick', action='store_true',
                        help='smoke run: seconds of pretraining, 640 SNLI pairs, one epoch')
    parser.add_argument('--worker', choices=['d2l'])
    parser.add_argument('--minutes', type=float)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(d2l_worker(args.minutes, args.quick)))
        return
    paths = args.paths.split(',')
    unknown = set(paths) - {'d2l', *GLUONBERT_PATHS}
    if unknown:
        parser.error(f'--paths {args.paths}: unknown {sorted(unknown)}; expected any of '
                     f'd2l, {", ".join(GLUONBERT_PATHS)}')
    if 'bf16' in paths:
        check_amp(parser, 'bfloat16')
    try:
        budgets = ([QUICK['budget_minutes']] if args.quick
                   else [float(b) for b in args.budgets.split(',')])
    except ValueError:
        parser.error(f'--budgets {args.budgets}: expected comma-separated minutes')
    for folder in (WIKI, SNLI):
        if not os.path.isdir(folder):
            parser.error(f'{folder} not found: this benchmark needs the full data sets')
    results = []
    with tempfile.TemporaryDirectory(prefix='time-to-accuracy-') as folder:
        rates = {}
        for path in [p for p in GLUONBERT_PATHS if p in paths and not args.quick]:
            options = tuple(GLUONBERT_PATHS[path][1])
            if options not in rates:
                rates[options] = gluonbert_steps_per_second(folder, CALIBRATION_STEPS, options)
                print(f'gluonbert pretrain {" ".join(options)}: {rates[options]:.2f} steps/s '
                      f'({CALIBRATION_STEPS}-step calibration run)', flush=True)
        for minutes in budgets:
            rows = run_budget(minutes, paths, rates, shlex.split(args.finetune_args),
                              shlex.split(args.recipe), args.quick, folder)
            results.append(dict(budget_minutes=minutes, rows=rows))
            print_rows(results[-1:])
            sys.stdout.flush()
    print('\nSNLI test accuracy against wall-clock time')
    print_rows(results)
    write_json('time_to_accuracy_quick.json' if args.quick else 'time_to_accuracy.json',
               dict(d2l_pretrain=D2L_PRETRAIN, d2l_finetune=D2L_FINETUNE,
                    gluonbert_finetune_args=args.finetune_args, recipe=args.recipe,
                    gluonbert_steps_per_second={' '.join(k) or 'defaults': v
                                                for k, v in rates.items()}, quick=args.quick,
                    load_average=os.getloadavg(), results=results))


if __name__ == '__main__':
    main()
