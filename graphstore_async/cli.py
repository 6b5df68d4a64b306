"""The console script `graphstore-async`: the only reader of the environment."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import ipaddress
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import web

from graphstore_async import cli_client, formats, logs, supervisor
from graphstore_async.auth import AccessControl, new_token, token_entry
from graphstore_async.errors import GraphStoreError
from graphstore_async.repositories import Repositories, repository_id
from graphstore_async.settings import Settings
from graphstore_async.store import Source
from graphstore_async.store.embedded import EmbeddedStore

log = logging.getLogger("graphstore_async")



def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # a supervised server runs the same command line
    try:
        settings = Settings.from_env(os.environ, **_overrides(args))
        logs.setup(settings.log_format, os.environ.get("GSA_LOG_LEVEL", "INFO"))  # once, before anything logs
        code: int = args.run(args, settings)
        return code
    except GraphStoreError as exc:
        print(f"graphstore-async: {exc.detail}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"graphstore-async: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    # The common options are accepted before the command and after it (`serve --data-dir D`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", dest="config_file", type=Path, default=argparse.SUPPRESS,
                        help="TOML config file (GSA_CONFIG_FILE)")
    common.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS,
                        help="where repositories live (GSA_DATA_DIR)")
    parser = argparse.ArgumentParser(prog="graphstore-async", description=__doc__, parents=[common],
                                     epilog=cli_client.EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    def add(subparsers: argparse._SubParsersAction, name: str, help: str) -> argparse.ArgumentParser:  # type: ignore[type-arg]
        return subparsers.add_parser(name, help=help, parents=[common])  # type: ignore[no-any-return]

    serve = add(commands, "serve", "run the HTTP server")
    serve.add_argument("--host", help="address to bind (GSA_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (GSA_PORT, default 8080)")
    serve.add_argument("--redis-url", help="Redis URL (GSA_REDIS_URL)")
    serve.add_argument("--base-url", help="public base URL, e.g. https://rdf.example.org (GSA_BASE_URL)")
    serve.add_argument("--log-format", choices=logs.FORMATS, help="log lines as text or JSON (GSA_LOG_FORMAT, "
                       "default text)")
    serve.add_argument("--no-supervise", dest="supervise", action="store_const", const=False,
                       help="run the server in this process, not in a child process started again when it "
                       "crashes (GSA_SUPERVISE=false)")
    serve.set_defaults(run=_serve)

    worker = add(commands, "worker", "run a task worker without the HTTP server (for a remote store; with the "
                 "embedded store, `serve` runs the worker itself)")
    worker.add_argument("--redis-url", help="Redis URL (GSA_REDIS_URL)")
    worker.add_argument("--log-format", choices=logs.FORMATS, help="log lines as text or JSON (GSA_LOG_FORMAT)")
    worker.set_defaults(run=_worker)

    repo = commands.add_parser("repo", help="create, list or drop repositories (with the server stopped)")
    repo_commands = repo.add_subparsers(dest="repo_command", required=True)
    create = add(repo_commands, "create", "create ACCOUNT/REPO, optionally loading a file into it")
    create.add_argument("name", help="ACCOUNT/REPO")
    create.add_argument("--load", type=Path, help="an RDF file to load (format from its extension)")
    create.add_argument("--graph", help="graph IRI to load into (default: the default graph)")
    create.set_defaults(run=_repo_create)
    listing = add(repo_commands, "list", "list repositories")
    listing.set_defaults(run=_repo_list)

    token = commands.add_parser("token", help="manage access tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    token_create = add(token_commands, "create", "make a token for ACCOUNT; printed once, stored hashed")
    token_create.add_argument("account")
    token_create.set_defaults(run=_token_create)

    config = add(commands, "config", "print the effective settings (secrets masked)")
    config.set_defaults(run=_config)
    cli_client.add_parsers(commands, url=os.environ.get("GSA_URL"), token=os.environ.get("GSA_TOKEN"))
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    names = ("config_file", "data_dir", "host", "port", "redis_url", "base_url", "supervise", "log_format")
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
        except OSError:
            return False


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    if settings.supervise:  # the server runs in a child process, `serve --no-supervise`: supervisor.py
        command = [sys.executable, "-m", "graphstore_async", *args.argv, "--no-supervise"]
        return supervisor.Supervisor(command, supervisor.Policy(
            backoff_s=settings.restart_backoff_s, backoff_max_s=settings.restart_backoff_max_s,
            healthy_s=settings.restart_healthy_s,
            stop_deadline_s=settings.shutdown_grace_s + supervisor.STOP_MARGIN_S + supervisor.KILL_MARGIN_S,
        )).run()

    from graphstore_async.web.app import create_app

    access = AccessControl.from_toml(settings.config_file)
    if access.open and not is_loopback(settings.host):
        print(f"graphstore-async: refusing to serve on {settings.host} with no accounts configured (an open "
              "server answers anybody as an administrator); configure accounts or bind to 127.0.0.1",
              file=sys.stderr)
        return 2
    faulthandler.enable()  # a native crash writes every thread's Python stack to stderr before the process dies
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_serving(create_app(settings, access), settings))
    finally:
        _cancel_all(loop)
        loop.close()
    # Store threads may still run queries that the engine cannot interrupt; the interpreter would wait for them.
    return supervisor.exit_unless_threads_busy(0)


async def _serving(app: web.Application, settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then stop: no new connections; in-flight requests get shutdown_grace_s
    (then aiohttp cancels them); then the worker gives running tasks the grace and requeues the rest; past the
    grace and STOP_MARGIN_S the process exits whatever it is still waiting for. A second signal changes nothing
    (it would otherwise interrupt the requeueing)."""
    loop = asyncio.get_running_loop()
    stopping: asyncio.Future[signal.Signals] = loop.create_future()

    def stop(signum: signal.Signals) -> None:
        if not stopping.done():
            stopping.set_result(signum)

    for signum in supervisor.STOP_SIGNALS:
        loop.add_signal_handler(signum, stop, signum)
    # aiohttp waits shutdown_timeout for in-flight requests, cancels them, and waits shutdown_timeout again (0 would
    # be no limit): half the grace each.
    drain_s = max(settings.shutdown_grace_s / 2, 0.01)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=drain_s)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()  # SO_REUSEADDR: a restart binds at once
        log.info("serving on http://%s:%s (data in %s)", settings.host, settings.port, settings.data_dir)
        received = await stopping
        log.info("%s received: stopping (in-flight work gets %s s)", received.name, settings.shutdown_grace_s)
        supervisor.exit_after(settings.shutdown_grace_s + supervisor.STOP_MARGIN_S)
    finally:
        await runner.cleanup()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from graphstore_async.tasks.service import serve_worker

    asyncio.run(serve_worker(settings, AccessControl.from_toml(settings.config_file)))
    return 0


