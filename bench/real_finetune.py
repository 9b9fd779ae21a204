"""Fine-tuning step throughput of real BERT geometries: gluonbert vs HF transformers (torch).

Two models: all-MiniLM-L6-v2 (6 layers, 384 wide; ``gluonbert.pretrained.packaged``) and
BERT-base's geometry (12 layers, 768 wide, 12 heads, 3,072 FFN) with random weights, saved
once as an HF folder (``~/.cache/gluonbert/bench/bert-base-random``, MiniLM's uncased vocab)
so that both frameworks load the same weights with ``--pretrained``. Three length settings:

- ``sst-2``: SST-2 training sentences at their own lengths (encoded by gluonbert's
  classification task at max_len 128, shuffled with seed 0), each batch cut to its longest
  sentence rounded up to 16 (dynamic padding, gluonbert's ``LongestInBatch``; HF's worker cuts
  the same batches the same way), batch 64 (``gluonbert finetune``'s default);
- ``128``: full 128-token sequence pairs (random ids), classification, batch 32;
- ``384``: full 384-token windows (random ids), question answering (start/end logits), batch 8.

Five rows per model and setting, each in a fresh process, taken in turns (``--repeats``):
``gluonbert fp32`` (``--amp off``), ``gluonbert default`` (``gluonbert finetune`` as a user
runs it: its default ``--amp``), ``gluonbert bf16`` (``--amp bf16``), ``hf fp32`` and ``hf bf16 autocast`` (the same loop under
``torch.autocast('cpu', dtype=torch.bfloat16)``; ``bench/.venv-torch``). Both sides run the
same recipe (AdamW, weight decay 0.01 off for biases and LayerNorm, linear warm-up and decay)
and the same batches; gluonbert builds its model, trainer and engine with ``gluonbert
finetune``'s own code from its parsed command line. The first ``--warmup`` steps (graph
construction, oneDNN kernel generation) are left out; examples/s is the timed examples over
the timed seconds (each step to its end, update included). Prints one table per model and
setting (ratios to ``hf fp32``) and writes ``bench/results/real_finetune.json``.

    python bench/real_finetune.py [--models minilm,bert-base] [--settings sst-2,128,384]
        [--steps 6] [--warmup 2] [--repeats 1] [--rows ...] [--quick]

``--quick`` is a smoke run: MiniLM only, every setting at batch 4 and 1+1 steps.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import torch_env  # noqa: E402
from harness import ratio_table, write_json  # noqa: E402

MODELS = ('minilm', 'bert-base')
# name: (task kind, batch size, max_len, real SST-2 sentences or random full-length ids)
SETTINGS = {'sst-2': ('classification', 64, 128, True),
            '128': ('classification', 32, 128, False),
            '384': ('question-answering', 8, 384, False)}
ROWS = ('gluonbert fp32', 'gluonbert default', 'gluonbert bf16', 'hf fp32', 'hf bf16 autocast')
BASELINE = 'hf fp32'
COLUMNS = [('peak RSS MiB', 'peak_rss_mib', 14, '.0f'), ('precision', 'precision', 11, '')]
BERT_BASE = os.path.join(os.path.expanduser('~'), '.cache', 'gluonbert', 'bench',
                         'bert-base-random')
LR, WEIGHT_DECAY, WARMUP_RATIO = 5e-5, 0.01, 0.1
QUICK_BATCH, QUICK_STEPS, QUICK_WARMUP = 4, 1, 1
PROFILE_STEPS = 2


def minilm_folder():
    sys.path.insert(0, ROOT)
    from gluonbert.pretrained.packaged import packaged_checkpoint
    return packaged_checkpoint()


def bert_base_folder(minilm):
    """BERT-base's geometry with seeded random weights, as an HF folder (made once, in the
    torch environment), with MiniLM's vocabulary and tokenizer files."""
    if os.path.exists(os.path.join(BERT_BASE, 'model.safetensors')):
        return BERT_BASE
    code = ('import sys, torch, transformers; torch.manual_seed(0); '
            'transformers.BertModel(transformers.BertConfig()).save_pretrained(sys.argv[1])')
    os.makedirs(BERT_BASE, exist_ok=True)
    subprocess.run([torch_env.torch_python(), '-c', code, BERT_BASE], check=True)
    for name in ('vocab.txt', 'tokenizer.json', 'tokenizer_config.json',
                 'special_tokens_map.json'):
        if os.path.exists(os.path.join(minilm, name)):
            with open(os.path.join(minilm, name), 'rb') as f, \
                    open(os.path.join(BERT_BASE, name), 'wb') as out:
                out.write(f.read())
    return BERT_BASE


