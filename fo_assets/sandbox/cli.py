"""``fo-assets sandbox serve|change|emit`` (also ``python -m fo_assets.sandbox ...``)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import secrets
import shlex
import signal
import ssl
import threading
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx

from .app import ADMIN_HEADER
from .config import LatencyModel, SandboxConfig
from .sandbox import Sandbox

STATE_FILE = "sandbox.json"
READY_LINE = "# F&O sandbox serving"


def read_exports(lines: Iterable[str]) -> dict[str, str]:
    """The variables ``serve`` exported, read from its output up to its ready line (for scripts and tests)."""
    exports: dict[str, str] = {}
    for line in lines:
        if line.startswith("export "):
            name, _, value = line[len("export ") :].strip().partition("=")
            exports[name] = shlex.split(value)[0]
        elif line.startswith(READY_LINE):
            return exports
    raise RuntimeError("the sandbox exited before it was ready")


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "sandbox", help="a local Dynamics 365 F&O (OData over HTTPS, token endpoint, events)"
    )
    _add_commands(parser)
    return parser


def _add_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="sandbox_command", required=True)
    serve = sub.add_parser("serve", help="run the sandbox in the foreground and print the export lines")
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port (a state dir remembers it)")
    serve.add_argument("--scale", type=float, default=1.0)
    serve.add_argument("--seed", type=int, default=7)
    serve.add_argument("--days", type=int, default=30)
    serve.add_argument(
        "--anchor-date", type=dt.date.fromisoformat, default=None, help="YYYY-MM-DD, default today (UTC)"
    )
    serve.add_argument("--companies", default="usmf,demf,gbsi")
    serve.add_argument("--default-company", default="usmf")
    serve.add_argument("--page-size", type=int, default=10_000)
    serve.add_argument("--token-lifetime", type=int, default=3600, help="seconds")
    serve.add_argument("--state-dir", type=Path, help="keep CA, credentials and port here across restarts")
    serve.add_argument(
        "--extension-entities", action="store_true", help="also serve the customer extension ContosoProjectBudgets"
    )
    serve.add_argument("--stable-order", action="store_true", help="keep key order without $orderby (unlike F&O)")
    serve.add_argument("--max-filter-nodes", type=int, default=100, help="MaxNodeCount of $filter; 0 lifts it")
    serve.add_argument(
        "--date-filter-offset", default="-08:00", help="UTC offset in which date-time literals become dates"
    )
    serve.add_argument(
        "--lower-case-bi-companies", action="store_true", help="BI entities and Ledgers answer companies lower case"
    )
    latency = serve.add_argument_group("latency model (off unless --latency-model)")
    latency.add_argument("--latency-model", action="store_true", help="take F&O's server time and limits")
    defaults = LatencyModel()
    for name, helptext in (
        ("base_s", "server seconds per request"),
        ("per_row_s", "server seconds per row"),
        ("per_mb_s", "server seconds per MB of JSON"),
        ("max_concurrent", "concurrent requests per user"),
        ("max_requests", "requests per user per window"),
        ("execution_budget_s", "seconds of execution per user per window"),
        ("window_s", "the sliding window, seconds"),
    ):
        default = getattr(defaults, name)
        latency.add_argument(f"--latency-{name.replace('_', '-')}", type=type(default), default=default, help=helptext)
    serve.set_defaults(sandbox_func=_serve)

    for name, helptext in (
        ("change", "update, insert or delete a record of a running sandbox"),
        ("post-invoice", "post a pending vendor invoice of a running sandbox"),
        ("emit", "send Business Events of a running sandbox to an HTTPS endpoint"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--state-dir", type=Path, help="read URL, admin token and CA of a sandbox served with it")
        p.add_argument("--base-url", help="default: FO_BASE_URL")
        p.add_argument("--admin-token", help="default: FO_SANDBOX_ADMIN_TOKEN")
        p.add_argument("--ca-bundle", help="the sandbox CA; default: FO_CA_BUNDLE")
        if name == "change":
            p.add_argument("op", choices=("update", "insert", "delete"))
            p.add_argument("entity_set")
            p.add_argument("--key", action="append", default=[], metavar="FIELD=VALUE")
            p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", dest="values")
            p.set_defaults(sandbox_func=_change)
        elif name == "post-invoice":
            p.add_argument("company")
            p.add_argument("header_reference", metavar="HEADER_REFERENCE")
            p.set_defaults(sandbox_func=_post_invoice)
        else:
            p.add_argument("--url", required=True, help="the receiving HTTPS endpoint")
            p.add_argument("--receiver-ca", help="CA bundle that verifies the receiver's certificate")
            p.add_argument("--changed", action="store_true", help="events for records changed since the last emit")
            p.add_argument("--po", action="append", default=[], metavar="COMPANY:PO_NUMBER")
            p.add_argument(
                "--invoice", action="append", default=[], metavar="COMPANY:INVOICE_ACCOUNT:INVOICE_ID",
                help="a posted invoice",
            )
            p.add_argument(
                "--invoice-naming", choices=("invoice", "vendor"), default="invoice",
                help="name posted invoices InvoiceAccount/InvoiceId (default) or VendorAccount/InvoiceNumber",
            )
            for flag in ("--duplicates", "--shuffle", "--batch"):
                p.add_argument(flag, action="store_true")
            p.set_defaults(sandbox_func=_emit)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fo-assets-sandbox", description="a local Dynamics 365 F&O")
    _add_commands(parser)
    args = parser.parse_args(argv)
    return int(args.sandbox_func(args) or 0)


def _load_state(state_dir: Path | None) -> dict[str, Any]:
    path = state_dir / STATE_FILE if state_dir else None
    return json.loads(path.read_text()) if path and path.exists() else {}


def _serve(args: argparse.Namespace) -> int:
    state = _load_state(args.state_dir)
    cfg = SandboxConfig(
        seed=args.seed,
        scale=args.scale,
        days=args.days,
        anchor_date=args.anchor_date,
        companies=tuple(c.strip() for c in args.companies.split(",") if c.strip()),
        default_company=args.default_company,
        page_size=args.page_size,
        token_lifetime_s=args.token_lifetime,
        state_dir=args.state_dir,
        extension_entities=args.extension_entities,
        unstable_order=not args.stable_order,
        max_filter_nodes=args.max_filter_nodes or None,
        date_filter_utc_offset=args.date_filter_offset,
        upper_case_bi_companies=not args.lower_case_bi_companies,
        latency=_latency(args),
        port=args.port or state.get("port", 0),
        tenant_id=state.get("tenant_id") or str(uuid.uuid4()),
        client_id=state.get("client_id") or str(uuid.uuid4()),
        client_secret=state.get("client_secret") or secrets.token_urlsafe(30),
    )
    with Sandbox(cfg, admin_token=state.get("admin_token")) as sb:
        if args.state_dir:
            path = args.state_dir / STATE_FILE
            path.write_text(
                json.dumps(
                    {
                        "port": sb.port,
                        "base_url": sb.base_url,
                        "ca_path": str(sb.ca_path),
                        "admin_token": sb.admin_token,
                        "tenant_id": cfg.tenant_id,
                        "client_id": cfg.client_id,
                        "client_secret": cfg.client_secret,
                    },
                    indent=2,
                )
            )
            path.chmod(0o600)
        # Before the ready line: a supervisor may stop the sandbox the moment it reads it.
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        for name, value in {**sb.env(), "FO_SANDBOX_ADMIN_TOKEN": sb.admin_token}.items():
            print(f"export {name}={shlex.quote(value)}")
        print(
            f"{READY_LINE} {sb.base_url}/data (scale {cfg.scale}, {cfg.days} days to {cfg.anchor}); Ctrl-C stops it",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


def _latency(args: argparse.Namespace) -> LatencyModel | None:
    if not args.latency_model:
        return None
    names = [f.name for f in dataclasses.fields(LatencyModel)]
    return LatencyModel(**{name: getattr(args, f"latency_{name}") for name in names})


def _admin(args: argparse.Namespace, endpoint: str, payload: dict[str, Any]) -> Any:
    state = _load_state(args.state_dir)
    base_url = args.base_url or state.get("base_url") or os.environ.get("FO_BASE_URL")
    token = args.admin_token or state.get("admin_token") or os.environ.get("FO_SANDBOX_ADMIN_TOKEN")
    ca = args.ca_bundle or state.get("ca_path") or os.environ.get("FO_CA_BUNDLE")
    if not (base_url and token and ca):
        raise SystemExit(
            "need the sandbox URL, admin token and CA: --state-dir, or --base-url/--admin-token/"
            "--ca-bundle, or FO_BASE_URL/FO_SANDBOX_ADMIN_TOKEN/FO_CA_BUNDLE"
        )
    response = httpx.post(
        f"{base_url}/_sandbox/{endpoint}",
        json=payload,
        headers={ADMIN_HEADER: token},
        verify=ssl.create_default_context(cafile=ca),
        trust_env=False,
        timeout=60,
    )
    if response.status_code != 200:
        raise SystemExit(f"sandbox {endpoint} failed ({response.status_code}): {response.text}")
    result = response.json()["result"]
    print(json.dumps(result))
    return result


def _pairs(items: list[str]) -> dict[str, str]:
    bad = [i for i in items if "=" not in i]
    if bad:
        raise SystemExit(f"expected FIELD=VALUE, got {bad}")
    return dict(i.split("=", 1) for i in items)


def _change(args: argparse.Namespace) -> int:
    payload: dict[str, Any] = {"op": args.op, "entity_set": args.entity_set, "key": _pairs(args.key)}
    payload["values"] = {**payload["key"], **_pairs(args.values)} if args.op == "insert" else _pairs(args.values)
    _admin(args, "changes", payload)
    return 0


def _post_invoice(args: argparse.Namespace) -> int:
    _admin(args, "post_invoice", {"company": args.company, "header_reference": args.header_reference})
    return 0


def _emit(args: argparse.Namespace) -> int:
    events = [dict(zip(("company", "po_number"), p.split(":", 1)), type="purchase_order_confirmed") for p in args.po]
    events += [
        dict(zip(("company", "invoice_account", "invoice_id"), i.split(":", 2)), type="vendor_invoice_posted")
        for i in args.invoice
    ]
    if not events and not args.changed:
        raise SystemExit("nothing to emit: give --changed, --po or --invoice")
    statuses = _admin(
        args,
        "events",
        {
            "url": args.url,
            "ca_bundle": args.receiver_ca,
            "changed": args.changed,
            "events": events,
            "naming": args.invoice_naming,
            "duplicates": args.duplicates,
            "shuffle": args.shuffle,
            "batch": args.batch,
        },
    )
    return 0 if all(200 <= s < 300 for s in statuses) else 1
