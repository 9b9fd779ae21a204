"""Folder locks: one run at a time per folder, and a run that ends leaves no lock file."""
import os
import subprocess
import sys
import threading

import pytest

from gluonbert import cli, folder_lock
from gluonbert.folder_lock import FolderInUse, folder_locks, lock_path

HOLD = ('import sys\nfrom gluonbert.folder_lock import folder_locks\n'
        'with folder_locks(sys.argv[1]):\n    print("held", flush=True)\n    sys.stdin.read()\n')


def lock_files(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith('.lock'))


def test_a_finished_run_leaves_no_lock_file(tmp_path):
    assert cli.main(['pretrain', '--num-hiddens', '16', '--ffn-num-hiddens', '32',
                     '--num-heads', '2', '--num-blks', '1', '--steps', '1', '--synthetic',
                     '--vocab-size', '50', '--batch-size', '4', '--max-len', '12',
                     '--out', str(tmp_path / 'p')]) == 0
    assert os.listdir(tmp_path) and lock_files(tmp_path) == []


def test_a_released_lock_leaves_no_lock_file_and_a_failed_one_leaves_the_holders(tmp_path):
    with folder_locks(tmp_path / 'a', tmp_path / 'b'):
        assert lock_files(tmp_path) == ['.a.lock', '.b.lock']
        with pytest.raises(FolderInUse):
            with folder_locks(tmp_path / 'b'):
                pass
        assert lock_files(tmp_path) == ['.a.lock', '.b.lock']
    assert lock_files(tmp_path) == []


def test_a_holder_in_another_process_excludes_until_it_ends(tmp_path):
    holder = subprocess.Popen([sys.executable, '-c', HOLD, str(tmp_path / 'out')],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == 'held\n'
        with pytest.raises(FolderInUse, match=f'pid {holder.pid}, which holds'):
            with folder_locks(tmp_path / 'out'):
                pass
    finally:
        holder.communicate('')
    assert holder.returncode == 0
    assert lock_files(tmp_path) == []
    with folder_locks(tmp_path / 'out'):
        pass


def test_a_lock_taken_on_a_file_its_holder_just_removed_is_taken_on_the_new_one(
        tmp_path, monkeypatch):
    path = lock_path(tmp_path / 'out')
    stale = os.open(path, os.O_RDWR | os.O_CREAT)  # opened just before its holder removed it
    os.unlink(path)
    opens = iter([stale])
    real_open = folder_lock._open
    monkeypatch.setattr(folder_lock, '_open', lambda *a: next(opens, None) or real_open(*a))
    with folder_locks(tmp_path / 'out'):
        monkeypatch.undo()
        assert lock_files(tmp_path) == ['.out.lock']
        with pytest.raises(FolderInUse):  # the file at the path is the one held
            with folder_locks(tmp_path / 'out'):
                pass
    assert lock_files(tmp_path) == []


def test_holders_taking_and_releasing_at_once_never_overlap(tmp_path):
    inside, overlaps, taken = [], [], []

    def work():
        for _ in range(200):
            try:
                with folder_locks(tmp_path / 'out'):
                    inside.append(1)
                    if len(inside) > 1:
                        overlaps.append(1)
                    taken.append(1)
                    inside.pop()
            except FolderInUse:
                pass

    threads = [threading.Thread(target=work) for _ in range(4)]  # each its own open file
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == [] and taken
    assert lock_files(tmp_path) == []
