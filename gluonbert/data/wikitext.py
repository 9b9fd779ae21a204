"""WikiText-2 paragraphs for BERT pretraining, as d2l's ``_read_wiki``."""
import io
import os
import random


def read_wiki(data_dir, rng=random):
    """Paragraphs of ``data_dir/wiki.train.tokens`` as lists of lowercased sentence strings.

    As d2l: a line is a paragraph, sentences are split at ``' . '``, lines with fewer than two
    sentences are dropped, and the paragraphs are shuffled with ``rng`` (Python's global
    ``random`` unless given). The file must be UTF-8.
    """
    file_name = os.path.join(data_dir, 'wiki.train.tokens')
    with open(file_name, 'rb') as f:
        raw = f.read()
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError as error:
        raise ValueError(f'{file_name} is not UTF-8: {error.reason} at byte offset '
                         f'{error.start}; expected the UTF-8 WikiText-2 text') from None
    lines = io.StringIO(text, newline=None).readlines()  # as open(file_name, 'r')
    # Uppercase letters are converted to lowercase ones
    paragraphs = [line.strip().lower().split(' . ')
                  for line in lines if len(line.split(' . ')) >= 2]
    if not paragraphs:
        raise ValueError(f'{file_name} has no paragraph of two or more sentences (sentences are '
                         f"separated by ' . '); expected WikiText-2 text, got {len(lines)} lines")
    rng.shuffle(paragraphs)
    return paragraphs


_read_wiki = read_wiki  # d2l's name
