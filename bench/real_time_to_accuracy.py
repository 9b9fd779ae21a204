"""Time to accuracy from a real checkpoint: SST-2 dev accuracy against wall time, fine-tuning
all-MiniLM-L6-v2 with gluonbert's defaults vs HF's Trainer with its defaults.

Three rows, each a fresh process on SST-2's training set (``--train-limit``: its first N
sentences) and scored on SST-2's dev set (872 sentences) every ``--eval-examples`` training
sentences, stopped at ``--target`` dev accuracy or after ``--max-minutes``:

- ``gluonbert defaults``: ``python -m gluonbert finetune --pretrained MiniLM --task
  classification --train ... --dev ...`` with nothing else but ``--eval-every`` (so that its
  curve is seen between epochs): its defaults choose the precision (``--amp off``: float32), batch
  64, lr, warm-up, the epochs' schedule (3 for this 384-wide model), dynamic padding;
- ``hf trainer defaults``: ``transformers.Trainer`` with ``TrainingArguments``' defaults (lr
  5e-5, batch 8, 3 epochs, no warm-up, float32) on HF's own tokenizer (truncation at 128,
  ``DataCollatorWithPadding``), evaluating at the same sentences (``eval_strategy='steps'``);
- ``hf loop gluonbert recipe``: ``hf_finetune_worker``'s loop (AdamW, gluonbert's lr,
  batch 64, 10% warm-up over the recipe's epochs, dynamic padding, float32) on gluonbert's
  token ids.

Each evaluation is timestamped by this process as its line arrives (wall time from the
command's start: imports, tokenization, model loading and the evaluations included, as a user
waits for them). The target met is ``--target`` if HF's Trainer reaches it, else 0.5 point
under HF's Trainer's best accuracy. Prints the curves, the seconds to the target and the ratio
to HF's Trainer, and writes ``bench/results/real_time_to_accuracy.json``.

    python bench/real_time_to_accuracy.py [--train-limit 0] [--max-minutes 20]
        [--eval-examples 4000] [--target 0.88] [--rows ...] [--quick]

``--quick``: a smoke run (256 training sentences, evaluated every 128 on 64 dev sentences,
target 0.99 so that nothing stops early).
"""
import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import torch_env  # noqa: E402
from harness import write_json  # noqa: E402
from real_finetune import machine, minilm_folder  # noqa: E402

ROWS = ('gluonbert defaults', 'hf trainer defaults', 'hf loop gluonbert recipe')
BASELINE = 'hf trainer defaults'
EVAL = re.compile(r'dev_accuracy ([\d.]+)')
# What an evaluation line from a worker here looks like
WORKER_EVAL = 'EVAL '
GLUONBERT_BATCH = 64  # gluonbert finetune's default, for the HF loop
QUICK = dict(train_limit=256, eval_examples=128, dev_limit=64, target=0.99, max_minutes=5)


def read_sst2(path, limit):
    with open(path, encoding='utf-8') as f:
        rows = [line.rstrip('\n').split('\t') for line in f][1:]
    rows = rows[:limit] if limit else rows
    return [r[0] for r in rows], [int(r[1]) for r in rows]


