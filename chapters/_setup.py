"""What every chapter script shares: the command line for small runs and the device list.

The scripts follow the book's code; these options only shrink a run (for tests and for a
quick look) or pick devices. ``--devices cpu:0,cpu:1`` runs the multi-GPU code path on CPUs.
"""
import argparse

from gluonbert.devices import parse_devices


def parse_args(description, **defaults):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--devices', default=None,
                        help='e.g. gpu, cpu:0,cpu:1 (default: every GPU, else the CPU, as '
                        "d2l's try_all_gpus)")
    for name, value in defaults.items():
        parser.add_argument('--' + name.replace('_', '-'), type=type(value), default=value)
    return parser.parse_args()


def devices_from(spec):
    """d2l's ``try_all_gpus()`` unless a device list is given."""
    import mxnet as mx
    if spec is None:
        return [mx.gpu(i) for i in range(mx.context.num_gpus())] or [mx.cpu()]
    return parse_devices(spec)
