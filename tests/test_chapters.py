"""The d2l chapter scripts run end to end on small settings and print what the book prints."""
import os
import re
import subprocess
import sys

CHAPTERS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'chapters')


def chapter(name, *args, env):
    result = subprocess.run([sys.executable, os.path.join(CHAPTERS, name), *args],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_bert_chapter_prints_the_books_shapes(small_data_env):
    out = chapter('bert.py', '--num-hiddens', '64', env=small_data_env)
    assert "['<cls>', 'a', 'crane', 'is', 'flying', '<sep>', 'he', 'left', '<sep>']" in out
    for line in ('encoded_X.shape: (2, 8, 64)', 'mlm_Y_hat.shape: (2, 3, 10000)',
                 'mlm_l.shape: (6,)', 'nsp_Y_hat.shape: (2, 2)', 'nsp_l.shape: (2,)'):
        assert line in out


def test_dataset_chapter_prints_one_batch_of_shapes(small_data_env):
    out = chapter('bert_dataset.py', '--batch-size', '8', env=small_data_env)
    assert '(8, 64) (8, 64) (8,) (8, 10) (8, 10) (8, 10) (8,)' in out
    assert re.search(r'len\(vocab\): \d+', out)


def test_pretraining_then_nli_chapters_on_two_devices(tmp_path, small_data_env):
    folder = str(tmp_path / 'bert.small')
    out = chapter('bert_pretraining.py', '--steps', '3', '--batch-size', '16',
                  '--num-hiddens', '32', '--out', folder, '--devices', 'cpu:0,cpu:1',
                  env=small_data_env)
    assert re.search(r'MLM loss \d+\.\d+, NSP loss \d+\.\d+', out)
    assert 'sentence pairs/sec on [cpu(0), cpu(1)]' in out
    assert '(1, 6, 32) (1, 32)' in out and '(1, 10, 32) (1, 32)' in out
    out = chapter('natural_language_inference_bert.py', '--pretrained', folder, '--limit', '64',
                  '--num-epochs', '1', '--batch-size', '32', '--devices', 'cpu:0,cpu:1',
                  env=small_data_env)
    assert 'read 64 examples' in out
    assert re.search(r'loss \d+\.\d+, train acc \d\.\d+, test acc \d\.\d+', out)
