"""A checkpoint load either restores everything or changes nothing, and ``--resume`` with
nothing to resume from is an error, never a silent fresh start."""
import os
import subprocess
import sys

import numpy as np
import pytest

from gluonbert.train.state import CheckpointError
from gluonbert.train.trainer import BERTTrainer
from tiny_bert import VOCAB, random_batch, summed_loss, tiny_classifier, values

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def trained(tmp_path, **options):
    net, _ = tiny_classifier(0, **options.pop('model', {}))
    trainer = BERTTrainer(net, options.pop('optimizer', 'adamw'), lr=1e-2, quiet=True,
                          checkpoint_dir=str(tmp_path / 'ckpt'), **options)
    trainer.backward(summed_loss(net, random_batch(np.random.RandomState(0), 4)))
    trainer.step(4)
    return net, trainer


@pytest.mark.parametrize('model, options, message', [
    ({'num_blks': 3}, {}, r"missing \['encoder.blks.2"),
    ({}, {'optimizer': 'bertadam'}, 'holds GB_AdamW state; this trainer uses GB_BERTAdam'),
    ({}, {'freeze': '^encoder'}, 'which this trainer does not train'),
])
def test_a_checkpoint_that_does_not_fit_changes_no_parameter(tmp_path, model, options,
                                                             message):
    _, trainer = trained(tmp_path / 'a')
    path = trainer.save()
    other_net, other = trained(tmp_path / 'b', model=model, **options)
    before = values(other.named)
    with pytest.raises(CheckpointError, match=message):
        other.load(path)
    after = values(other.named)
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)
    assert other.num_updates == 1


def test_loading_a_file_as_a_checkpoint_is_a_checkpoint_error(tmp_path):
    _, trainer = trained(tmp_path)
    (tmp_path / 'notes.txt').write_text('x')
    with pytest.raises(CheckpointError, match='notes.txt: not a checkpoint folder .a file'):
        trainer.load(str(tmp_path / 'notes.txt'))


@pytest.mark.parametrize('make', ['missing', 'empty', 'file'])
def test_resuming_from_no_checkpoint_is_an_error(tmp_path, make):
    root = tmp_path / 'ckpt'
    if make == 'empty':
        root.mkdir()
    elif make == 'file':
        root.write_text('')
    net, _ = tiny_classifier(0)
    trainer = BERTTrainer(net, lr=1e-2, quiet=True, checkpoint_dir=str(root))
    assert make == 'file' or trainer.load() is None  # without required: a fresh start
    with pytest.raises(CheckpointError, match='no checkpoint to resume from'):
        trainer.load(required=True)


@pytest.mark.slow
def test_the_distributed_job_resuming_a_mistyped_folder_exits_2_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, '-m', 'gluonbert.distributed.pretrain', '--steps', '2',
         '--batch-size', '8', '--vocab-size', str(VOCAB), '--num-hiddens', '16',
         '--ffn-num-hiddens', '32', '--checkpoint-dir', str(tmp_path / 'chekpoints'),
         '--resume'], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=REPO),
        timeout=300)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count('\n') == 0
    assert 'no checkpoint to resume from' in result.stderr and 'chekpoints' in result.stderr
    assert not os.path.exists(tmp_path / 'chekpoints')
