"""Alerts as an Atom 1.0 feed (RFC 4287), written with the standard library's XML tree.

Theory of operation. A feed is a function of its alerts: the newest ``MAX_ENTRIES``
alerts, newest first, one entry each. An entry's id is a name-based UUID
(``urn:uuid:``, UUID version 5) of the alert id, so it is the same in every rewrite of
the feed, in every feed that carries the alert, and in the explorer's feed; its
``updated`` and ``published`` are the alert's ``issued`` time, its ``title`` the alert's
title, its ``content`` the plain-text body, its ``link rel="alternate"`` the explorer's
evidence page, and categories give the alert's kind, country and platform. The feed's
``updated`` is its newest entry's (a given fallback when it has none), so the same alerts
give the same bytes: ``write_feed`` then leaves the file alone.

Every text goes through ``ElementTree`` (which escapes markup) after the characters XML
1.0 cannot carry at all (most control characters) are dropped: a network name reported
by a probe cannot break the document.

``write_feed`` replaces the file atomically: a temporary file in the same folder,
written and fsynced, then renamed over the old one (and the folder fsynced), so that a
reader sees the old feed or the new one, never a mix.
"""

from __future__ import annotations

import os
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from blockproof import __version__
from blockproof.alerts.changes import Alert

__all__ = ["ATOM_MEDIA_TYPE", "MAX_ENTRIES", "entry_id", "feed_id", "feed_xml", "write_feed"]

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM_MEDIA_TYPE = "application/atom+xml; charset=utf-8"
MAX_ENTRIES = 500
# UUID namespace of blockproof's alert ids (a fixed, random UUID)
NAMESPACE = uuid.UUID("6f1d0c2e-5b8a-4f5e-9c1e-3a7d2b9e8c41")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
KIND_LABELS = {"onset": "Onset", "update": "Update", "resolution": "Resolution"}


def _x(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry."""
    return _NOT_XML.sub("", text)


def entry_id(alert_id: str) -> str:
    return f"urn:uuid:{uuid.uuid5(NAMESPACE, 'alert:' + alert_id)}"


def feed_id(name: str) -> str:
    return f"urn:uuid:{uuid.uuid5(NAMESPACE, 'feed:' + name)}"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: _x(v) for k, v in attrs.items()})
    if text is not None:
        element.text = _x(text)
    return element


def _entry(feed: ET.Element, alert: Alert) -> None:
    entry = _sub(feed, "entry")
    _sub(entry, "id", entry_id(alert.id))
    _sub(entry, "title", alert.title, type="text")
    _sub(entry, "updated", alert.issued)
    _sub(entry, "published", alert.issued)
    _sub(entry, "link", rel="alternate", type="text/html", href=alert.evidence_url)
    _sub(entry, "category", term=alert.kind, label=KIND_LABELS.get(alert.kind, alert.kind))
    _sub(entry, "category", term=f"country:{alert.country}", label=alert.country)
    _sub(entry, "category", term=f"platform:{alert.platform}", label=alert.platform_name)
    _sub(entry, "summary", alert.text.split("\n", 1)[0], type="text")
    _sub(entry, "content", alert.text, type="text")


def feed_xml(
    alerts: Sequence[Alert],
    *,
    name: str,
    title: str,
    fallback_updated: str,
    self_url: str | None = None,
    home_url: str | None = None,
    limit: int = MAX_ENTRIES,
) -> bytes:
    """The Atom document of ``alerts`` (given oldest first): the newest ``limit``."""
    newest = sorted(enumerate(alerts), key=lambda p: (p[1].issued, p[0]), reverse=True)[:limit]
    root = ET.Element("feed", {"xmlns": ATOM_NS})
    _sub(root, "id", feed_id(name))
    _sub(root, "title", title, type="text")
    _sub(root, "updated", max((a.issued for _, a in newest), default=fallback_updated))
    author = _sub(root, "author")
    _sub(author, "name", "blockproof")
    _sub(root, "generator", "blockproof", version=__version__)
    if self_url:
        _sub(root, "link", rel="self", type="application/atom+xml", href=self_url)
    if home_url:
        _sub(root, "link", rel="alternate", type="text/html", href=home_url)
    for _, alert in newest:
        _entry(root, alert)
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


def write_feed(path: Path, data: bytes) -> bool:
    """Replace ``path`` with ``data`` atomically; False (and nothing written) when the
    file already holds exactly ``data``."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return True
