"""Inference of one BERT-base-sized classifier: MXNet vs onnxruntime on two ONNX exports of it.

12 layers, 768 hidden, 12 heads, 3072 FFN, vocab 30,522, GELU and embedding LayerNorm (so
that GluonNLP 0.10's BERT has the same architecture), random weights, batch 8 x 128. Compared:
gluonbert's ``BERTClassifier`` in MXNet, hybridized (static); onnxruntime on its
``gluonbert.export.export_onnx`` export (float32, and dynamic int8); onnxruntime on the other
route: GluonNLP 0.10's ``BERTClassifier`` holding the same weights, exported with
``mxnet.onnx.export_model`` (opset held at 13, which mx2onnx needs). Every side runs in fresh
processes, taken in turns so that load from other work falls on all of them; every
onnxruntime session has all graph optimizations on. Each batch is timed by the wall clock and
by the CPU seconds of the process: on a machine shared with other work, ``--threads 1`` gives
CPU times that the others' load hardly changes. With the deployment environment
(``export/setup-deploy.sh``), three more sides run on its newest onnxruntime: our export as it
is, ``export/optimize.py``'s fused graph, and onnxruntime's ``quantize_dynamic`` of that graph
(``--no-deploy`` skips them). Prints tables, the max difference of each side's logits from
MXNet's, and writes JSON.

    python bench/onnx_inference.py [--repeats 3] [--batches 12] [--threads 1] [--no-deploy]
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from harness import fresh_runs, print_table, summary, write_json

BASE = dict(vocab_size=30522, num_hiddens=768, ffn_num_hiddens=3072, num_heads=12, num_blks=12,
            dropout=0.1, max_len=512)
OPTIONS = dict(activation='gelu', embedding_layer_norm=True, layer_norm_eps=1e-12)
LABELS = ('entailment', 'contradiction', 'neutral')
BATCH, SEQ_LEN, WARMUP = 8, 128, 2
MXNET, OURS, OURS_INT8, GLUONNLP = ('MXNet hybridized', 'ORT gluonbert export',
                                    'ORT gluonbert int8', 'ORT GluonNLP export')
NEWEST, OPTIMIZED, OPTIMIZED_INT8 = ('newest ORT, gluonbert export', 'newest ORT, optimised',
                                     'newest ORT, optimised + ORT int8')
EXPORT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'export')
DEPLOY_PYTHON = os.path.join(EXPORT, '.venv-deploy', 'bin', 'python')


def inputs(np):
    """One batch: random ids, second segment from position 64, lengths 64 to 128."""
    rng = np.random.RandomState(0)
    valid_lens = rng.randint(64, SEQ_LEN + 1, (BATCH,))
    valid_lens[0] = SEQ_LEN
    segments = (np.arange(SEQ_LEN)[None] >= 64) & (np.arange(SEQ_LEN)[None] < valid_lens[:, None])
    return {'tokens': rng.randint(5, BASE['vocab_size'], (BATCH, SEQ_LEN)),
            'segments': segments.astype('int64'), 'valid_lens': valid_lens}


def classifier():
    import mxnet as mx
    import gluonbert
    bert = gluonbert.BERTModel(**BASE, **OPTIONS)
    net = gluonbert.BERTClassifier(bert, len(LABELS))
    return net, mx


def timed(forward, batches):
    """Wall-clock and CPU seconds (all threads of the process) of each call of ``forward``."""
    wall, cpu = [], []
    for _ in range(batches):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = forward()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu, out


def run_mxnet(batches, params):
    import numpy as onp
    net, mx = classifier()
    net.load_parameters(params)
    net.hybridize(static_alloc=True, static_shape=True)
    batch = inputs(onp)
    x = (mx.nd.array(batch['tokens'], dtype='int32'), mx.nd.array(batch['segments'], dtype='int32'),
         mx.nd.array(batch['valid_lens'], dtype='float32'))
    return timed(lambda: net(x).asnumpy(), batches)


def run_onnxruntime(batches, model, dtype, threads):
    """onnxruntime on ``model`` with every graph optimization on (gluonbert's
    ``inference_session`` settings; the deploy venv has no gluonbert)."""
    import numpy as onp
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(model, options, providers=['CPUExecutionProvider'])
    feeds = {name: value.astype(dtype) for name, value in inputs(onp).items()}
    return timed(lambda: session.run(None, feeds)[0], batches)


def deployed_sides(ours):
    """Sides on the deploy venv's onnxruntime, after ``export/optimize.py`` on ``ours``;
    ``({}, reason)`` when that environment is absent or the optimisation fails."""
    if not os.path.exists(DEPLOY_PYTHON):
        return {}, 'export/.venv-deploy is absent (export/setup-deploy.sh creates it)'
    done = subprocess.run([DEPLOY_PYTHON, os.path.join(EXPORT, 'optimize.py'), ours],
                          capture_output=True, text=True)
    print(done.stdout, done.stderr[-2000:] if done.returncode else '', sep='')
    if done.returncode:
        return {}, f'export/optimize.py failed: {done.stderr.strip().splitlines()[-1]}'
    return {NEWEST: ('deploy', os.path.join(ours, 'model.onnx'), 'int64'),
            OPTIMIZED: ('deploy', os.path.join(ours, 'model.opt.onnx'), 'int64'),
            OPTIMIZED_INT8: ('deploy', os.path.join(ours, 'model.opt.int8.onnx'), 'int64')}, None


def export_models(folder):
    """Save the weights, export them through gluonbert and through GluonNLP; return paths."""
    import mxnet as mx
    from gluonbert.export import export_onnx
    net, _ = classifier()
    mx.random.seed(0)
    net.initialize(mx.init.Normal(0.02))
    params = os.path.join(folder, 'classifier.params')
    net.save_parameters(params)
    vocab = ['<unk>', '<pad>', '<cls>', '<sep>', '<mask>'] + [
        f'token{i}' for i in range(BASE['vocab_size'] - 5)]
    start = time.perf_counter()
    report = export_onnx(net, os.path.join(folder, 'gluonbert'), vocab, LABELS, SEQ_LEN,
                         quantize=True)
    print(f'gluonbert export with verification: {time.perf_counter() - start:.0f} s')
    print(report)
    gluonnlp_model = export_gluonnlp(net, os.path.join(folder, 'gluonnlp.onnx'))
    return params, os.path.join(folder, 'gluonbert'), gluonnlp_model, report


def export_gluonnlp(net, path):
    """GluonNLP 0.10's BERTClassifier with ``net``'s weights, through ``mx.onnx.export_model``."""
    import mxnet as mx
    import gluonnlp
    import numpy as onp
    import onnx
    from gluonbert.export.opset import OPSET, graph_checks_at
    encoder = gluonnlp.model.BERTEncoder(
        num_layers=BASE['num_blks'], units=BASE['num_hiddens'],
        hidden_size=BASE['ffn_num_hiddens'], max_length=BASE['max_len'],
        num_heads=BASE['num_heads'], dropout=BASE['dropout'], activation='gelu',
        layer_norm_eps=OPTIONS['layer_norm_eps'])
    bert = gluonnlp.model.BERTModel(encoder, BASE['vocab_size'], 2, units=BASE['num_hiddens'],
                                    embed_size=BASE['num_hiddens'], use_decoder=False,
                                    use_classifier=False, use_pooler=True)
    theirs = gluonnlp.model.BERTClassifier(bert, num_classes=len(LABELS), dropout=0.1)
    theirs.initialize()
    batch = {k: mx.nd.array(v) for k, v in inputs(onp).items()}
    theirs(batch['tokens'], batch['segments'], batch['valid_lens'])  # shapes the parameters
    ours = net._collect_params_with_prefix()
    for name, param in theirs._collect_params_with_prefix().items():
        param.set_data(ours[gluonbert_name(name)].data().reshape(param.shape))
    symbol = theirs(*[mx.sym.var(name) for name in ('tokens', 'segments', 'valid_lens')])
    params = {p.name: p.data() for p in theirs.collect_params().values()}
    opset_version = onnx.defs.onnx_opset_version
    onnx.defs.onnx_opset_version = lambda: OPSET  # mx2onnx reads it; restored below
    try:
        with graph_checks_at(OPSET):
            mx.onnx.export_model(symbol, params, [(BATCH, SEQ_LEN)] * 2 + [(BATCH,)],
                                 onnx_file_path=path, dynamic=True,
                                 dynamic_input_shapes=[('batch', 'seq')] * 2 + [('batch',)])
    finally:
        onnx.defs.onnx_opset_version = opset_version
    return path


def gluonbert_name(gluonnlp_name):
    """The gluonbert parameter that a GluonNLP 0.10 BERTClassifier parameter corresponds to."""
    fixed = {'bert.encoder.position_weight': 'encoder.pos_embedding',
             'bert.encoder.layer_norm.': 'encoder.embedding_ln.',
             'bert.word_embed.0.': 'encoder.token_embedding.',
             'bert.token_type_embed.0.': 'encoder.segment_embedding.',
             'bert.pooler.': 'hidden.', 'classifier.1.': 'output.'}
    for theirs, ours in fixed.items():
        if gluonnlp_name.startswith(theirs):
            return ours + gluonnlp_name[len(theirs):]
    layer, rest = re.match(r'bert\.encoder\.transformer_cells\.(\d+)\.(.*)', gluonnlp_name).groups()
    per_layer = {'attention_cell.proj_query.': 'attention.W_q.',
                 'attention_cell.proj_key.': 'attention.W_k.',
                 'attention_cell.proj_value.': 'attention.W_v.', 'proj.': 'attention.W_o.',
                 'layer_norm.': 'addnorm1.ln.', 'ffn.ffn_1.': 'ffn.dense1.',
                 'ffn.ffn_2.': 'ffn.dense2.', 'ffn.layer_norm.': 'addnorm2.ln.'}
    for theirs, ours in per_layer.items():
        if rest.startswith(theirs):
            return f'encoder.blks.{layer}.{ours}{rest[len(theirs):]}'
    raise KeyError(gluonnlp_name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--batches', type=int, default=12)
    parser.add_argument('--threads', type=int, default=0,
                        help='threads of every side (default: each library\'s own choice, one '
                             'per core); with 1, CPU seconds are not inflated by other work '
                             'on the machine')
    parser.add_argument('--no-deploy', action='store_true',
                        help='skip the sides on the deploy venv\'s newest onnxruntime')
    parser.add_argument('--worker', choices=('mxnet', 'onnxruntime', 'deploy'))
    parser.add_argument('--model')
    parser.add_argument('--dtype')
    args = parser.parse_args()
    if args.worker == 'deploy' and os.path.realpath(sys.executable) != os.path.realpath(
            DEPLOY_PYTHON):
        os.execv(DEPLOY_PYTHON, [DEPLOY_PYTHON, *sys.argv])
    if args.worker != 'deploy':
        import gluonbert  # noqa: F401  (thread settings before mxnet, the same on every side)
    if args.worker:
        if args.worker == 'mxnet':
            wall, cpu, logits = run_mxnet(args.batches, args.model)
        else:
            wall, cpu, logits = run_onnxruntime(args.batches, args.model, args.dtype,
                                                args.threads)
        print(json.dumps(dict(wall=wall[WARMUP:], cpu=cpu[WARMUP:], logits=logits.tolist())))
        return
    folder = tempfile.mkdtemp(prefix='onnx-inference-')
    try:
        params, ours, gluonnlp_model, report = export_models(folder)
        sides = {MXNET: ('mxnet', params, ''),
                 OURS: ('onnxruntime', os.path.join(ours, 'model.onnx'), 'int64'),
                 OURS_INT8: ('onnxruntime', os.path.join(ours, 'model.int8.onnx'), 'int64'),
                 GLUONNLP: ('onnxruntime', gluonnlp_model, 'float32')}
        deployed, deploy_skipped = ({}, '--no-deploy') if args.no_deploy else \
            deployed_sides(ours)
        if deploy_skipped:
            print(f'sides on the newest onnxruntime skipped: {deploy_skipped}')
        sides.update(deployed)
        results = {name: [] for name in sides}
        env = {'OMP_NUM_THREADS': str(args.threads)} if args.threads else None  # for MXNet
        for _ in range(args.repeats):  # in turns: each round runs every side once
            for name, (worker, model, dtype) in sides.items():
                results[name] += fresh_runs(
                    __file__, worker, ['--batches', args.batches, '--model', model,
                                       '--dtype', dtype or 'none', '--threads', args.threads],
                    1, env)
    finally:
        shutil.rmtree(folder)
    report_and_save(results, report, args, deploy_skipped)


def report_and_save(results, report, args, deploy_skipped):
    import numpy as onp
    reference = onp.array(results[MXNET][0]['logits'])
    threads = f'{args.threads} thread(s)' if args.threads else 'default threads'
    tables = {}
    for clock in ('wall', 'cpu'):
        rows = {}
        for name, runs in results.items():
            times = [t for run in runs for t in run[clock]]
            rows[name] = dict(summary(times),
                              seqs_per_s=BATCH / statistics.median(times))
        print_table(f'BERT-base classifier inference, batch {BATCH} x {SEQ_LEN}, {threads}, '
                    f'{args.repeats} fresh processes x {args.batches - WARMUP} batches per side '
                    f'({clock} seconds per batch)', rows, MXNET, extra=('seqs_per_s',))
        best_other = min((MXNET, GLUONNLP), key=lambda name: rows[name]['median'])
        ratio = rows[best_other]['median'] / rows[OURS]['median']
        print(f'gluonbert export under onnxruntime vs the best other side ({best_other}), '
              f'{clock} time: {ratio:.2f}x\n')
        tables[clock] = dict(results=rows, ours_vs_best_other=dict(best_other=best_other,
                                                                     speedup=ratio))
        if OPTIMIZED in rows:
            tables[clock]['vs_ours'] = {name: rows[OURS]['median'] / rows[name]['median']
                                        for name in (NEWEST, OPTIMIZED, OPTIMIZED_INT8,
                                                     OURS_INT8)}
            print('speed-up over the gluonbert export on onnxruntime 1.19.2, ' + clock +
                  ' time: ' + ', '.join(f'{name} {value:.2f}x'
                                        for name, value in tables[clock]['vs_ours'].items())
                  + '\n')
    diffs = {name: float(max(onp.abs(onp.array(run['logits']) - reference).max()
                             for run in runs)) for name, runs in results.items()}
    for name, diff in diffs.items():
        print(f'max |logits - MXNet logits|  {name:<34} {diff:.2e}')
    write_json(f'onnx_inference{"_threads" + str(args.threads) if args.threads else ""}.json',
               dict(config=dict(BASE, **OPTIONS), batch=BATCH, seq_len=SEQ_LEN,
                    threads=args.threads or 'default', repeats=args.repeats,
                    timed_batches_per_process=args.batches - WARMUP,
                    python=sys.version.split()[0], load_average=os.getloadavg(),
                    max_abs_diff_vs_mxnet=diffs, deploy_skipped=deploy_skipped, **tables,
                    export_verification=dict(max_abs_diff=report.max_abs_diff,
                                             int8_max_abs_diff=report.int8_max_abs_diff,
                                             batches=report.verification.batches)))


if __name__ == '__main__':
    main()