def _repo_create(args: argparse.Namespace, settings: Settings) -> int:
    account, _, name = args.name.partition("/")
    repo_id = repository_id(account, name)
    with ThreadPoolExecutor(max_workers=2) as executor:
        repositories = Repositories(settings.repositories_dir, EmbeddedStore.opener(executor, settings))
        created = repositories.create(repo_id)
        print(f"{'created' if created else 'exists:'} {repo_id}")
        if args.load is not None:
            asyncio.run(_load_file(repositories, repo_id, args.load, args.graph))
    return 0


async def _load_file(repositories: Repositories, repo_id: str, path: Path, graph: str | None) -> None:
    extension = path.name.rpartition(".")[2].lower()
    fmt = formats.by_extension(extension, formats.RDF_FORMATS)
    if fmt is None:
        raise ValueError(f"cannot tell the RDF format of {path} from its extension")
    repo = await repositories.get(repo_id)
    try:
        source = Source(path.resolve(), fmt, path.resolve().as_uri())
        if fmt.is_dataset and graph is None:
            result = await repo.store.load_dataset([source], replace=True)
        else:
            result = await repo.store.load([source], graph=graph, replace=True)
        print(f"loaded {result.statements} statements from {path} into {repo_id}")
    finally:
        await repositories.close()


def _repo_list(args: argparse.Namespace, settings: Settings) -> int:
    repositories = Repositories(settings.repositories_dir, lambda path: None)  # type: ignore[arg-type,return-value]
    for repo_id in repositories.list():
        print(repo_id)
    return 0


def _token_create(args: argparse.Namespace, settings: Settings) -> int:
    if settings.config_file is None:
        print("graphstore-async: say which config file keeps the token's hash: --config FILE or GSA_CONFIG_FILE",
              file=sys.stderr)
        return 2
    token = new_token()
    with settings.config_file.open("a") as fh:
        fh.write(token_entry(args.account, token))
    AccessControl.from_toml(settings.config_file)  # the file still parses
    print(token)
    print(f"(stored hashed in {settings.config_file} for {args.account}; restart the server to use it; "
          "this token is not shown again)", file=sys.stderr)
    return 0


def _config(args: argparse.Namespace, settings: Settings) -> int:
    for name, value in settings.masked().items():
        print(f"{name} = {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
