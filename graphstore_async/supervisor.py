"""`graphstore-async serve` supervises its server: the server runs in a child process, started again if it dies.

The engine is native code, and a crash in it (a segfault, an abort) ends the process it runs in, not a request.
So `serve` is a small parent process that starts the server as a child (the same command line with
`--no-supervise`, in the same environment: the same settings) and waits for it to end. Then `restarts` decides:

* death by a signal (SIGSEGV, SIGABRT, SIGBUS, SIGKILL from the OOM killer, ...) other than SIGTERM and SIGINT,
  or an exit status other than 0 and 2: the server crashed. It is started again after a delay that doubles from
  `restart_backoff_s` up to `restart_backoff_max_s`, and starts again from the first once a server has run
  `restart_healthy_s`. Tasks it was running are taken up by the new server's reaper when their heartbeat lapses
  (and a task that killed `task_max_crashes` servers fails instead of running again).
* exit status 0 (it stopped cleanly, say on a SIGTERM sent to it), exit status 2 (a configuration or usage
  error, such as a refused address or a port in use: it would fail again the same way) and death by SIGTERM or
  SIGINT (told to stop): not started again. The supervisor exits with the server's status.
* SIGTERM and SIGINT sent to the supervisor are passed on to the server, which is not started again however it
  ends; the supervisor exits with its status (128 + N for death by signal N). If the server has not ended
  `stop_deadline_s` after that, it is killed (the server bounds its own exit well before: cli.py).

The server dies with its supervisor (Linux's PR_SET_PDEATHSIG): kill -9 of the supervisor is kill -9 of the
server, as it was of the one process before, so that no server is left holding the port and the store.

The server's own exit is bounded too (`exit_after`, `exit_unless_threads_busy`, used by cli.py): a query the
engine cannot interrupt keeps its store thread busy for as long as it runs, and the interpreter joins such
threads at exit; so once the server has stopped (tasks requeued, stores closed) it leaves without them, and
past shutdown_grace_s + STOP_MARGIN_S it leaves whatever it is still waiting for.

This module imports neither aiohttp nor the engine; the loop runs in the main thread and sleeps in `wait()`.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import NoReturn

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# A stopping server exits this long after shutdown_grace_s whatever it is still waiting for; its supervisor
# kills it KILL_MARGIN_S later still (a process too wedged to run its own deadline).
STOP_MARGIN_S = 8.0
KILL_MARGIN_S = 5.0
BUSY_THREADS_WAIT_S = 1.0
_PR_SET_PDEATHSIG = 1
_PAUSE_STEP_S = 0.1  # a back-off pause notices a stop signal this soon


def restarts(returncode: int) -> bool:
    """Whether a server that ended with `returncode` (negative: killed by that signal) crashed, and so is started
    again: death by any signal but SIGTERM and SIGINT, or an exit status other than 0 and 2."""
    if returncode < 0:
        return -returncode not in STOP_SIGNALS
    return returncode not in (0, 2)


def restart_delay_s(crashes: int, first_s: float, max_s: float) -> float:
    """The pause before starting a server again after `crashes` crashes in a row (1 for the first)."""
    return float(min(max_s, first_s * 2 ** min(max(crashes - 1, 0), 64)))


def exit_status(returncode: int) -> int:
    """The supervisor's exit status for a server that ended with `returncode`: its own, or 128 + N for death by
    signal N (as a shell reports it)."""
    return 128 - returncode if returncode < 0 else returncode


def describe(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with status {returncode}"


@dataclass(frozen=True, kw_only=True)
class Policy:
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    healthy_s: float = 60.0  # a server that ran this long was healthy: the next back-off starts from the first
    stop_deadline_s: float = 30.0  # after a stop signal is passed on, the server is killed if it is still there


class Supervisor:
    """Runs `command` as the server, again and again while it crashes; `run()` returns the exit status."""

    def __init__(self, command: Sequence[str], policy: Policy) -> None:
        self._command = list(command)
        self._policy = policy
        self._child: subprocess.Popen[bytes] | None = None
        self._stop: signal.Signals | None = None  # the stop signal received, passed on to each child once
        self._told: subprocess.Popen[bytes] | None = None  # the child it was passed on to

    def run(self) -> int:
        previous = {signum: signal.signal(signum, self._on_stop_signal) for signum in STOP_SIGNALS}
        previous_alarm = signal.signal(signal.SIGALRM, self._on_deadline)
        try:
            return self._supervise()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous_alarm)
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _supervise(self) -> int:
        crashes = 0
        while True:
            started = time.monotonic()
            child = subprocess.Popen(self._command, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent(os.getpid()))
            self._child = child
            log.info("server process %d started", child.pid)
            self._pass_stop_on()  # a stop signal that came while it was being started
            returncode = child.wait()
            self._child = None
            ran_s = time.monotonic() - started
            signal.setitimer(signal.ITIMER_REAL, 0)
            if self._stop is not None:
                log.info("server process %d %s after the supervisor's %s; not started again", child.pid,
                         describe(returncode), self._stop.name)
                return exit_status(returncode)
            if not restarts(returncode):
                why = "a configuration or usage error" if returncode == 2 else "it was stopped"
                log.log(logging.INFO if returncode == 0 else logging.ERROR, "server process %d %s (%s); not "
                        "started again", child.pid, describe(returncode), why)
                return exit_status(returncode)
            crashes = 1 if ran_s >= self._policy.healthy_s else crashes + 1
            delay_s = restart_delay_s(crashes, self._policy.backoff_s, self._policy.backoff_max_s)
            log.error("server process %d %s after %.1f s (crash %d in a row); starting it again in %.1f s",
                      child.pid, describe(returncode), ran_s, crashes, delay_s)
            if not self._pause(delay_s):
                log.info("stopping on %s (no server process running)", self._stop.name if self._stop else "?")
                return 0

    def _pause(self, delay_s: float) -> bool:
        """Sleep `delay_s`; False as soon as a stop signal has come."""
        deadline = time.monotonic() + delay_s
        while self._stop is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            time.sleep(min(left, _PAUSE_STEP_S))
        return False

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stop is None:
            self._stop = signal.Signals(signum)
            log.info("%s received: stopping the server", self._stop.name)
        self._pass_stop_on()

    def _pass_stop_on(self) -> None:
        """Send the stop signal to the running child, once (a second SIGTERM would not stop it sooner)."""
        child = self._child
        if self._stop is None or child is None or self._told is child:
            return
        self._told = child
        try:
            child.send_signal(self._stop)
        except ProcessLookupError:  # it has just died: wait() tells how
            return
        signal.setitimer(signal.ITIMER_REAL, self._policy.stop_deadline_s)

    def _on_deadline(self, signum: int, frame: FrameType | None) -> None:
        child = self._child
        if child is not None and child.poll() is None:
            log.error("server process %d did not stop within %.0f s of %s; killing it", child.pid,
                      self._policy.stop_deadline_s, self._stop.name if self._stop else "the stop signal")
            child.kill()


def _die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """Run in the child between fork and exec: ask the kernel for SIGKILL when the supervisor dies (Linux)."""
    if threading.active_count() > 1:  # a fork with threads must not run Python code (not the case in `serve`)
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # libc's, through the interpreter's own symbols
    except (OSError, AttributeError):  # not Linux
        return None

    def set_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:  # the supervisor died before the request took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return set_death_signal


def exit_after(seconds: float) -> threading.Timer:
    """The bound on a stopping server: `seconds` from now the process ends (status 1), whatever it waits for."""
    def give_up() -> None:
        log.error("the server did not stop within %.1f s; exiting without waiting any longer "
                  "(running tasks are taken up again by the next server's reaper)", seconds)
        _exit(1)

    timer = threading.Timer(seconds, give_up)
    timer.daemon = True
    timer.start()
    return timer


def exit_unless_threads_busy(code: int) -> int:
    """`code` once the other threads have ended; if some are still busy after BUSY_THREADS_WAIT_S (store
    threads running queries that the engine cannot interrupt), the process ends now with `code`: the
    interpreter would wait for them at exit (concurrent.futures joins its threads), maybe for hours."""
    deadline = time.monotonic() + BUSY_THREADS_WAIT_S
    for thread in _others():
        thread.join(max(0.0, deadline - time.monotonic()))
    busy = [thread.name for thread in _others() if thread.is_alive()]
    if not busy:
        return code
    log.warning("exiting with %d threads still busy (%s): queries that the engine cannot interrupt; nothing "
                "waits for their results", len(busy), ", ".join(sorted(busy)))
    _exit(code)


def _others() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]


def _exit(code: int) -> NoReturn:
    logging.shutdown()  # flush the handlers: os._exit does not
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
