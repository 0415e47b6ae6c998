"""`linli` — the operator's command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile

from pydantic import ValidationError

from backend.core.config import get_settings


def _migrate(_: argparse.Namespace) -> int:
    from backend.core import db

    asyncio.run(db.migrate(get_settings()))
    print("数据库已迁移到最新版本 (migrations applied)")
    return 0


def _seed_demo(_: argparse.Namespace) -> int:
    from backend.seed import run_seed_demo

    summary = asyncio.run(run_seed_demo(get_settings()))
    print(f"演示数据已就绪 (demo data ready): {summary}")
    return 0


def _serve(args: argparse.Namespace, *, factory: str = "backend.main:create_app") -> int:
    import uvicorn

    from backend.core.metrics import MULTIPROCESS_DIR

    with contextlib.ExitStack() as stack:
        if args.workers > 1:
            # Each worker writes its metrics here and /metrics adds them up, whichever worker
            # answers the scrape; a fresh folder per start, so counts begin at zero.
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="linli-metrics-"))
            os.environ[MULTIPROCESS_DIR] = folder
        uvicorn.run(
            factory,
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            proxy_headers=True,
            forwarded_allow_ips=get_settings().forwarded_allow_ips,
            timeout_keep_alive=get_settings().keepalive_seconds,
            access_log=False,
            log_level="warning",
        )
    return 0


def _run(args: argparse.Namespace) -> int:
    settings = get_settings()
    if settings.env == "prod":
        print("`linli run` 仅用于演示与开发；生产环境请用 `linli serve` + `linli bot`。")
        return 2
    _migrate(args)
    _seed_demo(args)
    print(f"邻里 Linli 已启动: http://{args.host}:{args.port}/h5/  (API 文档 /docs)")
    args.workers = 1
    return _serve(args, factory="backend.main:create_embedded_app")


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _bot(_: argparse.Namespace) -> int:
    # Until the runner installs its own handlers (after imports and connecting, which take a
    # few seconds on a busy host), a stop from systemd or docker is still a clean exit.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    from backend.main import run_bot_forever

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_bot_forever())
    return 0


def _grant(args: argparse.Namespace) -> int:
    from backend.accounts.service import run_grant_cli

    try:
        message = asyncio.run(
            run_grant_cli(
                settings=get_settings(),
                openid=args.openid,
                role=args.role,
                community_slug=args.community,
            )
        )
    except LookupError as exc:
        print(f"失败: {exc}", file=sys.stderr)
        return 1
    print(message)
    return 0


def _wechat_menu(args: argparse.Namespace) -> int:
    from backend.main import create_wechat_menu

    try:
        menu = asyncio.run(create_wechat_menu(args.file))
    except (ValueError, RuntimeError) as exc:
        print(f"失败: {exc}", file=sys.stderr)
        return 1
    print(f"公众号菜单已创建：{len(menu['button'])} 个一级按钮 (official-account menu created)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="linli", description="邻里 Linli 运维命令")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=_migrate)
    sub.add_parser("seed-demo", help="load demo data (idempotent)").set_defaults(func=_seed_demo)

    for name, func, help_text in (
        ("serve", _serve, "serve the app (no bot)"),
        ("run", _run, "embedded: migrate + demo data + app + bot in one process"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8000)
        p.add_argument("--workers", type=int, default=1)
        p.set_defaults(func=func)

    sub.add_parser("bot", help="run the outbox relay and scheduler").set_defaults(func=_bot)

    grant = sub.add_parser("grant", help="grant a role to the user with this openid")
    grant.add_argument("openid")
    grant.add_argument("role", choices=["staff", "street_admin"])
    grant.add_argument("--community", help="community slug (required for staff)")
    grant.set_defaults(func=_grant)

    wechat = sub.add_parser("wechat", help="official-account setup").add_subparsers(
        dest="wechat_command", required=True
    )
    menu = wechat.add_parser("menu", help="create the custom menu from bot/wechat-menu.json")
    menu.add_argument("--file", help="another menu file (JSON, {h5} = the H5 base URL)")
    menu.set_defaults(func=_wechat_menu)
    return parser


def _describe_invalid_settings(exc: ValidationError) -> str:
    lines = ["配置无效，未启动 (invalid configuration, not started):"]
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        field = "LINLI_" + "_".join(str(part) for part in error["loc"]).upper()
        if error["loc"] and field not in message:
            message = f"{field}: {message}"
        lines.append(f"  - {message}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Validate before any server or worker starts, so a bad setting is one clear line, not a
    # traceback from inside uvicorn.
    try:
        get_settings()
    except ValidationError as exc:
        print(_describe_invalid_settings(exc), file=sys.stderr)
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
