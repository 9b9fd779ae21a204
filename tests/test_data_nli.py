"""NLI data: SNLI in d2l's and the InferSent format, SICK, and the chapter's SNLIBERTDataset."""
import numpy as onp
import pytest

import d2l.mxnet as d2l
from gluonbert.data import Vocab
from gluonbert.data.locate import DataNotFoundError
from gluonbert.data.nli import (NLIFormatError, SNLIBERTDataset, embedded_snli_dir, load_snli,
                                locate_sick, locate_snli, read_sick, read_snli,
                                read_snli_infersent)
from shared_data import located

SNLI_HEADER = 'gold_label\tsentence1_binary_parse\tsentence2_binary_parse\n'


def test_infersent_splits_have_the_official_label_counts():
    folder, found = located(lambda: locate_snli(download=False), 'SNLI')
    assert found == 'infersent'
    _, _, labels = read_snli_infersent(folder, 'test')
    # entailment 3368, contradiction 3237, neutral 3219 (SNLI 1.0 test)
    assert onp.bincount(labels).tolist() == [3368, 3237, 3219]


def test_original_files_read_as_d2l_reads_them(tmp_path):
    rows = ['entailment\t( ( A man ) ( is sleeping ) )\t( A ( person rests ) )',
            '-\t( No ) consensus\t( skipped )',
            'neutral\t( ( Two   dogs ) run )\t( ( Dogs ) play )',
            'contradiction\t( A cat )\t( ( No cat ) . )']
    for name in ('snli_1.0_train.txt', 'snli_1.0_test.txt'):
        (tmp_path / name).write_text(SNLI_HEADER + '\n'.join(rows) + '\n')
    assert read_snli(str(tmp_path), False) == d2l.read_snli(str(tmp_path), False)
    assert read_snli(str(tmp_path), True)[2] == [0, 2, 1]


def test_sick_splits_have_the_documented_sizes_and_labels():
    path = located(locate_sick, 'SICK')
    sizes = {split: onp.bincount(read_sick(path, split)[2]).tolist()
             for split in ('TRAIN', 'TRIAL', 'TEST')}
    assert sizes == {'TRAIN': [1274, 641, 2524], 'TRIAL': [143, 71, 281],
                     'TEST': [1404, 712, 2790]}
    scores = read_sick(path, 'TRIAL', target='relatedness')[2]
    assert len(scores) == 495 and 1.0 <= min(scores) and max(scores) <= 5.0


def test_dataset_lays_out_the_pair_as_the_chapter_and_truncates_the_longer_sentence():
    vocab = Vocab(['a', 'b', 'c', 'd'], reserved_tokens=['<pad>', '<mask>', '<cls>', '<sep>'])
    data = (['A b c d a b', 'a'], ['c d', 'b'], [0, 2])
    dataset = SNLIBERTDataset(data, max_len=8, vocab=vocab)
    (tokens, segments, valid_len), label = dataset[0]
    # 6 + 2 tokens > 8 - 3: the premise (longer) loses tokens until 3 + 2 fit
    assert vocab.to_tokens(tokens.tolist()) == ['<cls>', 'a', 'b', 'c', '<sep>', 'c', 'd', '<sep>']
    assert segments.tolist() == [0, 0, 0, 0, 0, 1, 1, 1] and valid_len == 8 and label == 0
    (tokens, segments, valid_len), _ = dataset[1]
    assert vocab.to_tokens(tokens.tolist())[:6] == ['<cls>', 'a', '<sep>', 'b', '<sep>', '<pad>']
    assert valid_len == 5


def test_embedded_slice_loads_when_asked_for(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr('gluonbert.data.nli.candidate_folders', lambda *a, **k: {})
    monkeypatch.delenv('GLUONBERT_DATA', raising=False)
    with pytest.raises(DataNotFoundError, match='SNLI not found'):
        locate_snli(download=False)
    train, test = load_snli(download=False, fallback='embedded')
    assert (len(train[0]), len(test[0])) == (3000, 1000)
    assert locate_snli(download=False, fallback='embedded')[0] == embedded_snli_dir()


def test_offline_the_snli_fallback_is_one_line_naming_where_it_looked(monkeypatch, tmp_path,
                                                                       caplog, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr('gluonbert.data.locate._REPO_ROOT', tmp_path)  # no ../shared here
    monkeypatch.delenv('GLUONBERT_DATA', raising=False)
    monkeypatch.delenv('GLUONBERT_NO_DOWNLOAD', raising=False)

    def download_extract(name, folder=None):
        print(f'Downloading ../data/snli_1.0.zip from {d2l.DATA_HUB[name][0]}...')
        raise ConnectionError('Max retries exceeded with url: /projects/snli/snli_1.0.zip '
                              '(Caused by NameResolutionError(...))')
    monkeypatch.setattr(d2l, 'download_extract', download_extract)
    with caplog.at_level('WARNING', logger='gluonbert.data.nli'):
        assert locate_snli(fallback='embedded')[0] == embedded_snli_dir()
    assert capsys.readouterr().out == ''
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert message.startswith('SNLI not found (looked in: ')
    assert str(tmp_path.parent / 'data' / 'snli_1.0') in message  # d2l's cache
    assert f"d2l's download from {d2l.DATA_HUB['SNLI'][0]} failed (ConnectionError)" in message
    assert message.endswith(f'; using the small embedded slice {embedded_snli_dir()}')


def write_split(folder, premises, hypotheses, labels):
    for name, lines in (('s1', premises), ('s2', hypotheses), ('labels', labels)):
        (folder / f'{name}.dev').write_text(''.join(line + ' \n' for line in lines))


def test_files_with_different_line_counts_are_named(tmp_path):
    write_split(tmp_path, ['a b', 'c d'], ['e'], ['neutral', 'neutral'])
    with pytest.raises(NLIFormatError, match=r"differ in line count \{'s1.dev': 2, 's2.dev': 1"):
        read_snli_infersent(str(tmp_path), 'dev')


def test_an_empty_line_is_named_with_its_file_and_line(tmp_path):
    write_split(tmp_path, ['a b', ''], ['e', 'f'], ['neutral', 'neutral'])
    with pytest.raises(NLIFormatError, match=r's1.dev, line 2: empty line'):
        read_snli_infersent(str(tmp_path), 'dev')


def test_an_unknown_label_is_named_with_its_file_and_line(tmp_path):
    write_split(tmp_path, ['a', 'b'], ['e', 'f'], ['neutral', 'maybe'])
    with pytest.raises(NLIFormatError, match=r"labels.dev, line 2: label 'maybe' is not one of"):
        read_snli_infersent(str(tmp_path), 'dev')


def test_a_folder_without_snli_files_is_refused(tmp_path):
    with pytest.raises(DataNotFoundError, match='holds neither s1.dev/s1.test'):
        locate_snli(str(tmp_path))


def test_a_wordpiece_tokenizer_replaces_the_chapters_whitespace_split():
    from gluonbert.data.wordpiece import WordPieceTokenizer
    vocab = Vocab(['the', 'dog', '##s', 'run', '.'],
                  reserved_tokens=['<pad>', '<mask>', '<cls>', '<sep>'])
    dataset = SNLIBERTDataset((['The dogs run.'], ['Dogs'], [0]), 12, vocab,
                              tokenizer=WordPieceTokenizer(vocab))
    (tokens, _, valid_len), _ = dataset[0]
    assert vocab.to_tokens(tokens.tolist())[:int(valid_len)] == [
        '<cls>', 'the', 'dog', '##s', 'run', '.', '<sep>', 'dog', '##s', '<sep>']
