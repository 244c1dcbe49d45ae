"""The ``fo-assets`` command: demo, sandbox, events receiver, secrets, replay, instance set-up."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from fo_assets.events.inbox import InboxError
from fo_assets.secrets import Secret, SecretStoreError, generate_master_key
from fo_assets.settings import ConfigError, load_settings

if TYPE_CHECKING:  # imported where used: the command starts without loading Dagster or the SDK
    from fo_assets.landing import Ledger
    from fo_assets.settings import Settings
    from fo_assets.sinks.base import Sink


def _secrets(args: argparse.Namespace) -> int:
    settings = load_settings(config_file=args.config_file)
    store = settings.secret_store
    assert store is not None
    if args.action == "keygen":
        print(generate_master_key())
        return 0
    if args.action == "list":
        for name in store.names():
            print(name)  # names only: values are never printed
        return 0
    if not args.name:
        raise SystemExit(f"fo-assets secrets {args.action} needs a NAME")
    if args.action == "set":
        # The value never comes from argv: it would stay in shell history and the process list.
        value = getpass.getpass(f"{args.name}: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
        store.set(args.name, Secret(value))
        print(f"stored {args.name} in {store.path}")
        return 0
    if not store.delete(args.name):
        print(f"{args.name} is not in {store.path}", file=sys.stderr)
        return 1
    print(f"deleted {args.name}")
    return 0


def _instance_init(args: argparse.Namespace) -> int:
    import dagster as dg

    settings = load_settings(config_file=args.config_file)
    if settings.fo is None:
        print("no F&O environment configured (FO_BASE_URL): runs use the pool default of dagster.yaml")
        return 0
    with dg.DagsterInstance.get() as instance:
        instance.event_log_storage.set_concurrency_slots(settings.pool, args.pool_limit)
    print(f"pool {settings.pool}: at most {args.pool_limit} run(s) at once against this F&O environment")
    return 0


def _demo(args: argparse.Namespace) -> int:
    import warnings

    import dagster as dg

    from fo_assets.demo import run_demo

    # Partitioned asset checks are a preview feature in Dagster 1.13; the demo's reader need not see it.
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    return run_demo()


def _dev(args: argparse.Namespace) -> int:
    from fo_assets.devserver import run_dev

    return run_dev(args.port)


def _events_serve(args: argparse.Namespace) -> int:
    from fo_assets.events.inbox import open_inbox
    from fo_assets.events.receiver import serve

    settings = load_settings(config_file=args.config_file)
    secret = settings.secret("FO_EVENTS_SECRET").reveal()
    serve(open_inbox(settings), secret, args.host, args.port, args.certfile, args.keyfile, settings.receiver)
    return 0


def _events_drain(args: argparse.Namespace) -> int:
    import time

    from fo_assets.events.inbox import open_inbox
    from fo_assets.events.servicebus import drain, open_receiver

    settings = load_settings(config_file=args.config_file)
    queue = settings.require_servicebus_queue()
    connection = settings.secret("FO_SERVICEBUS_CONNECTION").reveal()
    inbox = open_inbox(settings)
    with open_receiver(connection, queue, settings.servicebus_subscription) as receiver:
        while True:
            stored = drain(receiver, inbox)
            print(f"{stored} new event(s) stored in {inbox.location}", flush=True)
            if not args.forever:
                return 0
            time.sleep(args.interval)


class CommandError(RuntimeError):
    """A command cannot go on (a workspace out of reach, an unknown batch): said in one line, exit 2."""


def _ledger(settings: Settings) -> tuple[Ledger, Sink | None]:
    """The ledger as this machine can know it: with the landing zone archived in a volume, the archived
    manifests are restored first (a new pod sees every batch a lost one archived). The sink comes
    along when building the ledger needed it."""
    from fo_assets.landing import Ledger
    from fo_assets.resources import build_ledger, build_sink
    from fo_assets.sinks.workspace import VolumeError, WorkspaceConnectionError

    db = settings.databricks
    if db is None or not db.landing_in_volume:
        return Ledger(settings.home), None
    try:
        sink = build_sink(settings)
        ledger = build_ledger(settings, sink)
        restored = ledger.restore()
    except (WorkspaceConnectionError, VolumeError) as exc:
        raise CommandError(f"cannot read the landing archive in /Volumes/{db.catalog}/{db.schema}/{db.volume}: "
                           f"{exc}") from None
    if restored:
        print(f"{len(restored)} batch manifest(s) restored from the landing archive", file=sys.stderr)
    return ledger, sink


def _replay(args: argparse.Namespace) -> int:
    import os

    from fo_assets.replay import DagsterRecord, replay
    from fo_assets.resources import build_sink

    settings = load_settings(config_file=args.config_file)
    ledger, sink = _ledger(settings)
    # "landed" too: when one load of a run fails, the run stops and the batches it landed after that
    # one are never loaded; they are as replayable as the failed one (loads are idempotent by key).
    try:
        batches = [ledger.get(args.batch)] if args.batch else [
            b for b in ledger.batches() if b.manifest.status in ("failed", "landed")]
    except KeyError as exc:
        raise CommandError(exc.args[0]) from None
    if not batches:
        print("no failed batches to replay")
        return 0
    sink = sink or build_sink(settings)
    record = None
    if os.environ.get("DAGSTER_HOME"):
        import dagster as dg

        record = DagsterRecord(dg.DagsterInstance.get(), settings.catalog, settings.asset_key_prefix)
    else:
        print("DAGSTER_HOME is not set: the replayed loads are not recorded in Dagster", file=sys.stderr)

    def report(line: str, failed: bool) -> None:
        print(line, file=sys.stderr if failed else sys.stdout)

    return 1 if replay(settings.catalog, ledger, sink, batches, record, report) else 0


def _batches(args: argparse.Namespace) -> int:
    ledger, _ = _ledger(load_settings(config_file=args.config_file))
    batches = ledger.batches(table=args.table)
    width = max((len(batch.manifest.table) for batch in batches), default=0)  # one column, however long
    for batch in batches:
        m = batch.manifest
        window = f"[{m.window[0]}, {m.window[1]})" if m.window else m.mode
        error = f"  {m.error}" if m.error else ""
        print(f"{m.batch_id}  {m.table:{width}s}  {m.status:10s} {m.row_count:>9} rows  {window}{error}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``fo-assets`` command line: every subcommand and its options."""
    parser = argparse.ArgumentParser(prog="fo-assets", description=__doc__)
    parser.add_argument(
        "--config-file", metavar="FILE",
        help="a code location's settings file (KEY=VALUE, e.g. deploy/customers/<name>/fo-assets.env); "
        "its values win over the environment",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    secrets = sub.add_parser("secrets", help="the encrypted credential store")
    secrets.add_argument("action", choices=["set", "list", "delete", "keygen"])
    secrets.add_argument("name", nargs="?")
    secrets.set_defaults(func=_secrets)

    demo = sub.add_parser("demo", help="the whole flow on the embedded sandbox and local Delta")
    demo.set_defaults(func=_demo)

    dev = sub.add_parser("dev", help="sandbox, events receiver and the Dagster UI wired together")
    dev.add_argument("--port", type=int, default=3000)
    dev.set_defaults(func=_dev)

    from fo_assets.sandbox.cli import register as register_sandbox

    register_sandbox(sub).set_defaults(func=lambda args: args.sandbox_func(args))

    events = sub.add_parser("events", help="the Business Events receiver")
    events_sub = events.add_subparsers(dest="events_command", required=True)
    serve = events_sub.add_parser("serve", help="accept F&O Business Events over HTTPS into the inbox")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--certfile", help="serve TLS with this certificate (omit behind a TLS proxy)")
    serve.add_argument("--keyfile")
    serve.set_defaults(func=_events_serve)

    drain = events_sub.add_parser("drain", help="move Business Events from Azure Service Bus into the inbox")
    drain.add_argument("--forever", action="store_true", help="keep draining (a long-running service)")
    drain.add_argument("--interval", type=float, default=5.0)
    drain.set_defaults(func=_events_drain)

    replay = sub.add_parser("replay", help="re-load landed batches from their Parquet parts (no F&O calls)")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--batch", help="one batch id")
    which.add_argument("--failed", action="store_true",
                       help="every batch whose load failed or never ran (landed by a run that stopped)")
    replay.set_defaults(func=_replay)

    batches = sub.add_parser("batches", help="the batch ledger: what was landed and what became of it")
    batches.add_argument("--table")
    batches.set_defaults(func=_batches)

    instance = sub.add_parser("instance", help="Dagster instance set-up")
    instance_sub = instance.add_subparsers(dest="instance_command", required=True)
    init = instance_sub.add_parser("init", help="set the per-environment F&O pool limit")
    init.add_argument("--pool-limit", type=int, default=1)
    init.set_defaults(func=_instance_init)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``fo-assets`` command; a configuration or command error is one line on stderr and exit 2."""
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (ConfigError, SecretStoreError, InboxError, CommandError) as exc:
        print(f"fo-assets: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
