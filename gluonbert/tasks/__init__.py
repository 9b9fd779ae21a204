"""Fine-tuning tasks by name: each reads files, encodes them for a head, trains through the
engine's objective, and turns outputs into predictions and metrics (see ``base.py``).

``get_task('classification')`` returns a fresh task; ``TASKS`` maps each name to its class.
Tasks with options (the columns of ``snli`` and ``sick``, ...) are presets: subclasses with
their values set.
"""
from .base import Features, Task, TaskDataError
from .classification import ClassificationTask
from .multiple_choice import MultipleChoice
from .presets import SICKTask, SNLITask
from .question_answering import QuestionAnswering
from .regression import RegressionTask
from .token_classification import TokenClassificationTask

TASKS = {task.name: task for task in (ClassificationTask, RegressionTask,
                                      TokenClassificationTask, SNLITask, SICKTask,
                                      QuestionAnswering, MultipleChoice)}


def get_task(name):
    """A new instance of the task called ``name``; ValueError naming the known ones."""
    task_class = TASKS.get(name)
    if task_class is None:
        raise ValueError(f'task={name!r}; expected one of {", ".join(sorted(TASKS))}')
    return task_class()


__all__ = ['Features', 'TASKS', 'Task', 'TaskDataError', 'get_task']
