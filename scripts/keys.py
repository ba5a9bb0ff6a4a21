"""Create, list and revoke API keys in Redis (REDIS_URL) or a keys file (API_KEYS_FILE)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eta311.plans import PLANS, Plan  # noqa: E402
from eta311.settings import Settings, SettingsError  # noqa: E402
from eta311.web.gate.keys import new_key, open_key_store, revoke  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="make a key; it is printed once and never stored")
    create.add_argument("--name", required=True, help="who the key is for")
    create.add_argument("--plan", choices=sorted(PLANS), default="free")
    create.add_argument("--rate", type=float, help="requests per second (overrides the plan)")
    create.add_argument("--burst", type=int, help="requests at once (overrides the plan)")
    create.add_argument("--quota", type=int, help="requests per day (overrides the plan)")
    commands.add_parser("list", help="every key: id, name, plan, limits, created, revoked")
    revoke_parser = commands.add_parser("revoke", help="refuse a key from now on (403)")
    revoke_parser.add_argument("key_id")
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
        keys = open_key_store(settings.redis_url, settings.api_keys_file)
    except SettingsError as exc:
        parser.error(str(exc))

    if args.command == "create":
        base = PLANS[args.plan]
        plan = Plan(base.name, args.rate or base.rate, args.burst or base.burst, args.quota or base.quota)
        key, record = new_key(args.name, plan)
        keys.put(record)
        print(
            f"created key {record.key_id} for {record.name} on the {plan.name} plan"
            f" ({plan.rate:g}/s, burst {plan.burst}, {plan.quota:,}/day). The key, shown only now:"
        )
        print(key)
    elif args.command == "list":
        for r in keys.all():
            status = f"revoked {r.revoked}" if r.revoked else "active"
            print(
                f"{r.key_id}  {r.name:<24} {r.plan:<9} {r.rate:g}/s burst {r.burst} {r.quota:,}/day  created {r.created}  {status}"
            )
    else:
        try:
            record = revoke(keys, args.key_id)
        except KeyError:
            print(f"no key {args.key_id}", file=sys.stderr)
            return 1
        print(f"revoked {record.key_id} ({record.name}) at {record.revoked}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
