"""Parse a device list such as ``cpu``, ``cpu:0,cpu:1`` or ``gpu:0,gpu:1`` into MXNet contexts.

Several ``cpu:i`` stand in for GPUs on machines without one: the same code path runs on both.
"""
import mxnet as mx


def parse_devices(spec):
    """Contexts for ``spec``: ``cpu``, ``gpu`` (every GPU), or a comma list of ``kind:index``."""
    if not spec or not spec.strip():
        raise ValueError('devices is empty; expected e.g. "cpu", "gpu" or "cpu:0,cpu:1"')
    num_gpus = mx.context.num_gpus()
    if spec.strip() == 'gpu':
        if num_gpus == 0:
            raise ValueError('devices="gpu" but this machine has no GPU visible to MXNet')
        return [mx.gpu(i) for i in range(num_gpus)]
    devices = []
    for item in spec.split(','):
        kind, _, index = item.strip().partition(':')
        if kind not in ('cpu', 'gpu') or (index and not index.isdigit()):
            raise ValueError(f'device {item.strip()!r} is not understood; expected cpu, gpu, '
                             f'cpu:N or gpu:N')
        index = int(index or 0)
        if kind == 'gpu' and index >= num_gpus:
            raise ValueError(f'device gpu:{index} does not exist; MXNet sees {num_gpus} GPU(s)')
        devices.append(mx.gpu(index) if kind == 'gpu' else mx.cpu(index))
    if len(set(devices)) != len(devices):
        raise ValueError(f'devices {spec!r} names a device twice')
    return devices


def check_contexts(contexts):
    """``contexts`` as a list, refusing an empty list, non-contexts, GPUs that do not exist
    and duplicates."""
    contexts = list(contexts) if contexts is not None else []
    if not contexts:
        raise ValueError('contexts is empty; expected at least one, e.g. [mx.cpu()] or '
                         '[mx.gpu(0), mx.gpu(1)]')
    num_gpus = None
    for i, context in enumerate(contexts):
        if not isinstance(context, mx.Context):
            raise TypeError(f'contexts[{i}]={context!r} is a {type(context).__name__}; '
                            f'expected an mx.Context such as mx.cpu(0) or mx.gpu(0) '
                            f'(gluonbert.devices.parse_devices reads "cpu:0,cpu:1")')
        if context.device_type not in ('cpu', 'gpu'):
            raise ValueError(f'contexts[{i}]={context}; expected cpu or gpu contexts')
        if context.device_type == 'gpu':
            num_gpus = mx.context.num_gpus() if num_gpus is None else num_gpus
            if context.device_id >= num_gpus:
                raise ValueError(f'contexts[{i}]={context} does not exist: MXNet sees '
                                 f'{num_gpus} GPU(s)')
    duplicates = sorted({str(c) for c in contexts if contexts.count(c) > 1})
    if duplicates:
        raise ValueError(f'contexts {contexts} name {", ".join(duplicates)} more than once; '
                         f'each context must appear once')
    return contexts
