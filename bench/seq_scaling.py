"""How pretraining step time and peak memory grow with sequence length and depth, d2l vs gluonbert.

The d2l chapter's width (vocab 20,256, 128 hidden, 256 FFN, 2 heads, dropout 0.2) with 2, 4
and 12 blocks and ``max_len`` = sequence length 64, 128, 256 and 512. Every cell does the same
token work: the batch is ``--tokens-per-batch`` / seq_len sequences (default 16,384 tokens:
256 x 64 ... 32 x 512), each with d2l's ``round(rate * seq_len)`` MLM predictions at the
masking rate of gluonbert's ``MaskingConfig`` (by default 10, 19, 38, 77). Synthetic batches;
one side per fresh process: d2l's ``BERTModel`` in the chapter's step (``split_and_load``,
``_get_batch_loss_bert``, ``trainer.step``) vs gluonbert's ``train_bert``. Each step is
timed to its end (update included); the first two steps are left out. A cell's time is the
median over ``--repeats`` processes of each process's median step.

d2l runs as users run it: MXNet's default of half the cores for OpenMP (one thread here),
while gluonbert sets ``OMP_NUM_THREADS`` to the core count. Set ``OMP_NUM_THREADS`` (and, on a
shared machine, ``OMP_WAIT_POLICY=PASSIVE``) in the environment to give both sides the same.

    python bench/seq_scaling.py [--layers 2 4 12] [--seq-lens 64 128 256 512] [--steps 5]
"""
import argparse
import statistics
import sys

from harness import fresh_runs, worker_result, write_json
from pretrain_step import d2l_chapter_steps, gluonbert_train_bert_steps

# Steps 1 and 2 (graph construction, allocation, oneDNN's kernel generation) are left out
WARMUP = 2

WIDTH = dict(vocab_size=20256, num_hiddens=128, ffn_num_hiddens=256, num_heads=2, dropout=0.2)


def predictions(seq_len):
    """d2l's MLM predictions per sequence at gluonbert's masking rate. Called in the workers
    only, once MXNet is imported: importing gluonbert first would set ``OMP_NUM_THREADS``,
    for d2l's side too."""
    from gluonbert.data.masking import MaskingConfig
    return round(MaskingConfig().rate * seq_len)


def batches(np, batch_size, seq_len, steps, seed=0):
    """Synthetic pretraining batches: valid lengths in [5/8, 1] of seq_len, predictions among
    the first 5/8 of the positions, the second half of the positions in segment 1."""
    rng = np.random.RandomState(seed)
    vocab, num_preds, short = WIDTH['vocab_size'], predictions(seq_len), seq_len * 5 // 8
    for _ in range(steps):
        yield (rng.randint(5, vocab, (batch_size, seq_len)).astype('int32'),
               (np.arange(seq_len)[None] >= seq_len // 2).repeat(batch_size, 0).astype('int32'),
               rng.randint(short, seq_len + 1, (batch_size,)).astype('float32'),
               rng.randint(1, short, (batch_size, num_preds)).astype('int32'),
               np.ones((batch_size, num_preds), 'float32'),
               rng.randint(0, vocab, (batch_size, num_preds)).astype('int32'),
               rng.randint(0, 2, (batch_size,)).astype('int32'))


def run_d2l(layers, seq_len, batch_size, steps):
    """The chapter's step; the times of steps WARMUP + 1 ... steps."""
    import numpy as onp
    return d2l_chapter_steps(layers, seq_len, batches(onp, batch_size, seq_len, steps),
                             WIDTH)[WARMUP:]


def run_gluonbert(layers, seq_len, batch_size, steps):
    """``train_bert``; the times of steps WARMUP + 1 ... steps."""
    import numpy as onp
    assert WARMUP == 2  # the helper's times start at step 3
    times, _ = gluonbert_train_bert_steps(layers, seq_len,
                                          batches(onp, batch_size, seq_len, steps), WIDTH, steps)
    return times


WORKERS = {'d2l': run_d2l, 'gluonbert': run_gluonbert}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--layers', type=int, nargs='+', default=[2, 4, 12])
    parser.add_argument('--seq-lens', type=int, nargs='+', default=[64, 128, 256, 512])
    parser.add_argument('--repeats', type=int, default=1)
    parser.add_argument('--steps', type=int, default=5, help='per process, warm-up included')
    parser.add_argument('--tokens-per-batch', type=int, default=16384)
    parser.add_argument('--worker', choices=sorted(WORKERS))
    parser.add_argument('--cell', type=int, nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps <= WARMUP:
        parser.error(f'--steps must be more than the {WARMUP} warm-up steps')
    if args.worker:
        times = WORKERS[args.worker](*args.cell, args.steps)
        worker_result(times, 0, num_preds=predictions(args.cell[1]))
        return
    cells = []
    print(f'pretraining step, {args.tokens_per_batch} tokens per batch, '
          f'{args.repeats} fresh process(es) per side and cell')
    print(f'{"layers":>6}{"seq_len":>8}{"batch":>6}{"preds":>6}{"d2l s/step":>12}'
          f'{"gluonbert s/step":>18}{"speed-up":>10}{"d2l MiB":>10}{"gluonbert MiB":>15}')
    for layers in args.layers:
        for seq_len in args.seq_lens:
            batch_size = max(1, args.tokens_per_batch // seq_len)
            cell = dict(layers=layers, seq_len=seq_len, batch_size=batch_size)
            for side in WORKERS:
                results = fresh_runs(__file__, side,
                                     ['--steps', args.steps, '--cell', layers, seq_len, batch_size],
                                     args.repeats)
                cell['num_preds'] = results[0]['num_preds']
                cell[side] = dict(seconds=statistics.median(r['seconds'] for r in results),
                                  peak_rss_mib=max(r['rss'] for r in results))
            cell['speed_up'] = cell['d2l']['seconds'] / cell['gluonbert']['seconds']
            cells.append(cell)
            print(f'{layers:>6}{seq_len:>8}{batch_size:>6}{cell["num_preds"]:>6}'
                  f'{cell["d2l"]["seconds"]:>12.4f}{cell["gluonbert"]["seconds"]:>18.4f}'
                  f'{cell["speed_up"]:>9.2f}x{cell["d2l"]["peak_rss_mib"]:>10.0f}'
                  f'{cell["gluonbert"]["peak_rss_mib"]:>15.0f}', flush=True)
    write_json('seq_scaling.json', dict(width=WIDTH, tokens_per_batch=args.tokens_per_batch,
                                        steps=args.steps, warmup=WARMUP, repeats=args.repeats,
                                        python=sys.version.split()[0], cells=cells))


if __name__ == '__main__':
    main()
