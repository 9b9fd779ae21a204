"""Documents packed into sentence-pair examples as BERT's ``create_pretraining_data.py`` does.

d2l pairs consecutive sentences and drops every pair longer than ``max_len``. BERT instead
fills each example up to a target length with whole sentences, splits them at a random point
into segment A and B (B is the real continuation half of the time, else text from another
document, whose unused sentences are then put back), and truncates the longer side, from a
random end, when the pair is too long. With probability ``short_seq_prob`` the target is
shorter, so that the model also sees short inputs. Unlike BERT, a sentence that would
overflow ``max_len`` starts the next example instead of being truncated (unless the example
has only one sentence yet: a lone sentence would always get a random B), and a random B is
cut before A; so text is lost only where two sentences do not fit together. Nothing is
silently lost: ``PackingReport`` counts documents, sentences, examples, the NSP balance and
every token truncated away.
"""
import dataclasses

# BERT's default: 10% of the examples get a random shorter target length
SHORT_SEQ_PROB = 0.1


@dataclasses.dataclass
class PackingReport:
    """Counts of one packing run (they add up over chunks with ``+=``)."""
    documents: int = 0
    empty_documents: int = 0     # no token at all: dropped
    sentences: int = 0
    tokens: int = 0              # tokens of the documents' sentences
    packed_tokens: int = 0       # tokens packed: each use of a weighted document counts
    examples: int = 0
    is_next: int = 0             # examples whose segment B really follows A
    truncated_tokens: int = 0    # tokens cut from examples longer than max_len

    def __iadd__(self, other):
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))
        return self

    def as_dict(self):
        return dataclasses.asdict(self)

    def __str__(self):
        share = self.is_next / self.examples if self.examples else 0.0
        kept = 1 - self.truncated_tokens / self.packed_tokens if self.packed_tokens else 1.0
        return (f'{self.documents} documents ({self.empty_documents} empty, dropped), '
                f'{self.sentences} sentences, {self.tokens} tokens -> {self.examples} examples, '
                f'{share:.1%} next-sentence pairs; {self.truncated_tokens} tokens truncated '
                f'({kept:.2%} of the text kept in real segments)')


def truncate_pair(tokens_a, tokens_b, max_num_tokens, rng):
    """Cut the longer list, from its front or back at random, until both fit; returns how many
    tokens were cut (BERT's ``truncate_seq_pair``)."""
    cut = 0
    while len(tokens_a) + len(tokens_b) > max_num_tokens:
        longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        # Cut from the front or the back at random, to avoid a bias towards either end
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()
        cut += 1
    return cut


def pack_document(index, documents, max_len, rng, short_seq_prob=SHORT_SEQ_PROB,
                  report=None):
    """BERT's ``create_instances_from_document``: the sentence pairs ``(tokens_a, tokens_b,
    is_next)`` of ``documents[index]`` (a list of sentences, each a non-empty token list),
    together at most ``max_len - 3`` tokens (room for ``'<cls>'`` and two ``'<sep>'``).

    The random segment B comes from another document of ``documents``; ``report`` (a
    ``PackingReport``) counts the examples, next-sentence pairs and truncated tokens.
    """
    document = documents[index]
    # '<cls>' and two '<sep>'
    max_num_tokens = max_len - 3
    target_length = max_num_tokens
    if rng.random() < short_seq_prob:
        target_length = rng.randint(2, max_num_tokens)
    examples, chunk, chunk_length, i = [], [], 0, 0
    while i < len(document):
        # A sentence that would overflow an example of two or more sentences starts the next
        # one instead of being truncated (BERT fills up to the target and truncates the
        # overshoot); a chunk of one sentence still takes a second, so that B can follow A
        if len(chunk) >= 2 and chunk_length + len(document[i]) > max_num_tokens:
            i = _emit(chunk, i, index, documents, target_length, max_num_tokens, rng,
                      examples, report)
            chunk, chunk_length = [], 0
            continue
        chunk.append(document[i])
        chunk_length += len(document[i])
        i += 1
        if i == len(document) or chunk_length >= target_length:
            i = _emit(chunk, i, index, documents, target_length, max_num_tokens, rng,
                      examples, report)
            chunk, chunk_length = [], 0
    return examples


def _emit(chunk, next_index, index, documents, target_length, max_num_tokens, rng, examples,
          report):
    """Append the example of ``chunk`` to ``examples``; return the index of the document's
    next sentence to read (earlier than ``next_index`` when a random B leaves some of the
    chunk unused)."""
    # The first a_end sentences of the chunk go to segment A
    a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
    tokens_a = [token for sentence in chunk[:a_end] for token in sentence]
    lost = 0
    if len(chunk) == 1 or rng.random() < 0.5:
        is_next = False
        tokens_b = _random_continuation(index, documents, target_length - len(tokens_a), rng)
        # The random B is cut first: it is another document's text, not lost
        del tokens_b[max(1, max_num_tokens - len(tokens_a)):]
        lost = truncate_pair(tokens_a, tokens_b, max_num_tokens, rng)
        # The chunk's unused sentences are read again for the next example
        next_index -= len(chunk) - a_end
    else:
        is_next = True
        tokens_b = [token for sentence in chunk[a_end:] for token in sentence]
        lost = truncate_pair(tokens_a, tokens_b, max_num_tokens, rng)
    examples.append((tokens_a, tokens_b, is_next))
    if report is not None:
        report.examples += 1
        report.packed_tokens += len(tokens_a) + (len(tokens_b) if is_next else 0) + lost
        report.is_next += is_next
        report.truncated_tokens += lost
    return next_index


def _random_continuation(index, documents, target_length, rng):
    """Tokens from a random point of another document (BERT tries ten times to avoid this
    one), at least ``target_length`` of them when the document has that many."""
    other = index
    for _ in range(10):
        other = rng.randint(0, len(documents) - 1)
        if other != index:
            break
    document = documents[other]
    tokens = []
    for sentence in document[rng.randint(0, len(document) - 1):]:
        tokens.extend(sentence)
        if len(tokens) >= target_length:
            break
    return tokens
