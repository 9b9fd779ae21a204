"""Several machines on MXNet's parameter server: what is truly about processes.

The job's ``DMLC_*`` settings (``cluster``), the KVStore that sums gradients across
contexts and workers, created and checked up front (``kvstore``), bounded waits
(``watchdog``) and the launcher (``python -m gluonbert.distributed.launch``). The training
step itself, data parallel over any contexts and workers, is the training engine's
(``gluonbert.train.engine``); ``gluonbert pretrain`` runs under the launcher as one worker.
"""
from .cluster import Cluster, cluster_from_env
from .kvstore import KVSTORE_TYPES, create_kvstore
from .watchdog import Watchdog
