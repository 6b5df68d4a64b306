"""The worker as a service: its arq workers (tasks and deliveries) kept running through Redis faults, the
reaper, and the liveness beat — in the server process (`running_worker`) or alone (`serve_worker`).

arq's Worker stops for good on a connection error (its poll loop raises, and a Worker that failed half-way
through picking a job has its job counter off by one), so each is run under `_keep_running`: when it fails, a
new Worker is made and started after a back-off (0.2 s doubling to 5 s), while the jobs the old one had
started run on. The reaper and the liveness beat catch Redis errors each round. A task's end is written
persistently (worker.persistently), so a task that ran while Redis was away is recorded when it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable

from arq.worker import Worker
from redis.asyncio import Redis

from graphstore_async.auth import AccessControl
from graphstore_async.fetching import Fetcher
from graphstore_async.repositories import Repositories
from graphstore_async.settings import Settings
from graphstore_async.store.embedded import EmbeddedStore
from graphstore_async.store.limits import StorePools
from graphstore_async.tasks.delivery import Deliverer
from graphstore_async.tasks.dispatch import Dispatcher
from graphstore_async.tasks.keys import HEARTBEATS_MISSED
from graphstore_async.tasks.liveness import Workers
from graphstore_async.tasks.queue import Queue, create_delivery_worker, create_worker, stop_worker
from graphstore_async.tasks.records import Lost, Tasks
from graphstore_async.tasks.spool import Spool
from graphstore_async.tasks.worker import REDIS_FAULTS, RETRY_FIRST_S, RETRY_MAX_S, Runtime, deliver, run_task

log = logging.getLogger(__name__)
SWEEP_EVERY_S = 600.0


class _KeptRunning:
    """An arq Worker started again (a new one) whenever it fails; every Worker made is stopped at the end."""

    def __init__(self, make: Callable[[], Worker], name: str) -> None:
        self._make = make
        self._name = name
        self.made: list[Worker] = []
        self._stopping = False

    async def run(self) -> None:
        delay = RETRY_FIRST_S
        while not self._stopping:
            worker = self._make()
            self.made.append(worker)
            started = time.monotonic()
            try:
                await worker.async_run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away (ConnectionError, TimeoutError, …): start a new one later
                if self._stopping:
                    return  # closing the worker ends its poll loop with an error: that is the stop, not a fault
                if time.monotonic() - started > 30:
                    delay = RETRY_FIRST_S  # it had been running well: start over with a short wait
                log.warning("the %s worker stopped (%s: %s); starting again in %.1f s", self._name,
                            type(exc).__name__, exc, delay)
            worker.allow_pick_jobs = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    async def stop(self, grace_s: float) -> None:
        self._stopping = True  # before closing: a closed worker must not be replaced by a new one
        for worker in self.made:
            with contextlib.suppress(*REDIS_FAULTS):
                await stop_worker(worker, grace_s)


async def reap(runtime: Runtime, workers: Workers) -> None:
    """Forever: hand the tasks of dead workers back to the queue — running ones whose heartbeat lapsed, and
    pending ones whose arq job a dead worker had picked but not started — and sweep old spool directories."""
    settings = runtime.settings
    lapse_s = settings.heartbeat_s * HEARTBEATS_MISSED
    swept = 0.0
    while True:
        if time.monotonic() - swept > SWEEP_EVERY_S:
            swept = time.monotonic()
            await asyncio.to_thread(runtime.spool.sweep, settings.task_retention_s)
        try:
            for task_id in await runtime.tasks.stale_running():
                if runtime.runs(task_id):
                    continue  # ours and still running: a late heartbeat, not a dead worker
                lost = await runtime.tasks.back_to_pending(task_id)
                if lost is Lost.REQUEUED:
                    log.warning("task %s lost its worker; it is taken up again", task_id)
                    runtime.metrics.task_event(task_id, "pending", kind=None, reason="its worker was lost")
                elif lost is Lost.FAILED:
                    log.error("task %s lost its worker %d times; it fails", task_id, settings.task_max_crashes)
                    runtime.metrics.task_event(task_id, "failed", kind=None, reason="its worker died too often")
                if lost is not Lost.NOTHING:  # taken up again: to run, or only to schedule its notification
                    await runtime.queue.release(task_id)
            for job_id in await runtime.queue.stale_deliveries(await workers.alive_ids(), lapse_s):
                log.warning("delivery %s was in flight at a worker that died; it is tried again", job_id)
                await runtime.queue.release_delivery(job_id)
            for job_id in await runtime.queue.stale_claims(lapse_s):
                if not runtime.runs(job_id) and await runtime.tasks.unstarted(job_id):
                    log.warning("task %s was picked by a worker that died before starting it; taken up again",
                                job_id)
                    await runtime.queue.release(job_id)
        except REDIS_FAULTS as exc:  # Redis away for a moment: try again next round
            log.warning("reaping stale tasks failed: %s", exc)
            runtime.metrics.count_redis_error(exc)
        await asyncio.sleep(settings.heartbeat_s * 2)


async def _beat(workers: Workers, every_s: float) -> None:
    while True:
        try:
            await workers.beat()
        except REDIS_FAULTS as exc:
            log.warning("worker heartbeat failed: %s", exc)
        await asyncio.sleep(every_s)


@contextlib.asynccontextmanager
async def running_worker(runtime: Runtime, workers: Workers) -> AsyncIterator[None]:
    """The task and delivery workers, the reaper and the liveness beat, for as long as the context lasts; on exit
    they stop taking jobs, running jobs get `shutdown_grace_s`, and what is left is requeued."""
    settings = runtime.settings
    runtime.dispatcher.worker_id = workers.id
    ctx = {"runtime": runtime}
    kept = [_KeptRunning(lambda: create_worker(settings, run_task, ctx, settings.redis_url), "task"),
            _KeptRunning(lambda: create_delivery_worker(settings, deliver, ctx, settings.redis_url), "delivery")]
    running = [asyncio.create_task(k.run()) for k in kept]
    helpers = [asyncio.create_task(reap(runtime, workers)), asyncio.create_task(_beat(workers, settings.heartbeat_s))]
    try:
        yield
    finally:
        for helper in helpers:
            helper.cancel()
        await asyncio.gather(*(k.stop(settings.shutdown_grace_s) for k in kept),
                             runtime.dispatcher.stop(settings.shutdown_grace_s))
        for task in running:
            task.cancel()
        await asyncio.gather(*running, *helpers, return_exceptions=True)
        with contextlib.suppress(*REDIS_FAULTS):
            await workers.leave()


def runtime_of(settings: Settings, redis: Redis, repositories: Repositories, access: AccessControl,
               deliverer: Deliverer, fetcher: Fetcher) -> Runtime:
    tasks, queue, spool = Tasks(redis, settings), Queue(redis, settings), Spool(settings)
    return Runtime(settings, tasks, queue, spool, repositories, access,
                   Dispatcher(settings, tasks, queue, spool, deliverer), fetcher)


async def serve_worker(settings: Settings, access: AccessControl) -> None:
    """A worker process: runs tasks until SIGTERM or SIGINT, then stops as `running_worker` does."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    redis = Redis.from_url(settings.redis_url)
    with StorePools.create(settings) as pools:
        repositories = Repositories(settings.repositories_dir, EmbeddedStore.opener(pools, settings))
        deliverer = Deliverer(settings)
        fetcher = Fetcher.from_settings(settings)
        runtime = runtime_of(settings, redis, repositories, access, deliverer, fetcher)
        try:
            async with running_worker(runtime, Workers(redis, settings)):
                log.info("worker running on %s (queue %s)", settings.redis_url, runtime.queue.name)
                await stop.wait()
        finally:
            await deliverer.close()
            await fetcher.close()
            await repositories.close()
            await redis.aclose()
