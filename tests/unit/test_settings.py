"""Settings from the environment and the TOML file (graphstore_async/settings.py): GSA_* strings coerced to the
field's type, the order in which sources override each other, and the errors for what cannot be read."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphstore_async.settings import Settings, _coerce, mask_url


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "graphstore.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_from_env_without_variables_is_the_defaults() -> None:
    assert Settings.from_env({}) == Settings()
    assert Settings.from_env({"HOME": "/root", "PORT": "1", "GSA_NO_SUCH_SETTING": "x", "gsa_port": "1"}) == Settings()


@pytest.mark.parametrize(("variable", "value", "field", "expected"), [
    ("GSA_PORT", "9000", "port", 9000),
    ("GSA_PORT", " 9000 ", "port", 9000),
    ("GSA_MAX_BODY_BYTES", "1048576", "max_body_bytes", 1024**2),
    ("GSA_QUEUE_LIMIT", "0", "queue_limit", 0),
    ("GSA_NOTIFY_TIMEOUT_S", "2.5", "notify_timeout_s", 2.5),
    ("GSA_QUERY_TIMEOUT_S", "0", "query_timeout_s", 0.0),
    ("GSA_MAX_GZIP_RATIO", "20", "max_gzip_ratio", 20.0),
    ("GSA_HOST", "0.0.0.0", "host", "0.0.0.0"),
    ("GSA_REDIS_URL", "redis://redis:6379/2", "redis_url", "redis://redis:6379/2"),
    ("GSA_BASE_URL", "https://data.example.org", "base_url", "https://data.example.org"),
    ("GSA_LOG_FORMAT", "json", "log_format", "json"),
    ("GSA_DATA_DIR", "/srv/gsa", "data_dir", Path("/srv/gsa")),
    ("GSA_DATA_DIR", "relative/dir", "data_dir", Path("relative/dir")),
    ("GSA_TRUSTED_PROXIES", "10.0.0.0/8", "trusted_proxies", ("10.0.0.0/8",)),
    ("GSA_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.0.0/16 ,,", "trusted_proxies", ("10.0.0.0/8", "192.168.0.0/16")),
    ("GSA_NOTIFY_ALLOW", "", "notify_allow", ()),
    ("GSA_NOTIFY_HOSTS", "hooks.test=127.0.0.1", "notify_hosts", ("hooks.test=127.0.0.1",)),
])
def test_from_env_coerces_each_variable_to_its_field(variable: str, value: str, field: str, expected: object) -> None:
    settings = Settings.from_env({variable: value})
    assert getattr(settings, field) == expected
    assert type(getattr(settings, field)) is type(expected)


@pytest.mark.parametrize("value", ["1", "true", "True", "YES", "on", " on "])
def test_from_env_reads_true(value: str) -> None:
    settings = Settings.from_env({"GSA_ALLOW_LOAD": value, "GSA_SPOOL_FSYNC": value})
    assert settings.allow_load is True and settings.spool_fsync is True


@pytest.mark.parametrize("value", ["0", "false", "False", "NO", "off", " off "])
def test_from_env_reads_false(value: str) -> None:
    settings = Settings.from_env({"GSA_SUPERVISE": value, "GSA_WORKER": value})
    assert settings.supervise is False and settings.worker is False


@pytest.mark.parametrize("value", ["ture", "enabled", "2", "yes please"])
def test_from_env_refuses_a_boolean_it_cannot_read(value: str) -> None:
    """A misspelt GSA_SPOOL_FSYNC=ture must not quietly turn fsync off."""
    with pytest.raises(ValueError):
        Settings.from_env({"GSA_SPOOL_FSYNC": value})


@pytest.mark.parametrize(("variable", "value"), [
    ("GSA_PORT", "eighty"), ("GSA_PORT", "80.5"), ("GSA_PORT", ""), ("GSA_WORKER_JOBS", "8 jobs"),
    ("GSA_NOTIFY_TIMEOUT_S", "soon"), ("GSA_NOTIFY_TIMEOUT_S", "30s"), ("GSA_MAX_WAIT_S", ""),
])
def test_from_env_refuses_a_number_it_cannot_read(variable: str, value: str) -> None:
    with pytest.raises(ValueError):
        Settings.from_env({variable: value})


def test_from_env_without_a_config_file_has_none() -> None:
    """An empty GSA_CONFIG_FILE reads no file; it is not the current directory."""
    assert Settings.from_env({"GSA_CONFIG_FILE": ""}).config_file is None
    assert Settings.from_env({"GSA_CONFIG_FILE": "  "}).config_file is None
    assert Settings.from_env({}, config_file="").config_file is None


@pytest.mark.parametrize("value", ["", " "])
def test_from_env_refuses_an_empty_path_that_must_be_set(value: str) -> None:
    """GSA_DATA_DIR= is not the current directory either: data_dir cannot be unset, so it is an error."""
    with pytest.raises(ValueError, match="GSA_DATA_DIR"):
        Settings.from_env({"GSA_DATA_DIR": value})


@pytest.mark.parametrize(("variable", "value"), [
    ("GSA_SPOOL_FSYNC", "ture"), ("GSA_ALLOW_LOAD", ""), ("GSA_WORKER", "2"), ("GSA_PORT", "eighty"),
    ("GSA_WORKER_JOBS", "8 jobs"), ("GSA_NOTIFY_TIMEOUT_S", "30s"), ("GSA_MAX_WAIT_S", ""),
])
def test_from_env_error_names_the_variable_and_the_value(variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=variable) as refused:
        Settings.from_env({variable: value})
    assert repr(value) in str(refused.value)


def test_a_value_in_the_config_file_it_cannot_read_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = config(tmp_path, '[server]\nspool_fsync = "ture"\n')
    with pytest.raises(ValueError, match=r"\[server\] spool_fsync") as refused:
        Settings.from_env({"GSA_CONFIG_FILE": str(path)})
    assert str(path) in str(refused.value)


def test_from_env_reads_the_server_table_of_the_config_file(tmp_path: Path) -> None:
    path = config(tmp_path, """
