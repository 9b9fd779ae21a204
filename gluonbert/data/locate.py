"""Where the WikiText-2 files are: explicit folder, environment, shared data, d2l's cache, download.

d2l always downloads (``d2l.download_extract``), and its link is dead (d2l-en #2588: "File is
not a zip file"). Here a found copy is used first, its checksum is verified, and when nothing
is found the error lists every place looked. The small slice shipped in the package is used
only when the caller asks for it (``fallback='embedded'``), with one line that says where
the data was looked for, the download included.
"""
import contextlib
import io
import logging
import os
from pathlib import Path

from ..digest import file_digest

TRAIN_FILE = 'wiki.train.tokens'

# sha1 of each official file. The train file has three known-good forms: the canonical one (as
# in GluonNLP's and MXNet's WikiText2), the rebuild in this project's shared data, which holds
# the same lines with the articles in another order (see its README.txt), and the slice shipped
# with gluonbert (so that $GLUONBERT_DATA may point at it).
KNOWN_SHA1 = {
    'wiki.train.tokens': ('863f29c46ef9d167fff4940ec821195882fe29d1',
                          'ddc62251223002638e180ea946fbe909bb7f477a',
                          '0f3159bce9bac79f314a406b99dc01b6669aaadd'),
    'wiki.valid.tokens': ('0418625c8b4da6e4b5c7a0b9e78d4ae8f7ee5422',),
    'wiki.test.tokens': ('c7b8ce0aa086fb34dab808c5c49224211eb2b172',),
}

# The repository root: the parent of the ``gluonbert`` package folder.
_REPO_ROOT = Path(__file__).resolve().parents[2]

_logger = logging.getLogger(__name__)


class DataNotFoundError(FileNotFoundError):
    """No WikiText-2 folder was found; the message lists every place looked."""


class ChecksumError(ValueError):
    """A WikiText-2 file found by resolution is not one of the known versions."""


def embedded_slice_dir():
    """The folder of the small real slice of WikiText-2 train shipped with gluonbert."""
    return str(Path(__file__).resolve().parent / 'corpus' / 'wikitext-2-slice')


def file_sha1(path):
    """Hex sha1 of a file."""
    return file_digest(path, 'sha1')


def locate_wikitext2(data_dir=None, *, download=True, verify=True, fallback=None):
    """Return the folder holding ``wiki.train.tokens``.

    Looks, in order, at: ``data_dir``; ``$GLUONBERT_DATA`` (the folder or its ``wikitext-2/``);
    ``../shared/data/wikitext-2`` from the repository root and from the working directory;
    d2l's cache ``../data/wikitext-2``; then d2l's download, unless ``download=False`` or
    ``$GLUONBERT_NO_DOWNLOAD=1``. ``fallback='embedded'`` returns the shipped slice when all
    of these fail. Files found by resolution (not ``data_dir``) are checked against
    ``KNOWN_SHA1`` unless ``verify=False``.
    """
    if fallback not in (None, 'embedded'):
        raise ValueError(f"fallback must be None or 'embedded', got {fallback!r}")
    if data_dir is not None:
        return str(_checked_folder(Path(data_dir), 'data_dir'))
    folder, looked = _search()
    if folder is None:
        folder, outcome = _download() if download_enabled(download) else (
            None, DOWNLOAD_DISABLED)
        looked.append(outcome)
    if folder is not None:
        if verify:
            _verify(folder)
        return str(folder)
    if fallback == 'embedded':
        _logger.warning('WikiText-2 not found (looked in: %s); using the small embedded slice '
                        '%s', '; '.join(looked), embedded_slice_dir())
        return embedded_slice_dir()
    raise DataNotFoundError(f'WikiText-2 ({TRAIN_FILE}) not found. Looked in: '
                            + '; '.join(looked) + ". Pass data_dir=, set GLUONBERT_DATA to a "
                            "folder holding wikitext-2/, or pass fallback='embedded' to use the "
                            'small slice shipped with gluonbert.')


