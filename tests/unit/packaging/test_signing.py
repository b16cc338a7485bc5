"""Signed archives without a database: keys in the standard forms, signatures over the manifest's
bytes, and every way a signature can be wrong refused by the reader (and so by validate and
register) with one message, while ``inspect`` shows which signatures verify."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from cloacina_host import ArchiveError, read_archive
from cloacina_host._packaging import (
    SigningError,
    check_signatures,
    generate_key_pair,
    load_signing_key,
    read_public_key,
    sign_archive,
)
from cloacina_host.cli import main

OPENSSL = shutil.which("openssl")


def _no_passphrase() -> bytes:
    raise AssertionError("an unencrypted key needs no passphrase")


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Any]:
    """Two unencrypted key pairs, alice and bob, loaded for signing."""
    found = {}
    for name in ("alice", "bob"):
        generate_key_pair(name, tmp_path / "keys", passphrase=None)
        found[name] = load_signing_key(tmp_path / "keys" / f"{name}.key", passphrase=_no_passphrase)
    return found


@pytest.fixture
def archive_path(tmp_path: Path, valid_archive: bytes) -> Path:
    path = tmp_path / "demo.cloacina"
    path.write_bytes(valid_archive)
    return path


def _members(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


def _signed(archive_path: Path, *signers: Any) -> bytes:
    sign_archive(archive_path, list(signers))
    return archive_path.read_bytes()


# -- keys -----------------------------------------------------------------------------------------


def test_generated_keys_are_standard_pem_and_the_private_one_is_0600(tmp_path: Path) -> None:
    made = generate_key_pair("release", tmp_path / "k", passphrase=None)
    assert stat.S_IMODE(made.private_path.stat().st_mode) == 0o600
    private_pem = made.private_path.read_bytes()
    assert private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    private = load_pem_private_key(private_pem, password=None)
    public = load_pem_public_key(made.public_path.read_bytes())
    assert isinstance(private, Ed25519PrivateKey)
    assert isinstance(public, Ed25519PublicKey)
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert made.public.fingerprint == hashlib.sha256(raw).hexdigest()
    assert private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) == raw
    assert read_public_key(made.public.one_line).fingerprint == made.public.fingerprint  # the pasted form
    with pytest.raises(SigningError, match="exists already; a key is never overwritten"):
        generate_key_pair("release", tmp_path / "k", passphrase=None)


def test_a_passphrase_protected_key(tmp_path: Path) -> None:
    made = generate_key_pair("guarded", tmp_path, passphrase=b"correct horse")
    pem = made.private_path.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert isinstance(load_pem_private_key(pem, password=b"correct horse"), Ed25519PrivateKey)
    with pytest.raises(SigningError, match="wrong passphrase"):
        load_signing_key(made.private_path, passphrase=lambda: b"battery staple")
    key = load_signing_key(made.private_path, passphrase=lambda: b"correct horse")
    assert key.fingerprint == made.public.fingerprint


def test_key_files_that_are_not_signing_keys_are_refused(tmp_path: Path) -> None:
    made = generate_key_pair("k", tmp_path, passphrase=None)
    with pytest.raises(SigningError, match="holds a public key; signing needs the private key"):
        load_signing_key(made.public_path, passphrase=_no_passphrase)
    (tmp_path / "junk.key").write_text("hello")
    with pytest.raises(SigningError, match="is not a PEM key file"):
        load_signing_key(tmp_path / "junk.key", passphrase=_no_passphrase)
    with pytest.raises(SigningError, match="is a private key: never share it"):
        read_public_key(made.private_path.read_text())
    with pytest.raises(SigningError, match="is not an Ed25519 public key"):
        read_public_key("not-a-key")


def test_keys_made_and_read_by_openssl(tmp_path: Path, archive_path: Path) -> None:
    # the key files are the standard forms: openssl (Debian's, on every machine we build on) makes and reads them
    assert OPENSSL is not None, "this test needs the openssl command (apt-get install -y openssl)"
    key = tmp_path / "ossl.pem"
    subprocess.run([OPENSSL, "genpkey", "-algorithm", "ed25519", "-out", str(key)], check=True, timeout=30)
    public = subprocess.run(
        [OPENSSL, "pkey", "-in", str(key), "-pubout"], check=True, capture_output=True, timeout=30
    ).stdout
    signing = load_signing_key(key, passphrase=_no_passphrase)
    assert signing.name == "ossl"
    assert read_public_key(public.decode()).fingerprint == signing.fingerprint
    sign_archive(archive_path, [signing])
    [check] = check_signatures(read_archive(archive_path).signatures, read_archive(archive_path).manifest_bytes)
    assert check.verified
    assert check.entry.fingerprint == signing.fingerprint

    ours = generate_key_pair("ours", tmp_path, passphrase=b"pw")  # and openssl reads what we write
    derived = subprocess.run(
        [OPENSSL, "pkey", "-in", str(ours.private_path), "-passin", "pass:pw", "-pubout"],
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout
    assert derived.decode() == ours.public_path.read_text()


# -- signing --------------------------------------------------------------------------------------


def test_signatures_are_members_after_the_manifest_and_signing_is_reproducible(
    tmp_path: Path, archive_path: Path, keys: dict[str, Any]
) -> None:
    other = tmp_path / "other.cloacina"
    shutil.copy(archive_path, other)
    one = _signed(archive_path, keys["alice"], keys["bob"])
    sign_archive(other, [keys["bob"]])
    sign_archive(other, [keys["alice"]])
    sign_archive(other, [keys["alice"]])  # again: nothing added
    assert other.read_bytes() == one  # any order, any number of times: the same bytes
    names = [n for n, _ in _members(one)]
    assert names[0] == "manifest.json"
    fingerprints = sorted(k.fingerprint for k in keys.values())
    assert names[2:] == [f"signatures/{f}.json" for f in fingerprints]
    archive = read_archive(one)
    assert {s.key_name for s in archive.signatures} == {"alice", "bob"}
    assert all(c.verified for c in check_signatures(archive.signatures, archive.manifest_bytes))
    body = json.loads(dict(_members(one))[f"signatures/{keys['alice'].fingerprint}.json"])
    assert body["manifest_sha256"] == hashlib.sha256(archive.manifest_bytes).hexdigest()
    assert base64.b64decode(body["public_key"]) == keys["alice"].public.raw


def _tampered_manifest(data: bytes) -> bytes:
    members = _members(data)
    manifest = json.loads(members[0][1])
    manifest["package"]["summary"] = "Something else"
    return _zip([("manifest.json", json.dumps(manifest).encode()), *members[1:]])


def _swapped_wheel(data: bytes) -> bytes:
    from .conftest import make_wheel

    members = _members(data)
    evil = make_wheel(modules={"demo_pkg/__init__.py": "flow = None\nimport os\n"})
    return _zip([m if not m[0].startswith("wheels/") else (m[0], evil) for m in members])


def _truncated_signature(data: bytes) -> bytes:
    return _zip([(n, b[: len(b) // 2] if n.startswith("signatures/") else b) for n, b in _members(data)])


def _signature_first(data: bytes) -> bytes:
    members = _members(data)
    return _zip(
        [m for m in members if m[0].startswith("signatures/")] + [m for m in members if "signatures/" not in m[0]]
    )


def _short_signature(data: bytes) -> bytes:
    out = []
    for name, body in _members(data):
        if name.startswith("signatures/"):
            doc = json.loads(body)
            doc["signature"] = base64.b64encode(base64.b64decode(doc["signature"])[:40]).decode()
            body = json.dumps(doc).encode()
        out.append((name, body))
    return _zip(out)


def _one_bad_of_two(data: bytes) -> bytes:
    out, spoiled = [], False
    for name, body in _members(data):
        if name.startswith("signatures/") and not spoiled:
            doc = json.loads(body)
            sig = bytearray(base64.b64decode(doc["signature"]))
            sig[0] ^= 1
            doc["signature"] = base64.b64encode(bytes(sig)).decode()
            body, spoiled = json.dumps(doc).encode(), True
        out.append((name, body))
    return _zip(out)


BAD = {
    "tampered manifest": (_tampered_manifest, "manifest.json was changed after key 'alice'"),
    "swapped wheel": (_swapped_wheel, "manifest.json declares .*: the wheel was altered after packaging"),
    "truncated signature member": (_truncated_signature, "signature member .* is damaged: it is not a JSON object"),
    "signature member before the manifest": (_signature_first, "is member 2, not the first .*a signature comes after"),
    "truncated signature": (_short_signature, "signature is 40 bytes, not 64"),
    "one of two signatures bad": (_one_bad_of_two, "does not match manifest.json"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_every_bad_signature_is_refused_by_the_reader_validate_and_inspect_where_it_must(
    case: str, tmp_path: Path, archive_path: Path, keys: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    spoil, message = BAD[case]
    signers = [keys["alice"], keys["bob"]] if case == "one of two signatures bad" else [keys["alice"]]
    bad = tmp_path / "bad.cloacina"
    bad.write_bytes(spoil(_signed(archive_path, *signers)))
    with pytest.raises(ArchiveError, match=message):
        read_archive(bad)
    capsys.readouterr()
    assert main(["validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    inspected = main(["inspect", str(bad)])
    out = capsys.readouterr().out
    if case in ("tampered manifest", "one of two signatures bad"):  # well formed: inspect says which fails
        assert inspected == 0
        assert out.count("DOES NOT VERIFY") == 1
        if case == "one of two signatures bad":
            assert out.count(" verifies") == 1  # the good one
    else:
        assert inspected == 1


def test_signing_refuses_an_archive_whose_signatures_do_not_verify(
    tmp_path: Path, archive_path: Path, keys: dict[str, Any]
) -> None:
    bad = tmp_path / "bad.cloacina"
    bad.write_bytes(_tampered_manifest(_signed(archive_path, keys["alice"])))
    before = bad.read_bytes()
    with pytest.raises(ArchiveError, match="does not verify"):
        sign_archive(bad, [keys["bob"]])
    assert bad.read_bytes() == before


def test_inspect_shows_signatures_offline(
    archive_path: Path,
    keys: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLOACINA_HOME", str(tmp_path / "empty-home"))
    monkeypatch.delenv("CLOACINA_DATABASE_URL", raising=False)
    _signed(archive_path, keys["alice"], keys["bob"])
    assert main(["inspect", str(archive_path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [(s["key_name"], s["verified"], s["trust"]) for s in shown["signatures"]] == sorted(
        [("alice", True, None), ("bob", True, None)], key=lambda s: keys[s[0]].fingerprint
    )
    assert not (tmp_path / "empty-home").exists()  # no database was made to look trust up


def test_cli_sign_and_keys(tmp_path: Path, archive_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = ["--home", str(tmp_path / "home")]
    assert main(["signing-keys", "generate", "ci", *home, "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert Path(made["private_key"]) == tmp_path / "home" / "signing-keys" / "ci.key"
    assert main(["sign", str(archive_path), "--key", "ci", *home, "--json"]) == 0  # a key by its name
    signed = json.loads(capsys.readouterr().out)
    assert signed["added"] == [made["fingerprint"]]
    assert main(["signing-keys", "show", made["public_key"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fingerprint"] == made["fingerprint"]
    assert main(["sign", str(archive_path), "--key", str(tmp_path / "nope.key")]) == 1
    assert "nope.key does not exist" in capsys.readouterr().err


def test_cli_passphrase_from_the_environment(
    tmp_path: Path, archive_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOACINA_SIGNING_PASSPHRASE", "s3cret")
    assert main(["signing-keys", "generate", "locked", "--directory", str(tmp_path), "--encrypt"]) == 0
    assert (tmp_path / "locked.key").read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert main(["sign", str(archive_path), "--key", str(tmp_path / "locked.key")]) == 0
    monkeypatch.setenv("CLOACINA_SIGNING_PASSPHRASE", "wrong")
    capsys.readouterr()
    assert main(["sign", str(archive_path), "--key", str(tmp_path / "locked.key")]) == 1
    assert "wrong passphrase" in capsys.readouterr().err
    monkeypatch.delenv("CLOACINA_SIGNING_PASSPHRASE")  # and no terminal to ask on (stdin is not a tty here)
    assert main(["sign", str(archive_path), "--key", str(tmp_path / "locked.key")]) == 1
    assert "needs a passphrase: set CLOACINA_SIGNING_PASSPHRASE" in capsys.readouterr().err
