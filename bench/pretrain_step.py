"""Pretraining step time: gluonbert's ``train_bert`` vs d2l, GluonNLP 0.10 and HF transformers.

The chapter's configuration (vocab 20,256, 128 hidden, 256 FFN, 2 heads, 2 blocks, dropout
0.2, batch 512, max_len 64, 10 MLM positions per sample) on the same synthetic batches, each
side in fresh processes, each step timed to its end (update included):
- d2l's ``BERTModel`` and chapter loop, as users run it and with ``OMP_NUM_THREADS`` set to the
  core count; the same two settings for GluonNLP's ``BERTModel`` (hybridized, MLM decoder at the
  masked positions only, ReLU FFN as in d2l);
- HF transformers' ``BertForPreTraining`` on torch (CPU, torch's default threads, train mode),
  with the MLM head applied to the masked positions only, in ``bench/.venv-torch``, which the
  first run creates (see ``torch_env.py``; ``--no-torch`` skips it);
- gluonbert with its defaults.
Same work everywhere, but not the same model in every detail: HF and GluonNLP tie the MLM
decoder to the word embedding and add an embedding LayerNorm; GluonNLP's MLM head uses GELU;
initialisations differ, and so do learning rates (d2l's 0.01 for d2l and gluonbert, 1e-3 for the
others), which change no work.
The ratios of gluonbert to every other row are printed, and its throughput in GFLOP/s
against a float32 GEMM ceiling measured with numpy. Prints a table and writes JSON.

    python bench/pretrain_step.py [--repeats 3] [--steps 8] [--no-torch] [--profile]
                                  [--amp bfloat16]
"""
import argparse
import os
import sys
import time

import op_profile
import torch_env
from harness import (OURS, add_amp_option, add_hf_row, amp_environment, check_amp, compare,
                     d2l_and_gluonbert, fresh_runs, hf_bert_config, print_speedups, print_table, start_amp,
                     worker_result, write_json)

# Steps left out of the median: graph construction, allocation and oneDNN's kernel
# generation make the first steps several times slower on both sides
WARMUP = 2

CONFIG = dict(vocab_size=20256, num_hiddens=128, ffn_num_hiddens=256, num_heads=2, num_blks=2,
              dropout=0.2, max_len=64, num_preds=10)


def batches(np, batch_size, steps, seed=0):
    rng = np.random.RandomState(seed)
    c = CONFIG
    for _ in range(steps):
        yield (rng.randint(5, c['vocab_size'], (batch_size, c['max_len'])).astype('int32'),
               (np.arange(c['max_len'])[None] >= 32).repeat(batch_size, 0).astype('int32'),
               rng.randint(40, c['max_len'] + 1, (batch_size,)).astype('float32'),
               rng.randint(1, 40, (batch_size, c['num_preds'])).astype('int32'),
               np.ones((batch_size, c['num_preds']), 'float32'),
               rng.randint(0, c['vocab_size'], (batch_size, c['num_preds'])).astype('int32'),
               rng.randint(0, 2, (batch_size,)).astype('int32'))


def run_d2l(batch_size, steps):
    """The chapter's code: d2l.BERTModel, split_and_load, _get_batch_loss_bert, Adam."""
    import numpy as onp
    c = CONFIG
    return d2l_chapter_steps(c['num_blks'], c['max_len'], batches(onp, batch_size, steps), c)


def d2l_chapter_steps(num_blks, max_len, batch_iter, width):
    """Seconds of each step of the d2l pretraining chapter's loop over ``batch_iter``, for
    d2l's ``BERTModel`` of ``width`` (vocab_size, num_hiddens, ffn_num_hiddens, num_heads,
    dropout) with ``num_blks`` blocks and ``max_len`` positions."""
    from mxnet import autograd, gluon, init, np, npx
    import d2l.mxnet as d2l
    npx.set_np()
    w = width
    net = d2l.BERTModel(w['vocab_size'], w['num_hiddens'], w['ffn_num_hiddens'], w['num_heads'],
                        num_blks, w['dropout'], max_len=max_len)
    devices = [npx.cpu()]
    net.initialize(init.Xavier(), ctx=devices)
    loss = gluon.loss.SoftmaxCELoss()
    trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': 0.01})
    times = []
    for batch in batch_iter:
        batch = [np.array(b) for b in batch]
        start = time.perf_counter()
        shards = [gluon.utils.split_and_load(b, devices, even_split=False) for b in batch]
        with autograd.record():
            mlm_ls, nsp_ls, ls = d2l._get_batch_loss_bert(net, loss, w['vocab_size'], *shards)
        for l in ls:
            l.backward()
        trainer.step(1)
        [float(l) for l in mlm_ls + nsp_ls]
        npx.waitall()  # the update too, so that each side's time is its whole step
        times.append(time.perf_counter() - start)
    return times


def run_gluonbert(batch_size, steps, profile_steps=0):
    """``train_bert`` as users call it; then, with ``profile_steps``, that many more steps
    under MXNet's profiler (returned as ``{operator: ms per step}``)."""
    import numpy as onp
    c = CONFIG
    return gluonbert_train_bert_steps(c['num_blks'], c['max_len'],
                                      batches(onp, batch_size, steps + profile_steps), c,
                                      steps, profile_steps)


