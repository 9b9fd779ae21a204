"""BERT-base-sized inference in MXNet: gluonbert vs GluonNLP 0.10 (both hybridized) vs d2l.

12 layers, 768 hidden, 12 heads, 3072 FFN, vocab 30,522, batch 8 x 128, random weights; each
model computes the sequence encoding, the pooled ``<cls>`` features and the 2-way NSP output
(GluonNLP: ``use_pooler``, ``use_classifier``). Both libraries run hybridized (static graph)
and, in the "fused" rows, as each library fuses for inference: gluonbert's
``hybridize_for_inference`` (used by ``evaluate`` and ``predict``: its kernels where built,
else MXNet's oneDNN subgraph backend), GluonNLP with ``hybridize(backend='MKLDNN')``, which a
GluonNLP user can ask for. Fresh processes, forward
passes timed to their end. Prints a table and writes JSON.

    python bench/inference.py [--repeats 3] [--batches 12]
"""
import argparse
import sys
import time

from harness import compare, print_table, worker_result, write_json

BASE = dict(vocab_size=30522, num_hiddens=768, ffn_num_hiddens=3072, num_heads=12, num_blks=12,
            dropout=0.1, max_len=512)
BATCH, SEQ_LEN, WARMUP = 8, 128, 2


def inputs(np):
    rng = np.random.RandomState(0)
    return (rng.randint(5, BASE['vocab_size'], (BATCH, SEQ_LEN)).astype('float32'),
            (np.arange(SEQ_LEN)[None] >= 64).repeat(BATCH, 0).astype('float32'),
            rng.randint(64, SEQ_LEN + 1, (BATCH,)).astype('float32'))


def timed(forward, batches):
    times = []
    for _ in range(batches):
        start = time.perf_counter()
        forward()
        times.append(time.perf_counter() - start)
    return times


def run_gluonbert(batches, backend=None):
    import numpy as onp
    import gluonbert
    import mxnet as mx
    net = gluonbert.BERTModel(**BASE, activation='gelu', embedding_layer_norm=True,
                              layer_norm_eps=1e-12)
    net.initialize(mx.init.Normal(0.02))
    if backend:
        gluonbert.hybridize_for_inference(net)
    else:
        net.hybridize(static_alloc=True, static_shape=True)
    tokens, segments, valid_lens = (mx.nd.array(x) for x in inputs(onp))

    def forward():
        encoded, _, nsp = net(tokens, segments, valid_lens)
        mx.nd.waitall()
    return timed(forward, batches)


def run_gluonnlp(batches, backend=None):
    import numpy as onp
    import mxnet as mx
    import gluonnlp
    vocab = gluonnlp.vocab.BERTVocab(gluonnlp.data.count_tokens(
        [str(i) for i in range(BASE['vocab_size'] - 5)]))
    net, _ = gluonnlp.model.get_model('bert_12_768_12', dataset_name=None, vocab=vocab,
                                      pretrained=False, use_pooler=True, use_decoder=False,
                                      use_classifier=True)
    net.initialize(mx.init.Normal(0.02))
    net.hybridize(static_alloc=True, static_shape=True, backend=backend)
    tokens, segments, valid_lens = (mx.nd.array(x) for x in inputs(onp))

    def forward():
        net(tokens, segments, valid_lens)
        mx.nd.waitall()
    return timed(forward, batches)


def run_d2l(batches):
    import numpy as onp
    from mxnet import init, np, npx
    import d2l.mxnet as d2l
    npx.set_np()
    net = d2l.BERTModel(*[BASE[k] for k in ('vocab_size', 'num_hiddens', 'ffn_num_hiddens',
                                            'num_heads', 'num_blks', 'dropout', 'max_len')])
    net.initialize(init.Normal(0.02))
    tokens, segments, valid_lens = (np.array(x) for x in inputs(onp))

    def forward():
        net(tokens, segments, valid_lens)
        npx.waitall()
    return timed(forward, batches)


WORKERS = {'gluonnlp': run_gluonnlp,
           'gluonnlp (fused)': lambda batches: run_gluonnlp(batches, 'MKLDNN'),
           'gluonbert': run_gluonbert,
           'gluonbert (fused)': lambda batches: run_gluonbert(batches, 'MKLDNN'),
           'd2l': run_d2l}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--batches', type=int, default=12)
    parser.add_argument('--worker', choices=sorted(WORKERS))
    args = parser.parse_args()
    if args.worker:
        import gluonbert  # noqa: F401  (the same thread settings for every side)
        times = WORKERS[args.worker](args.batches)
        worker_result(times, WARMUP)
        return
    runs = {name: (name, None) for name in WORKERS}
    rows = compare(__file__, runs, ['--batches', args.batches], args.repeats, BATCH,
                   'sequences_per_sec')
    print_table(f'BERT-base inference, batch {BATCH} x {SEQ_LEN}, hybridized where possible, '
                f'{args.repeats} fresh processes each (seconds per batch)', rows, 'gluonnlp',
                extra=('sequences_per_sec', 'peak_rss_mib'))
    write_json('inference.json', dict(config=BASE, batch=BATCH, seq_len=SEQ_LEN,
                                      python=sys.version.split()[0], results=rows))


if __name__ == '__main__':
    main()
