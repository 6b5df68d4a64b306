"""Principals, tokens and grants (SPEC §7).

The config file names accounts, their hashed tokens and their grants:

    [accounts.alice]
    admin = true                         # server administrator: admin on every repository
    grants = { "bob/shared" = "write", "team/*" = "read" }

    [[tokens]]                           # appended by `graphstore-async token create ACCOUNT`
    account = "alice"
    hash = "sha256:…"

    [repositories."demo/demo"]
    public_read = true

An account owns (has admin on) its own repositories. Tokens are random 256-bit strings, so a plain SHA-256 of
them is as strong as the token and lets us look one up without keeping it. With no account configured the
server is open: everybody is an administrator (and the CLI refuses to bind anything but loopback).

A token comes as `Authorization: Bearer TOKEN`, or as Basic credentials whose password is the token and whose
user name is empty (`curl -u :TOKEN`, as Dydra's clients send it) or the token's own account: any other user
name is a 401, so a client configured with one account's name and another's token is told, not let in as the
token's owner.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from graphstore_async.errors import Forbidden, Unauthorized

ANONYMOUS = "anonymous"
TOKEN_PREFIX = "gsa_"
REALM = "graphstore-async"


class Grant(IntEnum):
    NONE = 0
    READ = 1
    WRITE = 2
    ADMIN = 3


@dataclass(frozen=True)
class Principal:
    account: str  # ANONYMOUS for requests without credentials
    admin: bool = False
    grants: Mapping[str, Grant] = field(default_factory=dict)

    @property
    def anonymous(self) -> bool:
        return self.account == ANONYMOUS

    def grant_on(self, repository: str) -> Grant:
        if self.admin:
            return Grant.ADMIN
        if not self.anonymous and repository.split("/", 1)[0] == self.account:
            return Grant.ADMIN
        return max((g for pattern, g in self.grants.items() if fnmatchcase(repository, pattern)), default=Grant.NONE)


def hash_token(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class AccessControl:
    accounts: Mapping[str, Principal] = field(default_factory=dict)
    token_hashes: Mapping[str, str] = field(default_factory=dict)  # hash -> account
    public_read: frozenset[str] = frozenset()

    @property
    def open(self) -> bool:
        return not self.accounts

    @classmethod
    def from_toml(cls, path: Path | None) -> AccessControl:
        if path is None:
            return cls()
        with path.open("rb") as fh:
            return cls.from_mapping(tomllib.load(fh), source=str(path))

    @classmethod
    def from_mapping(cls, doc: Mapping[str, Any], *, source: str = "config") -> AccessControl:
        accounts: dict[str, Principal] = {}
        for name, spec in dict(doc.get("accounts", {})).items():
            grants = {pattern: _grant(level, f"{source}: accounts.{name}.grants") for pattern, level in
                      dict(spec.get("grants", {})).items()}
            accounts[name] = Principal(name, admin=bool(spec.get("admin", False)), grants=grants)
        hashes: dict[str, str] = {}
        for entry in doc.get("tokens", []):
            account = entry.get("account")
            if account not in accounts:
                accounts[account] = Principal(account)
            hashes[str(entry["hash"])] = account
        public = frozenset(name for name, spec in dict(doc.get("repositories", {})).items()
                           if spec.get("public_read", False))
        return cls(accounts=accounts, token_hashes=hashes, public_read=public)

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal behind an Authorization header; anonymous when there is none; 401 when it is wrong."""
        if self.open:
            return Principal(ANONYMOUS, admin=True)
        if not authorization:
            return Principal(ANONYMOUS)
        scheme, _, credentials = authorization.strip().partition(" ")
        user, token = _credentials(scheme.lower(), credentials.strip())
        account = self.token_hashes.get(hash_token(token)) if token else None
        if account is None:
            raise Unauthorized("the credentials are not valid", headers={"WWW-Authenticate": self.challenge})
        if user not in (None, "", account):
            raise Unauthorized("the credentials are not valid: with Basic, the token is the password and the user "
                               "name is empty or the token's own account", headers={"WWW-Authenticate": self.challenge})
        return self.accounts[account]

    def principal_named(self, account: str) -> Principal:
        """The principal of an account, as recorded with a task (its grants as they are now)."""
        if self.open:
            return Principal(ANONYMOUS, admin=True)
        return self.accounts.get(account, Principal(account))

    def require(self, principal: Principal, repository: str, needed: Grant) -> None:
        """401 for an anonymous caller without the grant, 403 for a known one."""
        if principal.grant_on(repository) >= needed:
            return
        if needed is Grant.READ and repository in self.public_read:
            return
        if principal.anonymous:
            raise Unauthorized(f"{needed.name.lower()} access to {repository} needs credentials",
                               headers={"WWW-Authenticate": self.challenge})
        raise Forbidden(f"{principal.account} has no {needed.name.lower()} grant on {repository}",
                        repository=repository, needed=needed.name.lower())

    @property
    def challenge(self) -> str:
        return f'Bearer realm="{REALM}", Basic realm="{REALM}"'


def _credentials(scheme: str, credentials: str) -> tuple[str | None, str | None]:
    """(user name, token) of an Authorization header's credentials: no user name for Bearer; no token for a
    scheme we do not take or Basic credentials that do not decode."""
    if scheme == "bearer":
        return None, credentials
    if scheme == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None, None
        user, _, token = decoded.partition(":")
        return user, token
    return None, None


def _grant(level: object, where: str) -> Grant:
    try:
        return Grant[str(level).upper()]
    except KeyError as exc:
        raise ValueError(f"{where}: grant {level!r} is not one of read, write, admin") from exc


def token_entry(account: str, token: str) -> str:
    """The TOML lines that record a token's hash (appended to the config file)."""
    return f'\n[[tokens]]\naccount = "{account}"\nhash = "{hash_token(token)}"\n'
