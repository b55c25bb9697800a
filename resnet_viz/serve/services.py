"""The per-process services every page shares: teacher config, run store, job queue, reaper.

One :class:`Services` per server process (the app keeps it in ``st.cache_resource``; it
holds no per-student model, only the shared queue and store). Built from the teacher's
configuration: the queue's concurrency and per-session limit, the run store in the config's
data directory, datasets read from there too. Nothing here imports streamlit.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from resnet_viz.serve.config import ClassroomConfig, load_config
from resnet_viz.train.estimate import SpeedCalibrator
from resnet_viz.serve.reaper import IsActive, SessionReaper
from resnet_viz.serve.queue import JobQueue
from resnet_viz.serve.memory import give_back_memory, limit_arenas, trace
from resnet_viz.serve.workers import ProcessPool
from resnet_viz.spec import ExperimentSpec
from resnet_viz.serve.store import RunStore, StoreError
from resnet_viz.train.trainer import Trainer, trainer_for, warm_up

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything shared by the sessions of one app process."""

    config: ClassroomConfig
    queue: JobQueue
    store: RunStore | None
    reaper: SessionReaper
    speed: SpeedCalibrator = field(default_factory=SpeedCalibrator)
    notices: list[str] = field(default_factory=list)   # for the teacher: config and store problems
    closed: bool = False
    warmup: threading.Thread | None = None

    def shutdown(self) -> None:
        """Stop the reaper, then the queue (running jobs are stored as interrupted)."""
        if self.closed:
            return
        self.closed = True
        if self.warmup is not None:
            self.warmup.join(timeout=30)
        self.reaper.stop()
        self.queue.shutdown()
        if self.store is not None:
            self.store.close()


def _warm_up(pool: ProcessPool | None = None, also: Sequence[Callable[[], object]] = ()) -> None:
    """Pay torch's lazy imports (the first optimiser pulls in torch._dynamo, ~2 s), the
    digits load, the worker processes' start and the caller's own warm-ups (the UI passes
    plotly's lazy imports) before the first student presses Start, not during their first run."""
    hosts = threading.Thread(target=pool.warm, name="resnet-viz-host-warm") if pool else None
    if hosts is not None:
        hosts.start()
    warm_up()      # first: until the hosts are up, the first runs train in this process
    for warm in also:
        warm()
    if hosts is not None:
        hosts.join()


def trainer_factory(data_dir: str, processes: int = 0) -> Callable[[ExperimentSpec], Trainer]:
    """Trainers that read local datasets (MNIST, CIFAR-10) from the teacher's data folder;
    with ``processes``, built in that many worker processes (``serve.workers`` says why)."""
    if processes:
        return ProcessPool(processes, data_dir, local=lambda spec: trainer_for(spec, data_dir))
    return lambda spec: trainer_for(spec, data_dir)


def _quiet(queue: JobQueue, on_quiet: Sequence[Callable[[], object]]) -> None:
    """The class has left: drop what only sped up serving it (the pages' figure and data
    caches, the queue's memory copy of ended runs, which the store keeps) and give the
    memory back to the OS, so the server returns to its size before the class."""
    for clear in on_quiet:
        try:
            clear()
        except Exception:  # a cache that cannot be cleared must not stop the reaper
            log.exception("clearing a cache failed")
    queue.drop_ended()
    give_back_memory()
    try:
        trace.report()  # a developers' diagnostic, off unless RESNET_VIZ_MEMTRACE is set
    except Exception:
        log.exception("memory trace report failed")


def build_services(cfg: ClassroomConfig | None = None, notices: list[str] | None = None,
                   is_active: IsActive | None = None, timeout_s: float = 20.0,
                   on_quiet: Sequence[Callable[[], object]] = (),
                   warm: Sequence[Callable[[], object]] = ()) -> Services:
    """Open the store (recovering a damaged one), start the reaper; the queue starts its
    workers on the first submitted job.

    A store that cannot be opened at all (a read-only folder) leaves the app usable without
    persistence; the reason goes to ``notices``. ``on_quiet`` runs when the class has left,
    ``warm`` in the warm-up thread: the caller's caches and imports, which serving knows nothing of.
    """
    trace.start()
    limit_arenas()  # before the class's script threads allocate (serve.memory says why)
    if cfg is None:
        cfg, notices = load_config()
    notices = list(notices or [])
    store: RunStore | None
    try:
        store, problem = RunStore.open_or_recover(cfg.data_dir)
        if problem:
            notices.append(problem)
    except (StoreError, OSError) as err:
        store = None
        notices.append(f"runs cannot be saved: {err}")
    # Page-side work (input gradients, attributions, boundaries) runs in the sessions' script
    # threads next to the training workers: one intra-op thread, as the queue uses, since
    # oversubscribed OpenMP threads spin and slow everything ~20x.
    torch.set_num_threads(1)
    factory = trainer_factory(cfg.data_dir, cfg.max_concurrent_jobs if cfg.worker_processes else 0)
    queue = JobQueue(max_concurrent=cfg.max_concurrent_jobs, store=store,
                     max_jobs_per_session=cfg.max_jobs_per_session, trainer_factory=factory)
    reaper = SessionReaper(queue.release_session, is_active or (lambda _sid: None), timeout_s=timeout_s,
                           trim=lambda: _quiet(queue, on_quiet))
    # The warm-up's dataset load imports pandas (via sklearn); plotly's optional-import check
    # returns a half-initialised pandas from sys.modules to a page drawing its first figure at
    # the same moment (AttributeError: partially initialized module 'pandas'). Import it here.
    import pandas  # noqa: F401
    pool = factory if isinstance(factory, ProcessPool) else None
    warmup = threading.Thread(target=_warm_up, args=(pool, warm), name="resnet-viz-warmup", daemon=True)
    warmup.start()
    return Services(cfg, queue, store, reaper.start(), notices=notices, warmup=warmup)