def trainer_worker(spec):
    """HF's Trainer with TrainingArguments' defaults, evaluating every ``eval_steps``; prints
    an ``EVAL`` line per evaluation and stops at the target."""
    import numpy as np
    import torch
    import transformers
    torch.set_num_threads(os.cpu_count())
    tokenizer = transformers.AutoTokenizer.from_pretrained(spec['pretrained'])
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        spec['pretrained'], num_labels=2)

    def dataset(split, limit):
        texts, labels = read_sst2(spec[split], limit)
        encoded = tokenizer(texts, truncation=True, max_length=128)
        return [dict(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=label)
                for ids, types, mask, label in zip(encoded['input_ids'],
                                                   encoded['token_type_ids'],
                                                   encoded['attention_mask'], labels)]

    train, dev = dataset('train', spec['train_limit']), dataset('dev', spec['dev_limit'])
    eval_steps = max(1, spec['eval_examples'] // 8)  # the default batch of 8

    class Stop(transformers.TrainerCallback):
        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            accuracy = metrics['eval_accuracy']
            print(WORKER_EVAL + json.dumps(dict(accuracy=accuracy,
                                                examples=state.global_step * 8)), flush=True)
            if accuracy >= spec['target']:
                control.should_training_stop = True

    def accuracy(prediction):
        return {'accuracy': float(np.mean(prediction.predictions.argmax(-1)
                                          == prediction.label_ids))}

    args = transformers.TrainingArguments(
        output_dir=spec['out'], eval_strategy='steps', eval_steps=eval_steps,
        save_strategy='no', report_to=[], logging_strategy='no', disable_tqdm=True)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=train,
                                   eval_dataset=dev, processing_class=tokenizer,
                                   compute_metrics=accuracy, callbacks=[Stop()])
    trainer.train()


