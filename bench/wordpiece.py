"""WordPiece tokenization speed on real SNLI sentences: gluonbert vs GluonNLP vs HF tokenizers.

Tokenizes the SNLI dev+test sentences (s1/s2, about 39k lines) ``--repeats`` times with:
gluonbert's ``WordPieceTokenizer`` (first pass and later passes, its caches warm); GluonNLP
0.10's ``BERTTokenizer`` (Cython), without and with its LRU cache; and, when the
``tokenizers`` package can be imported, HF's Rust ``BertWordPieceTokenizer`` one sentence at
a time and with ``encode_batch`` (all threads). The vocabulary is built from the sentences
(words, '##' endings, characters) as in tests/test_wordpiece.py. Checks that every tokenizer
gives the same tokens, prints a table and writes JSON to bench/results/wordpiece.json.

    python bench/wordpiece.py [--repeats 3]
"""
import argparse
import collections
import json
import os
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SNLI = os.path.join(os.path.dirname(ROOT), 'shared', 'data', 'snli-1.0-devtest')
SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']


def read_lines():
    return [line.rstrip('\n') for name in ('s1.test', 's2.test', 's1.dev', 's2.dev')
            for line in open(os.path.join(SNLI, name), encoding='utf-8')]


def build_vocab(lines):
    import gluonnlp
    basic = gluonnlp.data.BERTBasicTokenizer(lower=True)
    words = collections.Counter(w for line in lines[::2] for w in basic(line))
    endings = collections.Counter(w[i:] for w in words for i in range(1, len(w))
                                  if len(w) - i <= 4)
    chars = sorted({c for w in words for c in w})
    tokens = (SPECIALS + chars + ['##' + c for c in chars]
              + [w for w, _ in words.most_common(3000)]
              + ['##' + e for e, _ in endings.most_common(500)])
    return list(dict.fromkeys(tokens))


def time_passes(tokenize_all, repeats):
    """Seconds of each pass over all lines; the tokens of the last pass."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        tokens = tokenize_all()
        seconds.append(time.perf_counter() - start)
    return seconds, tokens


def tokenizers(tokens, lines):
    """name -> function tokenizing every line, each giving BERT's token names."""
    import gluonnlp
    from gluonbert.data.wordpiece import WordPieceTokenizer, vocab_from_bert_tokens
    ours = WordPieceTokenizer(vocab_from_bert_tokens(tokens))
    glnlp_vocab = gluonnlp.Vocab(None, unknown_token='[UNK]', padding_token='[PAD]',
                                 bos_token=None, eos_token=None,
                                 reserved_tokens=[t for t in tokens if t not in ('[UNK]', '[PAD]')])
    glnlp = gluonnlp.data.BERTTokenizer(glnlp_vocab, lower=True, max_input_chars_per_word=100)
    glnlp_lru = gluonnlp.data.BERTTokenizer(glnlp_vocab, lower=True, max_input_chars_per_word=100,
                                            lru_cache_size=2 ** 20)
    runs = {
        'gluonbert WordPieceTokenizer': lambda: [
            ['[UNK]' if t == '<unk>' else t for t in ours(line)] for line in lines],
        'GluonNLP BERTTokenizer': lambda: [glnlp(line) for line in lines],
        'GluonNLP BERTTokenizer, LRU cache': lambda: [glnlp_lru(line) for line in lines],
    }
    try:
        from tokenizers import BertWordPieceTokenizer
    except ImportError:
        return runs, 'not installed'
    import tokenizers as hf_tokenizers
    hf = BertWordPieceTokenizer({t: i for i, t in enumerate(tokens)}, lowercase=True,
                                clean_text=True, handle_chinese_chars=True, strip_accents=None)
    runs['HF tokenizers, one by one'] = lambda: [
        hf.encode(line, add_special_tokens=False).tokens for line in lines]
    runs['HF tokenizers, encode_batch'] = lambda: [
        e.tokens for e in hf.encode_batch(lines, add_special_tokens=False)]
    return runs, hf_tokenizers.__version__


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, ROOT)
    lines = read_lines()
    tokens = build_vocab(lines)
    runs, hf_version = tokenizers(tokens, lines)
    results, reference = {}, None
    for name, run in runs.items():
        seconds, output = time_passes(run, args.repeats)
        reference = reference or output
        mismatches = sum(a != b for a, b in zip(output, reference))
        results[name] = dict(first_pass_s=seconds[0], later_pass_median_s=statistics.median(
            seconds[1:] or seconds), sentences_per_s=len(lines) / statistics.median(
            seconds[1:] or seconds), lines_differing_from_gluonbert=mismatches)
    print(f'{len(lines)} SNLI sentences, vocab of {len(tokens)}, {args.repeats} passes; '
          f'HF tokenizers: {hf_version}')
    print(f'{"tokenizer":36} {"first pass s":>12} {"later pass s":>12} {"sentences/s":>12} '
          f'{"lines differing":>15}')
    for name, r in results.items():
        print(f'{name:36} {r["first_pass_s"]:12.3f} {r["later_pass_median_s"]:12.3f} '
              f'{r["sentences_per_s"]:12.0f} {r["lines_differing_from_gluonbert"]:15d}')
    os.makedirs(os.path.join(HERE, 'results'), exist_ok=True)
    with open(os.path.join(HERE, 'results', 'wordpiece.json'), 'w') as f:
        json.dump(dict(sentences=len(lines), vocab_size=len(tokens), repeats=args.repeats,
                       hf_tokenizers=hf_version, cpu_count=os.cpu_count(),
                       python=platform.python_version(), results=results), f, indent=1)


if __name__ == '__main__':
    main()
