"""A training run that checkpoints after every update and resumes from its last checkpoint.

``python resumable_run.py CHECKPOINT_DIR OUT_FILE UPDATES``: prints ``resumed at N`` and
then ``update N`` after each update's checkpoint; writes the final parameters to OUT_FILE.
Used by test_trainer_resume_sigkill.py, which kills it with SIGKILL.
"""
import random
import sys

import mxnet as mx
import numpy as np

from gluonbert.train.trainer import BERTTrainer
from tiny_bert import random_batch, summed_loss, tiny_classifier


def main(checkpoint_dir, out_file, updates):
    np.random.seed(3)
    random.seed(3)
    net, _ = tiny_classifier(dropout=0.2)
    trainer = BERTTrainer(net, 'adamw', lr=1e-2, schedule='linear', warmup_steps=2,
                          num_training_steps=updates, clip=1.0, seed=7,
                          checkpoint_dir=checkpoint_dir, keep_last=2, quiet=True)
    position = trainer.load()
    start = position['update'] if position else 0
    print(f'resumed at {start}', flush=True)
    for update in range(start, updates):
        batch = list(random_batch(np.random, 8))      # the data comes from the global
        order = list(range(8))                        # NumPy and Python generators
        random.shuffle(order)
        batch[3] = batch[3][mx.nd.array(order)]
        trainer.backward(summed_loss(net, batch))
        trainer.step(8)
        trainer.save({'update': update + 1})
        print(f'update {update + 1}', flush=True)
    mx.nd.save(out_file, {name: p.data() for name, p in trainer.named.items()})


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
