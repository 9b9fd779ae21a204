"""Plain-text corpora: files or folders of text, read as documents of sentences.

A document is either a block of lines between blank lines (BERT's ``create_pretraining_data``
format, the default) or one line (``doc_per_line``, as WikiText). Each line is split into
sentences at ``.``, ``!`` or ``?`` followed by a space and a capital, digit or quote, so that
text with several sentences per line needs no rewriting. Files are read line by line and
never held whole in memory; a folder means every non-hidden file below it, in sorted order.
"""
import dataclasses
import os
import re

# A sentence ends at . ! or ? (with closing quotes or brackets) before a space and a capital,
# a digit or an opening quote; abbreviations such as "Dr. Smith" are split too (rare enough
# for pretraining pairs, where a boundary only moves the NSP split point).
_SENTENCE_END = re.compile(r'(?<=[.!?])["\')\]]*\s+(?=["\'(\[]?[A-Z0-9])')


@dataclasses.dataclass(frozen=True)
class CorpusSource:
    """One corpus: ``path`` (a file or a folder), its sampling ``weight`` (each document is
    used ``weight`` times in expectation) and whether a line is a document."""
    path: str
    weight: float = 1.0
    doc_per_line: bool = False

    def __post_init__(self):
        if not (isinstance(self.weight, (int, float)) and self.weight > 0):
            raise ValueError(f'corpus weight={self.weight!r} for {self.path!r}; expected a '
                             f'positive number')

    @classmethod
    def parse(cls, spec, doc_per_line=False):
        """``'PATH'`` or ``'PATH:WEIGHT'`` (as ``--corpus`` takes it) as a source."""
        path, _, weight = spec.rpartition(':')
        if path and not os.path.exists(spec):
            try:
                value = float(weight)
            except ValueError:
                raise ValueError(f'--corpus {spec!r}: weight {weight!r} is not a positive '
                                 f'number; expected PATH or PATH:WEIGHT') from None
            return cls(path, value, doc_per_line)
        return cls(spec, 1.0, doc_per_line)

    def files(self):
        """The files of this corpus, in a fixed order."""
        if os.path.isfile(self.path):
            return [self.path]
        if not os.path.isdir(self.path):
            raise FileNotFoundError(f'corpus {self.path!r} does not exist; expected a text '
                                    f'file or a folder of text files')
        found = []
        for root, folders, names in os.walk(self.path):
            folders[:] = sorted(f for f in folders if not f.startswith('.'))
            found.extend(os.path.join(root, n) for n in sorted(names) if not n.startswith('.'))
        if not found:
            raise FileNotFoundError(f'corpus folder {self.path!r} holds no files; expected '
                                    f'text files')
        return found

    def size(self):
        """Bytes of text, for progress bars."""
        return sum(os.path.getsize(path) for path in self.files())

    def signature(self):
        """What identifies this corpus's content for the preprocessing cache: every file's
        path, size and modification time (hashing terabytes would cost a pass)."""
        return [(os.path.abspath(path), os.path.getsize(path), os.stat(path).st_mtime_ns)
                for path in self.files()]


def split_sentences(line):
    """The sentences of one line of text, stripped, empty ones left out."""
    return [s.strip() for s in _SENTENCE_END.split(line.strip()) if s.strip()]


def read_documents(source, on_bytes=None):
    """Yield the documents of ``source`` (a ``CorpusSource``) as lists of sentence strings.

    ``on_bytes(n)`` is called with the bytes of each line read (for a progress bar). A file
    that is not UTF-8 is an error naming the file and the line.
    """
    for path in source.files():
        document = []
        with open(path, 'rb') as f:
            for number, raw in enumerate(f, 1):
                if on_bytes is not None:
                    on_bytes(len(raw))
                try:
                    line = raw.decode('utf-8')
                except UnicodeDecodeError as error:
                    raise ValueError(f'corpus file {path!r} line {number} is not UTF-8 '
                                     f'({error.reason}); expected UTF-8 text') from None
                sentences = split_sentences(line)
                if source.doc_per_line:
                    if sentences:
                        yield sentences
                elif sentences:
                    document.extend(sentences)
                elif document:  # a blank line ends a document
                    yield document
                    document = []
        if document:
            yield document
