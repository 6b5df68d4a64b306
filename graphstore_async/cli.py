"""The console script `graphstore-async`: the only reader of the environment."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import socket
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import web

from graphstore_async import cli_client, formats
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
    logging.basicConfig(level=os.environ.get("GSA_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = Settings.from_env(os.environ, **_overrides(args))
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
    serve.set_defaults(run=_serve)

    worker = add(commands, "worker", "run a task worker without the HTTP server (for a remote store; with the "
                 "embedded store, `serve` runs the worker itself)")
    worker.add_argument("--redis-url", help="Redis URL (GSA_REDIS_URL)")
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
    names = ("config_file", "data_dir", "host", "port", "redis_url", "base_url")
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
    from graphstore_async.web.app import create_app

    access = AccessControl.from_toml(settings.config_file)
    if access.open and not is_loopback(settings.host):
        print(f"graphstore-async: refusing to serve on {settings.host} with no accounts configured (an open "
              "server answers anybody as an administrator); configure accounts or bind to 127.0.0.1",
              file=sys.stderr)
        return 2
    app = create_app(settings, access)
    log.info("serving on http://%s:%s (data in %s)", settings.host, settings.port, settings.data_dir)
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None)
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from graphstore_async.tasks.worker import serve_worker

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
