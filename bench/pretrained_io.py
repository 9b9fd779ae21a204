"""Time to load and save a bert-base-sized HF folder (110M parameters) with gluonbert.

Writes a folder with bert-base-uncased's config (12 layers, 768 hidden, 30522 tokens) and
random float32 weights in HF's BertForPreTraining layout, then times ``from_pretrained``
(read, check, build, initialize, copy), a first forward pass (batch 8 x 128) and
``save_hf_pretrained``; checks that the saved tensors equal the source bit for bit. Prints a
table and writes JSON to bench/results/pretrained_io.json.

    python bench/pretrained_io.py [--repeats 3] [--folder /tmp/bert-base-random]
"""
import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BASE = dict(vocab_size=30522, hidden_size=768, intermediate_size=3072, num_attention_heads=12,
            num_hidden_layers=12, max_position_embeddings=512)


def write_random_bert_base(folder):
    from safetensors.numpy import save_file
    rng = np.random.default_rng(0)
    H, F, V = BASE['hidden_size'], BASE['intermediate_size'], BASE['vocab_size']
    t = {}

    def add(name, *shape):
        t[name] = rng.standard_normal(shape, dtype=np.float32) * 0.02

    def linear(name, out, inp):
        add(name + '.weight', out, inp)
        add(name + '.bias', out)

    add('bert.embeddings.word_embeddings.weight', V, H)
    add('bert.embeddings.position_embeddings.weight', BASE['max_position_embeddings'], H)
    add('bert.embeddings.token_type_embeddings.weight', 2, H)
    layer_norms = ['bert.embeddings.LayerNorm', 'cls.predictions.transform.LayerNorm']
    for i in range(BASE['num_hidden_layers']):
        p = f'bert.encoder.layer.{i}.'
        for name in ('query', 'key', 'value'):
            linear(p + 'attention.self.' + name, H, H)
        linear(p + 'attention.output.dense', H, H)
        linear(p + 'intermediate.dense', F, H)
        linear(p + 'output.dense', H, F)
        layer_norms += [p + 'attention.output.LayerNorm', p + 'output.LayerNorm']
    for name in layer_norms:
        add(name + '.weight', H)
        add(name + '.bias', H)
    linear('bert.pooler.dense', H, H)
    linear('cls.predictions.transform.dense', H, H)
    add('cls.predictions.bias', V)
    linear('cls.seq_relationship', 2, H)
    os.makedirs(folder, exist_ok=True)
    save_file(t, os.path.join(folder, 'model.safetensors'), metadata={'format': 'pt'})
    with open(os.path.join(folder, 'config.json'), 'w') as f:
        json.dump({'model_type': 'bert', 'hidden_act': 'gelu', **BASE}, f)
    specials = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
    with open(os.path.join(folder, 'vocab.txt'), 'w') as f:
        f.writelines(t + '\n' for t in specials + [f'w{i}' for i in range(V - len(specials))])
    return sum(a.size for a in t.values())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--folder', default=os.path.join(tempfile.gettempdir(),
                                                         'gluonbert-bert-base-random'))
    args = parser.parse_args()
    sys.path.insert(0, ROOT)
    import mxnet as mx
    from safetensors.numpy import load_file
    from gluonbert.pretrained import from_pretrained, save_hf_pretrained

    num_params = write_random_bert_base(args.folder)
    copy = args.folder + '-copy'
    timings = {'from_pretrained': [], 'first forward (8 x 128)': [], 'save_hf_pretrained': []}
    tokens = mx.nd.array(np.random.default_rng(1).integers(0, 30522, size=(8, 128)))
    segments = mx.nd.zeros((8, 128))
    for _ in range(args.repeats):
        start = time.perf_counter()
        bert, vocab = from_pretrained(args.folder)
        loaded = time.perf_counter()
        bert(tokens, segments)[0].wait_to_read()
        forward = time.perf_counter()
        save_hf_pretrained(bert, vocab, copy)
        saved = time.perf_counter()
        for name, seconds in zip(timings, (loaded - start, forward - loaded, saved - forward)):
            timings[name].append(seconds)
    source, target = load_file(os.path.join(args.folder, 'model.safetensors')), load_file(
        os.path.join(copy, 'model.safetensors'))
    identical = sorted(source) == sorted(target) and all(
        source[k].tobytes() == target[k].tobytes() for k in source)
    print(f'bert-base-sized HF folder: {num_params / 1e6:.1f}M parameters, '
          f'{os.path.getsize(os.path.join(args.folder, "model.safetensors")) / 2**20:.0f} MiB; '
          f'{args.repeats} runs; round trip bit-identical: {identical}')
    print(f'{"step":28} {"median s":>9} {"min s":>9}')
    for name, seconds in timings.items():
        print(f'{name:28} {statistics.median(seconds):9.2f} {min(seconds):9.2f}')
    os.makedirs(os.path.join(HERE, 'results'), exist_ok=True)
    with open(os.path.join(HERE, 'results', 'pretrained_io.json'), 'w') as f:
        json.dump(dict(num_params=num_params, repeats=args.repeats, round_trip_identical=identical,
                       cpu_count=os.cpu_count(), python=platform.python_version(),
                       seconds={k: dict(median=statistics.median(v), min=min(v), all=v)
                                for k, v in timings.items()}), f, indent=1)


if __name__ == '__main__':
    main()
