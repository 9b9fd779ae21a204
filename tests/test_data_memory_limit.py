"""A corpus several times the memory allowed for the run preprocesses into shards and trains
(``memory_limited_run.py`` limits its address space with ``RLIMIT_AS``)."""
import json
import os
import random
import subprocess
import sys

import pytest

from test_data_corpus import write_corpus

HERE = os.path.dirname(os.path.abspath(__file__))
HEADROOM_MIB = 8


@pytest.mark.slow
def test_a_corpus_four_times_the_memory_limit_preprocesses_and_trains(tmp_path):
    corpus, warm = tmp_path / 'big.txt', tmp_path / 'warm.txt'
    write_corpus(warm, 200, random.Random(1))
    rng = random.Random(0)
    with open(corpus, 'w', encoding='utf-8') as f:
        while f.tell() < 4 * HEADROOM_MIB * 2 ** 20:
            for doc in range(500):
                f.write(''.join(f'{" ".join(rng.choices(WORDS, k=rng.randint(4, 12)))}.\n'
                                for _ in range(rng.randint(2, 8))) + '\n')
    # One malloc arena: glibc reserves 64 MiB of address space for each arena a contended
    # thread creates, which the limit would count (seen on a loaded machine: +46 MiB)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, os.path.dirname(HERE)]),
               OMP_NUM_THREADS='1', MALLOC_ARENA_MAX='1')
    out = subprocess.run([sys.executable, os.path.join(HERE, 'memory_limited_run.py'),
                          str(corpus), str(tmp_path / 'pp'), str(warm), str(HEADROOM_MIB)],
                         env=env, capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result['corpus_bytes'] >= 4 * result['limit_headroom']
    assert result['whole_read'] == 'MemoryError'  # the limit is real
    assert result['growth'] <= result['limit_headroom']
    assert result['shards'] > 10 and result['examples'] > 50_000
    assert len(result['losses']) == 3 and all(0 < loss < 20 for loss in result['losses'])


WORDS = ('River bank water stone bridge city night light music garden winter summer paper '
         'story horse field market window forest train').split()