def gluonbert_train_bert_steps(num_blks, max_len, batch_iter, width, steps, profile_steps=0):
    """``(seconds of steps 3 ... steps, operator profile or None)`` of gluonbert's
    ``train_bert`` over the ``steps + profile_steps`` batches of ``batch_iter``, for a
    ``BERTModel`` of ``width`` with ``num_blks`` blocks and ``max_len`` positions."""
    import gluonbert  # noqa: F401  (thread settings before mxnet)
    import mxnet as mx
    from mxnet import gluon, init
    from gluonbert import BERTModel
    from gluonbert.train.pretrain import train_bert
    w = width
    net = BERTModel(w['vocab_size'], w['num_hiddens'], w['ffn_num_hiddens'], w['num_heads'],
                    num_blks, w['dropout'], max_len=max_len)
    net.initialize(init.Xavier())
    stamps = []
    data = [[mx.nd.array(b, dtype=b.dtype) for b in batch] for batch in batch_iter]

    def on_step(step, *_):
        # Losses are read back one step late: after this wait, step i + 1 has finished. So
        # the stamps end steps 2..steps (the last call follows no new step) and the times
        # are those of steps 3..steps
        mx.nd.waitall()
        if step < steps:
            stamps.append(time.perf_counter())
        if profile_steps and step == steps - 1:  # steps steps > the profiled ones
            op_profile.start()

    train_bert(data, net, gluon.loss.SoftmaxCELoss(), w['vocab_size'], [mx.cpu()], len(data),
               on_step=on_step, quiet=True)
    operators = op_profile.collect(profile_steps) if profile_steps else None
    return [b - a for a, b in zip(stamps, stamps[1:])], operators


def run_gluonnlp(batch_size, steps):
    """GluonNLP 0.10's ``BERTModel`` and a step as its users write it (Adam, lr 1e-3)."""
    import numpy as onp
    import mxnet as mx
    from mxnet import autograd, gluon, init
    import gluonnlp
    c = CONFIG
    encoder = gluonnlp.model.BERTEncoder(
        num_layers=c['num_blks'], units=c['num_hiddens'], hidden_size=c['ffn_num_hiddens'],
        max_length=c['max_len'], num_heads=c['num_heads'], dropout=c['dropout'],
        output_attention=False, activation='relu')  # residuals are always on in 0.10
    net = gluonnlp.model.BERTModel(encoder, c['vocab_size'], token_type_vocab_size=2,
                                   units=c['num_hiddens'], embed_size=c['num_hiddens'],
                                   use_pooler=True, use_decoder=True, use_classifier=True)
    net.initialize(init.Normal(0.02))
    net.hybridize(static_alloc=True, static_shape=True)
    mlm_loss, nsp_loss = gluon.loss.SoftmaxCELoss(), gluon.loss.SoftmaxCELoss()
    mlm_loss.hybridize(static_alloc=True)
    nsp_loss.hybridize(static_alloc=True)
    trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': 1e-3})
    times = []
    for batch in batches(onp, batch_size, steps):
        tokens, segments, valid_lens, positions, weights, mlm_y, nsp_y = [
            mx.nd.array(b, dtype=b.dtype) for b in batch]
        start = time.perf_counter()
        with autograd.record():
            _, _, nsp_y_hat, mlm_y_hat = net(tokens, segments, valid_lens, positions)
            mlm_l = mlm_loss(mlm_y_hat.reshape((-1, c['vocab_size'])), mlm_y.reshape((-1,)),
                             weights.reshape((-1, 1)))
            l = mlm_l.sum() / (weights.sum() + 1e-8) + nsp_loss(nsp_y_hat, nsp_y).mean()
        l.backward()
        trainer.step(1)
        l.asscalar()
        mx.nd.waitall()
        times.append(time.perf_counter() - start)
    return times


def run_hf(batch_size, steps):
    """HF's ``BertForPreTraining`` (ReLU FFN as in d2l), its MLM head on the masked positions."""
    import numpy as onp
    import torch
    from transformers import BertForPreTraining
    c = CONFIG
    config = hf_bert_config(c)
    net = BertForPreTraining(config).train()
    loss = torch.nn.CrossEntropyLoss(reduction='none')
    trainer = torch.optim.Adam(net.parameters(), lr=1e-3)
    times = []
    for batch in batches(onp, batch_size, steps):
        tokens, segments, valid_lens, positions, weights, mlm_y, nsp_y = (
            torch.from_numpy(b).long() if b.dtype.kind == 'i' else torch.from_numpy(b)
            for b in batch)
        start = time.perf_counter()
        mask = torch.arange(c['max_len'])[None] < valid_lens[:, None]
        encoded, pooled = net.bert(tokens, attention_mask=mask.long(), token_type_ids=segments,
                                   return_dict=False)[:2]
        masked = encoded[torch.arange(batch_size)[:, None], positions]
        mlm_l = loss(net.cls.predictions(masked).reshape(-1, c['vocab_size']), mlm_y.reshape(-1))
        l = ((mlm_l * weights.reshape(-1)).sum() / (weights.sum() + 1e-8)
             + loss(net.cls.seq_relationship(pooled), nsp_y).mean())
        trainer.zero_grad()
        l.backward()
        trainer.step()
        l.item()
        times.append(time.perf_counter() - start)
    return times