def prepare_worker(spec):
    """The features of one setting as an .npz: SST-2 encoded by gluonbert's task, or random
    full-length ids."""
    import numpy as np
    kind, batch, max_len, real = spec['kind'], spec['batch'], spec['max_len'], spec['real']
    n = batch * spec['steps']
    rng = np.random.RandomState(0)
    if real:
        from gluonbert.pretrained.hf_tokenizer import load_vocab_and_tokenizer
        from gluonbert.tasks import get_task
        task = get_task('classification')
        examples = task.read(os.path.join(spec['data'], 'sst-2', 'train.tsv'))
        examples = [examples[i] for i in rng.permutation(len(examples))[:n]]
        vocab, tokenizer = load_vocab_and_tokenizer(spec['folder'])
        features = task.encode(examples, tokenizer, vocab, max_len, task.labels_from(examples))
        arrays = features.arrays
    else:
        tokens = rng.randint(1000, 30000, (n, max_len)).astype('int32')
        segments = (np.arange(max_len)[None] >= max_len // 4).repeat(n, 0).astype('int32')
        valid_lens = np.full(n, max_len, 'float32')
        if kind == 'question-answering':
            start = rng.randint(max_len // 4, max_len - 8, n)
            labels = np.stack([start, start + rng.randint(0, 8, n)], 1).astype('int32')
        else:
            labels = rng.randint(0, 2, n).astype('int32')
        arrays = (tokens, segments, valid_lens, labels)
    np.savez(spec['out'], tokens=arrays[0], segments=arrays[1], valid_lens=arrays[2],
             labels=arrays[3])
    return {'mean_valid_len': float(np.mean(arrays[2]))}


def gluonbert_worker(spec):
    """Time ``gluonbert finetune``'s training step: its parsed command line (``spec['amp']``
    adds ``--amp``), its model, trainer and engine, on the setting's batches."""
    import numpy as np
    import mxnet as mx
    from mxnet import init
    from gluonbert import cli, jobs
    from gluonbert.pretrained.folders import load_pretrained_folder, model_width
    from gluonbert.tasks import get_task
    from gluonbert.train import mixed_precision
    from gluonbert.train.batches import LongestInBatch
    from gluonbert.train.engine import Engine
    command = ['finetune', '--pretrained', spec['folder'], '--task', spec['kind'],
               '--batch-size', str(spec['batch']), '--max-len', str(spec['max_len']),
               '--lr', str(LR), '--weight-decay', str(WEIGHT_DECAY),
               '--warmup-ratio', str(WARMUP_RATIO), '--epochs', '1',
               '--out', os.path.join(tempfile.gettempdir(), 'real-finetune-unused')]
    opts = cli.parse_args(command + (['--amp', spec['amp']] if spec['amp'] else []))
    devices = [mx.cpu()]
    amp = mixed_precision.start(opts.amp, devices, model_width(opts.pretrained))
    data = np.load(spec['features'])
    arrays = tuple(data[k] for k in ('tokens', 'segments', 'valid_lens', 'labels'))
    batches = LongestInBatch(arrays, opts.batch_size, shuffle=False, sequence_arrays=(0, 1),
                             lengths=2)
    bert, _, _, _ = load_pretrained_folder(opts.pretrained, dropout=opts.dropout,
                                           devices=devices)
    task = get_task(spec['kind'])
    labels = [0, 1] if spec['kind'] == 'classification' else None
    net = task.head(bert, labels)
    net.output.initialize(init.Xavier(), ctx=devices)
    net.hybridize(static_alloc=True, static_shape=True)
    steps = len(batches) + (PROFILE_STEPS if spec.get('profile') else 0)
    trainer = jobs._finetune_trainer(net, opts, steps, bert.config['num_hiddens'], amp)
    engine = Engine(task.objective(net), trainer, devices)
    times, sizes = [], []
    for batch in batches:
        start = time.perf_counter()
        engine.step(batch)
        mx.nd.waitall()
        times.append(time.perf_counter() - start)
        sizes.append(len(batch[0]))
    operators = None
    if spec.get('profile'):
        from op_profile import operator_profile
        last = list(batches)[-PROFILE_STEPS:]
        operators = operator_profile(lambda: (engine.step(last.pop()), mx.nd.waitall()),
                                     PROFILE_STEPS)
    return dict(times=times, sizes=sizes, amp=amp or 'float32', operators=operators)


def hf_worker(spec):
    """Time HF's training step (``hf_finetune_worker``'s model, loss, optimizer and batch
    cutting) on the setting's batches, under bf16 autocast when ``spec['amp']``."""
    import numpy as np
    import torch
    import transformers
    import hf_finetune_worker as hf
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count())
    data = np.load(spec['features'])
    arrays = [data[k] for k in ('tokens', 'segments', 'valid_lens', 'labels')]
    kind, batch = spec['kind'], spec['batch']
    model = hf.model_for(dict(kind=kind, pretrained=spec['folder'],
                              num_labels=2 if kind == 'classification' else 0)).train()
    optimizer = hf.optimizer_for(model, dict(lr=LR, weight_decay=WEIGHT_DECAY))
    steps = -(-len(arrays[0]) // batch)
    schedule = transformers.get_linear_schedule_with_warmup(
        optimizer, int(steps * WARMUP_RATIO + 0.999), steps)
    autocast = torch.autocast('cpu', dtype=torch.bfloat16, enabled=bool(spec['amp']))
    times, sizes = [], []
    profiled = steps + PROFILE_STEPS if spec.get('profile') else steps
    profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
    for step in range(profiled):
        if step == steps:
            profiler.start()
        step = step % steps
        tokens, segments, valid_lens, labels = (a[step * batch:(step + 1) * batch]
                                                for a in arrays)
        start = time.perf_counter()
        tokens, segments = hf.cut([tokens, segments], valid_lens)
        with autocast:
            outputs = hf.forward(model, kind, tokens, segments, valid_lens)
        loss = hf.loss_of(kind, outputs, torch.from_numpy(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        float(loss)
        times.append(time.perf_counter() - start)
        sizes.append(len(tokens))
    operators = None
    if spec.get('profile'):
        profiler.stop()
        operators = {e.key: e.self_cpu_time_total / 1000 / PROFILE_STEPS
                     for e in profiler.key_averages()}
    return dict(times=times[:steps], sizes=sizes[:steps], operators=operators,
                amp='bfloat16' if spec['amp'] else 'float32')


WORKERS = {'prepare': prepare_worker, 'gluonbert': gluonbert_worker, 'hf': hf_worker}
# Each row: (worker, amp value it is given)
ROW_WORKERS = {'gluonbert fp32': ('gluonbert', 'off'), 'gluonbert default': ('gluonbert', None),
               'gluonbert bf16': ('gluonbert', 'bf16'), 'hf fp32': ('hf', None),
               'hf bf16 autocast': ('hf', 'bf16')}


def run_worker(worker, spec, workdir, env=None):
    """``worker`` on ``spec`` in a fresh process (with ``env`` added to the environment);
    its result and peak RSS (MiB)."""
    path = os.path.join(workdir, f'spec-{worker}.json')
    with open(path, 'w') as f:
        json.dump(spec, f)
    python = torch_env.torch_python() if worker == 'hf' else sys.executable
    with tempfile.TemporaryFile('w+') as out:
        process = subprocess.Popen([python, __file__, '--worker', worker, path], stdout=out,
                                   stderr=subprocess.STDOUT,
                                   env=dict(os.environ, PYTHONPATH=ROOT, **(env or {})))
        _, status, usage = os.wait4(process.pid, 0)  # the rusage of this process alone
        out.seek(0)
        text = out.read()
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise RuntimeError(f'{worker} worker failed (exit status {code}): '
                           f'{text.strip()[-1500:]}')
    return dict(json.loads(text.strip().splitlines()[-1]), peak_rss_mib=usage.ru_maxrss / 1024)


def profiles(spec, workdir):
    """``{row: {operator: ms per step}}`` of gluonbert's default row and both HF rows, each
    printed as its largest operators."""
    from op_profile import print_profile
    result = {}
    for row in ('gluonbert default', 'hf fp32', 'hf bf16 autocast'):
        worker, amp = ROW_WORKERS[row]
        env = {'MXNET_EXEC_BULK_EXEC_TRAIN': '0'} if worker == 'gluonbert' else {}
        run = run_worker(worker, dict(spec, amp=amp, profile=True), workdir, env)
        result[row] = run['operators']
        print_profile(f'\n{row}', run['operators'], top=15)
    return result


def rate(result, warmup):
    """Examples per second over the steps after ``warmup``."""
    return sum(result['sizes'][warmup:]) / sum(result['times'][warmup:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', default=','.join(MODELS))
    parser.add_argument('--settings', default=','.join(SETTINGS))
    parser.add_argument('--rows', default=','.join(ROWS))
    parser.add_argument('--steps', type=int, default=6, help='timed steps per run')
    parser.add_argument('--warmup', type=int, default=2, help='untimed first steps')
    parser.add_argument('--repeats', type=int, default=1,
                        help='fresh processes per row, rows taken in turns (median kept)')
    parser.add_argument('--profile', action='store_true',
                        help="then profile gluonbert's default and HF's rows by operator "
                        "(MXNet's profiler, bulk execution off; torch's; one more process "
                        'each)')
    parser.add_argument('--quick', action='store_true', help='smoke run (see above)')
    parser.add_argument('--out', default='real_finetune.json')
    parser.add_argument('--worker', choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument('spec', nargs='?', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        with open(args.spec) as f:
            print(json.dumps(WORKERS[args.worker](json.load(f))))
        return
    models, settings, row_names = (args.models.split(','), args.settings.split(','),
                                   args.rows.split(','))
    for option, values, known in (('--models', models, MODELS),
                                  ('--settings', settings, SETTINGS),
                                  ('--rows', row_names, ROWS)):
        unknown = sorted(set(values) - set(known))
        if unknown:
            parser.error(f'{option}: unknown {unknown}; expected some of {list(known)}')
    if args.quick:
        models, args.steps, args.warmup = ['minilm'], QUICK_STEPS, QUICK_WARMUP
    skipped = {}
    if any(row.startswith('hf') for row in row_names):
        try:
            torch_env.torch_python()
        except RuntimeError as e:
            skipped = {row: str(e) for row in row_names if row.startswith('hf')}
            row_names = [row for row in row_names if row not in skipped]
            print(f'HF rows skipped: {e}')
    minilm = minilm_folder()
    folders = {'minilm': minilm}
    if 'bert-base' in models:
        folders['bert-base'] = bert_base_folder(minilm)
    data = os.environ.get('GLUONBERT_DATA', os.path.join(os.path.dirname(ROOT), 'shared',
                                                         'data'))
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for model in models:
            for setting in settings:
                kind, batch, max_len, real = SETTINGS[setting]
                batch = QUICK_BATCH if args.quick else batch
                spec = dict(kind=kind, batch=batch, max_len=max_len, real=real,
                            folder=folders[model], data=data,
                            steps=args.warmup + args.steps,
                            out=os.path.join(workdir, f'{model}-{setting}.npz'))
                prepared = run_worker('prepare', spec, workdir)
                spec['features'] = spec.pop('out')
                runs = {row: [] for row in row_names}
                for _ in range(args.repeats):
                    for row in row_names:
                        worker, amp = ROW_WORKERS[row]
                        result = run_worker(worker, dict(spec, amp=amp), workdir)
                        runs[row].append(dict(examples_per_sec=rate(result, args.warmup),
                                              peak_rss_mib=result['peak_rss_mib'],
                                              precision=result['amp'],
                                              step_seconds=result['times']))
                        print(f'{model} {setting} {row}: '
                              f'{runs[row][-1]["examples_per_sec"]:.1f} examples/s',
                              flush=True)
                rows = {row: dict(examples_per_sec=statistics.median(
                            r['examples_per_sec'] for r in rs),
                            peak_rss_mib=max(r['peak_rss_mib'] for r in rs),
                            precision=rs[0]['precision'], runs=rs)
                        for row, rs in runs.items()}
                results.setdefault(model, {})[setting] = dict(
                    kind=kind, batch=batch, max_len=max_len,
                    profiles=profiles(spec, workdir) if args.profile else None,
                    mean_valid_len=prepared['mean_valid_len'], rows=rows)
                print(ratio_table(f'\n{model}, {setting} ({kind}, batch {batch}, mean length '
                                  f'{prepared["mean_valid_len"]:.0f} of {max_len})', rows,
                                  BASELINE, COLUMNS) + '\n', flush=True)
    print('summary (examples/s; ratios to hf fp32)')
    for model, by_setting in results.items():
        for setting, result in by_setting.items():
            print(ratio_table(f'{model} {setting}', result['rows'], BASELINE, COLUMNS))
    write_json(args.out, dict(machine=machine(), settings=vars(args), skipped=skipped,
                              results=results))


def machine():
    """The CPU model, core count and whether it has AVX-512 BF16, for the results' reader."""
    with open('/proc/cpuinfo') as f:
        text = f.read()
    model = next((line.split(':', 1)[1].strip() for line in text.splitlines()
                  if line.startswith('model name')), 'unknown')
    return dict(cpu=model, cores=len(os.sched_getaffinity(0)),
                avx512_bf16='avx512_bf16' in text, load_average=os.getloadavg())


if __name__ == '__main__':
    main()
