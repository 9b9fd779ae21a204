"""The export folder, written whole or not at all.

Everything is written into a hidden temporary folder beside the target, which is renamed to
the target only once every file is complete; on any error it is removed, with the parent
folders the export created. A target that is not writable fails before any work is done.
"""
import contextlib
import json
import os
import shutil
import tempfile


@contextlib.contextmanager
def staged_folder(folder, overwrite=False):
    """Yield a temporary folder that becomes ``folder`` when the block succeeds."""
    folder = os.path.abspath(os.fspath(folder))
    if os.path.exists(folder):
        if not os.path.isdir(folder):
            raise FileExistsError(f'folder={folder!r} is a file; expected a folder to export to')
        if os.listdir(folder) and not overwrite:
            raise FileExistsError(f'folder={folder!r} exists and is not empty; pass '
                                  f'overwrite=True to replace it')
    created = _make_parents(os.path.dirname(folder))
    try:
        staging = tempfile.mkdtemp(dir=os.path.dirname(folder),
                                   prefix=f'.{os.path.basename(folder)}.partial-')
    except OSError as error:
        _remove_empty(created)
        raise type(error)(f'cannot write to folder={folder!r}: {error.strerror} '
                          f'({os.path.dirname(folder)!r} must be a writable folder)') from None
    try:
        yield staging
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes it private (0o700)
        _replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(created)
        raise


def write_bytes(path, data):
    with open(path, 'wb') as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_json(path, value):
    write_bytes(path, json.dumps(value, ensure_ascii=False, indent=1).encode('utf-8'))


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
            raise type(error)(f'cannot create folder {path!r} to export to: '
                              f'{error.strerror}') from None
    return missing


def _remove_empty(folders):
    for path in reversed(folders):
        with contextlib.suppress(OSError):
            os.rmdir(path)


def _replace(staging, folder):
    if not os.path.exists(folder):
        os.rename(staging, folder)
        return
    old = tempfile.mkdtemp(dir=os.path.dirname(folder),
                           prefix=f'.{os.path.basename(folder)}.old-')
    previous = os.path.join(old, 'previous')
    os.rename(folder, previous)
    try:
        os.rename(staging, folder)
    except OSError:
        os.rename(previous, folder)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
