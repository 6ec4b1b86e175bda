"""The `receivables` command: migrate, create-operator, serve, worker, demo, openapi,
ledger verify."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from receivables.config import Settings


def _migrate(settings: Settings) -> int:
    from receivables import migrate

    migrate.upgrade_to_head(settings.database_url)
    print(f"database at {migrate.head_revision(settings.database_url)} (head)")
    return 0


async def _create_operator(settings: Settings, email: str, password: str) -> int:
    from receivables.kit.clock import SystemClock
    from receivables.kit.db import create_engine, create_sessionmaker
    from receivables.organizations.service import bootstrap_operator

    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine).begin() as session:
            user, created = await bootstrap_operator(
                session, email=email, password=password, clock=SystemClock()
            )
    finally:
        await engine.dispose()
    print(f"operator {user.email} {'created' if created else 'already exists'} ({user.id})")
    return 0


async def _verify_ledger(settings: Settings) -> int:
    from receivables.kit.db import create_engine, create_sessionmaker
    from receivables.ledger.verify import verify

    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            report = await verify(session)
    finally:
        await engine.dispose()
    print(json.dumps({
        "balanced": report.balanced, "accounts_checked": report.accounts_checked,
        "entries_checked": report.entries_checked, "mismatches": report.mismatches,
    }, indent=2, default=str))
    return 0 if report.balanced else 1


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    """uvicorn: on SIGTERM or SIGINT it stops accepting, lets the requests in flight
    finish (at most `shutdown_grace_seconds`, then cancels them) and shuts the app down.
    With `--workers N` the parent forwards SIGTERM to each worker process."""
    import signal

    import uvicorn

    from receivables.ops.observability import logging_config

    if args.migrate:
        _migrate(settings)
    # After its graceful shutdown uvicorn re-raises the signal it caught under the handler
    # it found: this one, so a requested stop exits 0 (as `receivables worker` does)
    # instead of dying by the signal. Installed after migrating: a stop mid-migration
    # still kills at once (Alembic's transaction rolls back).
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(
        "receivables.app:create_served_app", factory=True, host=args.host, port=args.port,
        workers=args.workers, proxy_headers=True,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        log_config=logging_config(),
    )
    return 0


def _instant(text: str):
    """`--now`: an ISO 8601 instant with its time zone."""
    import datetime as dt

    try:
        instant = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 instant: {text!r}") from None
    if instant.tzinfo is None:
        raise argparse.ArgumentTypeError("the instant must carry a time zone (e.g. +00:00)")
    return instant


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    import logging
    import logging.config

    from receivables.ops.observability import logging_config
    from receivables.worker import runner

    if not logging.getLogger().handlers:  # JSON lines on stderr, as `serve` logs
        logging.config.dictConfig(logging_config())
    try:
        return asyncio.run(runner.main(settings, once=args.once, now=args.now))
    except runner.FrozenNowRefused as exc:
        print(f"receivables worker: {exc}", file=sys.stderr)
        return 2


def _openapi() -> int:
    from receivables.app import openapi_document

    sys.stdout.write(openapi_document())
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="receivables", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply Alembic migrations to DATABASE_URL")
    operator = commands.add_parser("create-operator", help="create the platform operator user")
    operator.add_argument("--email", required=True)
    operator.add_argument("--password", required=True)
    serve = commands.add_parser("serve", help="serve the API with uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers", type=int, default=None,
        help="worker processes (default: $WEB_CONCURRENCY, else 1)",
    )
    serve.add_argument("--migrate", action="store_true", help="apply migrations first")
    worker = commands.add_parser(
        "worker", help="apply deadlines: expire, close auctions, cancel unfunded, overdue, default"
    )
    worker.add_argument(
        "--once", action="store_true", help="process what is due, print the counts, exit"
    )
    worker.add_argument(
        "--now", type=_instant, default=None,
        help="act as if it were this ISO instant (only with RECEIVABLES_SIMULATED_CLOCK=true)",
    )
    commands.add_parser("demo", help="walk one receivable through its whole life")
    commands.add_parser("openapi", help="print the OpenAPI document")
    ledger = commands.add_parser("ledger", help="ledger checks")
    ledger_commands = ledger.add_subparsers(dest="ledger_command", required=True)
    ledger_commands.add_parser("verify", help="recompute every balance; exit 1 on a mismatch")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "openapi":
        return _openapi()
    settings = Settings()
    if args.command == "migrate":
        return _migrate(settings)
    if args.command == "create-operator":
        return asyncio.run(_create_operator(settings, args.email, args.password))
    if args.command == "serve":
        return _serve(settings, args)
    if args.command == "worker":
        return _worker(settings, args)
    if args.command == "demo":
        from receivables.demo import run_demo

        _migrate(settings)
        return asyncio.run(run_demo(settings))
    return asyncio.run(_verify_ledger(settings))


if __name__ == "__main__":
    sys.exit(main())