def _checked_folder(folder, source):
    if not folder.is_dir():
        raise DataNotFoundError(f'{source}: folder {str(folder)!r} does not exist; expected a '
                                f'folder holding {TRAIN_FILE}')
    if not (folder / TRAIN_FILE).is_file():
        raise DataNotFoundError(f'{source}: folder {str(folder)!r} has no {TRAIN_FILE}; expected '
                                'the extracted WikiText-2 files (wikitext-2-v1.zip)')
    return folder


def candidate_folders(name, d2l_name=None):
    """Where data set ``name`` may be, in resolution order after an explicit folder and
    ``$GLUONBERT_DATA``: ``{folder: source}`` for ``../shared/data/<name>`` beside the
    repository and the working directory, then d2l's cache ``../data/<d2l_name>``."""
    cwd = Path.cwd()
    places = {}
    for source, folder in (('shared data beside the repository', _REPO_ROOT),
                           ('shared data beside the working directory', cwd)):
        places.setdefault((folder / '..' / 'shared' / 'data' / name).resolve(), source)
    if d2l_name is not None:
        places.setdefault((cwd / '..' / 'data' / d2l_name).resolve(), "d2l's download cache")
    return places


def _search():
    """The first local folder (or None) and the list of places looked."""
    env = os.environ.get('GLUONBERT_DATA')
    if env:
        nested = Path(env) / 'wikitext-2'
        if (nested / TRAIN_FILE).is_file():
            return nested, []
        return _checked_folder(Path(env), f'$GLUONBERT_DATA={env}'), []
    places = candidate_folders('wikitext-2', 'wikitext-2')
    for folder, source in places.items():
        if folder.is_dir():
            return _checked_folder(folder, source), []
    return None, ['$GLUONBERT_DATA (unset)'] + [f'{folder} ({source})'
                                               for folder, source in places.items()]


DOWNLOAD_DISABLED = 'download disabled (download=False or GLUONBERT_NO_DOWNLOAD=1)'


def download_enabled(download):
    """Whether d2l's download may run: ``download`` and not ``$GLUONBERT_NO_DOWNLOAD=1``."""
    return download and os.environ.get('GLUONBERT_NO_DOWNLOAD', '') in ('', '0')


def _download():
    """d2l's own download into ``../data``: the folder (or None) and what happened."""
    folder, outcome = d2l_download('wikitext-2', 'wikitext-2', 'WikiText-2')
    if folder is None:
        return None, outcome
    return _checked_folder(folder, 'd2l download'), outcome


def d2l_download(name, folder, title):
    """``d2l.download_extract(name, folder)`` into d2l's ``../data`` without d2l's own
    "Downloading ..." line (offline it precedes every fallback): ``(path, outcome)``, path
    None when it failed; a success is reported in one line, a failure left to the caller."""
    import d2l.mxnet as d2l  # heavy (matplotlib, pandas): only when downloading
    url = d2l.DATA_HUB[name][0]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            path = Path(d2l.download_extract(name, folder))
    except Exception as error:  # the dead link gives BadZipFile; offline, a requests error
        return None, f"d2l's download from {url} failed ({_brief(error)})"
    _logger.warning('%s not found locally; downloaded with d2l from %s to %s', title, url, path)
    return path, f"d2l's download from {url}"


def _brief(error):
    """An exception as ``Type: message``, or only its type when the message is long (a
    requests error repeats the whole URL and connection pool)."""
    text = str(error)
    return f'{type(error).__name__}: {text}' if text and len(text) <= 60 \
        else type(error).__name__


def _verify(folder):
    for name, expected in KNOWN_SHA1.items():
        path = folder / name
        if path.is_file():
            actual = file_sha1(path)
            if actual not in expected:
                raise ChecksumError(f'{path}: sha1 {actual}, expected one of {", ".join(expected)}'
                                    '. The file may be truncated or a different version; pass '
                                    'verify=False to use it anyway.')
