"""Reading a JSON file gluonbert or another tool wrote, with one wording for every file that
is not what it should be: the file, what is wrong with it and what was expected."""
import json


def json_type(value):
    """The JSON type of a parsed value, as an error names it."""
    if value is None:
        return 'null'
    for kind, name in ((bool, 'true/false'), (int, 'integer'), (float, 'number'),
                       (str, 'string'), (list, 'list')):
        if isinstance(value, kind):
            return name
    return 'object'


def read_json(path, expected, kind=dict):
    """The JSON value in ``path``, of type ``kind``; ValueError naming the file, what is
    wrong (not UTF-8, not JSON, another JSON type) and ``expected`` (what the file should
    hold, e.g. "a JSON object of BERTModel options")."""
    try:
        with open(path, encoding='utf-8') as f:
            value = json.load(f)
    except UnicodeDecodeError as error:
        raise ValueError(f'{path} is not UTF-8 (byte {error.object[error.start:error.start + 1]!r}'
                         f' cannot be decoded); expected {expected}') from None
    except json.JSONDecodeError as error:
        raise ValueError(f'{path} is not valid JSON ({error}); expected {expected}') from None
    if not isinstance(value, kind):
        raise ValueError(f'{path} holds a JSON {json_type(value)}; expected {expected}')
    return value
