"""Checks of lesson 09, training on many devices: one question per ``question(...)``.

Reference oracles: PyTorch itself where it has the answer (``DistributedSampler`` with
``set_epoch``, ``nn.BatchNorm1d``/``BatchNorm2d`` on the concatenated batch, training on
the global batch in one process with PyTorch's optimizers, FSDP's own sharding of a
flat parameter), and the definitions otherwise, written here: the linear scaling rule
with warmup (Goyal et al. 2017), the memory of a training step with Adam per ZeRO stage
(Rajbhandari et al. 2020), DDP's buckets and the ring all-reduce's time. None of them
uses the lesson's library (``course_utils.lessons.distributed``): the tests check that
the oracles agree with it.

The workers of a data-parallel run are simulated in one process (a list of replicas, a
call per rank, an ``all_reduce`` function given to the answer, files written as each
rank's GPU would have written them), so that every case runs in a fraction of a second,
with no process group.

Each question has core cases (the values against the oracle on several inputs: only they
earn credit), property cases and mistake cases. A mistake case recognises one typical
mistake by what it computes and names it in its message and hint; a wrong answer that is
not that mistake fails the case plainly (a basic failure: no hint that blames the wrong
thing).

One module per question; importing them in this order registers the questions in the
order of the exercise notebook.
"""
from . import scaled_lr  # noqa: F401
from . import epoch_indices  # noqa: F401
from . import min_workers  # noqa: F401
from . import save_shards  # noqa: F401
from . import load_resharded  # noqa: F401
from . import sync_batchnorm_stats  # noqa: F401
from . import ddp_step_time  # noqa: F401
from . import data_parallel_step  # noqa: F401
from ._common import NOT_JUDGED  # noqa: F401,E402
from .data_parallel_step import AllReduce  # noqa: F401,E402
from .ddp_step_time import buckets  # noqa: F401,E402