[server]
port = 9001
max_gzip_ratio = 4.5
allow_load = true
data_dir = "/srv/data"
trusted_proxies = ["10.0.0.0/8", " 172.16.0.0/12 "]
notify_allow = "127.0.0.1:9000,10.1.0.0/16"

[accounts.alice]
""")
    settings = Settings.from_env({"GSA_CONFIG_FILE": str(path)})
    assert settings.config_file == path
    assert (settings.port, settings.max_gzip_ratio, settings.allow_load) == (9001, 4.5, True)
    assert settings.data_dir == Path("/srv/data")
    assert settings.trusted_proxies == ("10.0.0.0/8", "172.16.0.0/12")
    assert settings.notify_allow == ("127.0.0.1:9000", "10.1.0.0/16")


def test_from_env_coerces_strings_in_the_config_file_too(tmp_path: Path) -> None:
    path = config(tmp_path, '[server]\nport = "9002"\nspool_fsync = "yes"\nnotify_span_s = "60"\n')
    settings = Settings.from_env({"GSA_CONFIG_FILE": str(path)})
    assert (settings.port, settings.spool_fsync, settings.notify_span_s) == (9002, True, 60.0)


def test_from_env_without_a_server_table_is_the_defaults_and_the_file(tmp_path: Path) -> None:
    path = config(tmp_path, "[accounts.alice]\n")
    assert Settings.from_env({"GSA_CONFIG_FILE": str(path)}) == Settings(config_file=path)


def test_variables_override_the_file_and_explicit_values_override_both(tmp_path: Path) -> None:
    path = config(tmp_path, '[server]\nport = 9001\nhost = "10.0.0.1"\nlog_format = "json"\n')
    environ = {"GSA_CONFIG_FILE": str(path), "GSA_PORT": "9002", "GSA_HOST": "10.0.0.2"}
    settings = Settings.from_env(environ, host="10.0.0.3", base_url=None)
    assert (settings.log_format, settings.port, settings.host) == ("json", 9002, "10.0.0.3")
    assert settings.base_url is None  # an override of None is no override


def test_an_explicit_config_file_wins_over_the_variable(tmp_path: Path) -> None:
    ignored = config(tmp_path, "[server]\nport = 1\n")
    chosen = tmp_path / "chosen.toml"
    chosen.write_text("[server]\nport = 2\n", encoding="utf-8")
    settings = Settings.from_env({"GSA_CONFIG_FILE": str(ignored)}, config_file=chosen)
    assert (settings.port, settings.config_file) == (2, chosen)


def test_an_unknown_setting_in_the_config_file_is_refused(tmp_path: Path) -> None:
    path = config(tmp_path, "[server]\nprot = 9001\n")
    with pytest.raises(ValueError, match="unknown setting 'prot'"):
        Settings.from_env({"GSA_CONFIG_FILE": str(path)})


def test_an_unknown_explicit_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown setting 'prot'"):
        Settings.from_env({}, prot=9001)


def test_a_server_entry_that_is_not_a_table_is_refused(tmp_path: Path) -> None:
    path = config(tmp_path, "server = 1\n")
    with pytest.raises(ValueError, match=r"\[server\] must be a table"):
        Settings.from_env({"GSA_CONFIG_FILE": str(path)})


def test_a_config_file_that_is_not_toml_is_refused(tmp_path: Path) -> None:
    path = config(tmp_path, "[server\nport = 1\n")
    with pytest.raises(ValueError):  # tomllib.TOMLDecodeError is a ValueError
        Settings.from_env({"GSA_CONFIG_FILE": str(path)})


def test_a_config_file_that_is_not_there_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Settings.from_env({"GSA_CONFIG_FILE": str(tmp_path / "missing.toml")})


def test_coerce_leaves_typed_values_as_they_are() -> None:
    assert _coerce({"port": 1, "allow_load": False, "data_dir": Path("/d"), "base_url": None,
                    "notify_allow": ["a", " ", "b"]}) == {
        "port": 1, "allow_load": False, "data_dir": Path("/d"), "base_url": None, "notify_allow": ("a", "b")}


def test_paths_follow_the_data_dir() -> None:
    settings = Settings.from_env({"GSA_DATA_DIR": "/srv/gsa"})
    assert (settings.spool_dir, settings.repositories_dir) == (Path("/srv/gsa/spool"), Path("/srv/gsa/repositories"))


# -- what `graphstore-async config` shows ------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("redis://:s3cret@redis:6379/0", "redis://***@redis:6379/0"),
    ("redis://user:s3cret@redis:6379/0", "redis://***@redis:6379/0"),
    ("redis://redis:6379/0?password=s3cret&db=1", "redis://redis:6379/0?password=***&db=1"),
    ("redis://redis/0?Username=u&PASSWORD=p", "redis://redis/0?Username=***&PASSWORD=***"),
])
def test_mask_url_hides_credentials(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_masked_hides_secrets_and_shows_the_rest() -> None:
    shown = Settings(redis_url="redis://:pw@r:6379/0", notify_signing_key="whsec_abc", sealing_key="key",
                     trusted_proxies=("10.0.0.0/8",)).masked()
    assert shown["redis_url"] == "redis://***@r:6379/0"
    assert (shown["notify_signing_key"], shown["sealing_key"]) == ("***", "***")
    assert shown["trusted_proxies"] == "('10.0.0.0/8',)"
    assert (shown["port"], shown["base_url"], shown["allow_load"]) == ("8080", "", "False")
    assert Settings().masked()["notify_signing_key"] == ""
