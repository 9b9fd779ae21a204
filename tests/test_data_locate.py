"""Where WikiText-2 is found: explicit folder > $GLUONBERT_DATA > shared data > d2l's cache,
checksums, the clear error when nothing is found, and the embedded slice. Never downloads."""
import logging
from pathlib import Path

import pytest

from gluonbert.data import ChecksumError, DataNotFoundError, embedded_slice_dir, locate_wikitext2
from gluonbert.data import locate
from shared_data import SHARED_DATA

SHARED = SHARED_DATA / 'wikitext-2'
TEXT = 'the cat sat . the dog ran . \n'


def corpus(folder, text=TEXT):
    """A folder holding a small (not official) wiki.train.tokens."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'wiki.train.tokens').write_text(text, encoding='utf-8')
    return folder


@pytest.fixture
def places(tmp_path, monkeypatch):
    """An isolated world: the repository at tmp/repo, the working directory tmp/repo (so that
    ``..`` is tmp), no $GLUONBERT_DATA, downloads off."""
    repo = tmp_path / 'repo'
    repo.mkdir()
    monkeypatch.setattr(locate, '_REPO_ROOT', repo)
    monkeypatch.chdir(repo)
    monkeypatch.delenv('GLUONBERT_DATA', raising=False)
    monkeypatch.setenv('GLUONBERT_NO_DOWNLOAD', '1')
    return tmp_path


def resolved(**kwargs):
    return Path(locate_wikitext2(verify=False, **kwargs)).resolve()


def test_explicit_data_dir_wins_over_everything(places, monkeypatch):
    corpus(places / 'shared' / 'data' / 'wikitext-2')
    monkeypatch.setenv('GLUONBERT_DATA', str(corpus(places / 'env')))
    explicit = corpus(places / 'mine')
    assert resolved(data_dir=explicit) == explicit


def test_environment_wins_over_shared_data(places, monkeypatch):
    corpus(places / 'shared' / 'data' / 'wikitext-2')
    monkeypatch.setenv('GLUONBERT_DATA', str(corpus(places / 'env' / 'wikitext-2').parent))
    assert resolved() == places / 'env' / 'wikitext-2'


def test_environment_may_name_the_files_folder_itself(places, monkeypatch):
    monkeypatch.setenv('GLUONBERT_DATA', str(corpus(places / 'flat')))
    assert resolved() == places / 'flat'


def test_shared_data_beside_the_repository_wins_over_the_working_directory(places, monkeypatch):
    beside_repo = corpus(places / 'shared' / 'data' / 'wikitext-2')
    work = places / 'elsewhere' / 'work'
    work.mkdir(parents=True)
    corpus(places / 'elsewhere' / 'shared' / 'data' / 'wikitext-2')
    monkeypatch.chdir(work)
    assert resolved() == beside_repo


def test_shared_data_beside_the_working_directory_wins_over_d2l_cache(places, monkeypatch):
    monkeypatch.setattr(locate, '_REPO_ROOT', places / 'nowhere' / 'repo')
    shared = corpus(places / 'shared' / 'data' / 'wikitext-2')
    corpus(places / 'data' / 'wikitext-2')
    assert resolved() == shared


def test_d2l_download_cache_is_found(places):
    cached = corpus(places / 'data' / 'wikitext-2')
    assert resolved() == cached


def test_nothing_found_error_lists_every_place_looked_and_that_download_is_off(places):
    with pytest.raises(DataNotFoundError) as error:
        locate_wikitext2()
    message = str(error.value)
    for place in ['$GLUONBERT_DATA (unset)', str(places / 'shared' / 'data' / 'wikitext-2'),
                  str(places / 'data' / 'wikitext-2'), 'download disabled']:
        assert place in message
    assert "fallback='embedded'" in message


def test_download_false_argument_disables_download(places, monkeypatch):
    monkeypatch.delenv('GLUONBERT_NO_DOWNLOAD')
    with pytest.raises(DataNotFoundError, match='download disabled'):
        locate_wikitext2(download=False)


@pytest.mark.parametrize('where', ['data_dir', 'env', 'shared'])
def test_folder_without_train_file_gets_its_own_error_naming_it(places, monkeypatch, where):
    folder = places / 'shared' / 'data' / 'wikitext-2'
    folder.mkdir(parents=True)
    (folder / 'wiki.valid.tokens').write_text(TEXT, encoding='utf-8')
    kwargs = {'data_dir': folder} if where == 'data_dir' else {}
    if where == 'env':
        monkeypatch.setenv('GLUONBERT_DATA', str(folder))
    with pytest.raises(DataNotFoundError, match='has no wiki.train.tokens') as error:
        locate_wikitext2(**kwargs)
    assert str(folder) in str(error.value)


def test_missing_explicit_folder_is_named_in_the_error(places):
    with pytest.raises(DataNotFoundError, match="data_dir: folder .*nope.* does not exist"):
        locate_wikitext2(places / 'nope')


def test_unknown_file_found_by_resolution_fails_its_checksum_with_a_hint(places):
    corpus(places / 'shared' / 'data' / 'wikitext-2')
    with pytest.raises(ChecksumError) as error:
        locate_wikitext2()
    message = str(error.value)
    assert 'wiki.train.tokens: sha1 ' in message
    assert locate.KNOWN_SHA1['wiki.train.tokens'][0] in message
    assert 'verify=False' in message


def test_verify_false_accepts_an_unknown_file(places):
    shared = corpus(places / 'shared' / 'data' / 'wikitext-2')
    assert Path(locate_wikitext2(verify=False)).resolve() == shared


def test_explicit_data_dir_is_not_checksummed(places):
    mine = corpus(places / 'mine')
    assert Path(locate_wikitext2(mine)) == mine


@pytest.mark.skipif(not SHARED.is_dir(), reason='needs the shared WikiText-2 copy')
def test_official_files_found_by_resolution_pass_their_checksums(places, monkeypatch):
    monkeypatch.setenv('GLUONBERT_DATA', str(SHARED.parent))
    assert Path(locate_wikitext2()) == SHARED


def test_embedded_slice_is_used_only_when_asked_and_says_so(places, caplog):
    with pytest.raises(DataNotFoundError):
        locate_wikitext2()
    with caplog.at_level(logging.WARNING, logger='gluonbert.data.locate'):
        assert locate_wikitext2(fallback='embedded') == embedded_slice_dir()
    assert len(caplog.records) == 1
    assert 'small embedded slice' in caplog.records[0].getMessage()


def offline(monkeypatch):
    """Downloads on, and d2l's download failing as it does offline, after its own line."""
    import d2l.mxnet as d2l

    def download_extract(name, folder=None):
        print(f'Downloading ../data/{name}.zip from {d2l.DATA_HUB[name][0]}...')
        raise ConnectionError("HTTPSConnectionPool(host='example.org', port=443): Max retries "
                              "exceeded with url: /data.zip (Caused by NameResolutionError)")
    monkeypatch.delenv('GLUONBERT_NO_DOWNLOAD')
    monkeypatch.setattr(d2l, 'download_extract', download_extract)
    return d2l.DATA_HUB['wikitext-2'][0]


