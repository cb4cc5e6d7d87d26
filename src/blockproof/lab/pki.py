"""The lab's certificates: a lab CA the probe trusts, and a censor CA it does not.

Sites get a leaf from the lab CA for their names, unless their ``cert``
condition asks for an expired one, one for the wrong host, or a self-signed
one. A MITM rule's interception server gets a leaf from the censor's CA, as a
national interception box would present.
"""

from __future__ import annotations

import ssl
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trustme

from blockproof.lab.internet import Host

WRONG_HOST_NAME = "unrelated.example.net"


CA_FILES = {"ca": ("lab-ca.pem", "lab-ca.key"), "censor_ca": ("censor-ca.pem", "censor-ca.key")}


class LabPKI:
    def __init__(self, folder: Path | None = None, *, shared: Path | None = None) -> None:
        """A new lab CA and censor CA; or, with ``shared``, the ones ``save`` wrote there
        (the kernel lab's processes in several namespaces use one PKI)."""
        self._tmp = None if folder else tempfile.TemporaryDirectory(prefix="blockproof-lab-")
        self.folder = folder or Path(self._tmp.name if self._tmp else ".")
        if shared is not None:
            self.ca, self.censor_ca = (
                trustme.CA.from_pem((shared / cert).read_bytes(), (shared / key).read_bytes())
                for cert, key in CA_FILES.values()
            )
        else:
            self.ca = trustme.CA(organization_name="blockproof lab CA")
            self.censor_ca = trustme.CA(organization_name="Lab national filter")
        self.ca_file = str(self.folder / "lab-ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_file)
        self._contexts: dict[tuple[tuple[str, ...], str], ssl.SSLContext] = {}

    def save(self, folder: Path) -> None:
        """Write both CAs, keys included, for ``LabPKI(shared=folder)`` (mode 0600)."""
        for attr, (cert, key) in CA_FILES.items():
            ca: trustme.CA = getattr(self, attr)
            ca.cert_pem.write_to_path(str(folder / cert))
            (folder / key).touch(mode=0o600)
            ca.private_key_pem.write_to_path(str(folder / key))

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()

    def server_context(self, host: Host) -> ssl.SSLContext:
        return self._context(host.names, host.cert)

    def mitm_context(self, names: tuple[str, ...]) -> ssl.SSLContext:
        return self._context(names, "mitm")

    def _context(self, names: tuple[str, ...], kind: str) -> ssl.SSLContext:
        key = (names, kind)
        if key in self._contexts:
            return self._contexts[key]
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.set_alpn_protocols(["http/1.1"])
        now = datetime.now(UTC)
        match kind:
            case "valid":
                self.ca.issue_cert(*names).configure_cert(ctx)
            case "expired":
                self.ca.issue_cert(
                    *names, not_before=now - timedelta(days=400), not_after=now - timedelta(days=35)
                ).configure_cert(ctx)
            case "wrong_host":
                self.ca.issue_cert(WRONG_HOST_NAME).configure_cert(ctx)
            case "self_signed":
                # A CA certificate is self-signed: presented as a leaf, it is one.
                own = trustme.CA(organization_name=names[0])
                own.cert_pem.write_to_path(str(self.folder / f"self-{len(self._contexts)}.pem"))
                own.private_key_pem.write_to_path(
                    str(self.folder / f"key-{len(self._contexts)}.pem")
                )
                ctx.load_cert_chain(
                    str(self.folder / f"self-{len(self._contexts)}.pem"),
                    str(self.folder / f"key-{len(self._contexts)}.pem"),
                )
            case "mitm":
                self.censor_ca.issue_cert(*names).configure_cert(ctx)
            case _:
                raise ValueError(f"unknown certificate kind {kind!r}")
        self._contexts[key] = ctx
        return ctx
