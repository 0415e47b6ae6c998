"""The deployment files agree with the code: Docker cannot run here, so every name a deploy file
uses — a setting, a CLI command, a file it mounts or copies — is checked against the real thing."""

from __future__ import annotations

import argparse
import configparser
import importlib.metadata
import ipaddress
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pydantic import ValidationError

from backend.cli import build_parser
from backend.core.config import Settings
from tests.conftest import IN_CI, PROD_ENV

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SETTING_NAMES = {f"LINLI_{name.upper()}" for name in Settings.model_fields}
# Variables that only compose itself reads (interpolation), never Linli.
COMPOSE_ONLY = {"POSTGRES_PASSWORD", "HTTP_PORT"}
UNITS = ("linli-migrate.service", "linli-web.service", "linli-bot.service")


def parse_cli(argv: list[str]):
    """The argparse namespace `linli` would see; fails the test on a command it doesn't know."""
    assert argv[0] == "linli", argv
    try:
        return build_parser().parse_args(argv[1:])
    except SystemExit as exc:
        pytest.fail(f"`{' '.join(argv)}` is not a valid linli command (exit {exc.code})")


def env_example_entries(*, include_commented: bool) -> dict[str, str]:
    """KEY=VALUE lines of deploy/.env.example; commented-out entries document optional settings."""
    pattern = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")
    entries = {}
    for line in (DEPLOY / ".env.example").read_text(encoding="utf-8").splitlines():
        match = pattern.match(line.strip())
        if match and (include_commented or not match.group(1)):
            entries[match.group(2)] = match.group(3)
    return entries


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No LINLI_* variable from the test run may leak into a settings check."""
    for key in list(os.environ):
        if key.startswith("LINLI_"):
            monkeypatch.delenv(key)
    return monkeypatch


# --- compose.yaml ---


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def test_compose_has_the_documented_services(compose):
    assert set(compose["services"]) == {"postgres", "redis", "migrate", "app", "bot", "nginx"}
    services = compose["services"]
    assert services["postgres"]["image"] == "postgres:15"
    assert services["redis"]["image"] == "redis:7"
    assert services["nginx"]["image"].startswith("nginx")


def test_compose_app_runs_two_replicas_of_serve_with_two_workers(compose):
    app = compose["services"]["app"]
    assert app["deploy"]["replicas"] == 2
    args = parse_cli(app["command"])
    assert args.command == "serve"
    assert args.host == "0.0.0.0"
    assert args.workers == 2
    assert str(args.port) in {str(port) for port in app["expose"]}


def test_compose_bot_and_migrate_run_real_commands(compose):
    services = compose["services"]
    assert parse_cli(services["bot"]["command"]).command == "bot"
    assert parse_cli(services["migrate"]["command"]).command == "migrate"
    assert services["migrate"]["restart"] == "no"


def test_compose_app_and_bot_wait_for_migrations_and_backing_services(compose):
    services = compose["services"]
    for name in ("app", "bot"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["nginx"]["depends_on"]["app"]["condition"] == "service_healthy"


def test_compose_app_health_check_asks_readyz(compose):
    healthcheck = compose["services"]["app"]["healthcheck"]
    assert any("/readyz" in part for part in healthcheck["test"])
    assert healthcheck["test"][0] == "CMD"
    assert healthcheck["test"][1] == "python"


def test_compose_environment_names_are_real_settings(compose):
    for name in ("migrate", "app", "bot"):
        service = compose["services"][name]
        assert service["env_file"] == ".env"
        environment = service["environment"]
        assert environment["LINLI_ENV"] == "prod"
        assert environment["LINLI_DATABASE_URL"].startswith("postgres://")
        assert environment["LINLI_REDIS_URL"].startswith("redis://redis:")
        unknown = {key for key in environment if key.startswith("LINLI_")} - SETTING_NAMES
        assert not unknown, f"{name}: not settings: {unknown}"


def test_compose_app_believes_only_nginxs_forwarded_for(compose):
    services = compose["services"]
    trusted = services["app"]["environment"]["LINLI_FORWARDED_ALLOW_IPS"]
    nginx_address = services["nginx"]["networks"]["default"]["ipv4_address"]
    assert trusted == nginx_address and "*" not in trusted
    (subnet,) = compose["networks"]["default"]["ipam"]["config"]
    assert ipaddress.ip_address(nginx_address) in ipaddress.ip_network(subnet["subnet"])


def test_compose_interpolates_only_documented_variables():
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    assert used
    assert used <= set(env_example_entries(include_commented=False))


def test_compose_builds_from_the_repository_with_the_deploy_dockerfile(compose):
    build = compose["services"]["app"]["build"]
    context = (DEPLOY / build["context"]).resolve()
    assert context == ROOT
    assert (context / build["dockerfile"]).is_file()
    images = {compose["services"][name]["image"] for name in ("migrate", "app", "bot")}
    assert len(images) == 1


def test_compose_mounts_the_nginx_config(compose):
    mounts = compose["services"]["nginx"]["volumes"]
    sources = [mount.split(":")[0] for mount in mounts]
    assert "./nginx.conf" in sources
    assert (DEPLOY / "nginx.conf").is_file()


# --- Dockerfile ---


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_runs_serve_as_a_non_root_user():
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    keywords = [keyword for keyword, _ in instructions]
    user = instructions[keywords.index("USER")][1]
    assert user and user not in ("root", "0")
    assert keywords.index("USER") < keywords.index("CMD")
    cmd = json.loads(instructions[keywords.index("CMD")][1])
    assert cmd == ["linli", "serve", "--host", "0.0.0.0", "--workers", "2"]
    parse_cli(cmd)


def test_dockerfile_copies_every_package_the_distribution_installs():
    copied = {
        rest.split()[0]
        for keyword, rest in dockerfile_instructions()
        if keyword == "COPY" and not rest.startswith("--from")
    }
    for source in copied:
        assert (ROOT / source).exists(), source
    assert {"pyproject.toml", "backend", "h5", "bot"} <= copied
    # BuildKit reads <Dockerfile>.dockerignore: it must let the same files through.
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    for source in copied:
        assert f"!{source}" in ignore or f"!{source}/" in ignore, source


def runtime_closure(name: str = "linli") -> set[str]:
    """The distributions `pip install .` brings in: linli's requirements without the dev extra,
    and theirs, as installed here."""
    seen: set[str] = set()
    todo = [(name, frozenset())]
    while todo:
        dist_name, extras = todo.pop()
        for text in importlib.metadata.requires(dist_name) or []:
            requirement = Requirement(text)
            environment = [{"extra": e} for e in extras] or [{"extra": ""}]
            if requirement.marker and not any(requirement.marker.evaluate(e) for e in environment):
                continue
            key = canonicalize_name(requirement.name)
            if key not in seen:
                seen.add(key)
                todo.append((requirement.name, frozenset(requirement.extras)))
            elif requirement.extras:
                todo.append((requirement.name, frozenset(requirement.extras)))
    return seen


def test_the_image_installs_pinned_versions_of_every_dependency():
    lines = (DEPLOY / "constraints.txt").read_text(encoding="utf-8").splitlines()
    pins = dict(line.split("==", 1) for line in lines if line.strip() and not line.startswith("#"))
    pins = {canonicalize_name(k): v for k, v in pins.items()}
    missing = runtime_closure() - set(pins)
    assert not missing, f"run `make constraints`: {sorted(missing)} not pinned"
    # Each pin satisfies what pyproject.toml asks for.
    for text in importlib.metadata.requires("linli") or []:
        requirement = Requirement(text)
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        pinned = pins[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(pinned, prereleases=True), (text, pinned)


@pytest.mark.slow
def test_the_installed_package_ships_templates_static_files_and_migrations(tmp_path: Path):
    # What `pip install .` in the Dockerfile puts in the image, without Docker.
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("linli-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        path.relative_to(ROOT).as_posix()
        for package in ("backend", "h5", "bot")
        for path in (ROOT / package).rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and (path.suffix == ".py" or {"templates", "static"} & set(path.parts))
    }
    missing = expected - names
    assert not missing, sorted(missing)
    assert any(name.startswith("backend/migrations/0001") for name in names)
    assert (
        "linli = backend.cli:main"
        in zipfile.ZipFile(wheel)
        .read(next(n for n in names if n.endswith("entry_points.txt")))
        .decode()
    )


# --- .env.example ---


def test_env_example_documents_every_setting_and_nothing_else():
    keys = set(env_example_entries(include_commented=True))
    # Test-only switches (control cases of the race tests) have no place in production config.
    missing = {name for name in SETTING_NAMES if not name.startswith("LINLI_TEST_")} - keys
    assert not missing, f"add to deploy/.env.example: {sorted(missing)}"
    unknown = keys - SETTING_NAMES - COMPOSE_ONLY
    assert not unknown, f"not settings: {sorted(unknown)}"


def test_env_example_as_shipped_refuses_to_start_without_a_real_secret(clean_env, tmp_path):
    env_file = tmp_path / "linli.env"
    env_file.write_text((DEPLOY / ".env.example").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ValidationError, match="LINLI_SECRET_KEY"):
        Settings(_env_file=env_file)


def test_env_example_as_shipped_names_every_required_wechat_value(clean_env, tmp_path):
    env_file = tmp_path / "linli.env"
    env_file.write_text((DEPLOY / ".env.example").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=env_file)
    for name in ("LINLI_MP_APPID", "LINLI_MP_SECRET", "LINLI_OA_APPID", "LINLI_OA_SECRET"):
        assert name in str(caught.value)
    assert "LINLI_OA_TOKEN" in str(caught.value)
    # The shipped address is already a public https one.
    assert "LINLI_PUBLIC_BASE_URL" not in str(caught.value)


def test_env_example_with_every_option_filled_in_is_valid(clean_env, tmp_path):
    entries = env_example_entries(include_commented=True)
    entries["LINLI_SECRET_KEY"] = "k" * 48
    for name in ("LINLI_MP_APPID", "LINLI_MP_SECRET", "LINLI_OA_APPID", "LINLI_OA_SECRET"):
        entries[name] = PROD_ENV[name]
    entries["LINLI_OA_TOKEN"] = PROD_ENV["LINLI_OA_TOKEN"]
    entries["LINLI_OA_AES_KEY"] = "a" * 43
    env_file = tmp_path / "linli.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in entries.items()), encoding="utf-8")

    settings = Settings(_env_file=env_file)

    assert settings.env == "prod"
    assert not settings.is_sqlite
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.rate_limits_enabled
    assert set(settings.subscribe_templates) == {"notice", "booking", "reminder", "wish", "reward"}
    assert set(settings.oa_templates) == set(settings.subscribe_templates)


# --- systemd units ---


def read_unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read(DEPLOY / "systemd" / name, encoding="utf-8")
    assert parser.sections() == ["Unit", "Service", "Install"], name
    return parser


def unit_command(unit: configparser.ConfigParser) -> list[str]:
    argv = shlex.split(unit["Service"]["ExecStart"])
    assert argv[0].endswith("/.venv/bin/linli"), argv[0]
    return ["linli", *argv[1:]]


def test_systemd_units_run_real_commands():
    web = parse_cli(unit_command(read_unit("linli-web.service")))
    assert (web.command, web.workers, web.host) == ("serve", 2, "127.0.0.1")
    assert parse_cli(unit_command(read_unit("linli-bot.service"))).command == "bot"
    migrate = read_unit("linli-migrate.service")
    assert parse_cli(unit_command(migrate)).command == "migrate"
    assert migrate["Service"]["Type"] == "oneshot"


@pytest.mark.parametrize("name", UNITS)
def test_systemd_units_run_unprivileged_with_the_env_file(name):
    unit = read_unit(name)
    service = unit["Service"]
    assert service["User"] == "linli"
    assert service["EnvironmentFile"] == "/etc/linli/linli.env"
    assert service["NoNewPrivileges"] == "yes"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.parametrize("name", ["linli-web.service", "linli-bot.service"])
def test_systemd_app_and_bot_start_after_migrations(name):
    unit = read_unit(name)["Unit"]
    assert "linli-migrate.service" in unit["Requires"].split()
    assert "linli-migrate.service" in unit["After"].split()
    assert read_unit(name)["Service"]["Restart"] in ("on-failure", "always")


@pytest.mark.slow
def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path):
    if shutil.which("systemd-analyze") is None:
        # .ci/run installs Debian's systemd package, which provides it.
        message = "systemd-analyze not installed (Debian package: systemd)"
        if IN_CI:
            pytest.fail(f"{message}; CI=true: nothing may be skipped")
        pytest.skip(message)
    # verify wants the executable to exist: point the units at this virtualenv's linli.
    linli = Path(sys.executable).with_name("linli")
    for name in UNITS:
        text = (DEPLOY / "systemd" / name).read_text(encoding="utf-8")
        (tmp_path / name).write_text(text.replace("/opt/linli/.venv/bin/linli", str(linli)))
    result = subprocess.run(
        ["systemd-analyze", "verify", *(f"./{name}" for name in UNITS)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == result.stderr.strip() == ""


# --- nginx.conf ---


def test_nginx_proxies_to_the_app_service_and_passes_client_and_request_ids(compose):
    text = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    assert code.count("{") == code.count("}")
    upstream = re.search(r"upstream\s+(\w+)\s*{([^}]*)}", code)
    assert upstream
    name, body = upstream.groups()
    host, port = re.search(r"server\s+([\w.-]+):(\d+)", body).groups()
    assert host in compose["services"]
    assert port in {str(p) for p in compose["services"][host]["expose"]}
    assert f"proxy_pass http://{name};" in code
    assert re.search(r"proxy_set_header\s+X-Forwarded-For\s+\$proxy_add_x_forwarded_for;", code)
    assert re.search(r"proxy_set_header\s+X-Request-Id\s+\$\w+;", code)
    assert re.search(r"map\s+\$http_x_request_id\s+", code)


def test_nginx_access_log_leaves_query_strings_out():
    text = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    formats = dict(re.findall(r"log_format\s+(\w+)\s+((?:'[^']*'\s*)+);", code))
    assert formats, "no log_format"
    for name, layout in formats.items():
        # $request is the whole request line and $request_uri the raw URI, both with the query;
        # $args, $query_string and $arg_* are the query itself.
        for variable in (
            "$request ",
            '$request"',
            "$request_uri",
            "$args",
            "$query_string",
            "$arg_",
        ):
            assert variable not in layout, f"log_format {name} logs {variable.strip()}"
        assert "$uri" in layout
    logs = re.findall(r"access_log\s+([^;]+);", code)
    assert logs
    for entry in logs:
        parts = entry.split()
        assert parts[0] == "off" or (len(parts) > 1 and parts[1] in formats), entry


# --- README ---


def test_readme_documents_the_quick_start_every_setting_and_every_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make run" in readme and "make test" in readme
    missing = sorted(name for name in SETTING_NAMES if f"`{name}`" not in readme)
    assert not missing, f"add to the README configuration table: {missing}"
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for command in commands:
        assert f"linli {command}" in readme, command
    for path in ("/docs", "/h5/", "deploy/compose.yaml", "deploy/.env.example"):
        assert path in readme, path
