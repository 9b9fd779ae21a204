"""Runs a module as ``python -m`` would, recording the training shards the process opens for
reading (Python's ``open`` audit event, which ``np.load`` and its memory maps go through).

``python audited_run.py LOG MODULE ARGS...`` appends the name of every shard folder read
under ``.../train/`` to ``LOG.PID``, one per line, as it is opened.
"""
import os
import runpy
import sys


def main(log, module, args):
    record = f'{log}.{os.getpid()}'

    def hook(event, event_args):
        if event != 'open' or not isinstance(event_args[0], str):
            return
        path, mode = event_args[0], event_args[1] or 'r'
        parts = path.split(os.sep)
        if len(parts) > 2 and parts[-3] == 'train' and parts[-2].startswith('shard-') \
                and not set(mode) & set('wax+'):
            with open(record, 'a', encoding='utf-8') as f:
                f.write(parts[-2] + '\n')

    sys.addaudithook(hook)
    sys.argv = [module] + args
    runpy.run_module(module, run_name='__main__', alter_sys=True)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
