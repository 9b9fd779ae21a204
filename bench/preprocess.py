"""WikiText-2 preprocessing time for BERT pretraining: d2l vs gluonbert, cold and warm.

d2l's ``_read_wiki`` + ``_WikiTextDataset``; gluonbert's ``load_wiki_dataset`` with an empty
cache (cold: find and checksum the data, build, write the cache) and again with that cache
(warm). Full wiki.train.tokens (found by ``locate_wikitext2``), max_len 64, seed 0, each run in
a fresh process; imports are timed apart. Also checks that both built the same vocabulary and
arrays. Prints a table and writes JSON.

    python bench/preprocess.py [--repeats 3] [--max-len 64] [--seed 0]
"""
import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def digest(idx_to_token, arrays):
    """sha1 of the vocabulary and of each array's dtype, shape and bytes."""
    sha1 = hashlib.sha1(json.dumps(idx_to_token).encode('utf-8'))
    for array in arrays:
        sha1.update(f'{array.dtype}{array.shape}'.encode())
        sha1.update(array.tobytes())
    return sha1.hexdigest()


def run_d2l(data_dir, max_len, seed):
    import random
    start = time.perf_counter()
    import d2l.mxnet as d2l
    import numpy as np
    imported = time.perf_counter()
    random.seed(seed)
    dataset = d2l._WikiTextDataset(d2l._read_wiki(data_dir), max_len)
    built = time.perf_counter()
    arrays = [np.stack([row.asnumpy() for row in rows]) for rows in (
        dataset.all_token_ids, dataset.all_segments, dataset.valid_lens,
        dataset.all_pred_positions, dataset.all_mlm_weights, dataset.all_mlm_labels,
        dataset.nsp_labels)]
    return dict(seconds=built - imported, import_seconds=imported - start,
                examples=len(dataset), digest=digest(dataset.vocab.idx_to_token, arrays))


def run_gluonbert(data_dir, max_len, seed):
    start = time.perf_counter()
    from gluonbert.data import load_wiki_dataset
    imported = time.perf_counter()
    dataset = load_wiki_dataset(max_len, data_dir, seed=seed)
    built = time.perf_counter()
    return dict(seconds=built - imported, import_seconds=imported - start,
                examples=len(dataset), digest=digest(dataset.vocab.idx_to_token, dataset.arrays))


def worker(name, args, cache_dir):
    """Run one side in a fresh process; its result dict."""
    command = [sys.executable, __file__, '--worker', name, '--max-len', str(args.max_len),
               '--seed', str(args.seed)]
    if name == 'd2l' or args.data_dir:  # gluonbert finds the data itself, as a user's run does
        command += ['--data-dir', args.data_dir or args.found]
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT,
                         env=dict(os.environ, GLUONBERT_CACHE=cache_dir)).stdout
    return json.loads(out.strip().splitlines()[-1])


def summary(runs, base):
    seconds = [run['seconds'] for run in runs]
    imports = statistics.median(run['import_seconds'] for run in runs)
    median = statistics.median(seconds)
    return dict(seconds=seconds, min=min(seconds), median=median, max=max(seconds),
                import_seconds=imports, speedup_vs_d2l=base / median)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--max-len', type=int, default=64)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--data-dir', help='default: found by locate_wikitext2')
    parser.add_argument('--worker', choices=['d2l', 'gluonbert'])
    parser.add_argument('--out', default=os.path.join(HERE, 'results', 'preprocess.json'))
    args = parser.parse_args()
    if args.worker:
        run = run_d2l if args.worker == 'd2l' else run_gluonbert
        print(json.dumps(run(args.data_dir, args.max_len, args.seed)))
        return
    sys.path.insert(0, ROOT)
    from gluonbert.data.locate import TRAIN_FILE, file_sha1, locate_wikitext2
    args.found = locate_wikitext2(args.data_dir)
    runs = {'d2l': [], 'gluonbert cold': [], 'gluonbert warm': []}
    for _ in range(args.repeats):  # interleaved, so that a busy spell hits all three alike
        with tempfile.TemporaryDirectory() as cache_dir:
            runs['d2l'].append(worker('d2l', args, cache_dir))
            runs['gluonbert cold'].append(worker('gluonbert', args, cache_dir))
            runs['gluonbert warm'].append(worker('gluonbert', args, cache_dir))
    digests = {run['digest'] for side in runs.values() for run in side}
    examples = runs['d2l'][0]['examples']
    base = statistics.median(run['seconds'] for run in runs['d2l'])
    rows = {name: summary(side, base) for name, side in runs.items()}
    print(f'WikiText-2 train ({args.found}), max_len {args.max_len}, seed {args.seed}: '
          f'{examples} examples; {args.repeats} fresh processes each (seconds, imports apart)')
    print(f'{"run":<16}{"min":>8}{"median":>8}{"max":>8}{"vs d2l":>9}{"import":>8}')
    for name, r in rows.items():
        print(f'{name:<16}{r["min"]:>8.2f}{r["median"]:>8.2f}{r["max"]:>8.2f}'
              f'{r["speedup_vs_d2l"]:>8.1f}x{r["import_seconds"]:>8.2f}')
    print('same vocabulary and arrays as d2l:', 'yes' if len(digests) == 1 else 'NO')
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(dict(data=os.path.join(args.found, TRAIN_FILE),
                       data_sha1=file_sha1(os.path.join(args.found, TRAIN_FILE)),
                       max_len=args.max_len, seed=args.seed, repeats=args.repeats,
                       examples=examples, same_as_d2l=len(digests) == 1,
                       machine=dict(python=platform.python_version(), cpus=os.cpu_count(),
                                    processor=platform.processor() or platform.machine()),
                       results=rows), f, indent=1)
    if len(digests) != 1:
        sys.exit('gluonbert built different arrays from d2l')


if __name__ == '__main__':
    main()
