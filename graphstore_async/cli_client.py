"""The client commands of `graphstore-async` (task list|status|wait|cancel, load): they talk to a running
server over HTTP through graphstore_async.client, with a progress bar for long waits. cli.py hands them the
server's URL and token (it alone reads the environment)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from graphstore_async import formats
from graphstore_async.client import (
    DATASET,
    AsyncOperation,
    Client,
    ClientError,
    HTTPError,
    OperationFailed,
    OperationTimeout,
    TaskStatus,
    target_of,
)

EPILOG = """\
client commands (task, load) talk to a running server: GSA_URL (default http://127.0.0.1:8080) and, when the
server needs credentials, GSA_TOKEN (a bearer token).

exit codes of the client commands:
  0  success
  1  the task failed or was cancelled
  2  usage error, or the server answered an HTTP error (or did not answer)
  3  time-out: --timeout passed before the task finished (it goes on; `task wait ID` again)
"""

DEFAULT_URL = "http://127.0.0.1:8080"
EXIT_OK, EXIT_FAILED, EXIT_ERROR, EXIT_TIMEOUT = 0, 1, 2, 3
Action = Callable[[Client, argparse.Namespace], Awaitable[int]]


def add_parsers(commands: argparse._SubParsersAction, *, url: str | None, token: str | None,  # type: ignore[type-arg]
                ) -> None:
    """The client commands; `url` and `token` are GSA_URL and GSA_TOKEN, as cli.py read them."""
    client = argparse.ArgumentParser(add_help=False)
    client.set_defaults(env_url=url, token=token)
    client.add_argument("--url", help=f"the server's base URL (GSA_URL, default {DEFAULT_URL})")

    def add(subparsers: argparse._SubParsersAction, name: str, help: str, action: Action,  # type: ignore[type-arg]
            ) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = subparsers.add_parser(
            name, help=help, description=textwrap.fill(help, 100), parents=[client], epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.set_defaults(run=lambda args, settings: _run_client(args, action))
        return parser

    task = commands.add_parser("task", help="asynchronous tasks on a running server: list, status, wait, cancel",
                               epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    task_commands = task.add_subparsers(dest="task_command", required=True)
    listing = add(task_commands, "list", "list your tasks (every task, for an administrator), newest first",
                  _task_list)
    listing.add_argument("--status", choices=[s.value for s in TaskStatus], help="only tasks in this status")
    listing.add_argument("--repository", metavar="ACCOUNT/REPO", help="only tasks on this repository")
    listing.add_argument("--limit", type=int, help="at most this many tasks")
    status = add(task_commands, "status", "show a task's status, progress, outcome or error "
                 "(exit 1 when it failed or was cancelled)", _task_status)
    status.add_argument("id")
    status.add_argument("--json", action="store_true", help="print the status document as JSON")
    wait = add(task_commands, "wait", "wait for a task to finish, with a progress bar on stderr", _task_wait)
    wait.add_argument("id")
    _wait_options(wait)
    cancel = add(task_commands, "cancel", "cancel a task (a running one stops shortly)", _task_cancel)
    cancel.add_argument("id")

    load = add(commands, "load", "load an RDF file into a repository over HTTP: replaces the graph (PUT), or "
               "the whole dataset for a TriG or N-Quads file without --graph; the format comes from the file's "
               "extension and the file is streamed", _load)
    load.add_argument("file", type=Path)
    load.add_argument("--repo", required=True, metavar="ACCOUNT/REPO")
    load.add_argument("--graph", metavar="IRI", help="the graph to load into (default: the default graph)")
    load.add_argument("--async", dest="asynchronous", action="store_true",
                      help="run as a task (monitor mode) and wait for it with a progress bar")
    load.add_argument("--gzip", action="store_true", help="compress the upload")
    _wait_options(load)


def _wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, metavar="S", help="give up waiting after S seconds (exit 3)")
    parser.add_argument("--interval", type=float, default=1.0, metavar="S",
                        help="seconds between polls when the server does not say (Retry-After); default 1")


def _run_client(args: argparse.Namespace, action: Action) -> int:
    url = args.url or args.env_url or DEFAULT_URL
    token = args.token or None

    async def run() -> int:
        async with Client(url, token) as client:
            return await action(client, args)

    try:
        return asyncio.run(run())
    except OperationFailed as exc:
        print(f"graphstore-async: task failed: {_problem_text(exc.problem)}", file=sys.stderr)
        print(f"  (status: {exc.monitor_url}/status)", file=sys.stderr)
        return EXIT_FAILED
    except OperationTimeout as exc:
        task_id = exc.monitor_url.rpartition("/")[2] if exc.monitor_url else "?"
        print(f"graphstore-async: {exc}; it goes on (graphstore-async task wait {task_id})", file=sys.stderr)
        return EXIT_TIMEOUT
    except HTTPError as exc:
        print(f"graphstore-async: {exc.method} {exc.url}: {exc.status} {_problem_text(exc.problem)}",
              file=sys.stderr)
        return EXIT_ERROR
    except ClientError as exc:
        print(f"graphstore-async: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _problem_text(problem: dict[str, object]) -> str:
    text = str(problem.get("detail") or problem.get("title") or "no detail")
    if problem.get("line") is not None and f"line {problem['line']}" not in text:
        text += f" (line {problem['line']}, column {problem.get('column')})"
    return text


async def _task_list(client: Client, args: argparse.Namespace) -> int:
    tasks = await client.tasks(status=args.status, repository=args.repository, limit=args.limit)
    if not tasks:
        print("no tasks", file=sys.stderr)
        return EXIT_OK
    rows = [("ID", "STATUS", "CREATED", "REPOSITORY", "OPERATION", "STATEMENTS")]
    for doc in tasks:
        operation = doc.get("operation") or {}
        rows.append((doc["id"], doc["status"], str(doc.get("created") or ""), str(doc.get("repository") or ""),
                     f"{operation.get('method', '')} {operation.get('target', '')}".strip(),
                     str((doc.get("progress") or {}).get("statements") or 0)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
    return EXIT_OK


def _status_lines(doc: dict[str, object]) -> list[str]:
    operation = doc.get("operation") or {}
    progress = doc.get("progress") or {}
    assert isinstance(operation, dict) and isinstance(progress, dict)
    lines = [f"id:         {doc['id']}", f"status:     {doc['status']}",
             f"operation:  {operation.get('method')} {operation.get('target')} ({operation.get('kind')})",
             f"repository: {doc.get('repository')}"]
    lines += [f"{name + ':':<11} {doc[name]}" for name in ("created", "started", "ended") if doc.get(name)]
    queued = progress.get("queue_position")
    lines.append(f"progress:   {progress.get('statements') or 0} statements"
                 + (f", queued behind {queued} other tasks" if queued is not None else ""))
    outcome = doc.get("outcome")
    if isinstance(outcome, dict):
        text = f"outcome:    {outcome.get('status')}"
        if outcome.get("statements_added") is not None:
            text += f", {outcome['statements_added']} added, {outcome.get('statements_removed') or 0} removed"
        where = outcome.get("location") or outcome.get("graph")
        lines.append(text + (f", graph <{where}>" if where else ""))
    error = doc.get("error")
    if isinstance(error, dict):
        lines.append(f"error:      {error.get('title', 'error')}: {_problem_text(error)}")
    notification = doc.get("notification")
    if isinstance(notification, dict) and notification.get("location"):
        attempts = notification.get("attempts") or []
        lines.append(f"notify:     {notification['location']} ({notification.get('delivery') or 'pending'}, "
                     f"{len(attempts) if isinstance(attempts, list) else 0} attempts)")
    if doc.get("client_request_id"):
        lines.append(f"client id:  {doc['client_request_id']}")
    links = doc.get("links")
    if isinstance(links, dict):
        lines.append(f"monitor:    {links.get('monitor')}")
    return lines


def _exit_for(status: TaskStatus) -> int:
    return EXIT_FAILED if status in (TaskStatus.FAILED, TaskStatus.CANCELLED) else EXIT_OK


async def _task_status(client: Client, args: argparse.Namespace) -> int:
    operation = client.task(args.id)
    document = await operation.poll()
    print(json.dumps(document, indent=2) if args.json else "\n".join(_status_lines(document)))
    return _exit_for(operation.status)


class ProgressBar:
    """An indeterminate bar on stderr, redrawn in place with \\r: status, statements processed, elapsed time."""

    WIDTH = 24

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.frames = 0
        self.shown = 0

    def __call__(self, document: dict[str, object]) -> None:
        status = str(document.get("status"))
        progress = document.get("progress") if isinstance(document.get("progress"), dict) else {}
        assert isinstance(progress, dict)
        if status in ("completed", "failed", "cancelled"):
            bar = "#" * self.WIDTH
        else:
            span = self.WIDTH - 3
            offset = self.frames % (2 * span)
            offset = offset if offset <= span else 2 * span - offset
            bar = " " * offset + "<=>" + " " * (span - offset)
        self.frames += 1
        elapsed = int(time.monotonic() - self.started)
        line = (f"[{bar}] {status:<9} {int(progress.get('statements') or 0):>12,} statements  "
                f"{elapsed // 3600}:{elapsed // 60 % 60:02}:{elapsed % 60:02}")
        if progress.get("queue_position") is not None:
            line += f"  queued behind {progress['queue_position']}"
        sys.stderr.write("\r" + line.ljust(self.shown))
        sys.stderr.flush()
        self.shown = len(line)

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


async def _wait_with_bar(operation: AsyncOperation, args: argparse.Namespace) -> dict[str, object]:
    bar = ProgressBar()
    try:
        return await operation.wait(timeout=args.timeout, poll_interval=args.interval, progress=bar)
    finally:
        bar.close()


async def _task_wait(client: Client, args: argparse.Namespace) -> int:
    operation = client.task(args.id)
    document = await _wait_with_bar(operation, args)
    print(_summary(document))
    return _exit_for(operation.status)


def _summary(doc: dict[str, object]) -> str:
    """One line: how the task ended."""
    operation = doc.get("operation") if isinstance(doc.get("operation"), dict) else {}
    outcome = doc.get("outcome") if isinstance(doc.get("outcome"), dict) else {}
    assert isinstance(operation, dict) and isinstance(outcome, dict)
    text = f"{doc.get('status')}: {operation.get('method')} {operation.get('target')} in {doc.get('repository')}"
    if outcome.get("statements_added") is not None:
        text += f": {outcome['statements_added']} statements added, {outcome.get('statements_removed') or 0} removed"
    return text + f" (task {doc.get('id')})"


async def _task_cancel(client: Client, args: argparse.Namespace) -> int:
    status = await client.task(args.id).cancel()
    if status is TaskStatus.CANCELLED:
        print(f"cancelled task {args.id}")
    else:
        print(f"cancelling task {args.id}: it was running and stops shortly (graphstore-async task wait {args.id})")
    return EXIT_OK


async def _load(client: Client, args: argparse.Namespace) -> int:
    path: Path = args.file
    fmt = formats.by_extension(path.name.rpartition(".")[2].lower(), formats.RDF_FORMATS)
    if fmt is None:
        raise ValueError(f"cannot tell the RDF format of {path} from its extension")
    if not path.is_file():
        raise ValueError(f"{path} is not a file")
    graph = args.graph if args.graph is not None else (DATASET if fmt.is_dataset else None)
    target = target_of(graph).describe()
    into = f"{args.repo} ({target})"
    if not args.asynchronous:
        response = await client.put_graph(args.repo, path, graph, content_type=fmt.media_type, gzip=args.gzip)
        print(f"loaded {path} into {into}: {response.status} {'created' if response.status == 201 else 'replaced'}")
        return EXIT_OK
    operation = await client.put_graph(args.repo, path, graph, content_type=fmt.media_type, gzip=args.gzip,
                                       respond_async=True)
    if operation.monitor_url is not None:
        print(f"task {operation.request_id}: {operation.monitor_url}", file=sys.stderr)
    document = await _wait_with_bar(operation, args)
    if operation.status is TaskStatus.COMPLETED:
        outcome = document.get("outcome") if isinstance(document.get("outcome"), dict) else {}
        assert isinstance(outcome, dict)
        print(f"loaded {outcome.get('statements_added', '?')} statements from {path} into {into} "
              f"(task {operation.request_id})")
    else:
        print(_summary(document))
    return _exit_for(operation.status)

