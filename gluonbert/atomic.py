"""Atomic file writes: readers see the old file or the new one, never half of one.

Every file gluonbert writes for keeps (checkpoints, pretrained and fine-tuned folders, the
data cache) goes through ``atomic_write``, so an interrupted run loses nothing.
"""
import os
import tempfile


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path, write):
    """Write ``path`` by calling ``write(tmp)`` on a temporary file beside it, fsync it and
    rename it into place. The file gets the usual permissions (0666 less the umask)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path) + '.')
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, 'rb') as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
