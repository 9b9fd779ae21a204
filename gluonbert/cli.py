"""The command line: ``python -m gluonbert`` (or ``gluonbert``) with one subcommand per job.

    gluonbert main                 the README's main job, end to end on the embedded default
    gluonbert pretrain --help      pretrain a BERT on WikiText-2 (MLM + NSP)

User errors (bad options, missing data) print one line and exit with status 2.
"""
import argparse
import os
import sys

from . import runtime

USER_ERRORS = (ValueError, FileNotFoundError)


def _add_pretrain_options(parser, defaults):
    model = parser.add_argument_group('model (d2l BERTModel arguments)')
    model.add_argument('--num-hiddens', type=int, default=defaults['num_hiddens'])
    model.add_argument('--ffn-num-hiddens', type=int, default=defaults['ffn_num_hiddens'])
    model.add_argument('--num-heads', type=int, default=defaults['num_heads'])
    model.add_argument('--num-blks', type=int, default=defaults['num_blks'])
    model.add_argument('--dropout', type=float, default=defaults['dropout'])
    model.add_argument('--activation', choices=['relu', 'gelu'], default='relu',
                       help='relu as d2l, gelu as BERT (default: %(default)s)')
    data = parser.add_argument_group('data')
    data.add_argument('--data-dir', help='folder holding wiki.train.tokens (default: '
                      '$GLUONBERT_DATA, ../shared/data, ../data, then the embedded slice)')
    data.add_argument('--max-len', type=int, default=defaults['max_len'])
    data.add_argument('--batch-size', type=int, default=defaults['batch_size'])
    data.add_argument('--masking', choices=['token', 'whole_word', 'span'], default='token')
    data.add_argument('--seed', type=int, default=0, help='fixes data, masking and init')
    train = parser.add_argument_group('training')
    train.add_argument('--steps', type=int, default=defaults['steps'])
    train.add_argument('--lr', type=float, default=0.01, help="Adam's learning rate, as d2l")
    train.add_argument('--devices', default='cpu',
                       help='cpu, gpu (all), or a list such as cpu:0,cpu:1 or gpu:0,gpu:1')
    parser.add_argument('--out', default=defaults['out'], help='checkpoint folder to write')


CHAPTER = dict(num_hiddens=128, ffn_num_hiddens=256, num_heads=2, num_blks=2, dropout=0.2,
               max_len=64, batch_size=512, steps=50, out='runs/pretrained')
# The main job: the chapter's model on smaller batches, so that it finishes in minutes on 2 cores
MAIN = dict(CHAPTER, batch_size=128, steps=200, out='runs/main/pretrained')


def build_parser():
    parser = argparse.ArgumentParser(
        prog='gluonbert', description='BERT pretraining and fine-tuning in MXNet Gluon, '
        'mirroring the d2l chapters.')
    commands = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    main = commands.add_parser(
        'main', help='the main job: pretrain a small BERT on WikiText-2 and save it',
        description='Pretrain a small BERT on WikiText-2 (the full data when found, else '
        'the real slice shipped with gluonbert), print the MLM/NSP losses and save the '
        'checkpoint.')
    _add_pretrain_options(main, MAIN)
    pretrain = commands.add_parser(
        'pretrain', help='pretrain BERT on WikiText-2 (MLM + NSP)',
        description="Pretrain BERT on WikiText-2 as d2l's chapter does; writes a d2l-style "
        'folder (vocab.json, pretrained.params) plus config.json and a loss plot.')
    _add_pretrain_options(pretrain, CHAPTER)
    pretrain.add_argument('--fallback', choices=['embedded'],
                          help='use the embedded slice when WikiText-2 is not found')
    return parser


def pretrain(args, fallback=None):
    """Pretrain as ``args`` say; returns the result dict of ``train_bert``."""
    import random

    import mxnet as mx
    from mxnet import gluon, init

    from .data import load_data_wiki
    from .devices import parse_devices
    from .model import BERTModel
    from .progress import LossPlot, progress_bar
    from .train.checkpoint import save_pretrained
    from .train.pretrain import train_bert

    devices = parse_devices(args.devices)
    random.seed(args.seed)
    mx.random.seed(args.seed)
    train_iter, vocab = load_data_wiki(args.batch_size, args.max_len, args.data_dir,
                                       seed=args.seed, masking=args.masking, fallback=fallback)
    print(f'data: {len(train_iter.dataset)} sentence pairs, vocabulary of {len(vocab)}')
    net = BERTModel(len(vocab), args.num_hiddens, args.ffn_num_hiddens, args.num_heads,
                    args.num_blks, args.dropout, max_len=args.max_len,
                    activation=args.activation)
    net.initialize(init.Xavier(), ctx=devices)
    trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': args.lr})
    plot = LossPlot(('mlm', 'nsp'))
    with progress_bar(args.steps, 'pretrain') as bar:
        def on_step(step, mlm, nsp):
            plot.add(step, mlm, nsp)
            bar.update(1)
            bar.set_postfix(mlm=f'{mlm:.3f}', nsp=f'{nsp:.3f}')
        result = train_bert(train_iter, net, gluon.loss.SoftmaxCELoss(), len(vocab), devices,
                            args.steps, trainer=trainer, on_step=on_step, quiet=True)
    save_pretrained(net, vocab, args.out, config=net.config)
    plot.save(os.path.join(args.out, 'loss.png'), 'step')
    print(f'MLM loss {result["mlm_loss"]:.3f}, NSP loss {result["nsp_loss"]:.3f} (mean over '
          f'{args.steps} steps); last tenth of the steps: MLM {result["final_mlm_loss"]:.3f}, '
          f'NSP {result["final_nsp_loss"]:.3f}')
    print(f'{result["pairs_per_sec"]:.1f} sentence pairs/sec on {devices}')
    print(f'saved {args.out}/ (vocab.json, pretrained.params, config.json, loss.png)')
    return result


def main(argv=None):
    args = build_parser().parse_args(argv)
    print(runtime.describe())
    try:
        if args.command == 'main':
            print('== stage 1/1: pretrain a small BERT on WikiText-2')
            pretrain(args, fallback='embedded')
        elif args.command == 'pretrain':
            pretrain(args, fallback=args.fallback)
    except USER_ERRORS as error:
        print(f'gluonbert {args.command}: error: {error}', file=sys.stderr)
        return 2
    return 0
