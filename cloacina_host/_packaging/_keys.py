"""Ed25519 signing keys in the standard file forms, through the ``cryptography`` library.

A private key is PKCS#8 PEM (``-----BEGIN PRIVATE KEY-----``, what ``openssl genpkey -algorithm
ed25519`` writes), optionally encrypted with a passphrase (``-----BEGIN ENCRYPTED PRIVATE KEY-----``,
PBES2 as ``openssl pkcs8 -topk8 -v2 aes-256-cbc`` writes). A public key is SubjectPublicKeyInfo PEM
(``openssl pkey -pubout``); its one-line form is the base64 between the PEM lines, which can be
pasted as one shell argument. ``trust add`` also reads an OpenSSH ``ssh-ed25519 AAAA...`` line.

A key's fingerprint is the lower-case hex sha256 of its raw 32 public bytes: the same key has the
same fingerprint whatever file form it came in. ``cryptography`` is imported on first use, so that
commands which never sign or verify do not pay for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .._files import FileTooLarge, NotRegularFile, read_regular_file
from ._errors import SigningError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = [
    "KEY_NAME",
    "PASSPHRASE_ENV",
    "KeyPairFiles",
    "PublicKey",
    "SigningKey",
    "fingerprint_of",
    "generate_key_pair",
    "load_signing_key",
    "parse_public_key",
]

#: Where ``cloacina-ctl`` reads a key file's passphrase from (else it prompts, on a terminal).
PASSPHRASE_ENV = "CLOACINA_SIGNING_PASSPHRASE"
#: A key's name: recorded in the signatures it makes and in the tenant's trust store.
KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: Largest key file read (a PEM key is a few hundred bytes).
MAX_KEY_FILE_SIZE = 64 * 1024
PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub"

Passphrase = Callable[[], bytes]


def fingerprint_of(raw_public_key: bytes) -> str:
    """The fingerprint of a key: sha256 of its raw 32 public bytes, lower-case hex."""
    return hashlib.sha256(raw_public_key).hexdigest()


def check_key_name(name: str) -> str:
    if not isinstance(name, str) or not KEY_NAME.fullmatch(name):
        raise SigningError(
            f"Key name {name!r} is not allowed: use 1 to 64 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit (e.g. release-2026)."
        )
    return name


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key: its raw 32 bytes, fingerprint and SubjectPublicKeyInfo PEM text."""

    raw: bytes
    fingerprint: str
    pem: str

    @property
    def one_line(self) -> str:
        """The base64 body of the PEM on one line: what ``trust add NAME KEY`` accepts pasted."""
        return "".join(line for line in self.pem.splitlines() if not line.startswith("-----"))

    @classmethod
    def from_raw(cls, raw: bytes) -> PublicKey:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        pem = Ed25519PublicKey.from_public_bytes(raw).public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        return cls(raw=raw, fingerprint=fingerprint_of(raw), pem=pem.decode("ascii"))


@dataclass(frozen=True)
class SigningKey:
    """A private key read from ``path``, ready to sign; ``name`` goes into the signatures it makes."""

    name: str
    path: str
    public: PublicKey
    _key: Ed25519PrivateKey = field(repr=False, compare=False)

    @property
    def fingerprint(self) -> str:
        return self.public.fingerprint

    def sign(self, data: bytes) -> bytes:
        """The Ed25519 signature of ``data`` (64 bytes; deterministic: the same data, the same signature)."""
        return self._key.sign(data)


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _read_key_file(path: str) -> bytes:
    try:
        return read_regular_file(path, MAX_KEY_FILE_SIZE)
    except FileNotFoundError:
        raise SigningError(
            f"Key file {path} does not exist. Make a key with `cloacina-ctl signing-keys generate NAME`.", path=path
        ) from None
    except NotRegularFile as exc:
        raise SigningError(f"Key file {path} is {exc.kind}, not a key file.", path=path) from None
    except FileTooLarge:
        raise SigningError(
            f"{path} is larger than {MAX_KEY_FILE_SIZE:,} bytes, so it is not a key file (a PEM key is a few "
            "hundred bytes).",
            path=path,
        ) from None
    except IsADirectoryError:
        raise SigningError(f"Key file {path} is a directory, not a key file.", path=path) from None
    except OSError as exc:
        raise SigningError(f"Key file {path} cannot be read: {exc.strerror or exc}.", path=path) from None


