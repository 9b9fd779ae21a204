"""Atomic writes: readers see the old file or folder or the new one, never half of one.

Every file gluonbert writes for keeps goes through ``atomic_write`` (JSON files through
``write_json``) and every folder through ``atomic_folder`` (pretrained and fine-tuned folders,
ONNX exports, trainer checkpoints), so an interrupted run or a full disk loses nothing. ``atomic_folder`` never deletes or empties
an existing folder that is not a previous copy of the same kind: a folder holding anything
else is refused before any work is done.
"""
import contextlib
import ctypes
import errno
import json
import os
import re
import shutil
import tempfile

_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100
_STAGING = '.partial-'
_STAGING_NAME = re.compile(r'^\.(.+)\.partial-(\d+)-[^-]+$')


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path, write):
    """Write ``path`` by calling ``write(tmp)`` on a temporary file beside it, fsync it and
    rename it into place. The file gets the usual permissions (0666 less the umask)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f'{path} is a folder; expected the path of a file to write')
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path) + '.')
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, 'rb') as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        if os.path.exists(tmp):
            os.remove(tmp)
        named = _naming_the_path(error, path)
        if named is not None:
            raise named from None
        raise


def _naming_the_path(error, path):
    """An OSError of a write, flush or fsync, which names no file ("[Errno 28] No space left
    on device"), as one naming ``path``; None for any other error."""
    if not isinstance(error, OSError) or error.errno is None or error.filename is not None:
        return None
    full = error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    named = type(error)(f'cannot write {path}: {error.strerror}' +
                        ('; free space on its disk, or write elsewhere' if full else ''))
    named.errno = error.errno
    return named


def write_json(path, value, indent=1):
    """Write ``value`` to ``path`` as UTF-8 JSON (non-ASCII characters as they are),
    atomically (``atomic_write``). ``indent=None`` writes one line (a vocabulary, as d2l's
    ``vocab.json``); HF's files take ``indent=2``, as ``transformers`` writes them."""
    data = json.dumps(value, ensure_ascii=False, indent=indent).encode('utf-8')

    def write(tmp):
        with open(tmp, 'wb') as f:
            f.write(data)
    atomic_write(path, write)


def exchange(first, second):
    """Swap two existing paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``): there is no
    instant at which either name is missing. Raises OSError where the system cannot."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, 'renameat2', None)
    if renameat2 is None:
        raise OSError(errno.ENOSYS, 'renameat2 is not available')
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second),
                 _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), first, None, second)


def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_replaceable(folder, files, marker, kind):
    """Refuse ``folder`` unless it is missing, empty, or a previous ``kind`` folder: one that
    holds ``marker`` and no name outside ``files``. Raises FileExistsError saying why, or
    NotADirectoryError when a missing ``folder`` cannot be created under a file."""
    if not os.path.lexists(folder):
        check_creatable(folder)
        return
    if not os.path.isdir(folder) or os.path.islink(folder):
        raise FileExistsError(f'folder={folder!r} is a file; expected a folder to write the '
                              f'{kind} to')
    names = set(os.listdir(folder))
    if not names:
        return
    foreign = sorted(names - set(files))
    if foreign or marker not in names:
        what = (f'holds {", ".join(foreign[:5])}' + (' ...' if len(foreign) > 5 else '')
                if foreign else f'has no {marker}')
        raise FileExistsError(f'folder={folder!r} exists and is not a {kind} ({what}); '
                              f'gluonbert replaces only a previous {kind}: choose another '
                              f'folder')


def check_creatable(path, what='folder'):
    """Raise NotADirectoryError when the missing ``path`` (a ``what``) cannot be created
    because the nearest existing path above it is not a folder (a file, a dangling link)."""
    parent = os.path.dirname(os.path.abspath(os.fspath(path)))
    while not os.path.lexists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise NotADirectoryError(f'cannot write to {what}={os.fspath(path)!r}: '
                                 f'{os.strerror(errno.ENOTDIR)} ({parent!r} is not a folder)')


@contextlib.contextmanager
def atomic_folder(folder, files, marker, kind):
    """Yield a temporary folder beside ``folder`` that replaces it, whole, when the block
    succeeds; on any error it is removed and ``folder`` is left as it was.

    ``files``: the names a ``kind`` folder may hold; ``marker``: the one every such folder
    holds. An existing ``folder`` must be empty or a previous ``kind`` folder (see
    ``check_replaceable``); the swap is one ``exchange``, so a kill at any instant leaves
    the previous copy or the new one under ``folder``. Files are fsynced before the swap.
    Where the system cannot exchange (not Linux, or a file system without
    ``RENAME_EXCHANGE``), replacing an existing folder fails with OSError and leaves it as it
    was; writing a new folder works everywhere.
    """
    folder = os.path.abspath(os.fspath(folder))
    check_replaceable(folder, files, marker, kind)
    parent = os.path.dirname(folder)
    created = _make_parents(parent)
    try:
        remove_stale_staging(parent, os.path.basename(folder))
        staging = tempfile.mkdtemp(dir=parent, prefix=_staging_prefix(folder))
    except OSError as error:
        _remove_empty(created)
        raise type(error)(f'cannot write to folder={folder!r}: {error.strerror} ({parent!r} '
                          f'must be a writable folder)') from None
    try:
        yield staging
        unexpected = sorted(set(os.listdir(staging)) - set(files))
        if unexpected:
            raise ValueError(f'a {kind} holds only {sorted(files)}; got {unexpected}')
        for name in os.listdir(staging):
            _fsync(os.path.join(staging, name))
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes it private (0o700)
        _fsync(staging)
        check_replaceable(folder, files, marker, kind)  # again: time has passed
        _swap_in(staging, folder)
        _fsync(parent)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(created)
        named = _naming_the_path(error, f'folder={folder!r}')
        if named is not None:
            raise named from None
        raise
    shutil.rmtree(staging, ignore_errors=True)  # now the previous copy, if there was one


def _staging_prefix(folder):
    return f'.{os.path.basename(folder)}{_STAGING}{os.getpid()}-'


def _swap_in(staging, folder):
    """Put ``staging`` at ``folder``; the previous ``folder`` (if any) ends at ``staging``."""
    try:
        os.rename(staging, folder)  # no folder, or an empty one: replaced in one step
        return
    except OSError as error:
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    exchange(staging, folder)


def remove_stale_staging(parent, name=None):
    """Remove the temporary folders that killed writers of ``parent/name`` (of any folder in
    ``parent`` when ``name`` is None) left behind; those of live processes are kept."""
    with contextlib.suppress(OSError):
        for entry in os.listdir(parent):
            match = _STAGING_NAME.match(entry)
            if match is None or (name is not None and match.group(1) != name):
                continue
            if not _pid_alive(int(match.group(2))):
                shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _make_parents(parent):
    """Create the missing folders of ``parent``; return them, deepest last."""
    missing = []
    while parent and not os.path.exists(parent):
        missing.insert(0, parent)
        parent = os.path.dirname(parent)
    for path in missing:
        try:
            os.mkdir(path)
        except OSError as error:
            _remove_empty(missing[:missing.index(path)])
            raise type(error)(f'cannot write to folder={path!r}: cannot create it: '
                              f'{error.strerror}') from None
    return missing


def _remove_empty(folders):
    for path in reversed(folders):
        with contextlib.suppress(OSError):
            os.rmdir(path)