def test_offline_the_fallback_is_one_line_naming_where_it_looked_and_the_slice(
        places, monkeypatch, caplog, capsys):
    url = offline(monkeypatch)
    with caplog.at_level(logging.WARNING, logger='gluonbert.data.locate'):
        assert locate_wikitext2(fallback='embedded') == embedded_slice_dir()
    assert capsys.readouterr().out == ''  # no "Downloading ..." line from d2l
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert message.startswith('WikiText-2 not found (looked in: $GLUONBERT_DATA (unset); ')
    for part in (str(places / 'data' / 'wikitext-2'),
                 f"d2l's download from {url} failed (ConnectionError)",
                 f'using the small embedded slice {embedded_slice_dir()}'):
        assert part in message


def test_a_download_that_works_is_used_and_reported_in_one_line(places, monkeypatch, caplog,
                                                                capsys):
    import d2l.mxnet as d2l
    monkeypatch.delenv('GLUONBERT_NO_DOWNLOAD')
    downloaded = corpus(places / 'data' / 'wikitext-2')
    monkeypatch.setattr(d2l, 'download_extract', lambda name, folder=None: (
        print('Downloading ...'), str(places / 'data' / folder))[1])
    places_looked = locate.candidate_folders('wikitext-2', 'wikitext-2')
    monkeypatch.setattr(locate, 'candidate_folders', lambda *a: {
        folder: source for folder, source in places_looked.items() if folder != downloaded})
    with caplog.at_level(logging.WARNING, logger='gluonbert.data.locate'):
        assert resolved(fallback='embedded') == downloaded
    assert capsys.readouterr().out == ''
    assert [r.getMessage() for r in caplog.records] == [
        f"WikiText-2 not found locally; downloaded with d2l from "
        f"{d2l.DATA_HUB['wikitext-2'][0]} to {downloaded}"]


def test_embedded_fallback_is_not_used_when_data_is_found(places):
    shared = corpus(places / 'shared' / 'data' / 'wikitext-2')
    assert Path(locate_wikitext2(fallback='embedded', verify=False)).resolve() == shared


def test_embedded_slice_matches_the_sha1_in_its_readme():
    folder = Path(embedded_slice_dir())
    readme = (folder / 'README.txt').read_text(encoding='utf-8')
    assert locate.file_sha1(folder / 'wiki.train.tokens') in readme
    assert 'CC BY-SA 3.0' in readme and 'Merity' in readme


def test_unknown_fallback_is_rejected():
    with pytest.raises(ValueError, match="fallback must be None or 'embedded', got 'slice'"):
        locate_wikitext2(fallback='slice')
