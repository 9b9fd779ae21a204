"""One run at a time per folder: an fcntl lock file beside each folder a run writes.

Two runs on the same ``--out`` would each replace the other's model and delete the other's
checkpoints (keep-last), and both say "saved". A run holds ``.NAME.lock`` beside its output
and checkpoint folders while it works; a second run is refused at once, naming the pid of
the one that holds them. The lock goes with the process (``flock``): a killed run leaves at
most a lock file that nobody holds, which the next run takes over.

A run that ends removes its lock file while it still holds the lock. A run that opened the
file just before it was removed then holds a lock on a file no longer at the path, so a run
checks after locking that the path is still the file it locked, and starts again if not:
two runs never hold two different files of one path.
"""
import contextlib
import fcntl
import os


class FolderInUse(OSError):
    """Another process holds the folder's lock."""


def lock_path(folder):
    """``.NAME.lock`` beside ``folder``."""
    folder = os.path.abspath(os.fspath(folder)).rstrip(os.sep)
    return os.path.join(os.path.dirname(folder), f'.{os.path.basename(folder)}.lock')


@contextlib.contextmanager
def folder_locks(*folders):
    """Hold the locks of ``folders`` for the block; FolderInUse when another process holds
    one of them (those taken are released)."""
    with contextlib.ExitStack() as stack:
        for folder in dict.fromkeys(os.path.abspath(os.fspath(f)) for f in folders):
            stack.enter_context(_locked(folder))
        yield


@contextlib.contextmanager
def _locked(folder):
    path = lock_path(folder)
    fd = _lock_file(folder, path)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f'{os.getpid()}\n'.encode('ascii'), 0)
        yield
    finally:
        if _same_file(fd, path):  # still held: no other run can have this file locked
            os.unlink(path)
        os.close(fd)  # releases the lock


def _lock_file(folder, path):
    """A descriptor of the file at ``path``, locked by this process."""
    while True:
        fd = _open(folder, path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode('ascii', 'replace').strip() or 'unknown'
            os.close(fd)
            raise FolderInUse(f'folder={folder!r} is in use by another run (pid {holder}, '
                              f'which holds {path}); wait for it to end, or choose another '
                              f'--out') from None
        if _same_file(fd, path):
            return fd
        os.close(fd)  # its holder removed it as it ended: lock the file now at the path


def _open(folder, path):
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as error:
        raise type(error)(f'cannot lock folder={folder!r}: cannot write {path}: '
                          f'{error.strerror}') from None


def _same_file(fd, path):
    try:
        at_path = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (at_path.st_dev, at_path.st_ino)
