"""Question answering and multiple choice served from ONNX with the tasks' own MXNet-free
pre- and post-processing give MXNet's answers: same windows, same span search, same picks."""
import os
import subprocess
import sys

import numpy as np
import pytest
from mxnet import init
from task_training import tiny_task_head

from gluonbert.data.tokenization import WhitespaceTokenizer
from gluonbert.data.vocab import Vocab
from gluonbert.tasks import TaskDataError, get_task
from gluonbert.tasks.choices import served_example as served_choice
from gluonbert.tasks.qa_windows import served_example as served_question

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONTEXT = ('the old mill stood by the river for two hundred years . in 1890 a flood took the '
           'mill , and the village built a bridge where it had stood .')
LINES = [f'what took the mill ?\t{CONTEXT}', f'what did the village build ?\t{CONTEXT}',
         'who stood ?\tthe mill stood .']
CHOICE_LINES = ['the river rose .\twhat then ?\ta flood came .\tthe mill sang .',
                'a bridge was built .\t\tpeople crossed .\tthe river burned .']


def served(task, head, vocab, examples, max_len, folder):
    """``(mxnet predictions, onnxruntime predictions)`` of ``examples``."""
    import mxnet as mx
    from gluonbert.export import export_onnx, inference_session
    tokenizer = WhitespaceTokenizer()
    features = task.encode(examples, tokenizer, vocab, max_len, None)
    mxnet_predictions = task.postprocess(task.predict(head, features, [mx.cpu()]), features,
                                         examples)
    export_onnx(head, folder, vocab, None, max_len, tokenizer=tokenizer)
    session = inference_session(str(folder / 'model.onnx'))
    outputs = session.run(None, {name: array.astype(np.int64) for name, array in
                                 zip(('tokens', 'segments', 'valid_lens'), features.inputs)})
    outputs = tuple(outputs) if len(outputs) > 1 else outputs[0]
    return mxnet_predictions, task.postprocess(outputs, features, examples)


def test_question_answering_serves_lines_over_windows_as_mxnet_answers(tmp_path):
    task = get_task('question-answering')
    task.doc_stride = 4  # windows of 32 - 3 - 6 = 23 tokens: the long context takes several
    examples = [served_question(line.split('\t'), f'stdin, line {n}')
                for n, line in enumerate(LINES, 1)]
    vocab = Vocab(' '.join(LINES).split(), reserved_tokens=['<pad>', '<cls>', '<sep>'])
    head = tiny_task_head(task, vocab, 32, hidden=16, blocks=1, initializer=init.Normal(0.5),
                          seed=1)
    features = task.encode(examples, WhitespaceTokenizer(), vocab, 32, None)
    assert np.bincount(features.example_index).tolist()[0] > 2
    mxnet_answers, onnx_answers = served(task, head, vocab, examples, 32, tmp_path / 'qa')
    assert onnx_answers == mxnet_answers
    assert all(answer and answer in example.context
               for answer, example in zip(onnx_answers, examples))


def test_multiple_choice_serves_lines_as_mxnet_picks(tmp_path):
    task = get_task('multiple-choice')
    examples = [served_choice(line.split('\t'), f'line {n}')
                for n, line in enumerate(CHOICE_LINES, 1)]
    assert examples[1].question == '' and len(examples[0].endings) == 2
    vocab = Vocab(' '.join(CHOICE_LINES).split(), reserved_tokens=['<pad>', '<cls>', '<sep>'])
    head = tiny_task_head(task, vocab, 16, hidden=16, blocks=1, initializer=init.Normal(0.5),
                          seed=1)
    mxnet_picks, onnx_picks = served(task, head, vocab, examples, 16, tmp_path / 'mc')
    assert onnx_picks == mxnet_picks and set(onnx_picks) <= {0, 1}


@pytest.mark.parametrize('read, line, message', [
    (served_question, 'no context here', r'line 1: expected question<TAB>context'),
    (served_question, 'q\t', r'both non-empty'),
    (served_choice, 'context\tquestion\tonly one ending', r'at least two endings'),
])
def test_served_lines_of_the_wrong_shape_are_one_clear_error(read, line, message):
    with pytest.raises(TaskDataError, match=message):
        read(line.split('\t'), 'stdin, line 1')


def test_pre_and_post_processing_import_and_run_without_mxnet():
    code = ('import sys\n'
            'from gluonbert.data.tokenization import WhitespaceTokenizer\n'
            'from gluonbert.data.vocab import Vocab\n'
            'from gluonbert.tasks import get_task\n'
            'from gluonbert.tasks import choices, qa_answers, qa_windows, squad_metric\n'
            'task = get_task("question-answering")\n'
            'example = qa_windows.served_example(["who ?", "the mill stood ."], "line 1")\n'
            'vocab = Vocab("who ? the mill stood .".split(), reserved_tokens=["<pad>", '
            '"<cls>", "<sep>"])\n'
            'features = task.encode([example], WhitespaceTokenizer(), vocab, 16, None)\n'
            'mill = 1.0 * (features.tokens == vocab["mill"])\n'
            'print(task.postprocess((mill, mill), features, [example]))\n'
            'assert "mxnet" not in sys.modules, "mxnet was imported"\n')
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['mill']"
