"""What every chapter script shares: the command line for small runs and the device list.

The scripts follow the book's code; these options only shrink a run (for tests and for a
quick look) or pick devices. ``--devices cpu:0,cpu:1`` runs the multi-GPU code path on CPUs.
"""
import argparse

from gluonbert import option_types
from gluonbert.devices import parse_devices

# How each kind of option is checked (gluonbert.option_types); a limit of 0 means no limit
_CHECKS = {'max_len': option_types.max_len, 'limit': option_types.non_negative_int,
           int: option_types.positive_int, float: option_types.positive_float, str: str}


def parse_args(description, **defaults):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--devices', default=None,
                        help='e.g. gpu, cpu:0,cpu:1 (default: every GPU, else the CPU, as '
                        "d2l's try_all_gpus)")
    for name, value in defaults.items():
        check = _CHECKS.get(name, _CHECKS[type(value)])
        parser.add_argument('--' + name.replace('_', '-'), type=check, default=value)
    args = parser.parse_args()
    if args.devices is not None:
        try:
            parse_devices(args.devices)
        except ValueError as error:
            parser.error(str(error))
    return args


def devices_from(spec):
    """d2l's ``try_all_gpus()`` unless a device list is given."""
    import mxnet as mx
    if spec is None:
        return [mx.gpu(i) for i in range(mx.context.num_gpus())] or [mx.cpu()]
    return parse_devices(spec)
