"""Data parallelism: one step over any list of contexts (``parallel``), the KVStore that sums
the gradients (``kvstore``), and several machines on MXNet's parameter server: the job's
``DMLC_*`` settings (``cluster``), each worker's slice of the global batches (``batches``),
bounded waits (``watchdog``), the launcher (``python -m gluonbert.distributed.launch``) and a
pretraining job to run under it (``python -m gluonbert.distributed.pretrain``)."""
from .batches import synthetic_pretraining_batch, worker_slice
from .cluster import Cluster, cluster_from_env
from .kvstore import KVSTORE_TYPES, check_contexts, create_kvstore
from .parallel import (ClassificationLoss, DataParallel, IdleDevicesWarning, PretrainingLoss,
                       StepReport)
from .watchdog import Watchdog