def loop_worker(spec):
    """``hf_finetune_worker``'s loop with gluonbert's recipe on gluonbert's token ids,
    evaluating every ``eval_every`` updates; prints ``EVAL`` lines, stops at the target."""
    import numpy as np
    import torch
    import transformers
    import hf_finetune_worker as hf
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count())
    data = np.load(spec['features'])
    train = [data[f'train_{n}'] for n in ('tokens', 'segments', 'valid_lens', 'labels')]
    dev = [data[f'dev_{n}'] for n in ('tokens', 'segments', 'valid_lens')]
    model = hf.model_for(dict(kind='classification', pretrained=spec['pretrained'],
                              num_labels=2)).train()
    optimizer = hf.optimizer_for(model, spec)
    batch = spec['batch_size']
    steps_per_epoch = -(-len(train[0]) // batch)
    updates = spec['epochs'] * steps_per_epoch
    schedule = transformers.get_linear_schedule_with_warmup(
        optimizer, math.ceil(updates * spec['warmup_ratio']), updates)
    rng = np.random.RandomState(0)
    no_autocast = (lambda: torch.autocast('cpu', enabled=False))
    step = 0
    for _ in range(spec['epochs']):
        order = rng.permutation(len(train[0]))
        for b in range(steps_per_epoch):
            tokens, segments, valid_lens, labels = (a[order[b * batch:(b + 1) * batch]]
                                                    for a in train)
            tokens, segments = hf.cut([tokens, segments], valid_lens)
            loss = hf.loss_of('classification', hf.forward(model, 'classification', tokens,
                                                           segments, valid_lens),
                              torch.from_numpy(labels))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if step % spec['eval_every'] == 0:
                logits, = hf.predict(model, 'classification', dev, 256, no_autocast)
                accuracy = float(np.mean(logits.argmax(1) == data['dev_labels']))
                print(WORKER_EVAL + json.dumps(dict(accuracy=accuracy, examples=step * batch)),
                      flush=True)
                if accuracy >= spec['target']:
                    return


def prepare_worker(spec):
    """SST-2 train and dev encoded by gluonbert's classification task (the loop's inputs),
    and ``finetune``'s default learning rate and epochs for the model's width."""
    import numpy as np
    from gluonbert.pretrained.hf_tokenizer import load_vocab_and_tokenizer
    from gluonbert.pretrained.folders import model_width
    from gluonbert.tasks import get_task
    from gluonbert.train.recipes import finetune_epochs, finetune_lr
    task = get_task('classification')
    vocab, tokenizer = load_vocab_and_tokenizer(spec['pretrained'])
    arrays = {}
    for split, limit in (('train', spec['train_limit']), ('dev', spec['dev_limit'])):
        examples = task.read(spec[split])
        examples = examples[:limit] if limit else examples
        features = task.encode(examples, tokenizer, vocab, 128, ['0', '1'])
        arrays.update({f'{split}_{name}': getattr(features, name) for name in
                       ('tokens', 'segments', 'valid_lens', 'labels')})
    np.savez(spec['features'], **arrays)
    width = model_width(spec['pretrained'])
    print(json.dumps(dict(lr=finetune_lr(width), epochs=finetune_epochs(width))))


WORKERS = {'trainer': trainer_worker, 'loop': loop_worker, 'prepare': prepare_worker}


def watch(command, max_seconds, target, parse, env=None):
    """Run ``command``; timestamp each evaluation line (``parse(line)``: accuracy and examples,
    or None); stop it at ``target`` or after ``max_seconds``. Returns the curve and how it
    ended."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, cwd=ROOT, start_new_session=True,
                               env={**os.environ, 'PYTHONPATH': ROOT, 'PYTHONUNBUFFERED': '1',
                                    **(env or {})})
    timer = threading.Timer(max_seconds, lambda: os.killpg(process.pid, signal.SIGTERM))
    timer.start()
    curve, tail, ended = [], [], 'finished'
    for line in process.stdout:
        tail = (tail + [line])[-30:]
        point = parse(line)
        if point is None:
            continue
        curve.append(dict(point, seconds=time.perf_counter() - start))
        print(f'  {curve[-1]["seconds"]:7.0f} s  {point["examples"]:>7} sentences  '
              f'accuracy {point["accuracy"]:.4f}', flush=True)
        if point['accuracy'] >= target:
            ended = 'target reached'
            os.killpg(process.pid, signal.SIGTERM)
            break
    process.wait()
    timer.cancel()
    if ended == 'finished' and time.perf_counter() - start >= max_seconds:
        ended = f'stopped after {max_seconds / 60:g} minutes'
    elif ended == 'finished' and process.returncode:
        raise RuntimeError(f'{command[1:4]} failed ({process.returncode}): '
                           + ''.join(tail)[-1500:])
    return dict(curve=curve, ended=ended, seconds=time.perf_counter() - start)


def worker_eval(line):
    return json.loads(line[len(WORKER_EVAL):]) if line.startswith(WORKER_EVAL) else None


def seconds_to(curve, target):
    return next((point['seconds'] for point in curve if point['accuracy'] >= target), None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--train-limit', type=int, default=0,
                        help='the first N SST-2 training sentences (0: all 67,349)')
    parser.add_argument('--eval-examples', type=int, default=4000,
                        help='training sentences between evaluations (default: %(default)s)')
    parser.add_argument('--target', type=float, default=0.88)
    parser.add_argument('--max-minutes', type=float, default=20, help='per row')
    parser.add_argument('--rows', default=','.join(ROWS))
    parser.add_argument('--quick', action='store_true', help='smoke run (see above)')
    parser.add_argument('--out', default='real_time_to_accuracy.json')
    parser.add_argument('--worker', choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument('spec', nargs='?', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        with open(args.spec) as f:
            WORKERS[args.worker](json.load(f))
        return
    rows = args.rows.split(',')
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        parser.error(f'--rows: unknown {unknown}; expected some of {list(ROWS)}')
    dev_limit = 0
    if args.quick:
        args.train_limit, args.eval_examples, args.target, args.max_minutes = (
            QUICK['train_limit'], QUICK['eval_examples'], QUICK['target'], QUICK['max_minutes'])
        dev_limit = QUICK['dev_limit']
    data = os.environ.get('GLUONBERT_DATA', os.path.join(os.path.dirname(ROOT), 'shared',
                                                         'data'))
    pretrained = minilm_folder()
    train, dev = (os.path.join(data, 'sst-2', f'{s}.tsv') for s in ('train', 'dev'))
    spec = dict(pretrained=pretrained, train=train, dev=dev, train_limit=args.train_limit,
                dev_limit=dev_limit, eval_examples=args.eval_examples, target=args.target)
    max_seconds = args.max_minutes * 60
    results, skipped = {}, {}
    with tempfile.TemporaryDirectory() as workdir:
        def worker_command(worker, python, extra):
            path = os.path.join(workdir, f'spec-{worker}.json')
            with open(path, 'w') as f:
                json.dump(dict(spec, **extra), f)
            return [python, __file__, '--worker', worker, path]

        hf_python = extras = None
        if any(row.startswith('hf') for row in rows):
            try:
                hf_python = torch_env.torch_python()
                if BASELINE in rows:
                    extras = torch_env.trainer_path()  # accelerate, which Trainer needs
            except RuntimeError as e:
                skipped = {row: str(e) for row in rows if row.startswith('hf')}
        for row in rows:
            if row in skipped:
                print(f'{row}: skipped ({skipped[row]})')
                continue
            print(f'{row}:', flush=True)
            if row == 'gluonbert defaults':
                every = max(1, args.eval_examples // GLUONBERT_BATCH)
                command = [sys.executable, '-m', 'gluonbert', 'finetune', '--pretrained',
                           pretrained, '--task', 'classification', '--train', train, '--dev',
                           dev, '--eval-every', str(every), '--train-limit',
                           str(args.train_limit), '--test-limit', str(dev_limit),
                           '--out', os.path.join(workdir, 'gluonbert-out')]
                first = []

                def parse(line, every=every):
                    if line.startswith('precision:'):
                        first.append(line.strip())
                    match = EVAL.search(line) if '(evaluation)' in line else None
                    if not match:
                        return None
                    update = int(re.match(r'step (\d+)', line).group(1))
                    return dict(accuracy=float(match.group(1)),
                                examples=update * GLUONBERT_BATCH)
                results[row] = watch(command, max_seconds, args.target, parse)
                results[row]['precision'] = first[0] if first else None
            elif row == 'hf trainer defaults':
                command = worker_command('trainer', hf_python, dict(out=os.path.join(
                    workdir, 'trainer-out')))
                results[row] = watch(command, max_seconds, args.target, worker_eval,
                                     env={'PYTHONPATH': ROOT + os.pathsep + extras})
            else:
                features = os.path.join(workdir, 'features.npz')
                prepared = subprocess.run(
                    worker_command('prepare', sys.executable, dict(features=features)),
                    check=True, capture_output=True, text=True,
                    env=dict(os.environ, PYTHONPATH=ROOT)).stdout
                recipe = json.loads(prepared.strip().splitlines()[-1])
                command = worker_command('loop', hf_python, dict(
                    features=features, lr=recipe['lr'], weight_decay=0.01, warmup_ratio=0.1,
                    batch_size=GLUONBERT_BATCH, epochs=recipe['epochs'],
                    eval_every=max(1, args.eval_examples // GLUONBERT_BATCH)))
                results[row] = watch(command, max_seconds, args.target, worker_eval)
            print(f'  {results[row]["ended"]}', flush=True)
    hf_best = max((p['accuracy'] for p in results.get(BASELINE, {}).get('curve', [])),
                  default=None)
    target = args.target if hf_best is None or hf_best >= args.target else hf_best - 0.005
    print(f'\ntarget: dev accuracy {target:.4f}'
          + ('' if target == args.target else f' (0.5 point under HF Trainer\'s best, '
                                              f'{hf_best:.4f})'))
    base = seconds_to(results.get(BASELINE, {}).get('curve', []), target)
    print(f'{"run":<34}{"best":>8}{"s to target":>13}{"x HF Trainer":>14}')
    for row, result in results.items():
        result['seconds_to_target'] = seconds = seconds_to(result['curve'], target)
        best = max((p['accuracy'] for p in result['curve']), default=float('nan'))
        ratio = f'{seconds / base:.2f}x' if seconds and base else '-'
        shown = f'{seconds:.0f}' if seconds else 'not reached'
        print(f'{row:<34}{best:>8.4f}{shown:>13}{ratio:>14}')
    write_json(args.out, dict(machine=machine(), settings=vars(args), target=target,
                              skipped=skipped, results=results))


if __name__ == '__main__':
    main()
