"""Checksums of files, read in 1 MiB blocks: data sets are verified by sha1 (the sums their
publishers give), checkpoints by sha256."""
import hashlib


def file_digest(path, algorithm):
    """Hex digest of the file at ``path`` with ``hashlib``'s ``algorithm``."""
    digest = hashlib.new(algorithm)
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()