GEMM_SIZE = 2048


def run_gemm(batch_size, steps):
    """Seconds per float32 ``GEMM_SIZE`` cubed matmul in numpy: the ceiling to compare with."""
    import numpy as np
    a, b = np.random.rand(2, GEMM_SIZE, GEMM_SIZE).astype('float32')
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return times


def train_flops_per_sample(c=CONFIG):
    """Training FLOPs of one sample: 6 per weight each token passes through (2 forward, 4
    backward) plus attention's two products per block, the MLM head at its ``num_preds``
    positions only and NSP on ``<cls>``; embeddings, softmax, LayerNorm and Adam left out.
    About 270 MFLOP for the chapter's configuration."""
    h, L, V = c['num_hiddens'], c['max_len'], c['vocab_size']
    per_token = c['num_blks'] * (4 * h * h + 2 * h * c['ffn_num_hiddens'])  # Q K V O, FFN
    attention = c['num_blks'] * 2 * L * L * h  # Q K^T and weights @ V, multiply-adds
    mlm = c['num_preds'] * (h * h + h * V)
    nsp = h * h + h * 2
    return 6 * (per_token * L + attention + mlm + nsp)


WORKERS = {'d2l': run_d2l, 'gluonnlp': run_gluonnlp, 'hf': run_hf, 'gemm': run_gemm,
           'gluonbert': run_gluonbert}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--steps', type=int, default=8)
    parser.add_argument('--batch-size', type=int, default=512)
    parser.add_argument('--no-torch', action='store_true', help='skip the HF transformers row')
    parser.add_argument('--profile', action='store_true',
                        help="then profile gluonbert's step by operator (one more process)")
    parser.add_argument('--profile-steps', type=int, default=0, help=argparse.SUPPRESS)
    add_amp_option(parser)
    parser.add_argument('--worker', choices=sorted(WORKERS))
    args = parser.parse_args()
    if args.worker == 'hf' and not torch_env.active():
        os.execv(torch_env.PYTHON, [torch_env.PYTHON, *sys.argv])
    if args.worker == 'gluonbert':
        start_amp()
        times, operators = run_gluonbert(args.batch_size, args.steps, args.profile_steps)
        worker_result(times, WARMUP, operators=operators)  # the harness drops WARMUP more
        return
    if args.worker:
        worker_result(WORKERS[args.worker](args.batch_size, args.steps), WARMUP)
        return
    check_amp(parser, args.amp)
    runs = d2l_and_gluonbert(args.amp)
    cores = str(len(os.sched_getaffinity(0)))
    runs['gluonnlp (defaults)'] = ('gluonnlp', None)
    runs[f'gluonnlp (OMP_NUM_THREADS={cores})'] = ('gluonnlp', {'OMP_NUM_THREADS': cores})
    skipped = add_hf_row(runs, args.no_torch)
    worker_args = ['--steps', args.steps, '--batch-size', args.batch_size]
    rows = compare(__file__, runs, worker_args, args.repeats, args.batch_size, 'pairs_per_sec')
    print_table(f'pretraining step, batch {args.batch_size} x {CONFIG["max_len"]}, '
                f'{args.repeats} fresh processes each', rows, 'd2l (defaults)',
                extra=('pairs_per_sec', 'peak_rss_mib'))
    speedups = print_speedups(rows, args.amp)

    gemm = fresh_runs(__file__, 'gemm', worker_args, args.repeats)
    gemm_gflops = 2 * GEMM_SIZE ** 3 / min(r['seconds'] for r in gemm) / 1e9
    flops = train_flops_per_sample()
    ours_gflops = flops * rows[OURS]['pairs_per_sec'] / 1e9
    print(f'gluonbert: {flops / 1e6:.0f} MFLOP/sample x {rows[OURS]["pairs_per_sec"]:.1f} '
          f'pairs/s = {ours_gflops:.1f} GFLOP/s, {ours_gflops / gemm_gflops:.0%} of numpy\'s '
          f'float32 {GEMM_SIZE}^3 matmul ({gemm_gflops:.1f} GFLOP/s)')
    profiles = (op_profile.profiles(__file__, ['gluonbert'], ['--steps', 5, '--batch-size',
                                                              args.batch_size],
                                    env=amp_environment(args.amp))
                if args.profile else None)
    write_json('pretrain_step.json', dict(
        config=CONFIG, batch_size=args.batch_size, python=sys.version.split()[0], amp=args.amp,
        results=rows, gluonbert_speedup=speedups, hf_skipped=skipped,
        train_flops_per_sample=flops, gluonbert_gflops=ours_gflops, gemm_gflops=gemm_gflops,
        profiles=profiles))


if __name__ == '__main__':
    main()
