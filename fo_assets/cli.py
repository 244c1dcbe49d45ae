"""The ``fo-assets`` command: demo, sandbox, events receiver, secrets, replay, instance set-up."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Callable, Sequence

from fo_assets.secrets import Secret, SecretStoreError, generate_master_key
from fo_assets.settings import ConfigError, load_settings


def _secrets(args: argparse.Namespace) -> int:
    settings = load_settings()
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

    settings = load_settings()
    with dg.DagsterInstance.get() as instance:
        instance.event_log_storage.set_concurrency_slots(settings.pool, args.pool_limit)
    print(f"pool {settings.pool}: at most {args.pool_limit} run(s) at once against this F&O environment")
    return 0


def _demo(args: argparse.Namespace) -> int:
    settings = load_settings()
    print(f"fo-assets home: {settings.home}")
    print(f"F&O: {settings.fo.base_url if settings.fo else 'not configured (the embedded sandbox will be used)'}")
    print(f"sink: {'Databricks ' + settings.databricks.host if settings.databricks else 'local Delta under ' + str(settings.delta_root)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fo-assets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    secrets = sub.add_parser("secrets", help="the encrypted credential store")
    secrets.add_argument("action", choices=["set", "list", "delete", "keygen"])
    secrets.add_argument("name", nargs="?")
    secrets.set_defaults(func=_secrets)

    demo = sub.add_parser("demo", help="the whole flow on the embedded sandbox and local Delta")
    demo.set_defaults(func=_demo)

    instance = sub.add_parser("instance", help="Dagster instance set-up")
    instance_sub = instance.add_subparsers(dest="instance_command", required=True)
    init = instance_sub.add_parser("init", help="set the per-environment F&O pool limit")
    init.add_argument("--pool-limit", type=int, default=1)
    init.set_defaults(func=_instance_init)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (ConfigError, SecretStoreError) as exc:
        print(f"fo-assets: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
