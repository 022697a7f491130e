"""``carewire keys``: the encryption keys at rest: status, rotation, a key for the environment.

``status`` shows where the key-encryption key (KEK) is read, the stored data
keys (ids, which KEK wraps them, which one encrypts new values) and how many
values are sealed. ``rotate`` makes a new KEK and re-wraps every data key
under it while the server keeps running (the server follows within
``encryption.refresh_interval``); ``--new-data-key`` also starts a new data
key for new writes. Old data stays readable. See docs/encryption.md.
"""

from __future__ import annotations

import argparse
import os

from carewire.cli.audit_trail import record
from carewire.cli.runtime import (
    Services,
    Subparsers,
    WithDataDir,
    config,
    run_with_platform,
    sealed_counts,
)
from carewire.errors import ConfigError
from carewire.security.envelope import LocalKek, generate_key
from carewire.security.keys import (
    KEK_ENV,
    ConfiguredKek,
    encode_key,
    parse_keys,
    read_key_file,
    write_key_file,
)

#: With the KEK in the environment, ``rotate`` reads the new one from here.
NEW_KEK_ENV = "CAREWIRE_KEK_NEW"


def _when(at: object) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S}" if at is not None else "-"


def cmd_keys_status(args: argparse.Namespace) -> int:
    """Show the KEK's source, the stored data keys and how many values are sealed."""

    async def work(p: Services) -> int:
        keys = p.core.keys
        current = keys.source.load()[0].kek_id
        ring = p.keyring
        print(f"key-encryption key  {current}  (from {keys.source.name})")
        print(f"encrypt new values  {'yes' if ring.encrypt_new else 'NO (encryption.enabled)'}")
        print(f"{'id':>4}  {'purpose':<7}  {'wrapped by':<24}  {'created':<19}  active from")
        for row in await keys.stored():
            mark = "  <- encrypts new values" if row.key_id == ring.active_id else ""
            print(
                f"{row.key_id:>4}  {row.purpose:<7}  {row.kek_id:<24}  "
                f"{_when(row.created_at)}  {_when(row.active_from)}{mark}"
            )
        print("values (sealed / plaintext):")
        for column, (sealed, plain) in (await sealed_counts(p)).items():
            print(f"  {column:<28} {sealed:>9} / {plain}")
        return 0

    return run_with_platform(args, work)


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    """Re-wrap every data key under a new KEK while the server runs; old data stays readable."""
    cfg = config(args)
    source = ConfiguredKek(key_file=cfg.kek_file, env=os.environ)
    old = source.load()
    if source.is_env:
        value = os.environ.get(NEW_KEK_ENV, "").strip()
        if not value:
            raise ConfigError(
                f"the KEK comes from ${KEK_ENV}: put the new one in ${NEW_KEK_ENV}"
                " ('carewire keys generate' makes one), then run rotate again"
            )
        new = parse_keys(value, f"${NEW_KEK_ENV}")[0]
    else:
        raw = generate_key()
        new = LocalKek(raw)
        # The new key goes first, the old ones stay until every stored key is re-wrapped:
        # a failure in between leaves a file that opens everything.
        write_key_file(cfg.kek_file, [raw, *read_key_file(cfg.kek_file)])

    async def work(p: Services) -> int:
        rotation = await p.core.keys.rotate(new, new_data_key=args.new_data_key)
        details: dict[str, object] = {
            "new_kek": rotation.new_kek_id,
            "old_kek": list(rotation.old_kek_ids),
            "rewrapped": rotation.rewrapped,
        }
        if rotation.new_data_key is not None:
            details["new_data_key"] = rotation.new_data_key
        await record(p, "keys.rotate", rotation.new_kek_id, details=details)
        print(f"re-wrapped {rotation.rewrapped} stored key(s) under {rotation.new_kek_id}")
        if rotation.new_data_key is not None:
            print(
                f"new data key {rotation.new_data_key} encrypts new values from "
                f"{_when(rotation.active_from)} UTC (running servers load it before then)"
            )
        return 0

    result = run_with_platform(args, work)
    if source.is_env:
        print(f"now set ${KEK_ENV} to the value of ${NEW_KEK_ENV} and unset ${NEW_KEK_ENV};")
        print("the old key opens nothing any more.")
    else:
        write_key_file(cfg.kek_file, [raw])
        print(f"{cfg.kek_file} holds the new key only ({len(old)} old key(s) dropped):")
        print("back it up now; older backups of the key file no longer open the data.")
    return result


def cmd_keys_generate(_args: argparse.Namespace) -> int:
    """Print a new random KEK (base64) for the environment variable; nothing is stored."""
    print(encode_key(generate_key()))
    return 0


def register(sub: Subparsers, with_data_dir: WithDataDir) -> None:
    """Register ``keys status|rotate|generate`` under the top-level parser."""
    keys = sub.add_parser(
        "keys", help="encryption keys at rest", description=__doc__.splitlines()[0]
    )
    ksub = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    status = with_data_dir(
        ksub.add_parser(
            "status", help="KEK, data keys, sealed values", description=cmd_keys_status.__doc__
        )
    )
    status.set_defaults(func=cmd_keys_status)
    rotate = with_data_dir(
        ksub.add_parser("rotate", help="new KEK, re-wrap data keys", description=__doc__)
    )
    rotate.add_argument(
        "--new-data-key",
        action="store_true",
        help="also make a new data key for new writes (old data keys still decrypt)",
    )
    rotate.set_defaults(func=cmd_keys_rotate)
    generate = ksub.add_parser(
        "generate", help="print a new KEK for $CAREWIRE_KEK", description=cmd_keys_generate.__doc__
    )
    generate.set_defaults(func=cmd_keys_generate)
