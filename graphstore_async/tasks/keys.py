"""Every Redis key of the task store and how long each lives — one place, as arq's own `constants.py` is for its
keys. Nothing outside `tasks/` names a key.

    {prefix}:task:{id}               hash: the task (record, operation, terms, state, result)
    {prefix}:task:{id}:deliveries    list: its delivery attempts
    {prefix}:task:{id}:heartbeat     string with a time to live: its worker is alive
    {prefix}:gone:{id}               string: the account of a task whose record has expired (410, not 404)
    {prefix}:running                 sorted set: running tasks, by start
    {prefix}:tasks, {prefix}:tasks:{account}   sorted sets: every task, an account's tasks, by creation
    {prefix}:idem:{scope}:{key}      string: a client's Request-ID and the task it names (tasks/idempotency.py)
    {prefix}:queue, {prefix}:deliveries        arq's queues (sorted sets of job ids); arq's job keys beside them
    {prefix}:claims                  hash: delivery attempts in flight, by the worker sending them
    {prefix}:workers                 sorted set: live workers (tasks/liveness.py)
"""

from __future__ import annotations

from dataclasses import dataclass

from graphstore_async.settings import Settings

TOMBSTONE_S = 30 * 24 * 3600  # how long after its retention an expired task still answers 410, not 404
IN_PROGRESS_EXTRA_S = 10  # arq marks a job in progress for its timeout + 10 s (Worker.in_progress_timeout_s)
HEARTBEATS_MISSED = 5  # a running task whose heartbeat is this many beats late has lost its worker


@dataclass(frozen=True)
class Keys:
    prefix: str

    def task(self, task_id: str) -> str:
        return f"{self.prefix}:task:{task_id}"

    def deliveries(self, task_id: str) -> str:
        return f"{self.prefix}:task:{task_id}:deliveries"

    def heartbeat(self, task_id: str) -> str:
        return f"{self.prefix}:task:{task_id}:heartbeat"

    def tombstone(self, task_id: str) -> str:
        return f"{self.prefix}:gone:{task_id}"

    def account_index(self, account: str) -> str:
        return f"{self.prefix}:tasks:{account}"

    def idempotency(self, scope: str, request_id: str) -> str:
        return f"{self.prefix}:idem:{scope}:{request_id}"

    @property
    def running(self) -> str:
        return f"{self.prefix}:running"

    @property
    def all_tasks(self) -> str:
        return f"{self.prefix}:tasks"

    @property
    def queue(self) -> str:
        return f"{self.prefix}:queue"

    @property
    def delivery_queue(self) -> str:
        return f"{self.prefix}:deliveries"

    @property
    def claims(self) -> str:
        return f"{self.prefix}:claims"

    @property
    def workers(self) -> str:
        return f"{self.prefix}:workers"


@dataclass(frozen=True)
class Lifetimes:
    """How long each kind of key lives, from the settings."""

    retention_s: int  # a task's record after it ended
    record_s: int  # a task's record from its acceptance: retention plus the longest a job may run
    tombstone_s: int  # the tombstone after the task ended
    job_ms: int  # an arq job's key
    heartbeat_ms: int  # a running task's heartbeat, between beats
    deliveries_s: int  # the list of delivery attempts (a delivery may outlast the task's end a little)
    task_in_progress_ms: int  # arq's in-progress mark of a task job
    delivery_in_progress_ms: int  # … of a delivery job

    @classmethod
    def from_settings(cls, settings: Settings) -> Lifetimes:
        retention = max(1, int(settings.task_retention_s))
        return cls(
            retention_s=retention,
            record_s=retention + int(settings.job_timeout_s),
            tombstone_s=retention + TOMBSTONE_S,
            job_ms=int((settings.task_retention_s + settings.job_timeout_s) * 1000),
            heartbeat_ms=int(settings.heartbeat_s * HEARTBEATS_MISSED * 1000),
            deliveries_s=retention + 3600,
            task_in_progress_ms=int((settings.job_timeout_s + IN_PROGRESS_EXTRA_S) * 1000),
            delivery_in_progress_ms=int((delivery_timeout_s(settings) + IN_PROGRESS_EXTRA_S) * 1000),
        )


def delivery_timeout_s(settings: Settings) -> float:
    """The longest a delivery attempt's job may run: the attempt's own time-out and a margin."""
    return settings.notify_timeout_s + 30

