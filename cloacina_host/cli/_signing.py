"""``cloacina-ctl signing-keys generate|show``, ``sign`` and ``trust add|list|remove``: signed packages.

Keys are Ed25519 in the standard file forms (``_packaging._keys``); a key given by name is
``<home>/signing-keys/NAME.key``. An encrypted key's passphrase comes from
``$CLOACINA_SIGNING_PASSPHRASE``, else from a prompt on a terminal. The trust store is the tenant's
(``--tenant``), through the registry.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._common import Settings, global_options, pass_settings, print_json

if TYPE_CHECKING:
    from .._packaging import SigningKey
    from .._registry import TrustStore

KEYS_DIR = "signing-keys"


def keys_directory(settings: Settings) -> Path:
    from .._settings import cloacina_home

    return cloacina_home(settings.home) / KEYS_DIR


def _passphrase(prompt: str, *, confirm: bool = False) -> Callable[[], bytes]:
    """The passphrase source: ``$CLOACINA_SIGNING_PASSPHRASE``, else a prompt when stdin is a terminal."""

    def read() -> bytes:
        from .._errors import UsageError
        from .._packaging import PASSPHRASE_ENV

        value = os.environ.get(PASSPHRASE_ENV)
        if value is not None:
            return value.encode("utf-8")
        if not sys.stdin.isatty():
            raise UsageError(
                f"{prompt} needs a passphrase: set {PASSPHRASE_ENV}, or run the command in a terminal to be asked."
            )
        entered: str = click.prompt(
            f"Passphrase for {prompt}", hide_input=True, confirmation_prompt=confirm, err=True, type=str
        )
        return entered.encode("utf-8")

    return read


def key_path(settings: Settings, value: str) -> Path:
    """A key given as a path, or by name (``<home>/signing-keys/NAME.key``)."""
    from .._packaging._keys import KEY_NAME, PRIVATE_SUFFIX

    path = Path(value).expanduser()
    if path.exists() or not KEY_NAME.fullmatch(value) or value.endswith((PRIVATE_SUFFIX, ".pem")):
        return path
    named = keys_directory(settings) / f"{value}{PRIVATE_SUFFIX}"
    if named.exists():
        return named
    from .._packaging import SigningError

    raise SigningError(
        f"No key file {value!r} here, nor {named}. Give the private key file's path, or make a key with "
        f"`cloacina-ctl signing-keys generate {value}`."
    )


def load_keys(settings: Settings, values: tuple[str, ...], key_name: str | None = None) -> list[SigningKey]:
    """The signing keys named by ``--sign``/``--key`` options, read (and decrypted) before any slow work."""
    from .._errors import UsageError
    from .._packaging import load_signing_key

    if key_name is not None and len(values) > 1:
        raise UsageError("--key-name names one key; give it with a single --key (or --sign).")
    keys = [
        load_signing_key(path, passphrase=_passphrase(f"key {path}"), name=key_name)
        for path in (key_path(settings, v) for v in values)
    ]
    fingerprints = [k.fingerprint for k in keys]
    if len(set(fingerprints)) != len(fingerprints):
        raise UsageError("The same key is given twice; each key signs once.")
    return keys


@click.group("signing-keys")
def signing_keys_group() -> None:
    """Ed25519 signing keys: make one, show a key's fingerprint and public key.

    \b
    A private key is PKCS#8 PEM (as `openssl genpkey -algorithm ed25519` writes; optionally
    encrypted with a passphrase), a public key SubjectPublicKeyInfo PEM (`openssl pkey -pubout`).
    A key's fingerprint is the sha256 of its raw 32 public bytes. Keys made here go to
    <home>/signing-keys/NAME.key and NAME.pub, and can then be given by NAME.
    """


@signing_keys_group.command("generate")
@click.argument("name")
@click.option(
    "--directory",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to write NAME.key and NAME.pub [default: <home>/signing-keys].",
)
@click.option(
    "--encrypt",
    is_flag=True,
    help="Protect the private key with a passphrase: $CLOACINA_SIGNING_PASSPHRASE, else asked twice on the terminal.",
)
@global_options
@pass_settings
def generate_command(settings: Settings, name: str, directory: Path | None, encrypt: bool) -> None:
    """Make an Ed25519 key pair NAME: NAME.key (private, mode 0600) and NAME.pub (public, to share).

    \b
    Then: sign with it (`cloacina-ctl package . -o x.cloacina --sign NAME`, or
    `cloacina-ctl sign x.cloacina --key NAME`), and let a tenant trust it
    (`cloacina-ctl trust add NAME NAME.pub`, on the machine that registers).
    Existing files are never overwritten.
    """
    from .._packaging import generate_key_pair

    where = directory if directory is not None else keys_directory(settings)
    passphrase = _passphrase(f"the new key {name!r}", confirm=True)() if encrypt else None
    made = generate_key_pair(name, where, passphrase=passphrase)
    if settings.json:
        print_json(
            {
                "name": made.name,
                "private_key": str(made.private_path),
                "public_key": str(made.public_path),
                "fingerprint": made.public.fingerprint,
                "encrypted": made.encrypted,
                "public_key_text": made.public.one_line,
            }
        )
        return
    say = settings.err.print
    say(f"Wrote {made.private_path} (private, mode 0600{', encrypted' if made.encrypted else ''}: keep it secret)")
    say(f"Wrote {made.public_path} (public: share it)")
    say(f"Fingerprint {made.public.fingerprint}")
    say(f"Trust it in a tenant: cloacina-ctl trust add {made.name} {made.public.one_line}", markup=False)
    click.echo(made.public.fingerprint)


@signing_keys_group.command("show")
@click.argument("key")
@global_options
@pass_settings
def show_key_command(settings: Settings, key: str) -> None:
    """Show KEY's fingerprint and public key (KEY: a private or public key file, or a key's NAME)."""
    from .._packaging import load_signing_key, read_public_key

    path = key_path(settings, key)
    data = path.read_bytes()[:65536] if path.is_file() else b""
    if b"PRIVATE KEY-----" in data:
        public = load_signing_key(path, passphrase=_passphrase(f"key {path}")).public
    else:
        public = read_public_key(str(path))
    if settings.json:
        print_json({"fingerprint": public.fingerprint, "public_key": public.pem, "public_key_text": public.one_line})
        return
    settings.out.print(f"fingerprint  {public.fingerprint}", markup=False, highlight=False)
    settings.out.print(f"public key   {public.one_line}", markup=False, highlight=False)


@click.command("sign")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--key",
    "keys",
    multiple=True,
    required=True,
    metavar="KEY",
    help="Private key file, or a key's NAME under <home>/signing-keys; repeatable (each key signs once).",
)
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Write here [default: FILE, in place]."
)
@click.option("--key-name", help="The name recorded in the signature [default: the key file's name, without .key].")
@global_options
@pass_settings
def sign_command(
    settings: Settings, file: Path, keys: tuple[str, ...], output: Path | None, key_name: str | None
) -> None:
    """Sign the .cloacina archive FILE with KEY (added to any signatures it carries).

    \b
    The signature covers manifest.json's bytes, which pin every wheel's sha256; it is added as
    signatures/<fingerprint>.json after the manifest. The archive must pass every check first (its
    other signatures must verify). Signing gives the same bytes as `package --sign` with the same
    keys. An encrypted key's passphrase: $CLOACINA_SIGNING_PASSPHRASE, else asked on the terminal.
    """
    from .._packaging import sign_archive

    signing = load_keys(settings, keys, key_name)
    result = sign_archive(file, signing, output=output)
    if settings.json:
        print_json(
            {
                "path": str(result.path),
                "sha256": result.sha256,
                "size": result.size,
                "added": list(result.added),
                "signatures": [s.to_json() for s in result.signatures],
            }
        )
        return
    for k in signing:
        state = "signed" if k.fingerprint in result.added else "already signed"
        settings.err.print(f"{state} by {k.name} ({k.fingerprint[:16]})", markup=False, highlight=False)
    settings.out.print(
        f"{result.path} ({result.size:,} bytes, {len(result.signatures)} signature(s))", markup=False, highlight=False
    )


# -- trust ----------------------------------------------------------------------------------------


def _store(settings: Settings, *, read_only: bool = False) -> TrustStore:
    from .._registry import TrustStore

    return TrustStore(settings.database(read_only=read_only), settings.tenant)


def _utc(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


@click.group("trust")
def trust_group() -> None:
    """The public keys the tenant (--tenant) trusts to sign packages.

    \b
    With `cloacina-ctl tenants policy TENANT --require-signatures`, register, serve --watch and
    every later load accept only archives signed by one of them. Removing a key revokes it: new
    registrations signed by it are refused; the versions it signed are listed and keep running
    until deactivated.
    """


@trust_group.command("add")
@click.argument("name")
@click.argument("public_key", metavar="PUBKEY|FILE")
@global_options
@pass_settings
def trust_add_command(settings: Settings, name: str, public_key: str) -> None:
    """Trust PUBKEY under NAME in the tenant.

    PUBKEY: a public key file (SubjectPublicKeyInfo PEM, e.g. NAME.pub), the key's PEM text, its
    one-line base64 form (what `signing-keys generate` prints) or an `ssh-ed25519 ...` line.
    A revoked key added again is trusted again.
    """
    from .._packaging import read_public_key

    key = read_public_key(public_key)
    result = _store(settings).add(name, key)
    if settings.json:
        print_json(result.to_json())
        return
    verb = {"added": "Trusted", "restored": "Trusted again", "unchanged": "Already trusted:"}[result.status]
    settings.out.print(
        f"{verb} key {result.key.name} ({result.key.fingerprint}) in tenant {result.tenant!r}",
        markup=False,
        highlight=False,
    )


@trust_group.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Also list revoked keys.")
@global_options
@pass_settings
def trust_list_command(settings: Settings, include_revoked: bool) -> None:
    """List the tenant's trusted keys (name, fingerprint, when added) and its signature policy."""
    from rich.table import Table

    store = _store(settings, read_only=True)
    keys = store.keys(include_revoked=include_revoked)
    policy = store.policy()
    if settings.json:
        print_json(
            {
                "tenant": settings.tenant,
                "require_signatures": policy.require_signatures,
                "keys": [k.to_json() for k in keys],
            }
        )
        return
    required = "required" if policy.require_signatures else "not required"
    settings.err.print(f"Tenant {settings.tenant!r}: signatures {required}", markup=False, highlight=False)
    if not keys:
        settings.out.print(
            f"No trusted keys in tenant {settings.tenant!r}. Add one: cloacina-ctl trust add NAME PUBKEY",
            markup=False,
            highlight=False,
        )
        return
    table = Table(box=None, pad_edge=False)
    for column in ("NAME", "FINGERPRINT", "ADDED", "REVOKED"):
        table.add_column(column, no_wrap=True)
    for k in keys:
        table.add_row(k.name, k.fingerprint, _utc(k.added_at), _utc(k.revoked_at))
    settings.out.print(table)


@trust_group.command("remove")
@click.argument("key", metavar="NAME|FINGERPRINT")
@global_options
@pass_settings
def trust_remove_command(settings: Settings, key: str) -> None:
    """Revoke a trusted key (by name, or fingerprint prefix of 8+ digits).

    New registrations signed by it are refused from now on. The registered versions it signed
    are listed: they keep running until deactivated (cloacina-ctl packages deactivate NAME).
    Exit 3 when the tenant has no such key.
    """
    result = _store(settings).revoke(key)
    if settings.json:
        print_json(result.to_json())
        return
    k = result.key
    head = "Revoked" if result.changed else "Already revoked:"
    settings.out.print(
        f"{head} key {k.name} ({k.fingerprint}) in tenant {result.tenant!r}", markup=False, highlight=False
    )
    if not result.signed:
        settings.out.print("No registered version is signed by it.", markup=False, highlight=False)
        return
    settings.out.print(
        "Registered versions it signed (they keep running until deactivated: cloacina-ctl packages deactivate NAME):",
        markup=False,
        highlight=False,
    )
    for v in result.signed:
        settings.out.print(f"  {v.name} {v.version}{' (active)' if v.active else ''}", markup=False, highlight=False)
