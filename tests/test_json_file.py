"""A JSON file that is not what it should be is one error naming the file, what is wrong with
it and what was expected."""
import pytest

from gluonbert.json_file import json_type, read_json


@pytest.mark.parametrize('content, wrong', [
    (b'{"a": 1,', r'is not valid JSON \(Expecting .*line 1 column 9 \(char 8\)\)'),
    (b'{"a": "\xe9"}', r"is not UTF-8 \(byte b'\\xe9' cannot be decoded\)"),
    (b'[{"a": 1}]', 'holds a JSON list'),
    (b'null', 'holds a JSON null'),
])
def test_a_file_that_is_not_a_json_object_is_one_error_naming_it(tmp_path, content, wrong):
    path = tmp_path / 'config.json'
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f'^{path} {wrong}; expected a JSON object of '
                                         f'settings$'):
        read_json(path, 'a JSON object of settings')


def test_the_expected_type_is_read_as_it_is(tmp_path):
    path = tmp_path / 'modules.json'
    path.write_text('[{"path": ""}]')
    assert read_json(path, 'a list', list) == [{'path': ''}]


@pytest.mark.parametrize('value, name', [(None, 'null'), (True, 'true/false'), (1, 'integer'),
                                         (1.5, 'number'), ('a', 'string'), ([], 'list'),
                                         ({}, 'object')])
def test_json_type_names_the_type_of_a_parsed_value(value, name):
    assert json_type(value) == name