def load_signing_key(path: str | os.PathLike[str], *, passphrase: Passphrase, name: str | None = None) -> SigningKey:
    """Read the Ed25519 private key ``path`` (PKCS#8 PEM, perhaps encrypted); ``SigningError`` when it cannot be.

    ``passphrase`` is called only when the key is encrypted. ``name`` (default: the file's name
    without ``.key``/``.pem``) is the name recorded in the signatures it makes.
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    where = os.fspath(path)
    key_name = check_key_name(name if name is not None else _stem(Path(where)))
    data = _read_key_file(where)
    if b"-----BEGIN" not in data:
        raise SigningError(
            f"{where} is not a PEM key file (no -----BEGIN line); give an Ed25519 private key in PKCS#8 PEM, as "
            "`cloacina-ctl signing-keys generate` or `openssl genpkey -algorithm ed25519` writes.",
            path=where,
        )
    if b"PUBLIC KEY-----" in data and b"PRIVATE KEY-----" not in data:
        raise SigningError(
            f"{where} holds a public key; signing needs the private key (the .key file beside it).", path=where
        )
    encrypted = b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data
    secret = passphrase() if encrypted else None
    try:
        key = load_pem_private_key(data, password=secret)
    except (ValueError, TypeError) as exc:
        if encrypted:
            raise SigningError(
                f"Cannot decrypt key file {where}: wrong passphrase (from ${PASSPHRASE_ENV} or the prompt).",
                path=where,
            ) from exc
        raise SigningError(
            f"{where} is not a readable private key ({exc}); give an Ed25519 private key in PKCS#8 PEM.", path=where
        ) from exc
    except Exception as exc:  # the library's UnsupportedAlgorithm and kin: a key we cannot use
        raise SigningError(f"{where} holds a key this host cannot read ({exc}).", path=where) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(
            f"{where} holds a {type(key).__name__.replace('_', '')} key; Cloacina signs with Ed25519 only. Make one "
            "with `cloacina-ctl signing-keys generate NAME` (or `openssl genpkey -algorithm ed25519`).",
            path=where,
        )
    return SigningKey(name=key_name, path=where, public=PublicKey.from_raw(_raw_public(key)), _key=key)


def _stem(path: Path) -> str:
    return path.stem if path.suffix in (PRIVATE_SUFFIX, ".pem") else path.name


def parse_public_key(text: str | bytes, *, source: str = "the key given") -> PublicKey:
    """An Ed25519 public key from SubjectPublicKeyInfo PEM, its one-line base64 body, or an OpenSSH line."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_der_public_key,
        load_pem_public_key,
        load_ssh_public_key,
    )

    data = text.encode("utf-8", "replace") if isinstance(text, str) else text
    data = data.strip()
    if b"PRIVATE KEY-----" in data:
        raise SigningError(
            f"{source} is a private key: never share it. Give the public key (the .pub file, or "
            "`openssl pkey -in KEY -pubout`)."
        )
    try:
        if data.startswith(b"-----BEGIN"):
            key = load_pem_public_key(data)
        elif data.startswith(b"ssh-"):
            key = load_ssh_public_key(data)
        else:
            import base64
            import binascii

            try:
                der = base64.b64decode(b"".join(data.split()), validate=True)
            except binascii.Error as exc:
                raise ValueError("not base64") from exc
            key = load_der_public_key(der)
    except Exception as exc:  # ValueError, UnsupportedAlgorithm...: the one answer is "not a key we read"
        raise SigningError(
            f"{source} is not an Ed25519 public key: give a SubjectPublicKeyInfo PEM file (the .pub file that "
            "`cloacina-ctl signing-keys generate` writes, or `openssl pkey -pubout`), its one-line base64 body, "
            "or an `ssh-ed25519 ...` line."
        ) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError(f"{source} is a {type(key).__name__} key; Cloacina verifies Ed25519 signatures only.")
    return PublicKey.from_raw(key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def read_public_key(value: str) -> PublicKey:
    """``trust add``'s KEY: a file holding a public key, or the key's text itself."""
    path = Path(value).expanduser()
    if "\n" not in value and path.exists():
        where = os.fspath(path)
        try:
            data = read_regular_file(where, MAX_KEY_FILE_SIZE)
        except (NotRegularFile, FileTooLarge, OSError) as exc:
            raise SigningError(f"Public key file {where} cannot be read: {exc}.") from None
        return parse_public_key(data, source=where)
    try:
        return parse_public_key(value)
    except SigningError:
        if "\n" not in value and (os.sep in value or value.endswith((PUBLIC_SUFFIX, ".pem"))) and len(value) < 44:
            raise SigningError(
                f"Public key file {value} does not exist; give the .pub file's path, or the key's text."
            ) from None
        raise


@dataclass(frozen=True)
class KeyPairFiles:
    """What ``generate_key_pair`` wrote: the private key file (mode 0600) and the public key file."""

    name: str
    private_path: Path
    public_path: Path
    public: PublicKey
    encrypted: bool


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` (never replacing a file), holding ``data``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    try:
        if hasattr(os, "fchmod"):  # exactly ``mode``, whatever the umask (not on Windows)
            os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def generate_key_pair(name: str, directory: str | os.PathLike[str], *, passphrase: bytes | None) -> KeyPairFiles:
    """A new Ed25519 key pair: ``DIR/NAME.key`` (PKCS#8 PEM, mode 0600, encrypted when ``passphrase``) and
    ``DIR/NAME.pub`` (SubjectPublicKeyInfo PEM). Existing files are never replaced."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        BestAvailableEncryption,
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    check_key_name(name)
    where = Path(directory)
    private_path, public_path = where / f"{name}{PRIVATE_SUFFIX}", where / f"{name}{PUBLIC_SUFFIX}"
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            raise SigningError(
                f"{path} exists already; a key is never overwritten. Choose another NAME, or move the old key "
                "away first.",
                path=str(path),
            )
    if passphrase is not None and not passphrase:
        raise SigningError("The passphrase is empty; give one, or leave the key unencrypted (without --encrypt).")
    try:
        where.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise SigningError(f"Cannot create the key directory {where}: {exc.strerror or exc}.") from exc
    key = Ed25519PrivateKey.generate()
    encryption = NoEncryption() if passphrase is None else BestAvailableEncryption(passphrase)
    private_pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, encryption)
    public = PublicKey.from_raw(_raw_public(key))
    try:
        _write_new(private_path, private_pem, 0o600)
        try:
            _write_new(public_path, public.pem.encode("ascii"), 0o644)
        except BaseException:
            private_path.unlink(missing_ok=True)
            raise
    except FileExistsError as exc:
        raise SigningError(f"{exc.filename} appeared meanwhile; a key is never overwritten.") from None
    except OSError as exc:
        with contextlib.suppress(OSError):
            private_path.unlink(missing_ok=True)
        raise SigningError(f"Cannot write the key files in {where}: {exc.strerror or exc}.") from exc
    return KeyPairFiles(name, private_path, public_path, public, passphrase is not None)
