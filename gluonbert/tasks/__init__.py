"""Fine-tuning tasks by name: each reads files, encodes them for a head, trains through the
engine's objective, and turns outputs into predictions and metrics (see ``base.py``).

``get_task('classification')`` returns a fresh task (``get_task('question-answering',
doc_stride=128)`` one with settings); ``TASKS`` maps each name to its class.
Tasks with options (the columns of ``snli`` and ``sick``, ...) are presets: subclasses with
their values set. ``SERVED`` names the others, the tasks with a head of their own: an export
names its head's task among them, and serving reads and prints as they say (a preset as the
task it presets).

A new task head is a ``Task`` subclass in a module of its own (``base.py`` lists what it
implements, ``exported_head`` and the serving methods included) and a line in ``TASKS``.
"""
import inspect

from .base import ExportedHead, Features, Task, TaskDataError
from .classification import ClassificationTask
from .multiple_choice import MultipleChoice
from .presets import SICKTask, SNLITask
from .question_answering import QuestionAnswering
from .regression import RegressionTask
from .token_classification import TokenClassificationTask

TASKS = {task.name: task for task in (ClassificationTask, RegressionTask,
                                      TokenClassificationTask, SNLITask, SICKTask,
                                      QuestionAnswering, MultipleChoice)}
SERVED = tuple(name for name, task in TASKS.items()
               if not any(task is not other and issubclass(task, other)
                          for other in TASKS.values()))


def get_task(name, **settings):
    """A new instance of the task called ``name`` with ``settings`` (``Task.settings()``);
    ValueError naming the known tasks, or a setting the task does not take."""
    task_class = TASKS.get(name)
    if task_class is None:
        raise ValueError(f'task={name!r}; expected one of {", ".join(sorted(TASKS))}')
    known = set(inspect.signature(task_class).parameters)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f'task {name!r} has no setting {", ".join(unknown)}; expected '
                         + (f'some of {", ".join(sorted(known))}' if known else 'none'))
    return task_class(**settings)


def rebuilt_task(name, settings, max_len):
    """The task ``name`` as saved with a model: built with ``settings`` (a dict; None, as in
    folders saved before tasks had settings, gives the defaults) and fitted to the model's
    ``max_len``; ValueError saying which value is wrong."""
    settings = {} if settings is None else settings
    if not isinstance(settings, dict):
        raise ValueError(f'task settings {settings!r}; expected an object of setting names '
                         f'and values')
    task = get_task(name, **settings)
    task.fit_to(max_len)
    return task


__all__ = ['ExportedHead', 'Features', 'SERVED', 'TASKS', 'Task', 'TaskDataError', 'get_task',
           'rebuilt_task']
