"""Every use of MXNet 1.9.1's private internals, behind one door.

gluonbert needs a few things that MXNet 1.9.1 offers only through private attributes (the
optimizer state inside a ``gluon.Trainer``, a parameter's freshness flag, the cached graph of
a hybridized block...) or reports only through exceptions of one generic type. Each is wrapped
here in a small named function saying which internal it reads and why, so that an MXNet
upgrade touches this one file (and ``tests/test_compat.py`` says what broke).
"""
import errno

import mxnet as mx


def _write_failed(error, path):
    """MXNet 1.9.1 reports a failed file write (a full disk, a file over the size limit) as
    ``MXNetError: [...] Check failed: ... FileStream.Write incomplete``: an OSError here."""
    if 'Write incomplete' in str(error) or 'No space left' in str(error):
        return OSError(errno.ENOSPC, f'cannot write {path}: the disk is full (or the file is '
                       f'over a size limit)')
    return OSError(errno.EIO, f'cannot write {path}: {str(error).splitlines()[0]}')


def save_parameters(block, path):
    """``block.save_parameters(path)``, a failed write raised as OSError (see
    ``_write_failed``)."""
    try:
        block.save_parameters(path)
    except mx.base.MXNetError as error:
        raise _write_failed(error, path) from None


def save_ndarrays(path, arrays):
    """``mx.nd.save(path, arrays)``, a failed write raised as OSError."""
    try:
        mx.nd.save(path, arrays)
    except mx.base.MXNetError as error:
        raise _write_failed(error, path) from None
