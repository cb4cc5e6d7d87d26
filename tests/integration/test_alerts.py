"""``blockproof alerts`` end to end on loopback: an Atom file read back by feedparser, a
webhook receiver that checks signatures and fails on purpose, a real SMTP server
(aiosmtpd), a run killed between two deliveries, and the explorer's feed."""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner

from alerts_kit import PK_BLOCK, PK_ONGOING, PK_OUTAGE, event, net, write_events
from blockproof.alerts.atom import entry_id
from blockproof.alerts.ledger import AlertsBusy, Ledger, ledger_path
from blockproof.alerts.mail import message_id
from blockproof.alerts.run import Settings, run_alerts
from blockproof.alerts.subscriptions import SmtpSettings, Subscription, Webhook
from blockproof.alerts.webhook import RetryPolicy
from blockproof.cli import main
from blockproof.explorer.app import create_app
from blockproof.pipeline.store import Store

SECRET = "correct horse battery staple"
EVENTS = [PK_BLOCK, PK_ONGOING, PK_OUTAGE]
# by the events' starts: the outage (8 Feb), the block (17 Feb), the ongoing one (1 Mar)
ALERT_IDS = [
    f"{PK_OUTAGE.id}/onset",
    f"{PK_OUTAGE.id}/resolution",
    f"{PK_BLOCK.id}/onset",
    f"{PK_BLOCK.id}/resolution",
    f"{PK_ONGOING.id}/onset",
]
FAST = RetryPolicy(attempts=5, backoff=0.01, max_wait=0.05, timeout=5.0)
EXPLORER = "https://explorer.example.org"


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return write_events(tmp_path / "store", EVENTS)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- a webhook receiver -----------------------------------------------------------------------


class Receiver:
    """A webhook receiver on 127.0.0.1. It checks each request's signature (401 if
    wrong), answers the statuses of ``script`` to the first requests and 200 after, and
    can hold the ``block_on``-th request without answering until ``release`` is set.
    ``acked`` are the alert ids it answered 2xx, in order."""

    def __init__(self, secret: bytes | None, script: tuple[int, ...] = (),
                 block_on: int | None = None) -> None:  # fmt: skip
        self.secret = secret
        self.script = list(script)
        self.block_on = block_on
        self.requests: list[dict[str, Any]] = []
        self.acked: list[str] = []
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                assert 0 < length < 1_000_000
                body = self.rfile.read(length)
                receiver.answer(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self.lock:
            self.requests.append({"headers": headers, "body": body})
            number = len(self.requests)
            status = self.script.pop(0) if self.script else 200
        if number == self.block_on:
            self.arrived.set()
            self.release.wait(60)
            handler.close_connection = True
            return
        if self.secret is not None:
            expected = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(headers.get("x-blockproof-signature", ""), expected):
                status = 401
        alert_id = headers.get("x-blockproof-alert-id", "")
        assert json.loads(body)["alert_id"] == alert_id == headers.get("idempotency-key")
        if 200 <= status < 300:
            with self.lock:
                self.acked.append(alert_id)
        handler.send_response(status)
        handler.send_header("content-length", "0")
        handler.end_headers()

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def hook_settings(store: Store) -> Settings:
    return Settings(explorer_url=EXPLORER, store_label=str(store.root), webhook_policy=FAST)


# -- Atom -----------------------------------------------------------------------------------


def test_atom_feed_valid_stable_and_quiet_on_rerun(store: Store, tmp_path: Path) -> None:
    feed_file = tmp_path / "feeds" / "alerts.atom"
    args = ("alerts", "--store", str(store.root), "--atom", str(feed_file),
            "--explorer-url", EXPLORER + "/")  # fmt: skip
    code, out, err = invoke(*args)
    assert code == 0, out + err
    assert "alerts: 5 new alert(s); 5 delivered, 0 pending, 0 failed" in out
    assert out.count("delivered ") == 5
    feed = feedparser.parse(feed_file.read_bytes())
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version == "atom10"
    ids = [e.id for e in feed.entries]
    assert sorted(ids) == sorted(entry_id(a) for a in ALERT_IDS)
    block = next(e for e in feed.entries if e.id == entry_id(f"{PK_BLOCK.id}/onset"))
    assert block.title == "X (Twitter) blocked in PK on AS17557, AS45669 since 2024-02-17 15:00 UTC"
    assert block.link == f"{EXPLORER}/events/{PK_BLOCK.id}"
    assert f"blockproof report {PK_BLOCK.id} --store" in block.content[0].value
    assert {t.term for t in block.tags} >= {"onset", "country:PK", "platform:x"}
    assert block.updated_parsed is not None

    before = feed_file.read_bytes()
    mtime = feed_file.stat().st_mtime_ns
    code, out, _ = invoke(*args)
    assert code == 0
    assert "alerts: 0 new alert(s); 0 delivered" in out
    assert feed_file.read_bytes() == before
    assert feed_file.stat().st_mtime_ns == mtime

    # the ongoing block ends: one more entry, the others unchanged
    ended = event([net(17557, "2024-03-01T12:00:00Z", "2024-03-03T09:00:00Z"),
                   net(59257, "2024-03-01T13:00:00Z", "2024-03-03T09:00:00Z")],
                  id=PK_ONGOING.id, methods=[("dns", 1.0)], confidence="high")  # fmt: skip
    write_events(store.root, [PK_BLOCK, ended, PK_OUTAGE])
    code, out, _ = invoke(*args)
    assert code == 0
    assert "alerts: 1 new alert(s); 1 delivered" in out
    feed = feedparser.parse(feed_file.read_bytes())
    assert feed.bozo == 0
    assert len(feed.entries) == 6
    assert feed.entries[0].id == entry_id(f"{PK_ONGOING.id}/resolution")
    assert feed.entries[0].title == (
        "X (Twitter) reachable again in PK on AS17557, AS59257 since 2024-03-03 09:00 UTC"
    )
    assert {e.id for e in feed.entries[1:]} == set(ids)


def test_real_pipeline_onset_and_resolution(tmp_path: Path) -> None:
    """simulate -> ingest -> analyze -> alerts --atom: the outage's onset and resolution;
    a second run adds no entry."""
    data = tmp_path / "outage.jsonl.gz"
    store = tmp_path / "store"
    feed_file = tmp_path / "alerts.atom"
    for args in (
        ("simulate", "test-outage", "--probes", "60", "--days", "40", "--out", str(data)),
        ("ingest", str(data), "--store", str(store)),
        ("analyze", "--store", str(store)),
    ):
        code, out, err = invoke(*args)
        assert code == 0, out + err
    (outage,) = json.loads(store.joinpath("events.json").read_text())["events"]
    code, out, err = invoke("alerts", "--store", str(store), "--atom", str(feed_file))
    assert code == 0, out + err
    feed = feedparser.parse(feed_file.read_bytes())
    assert feed.bozo == 0
    assert [e.id for e in feed.entries] == [
        entry_id(f"{outage['id']}/resolution"),
        entry_id(f"{outage['id']}/onset"),
    ]
    assert feed.entries[1].title.startswith("Connectivity outage in XA on AS64498 since ")
    before = feed_file.read_bytes()
    code, out, _ = invoke("alerts", "--store", str(store), "--atom", str(feed_file))
    assert code == 0
    assert "0 new alert(s)" in out
    assert feed_file.read_bytes() == before


def test_atom_escapes_hostile_text(tmp_path: Path) -> None:
    hostile = event([net(17557, name="<script>alert(1)</script> & \x01\x02 ]]>")], id="pk-x-h")
    store = write_events(tmp_path / "store", [hostile])
    feed_file = tmp_path / "h.atom"
    code, _, err = invoke("alerts", "--store", str(store.root), "--atom", str(feed_file))
    assert code == 0, err
    raw = feed_file.read_bytes()
    assert b"<script>" not in raw
    assert b"\x01" not in raw
    feed = feedparser.parse(raw)
    assert feed.bozo == 0
    assert "<script>alert(1)</script> &" in feed.entries[0].content[0].value


# -- webhooks -------------------------------------------------------------------------------


def test_webhook_signed_and_retried_on_503(store: Store) -> None:
    with Receiver(SECRET.encode(), script=(503, 503)) as receiver:
        sub = Subscription("hooks", webhooks=(Webhook(receiver.url, SECRET.encode()),))
        report = run_alerts(store, [sub], hook_settings(store))
    assert receiver.acked == ALERT_IDS
    assert [o.status for o in report.outcomes] == ["delivered"] * 5
    assert report.outcomes[0].attempts == 3  # 503, 503, 200
    first = json.loads(receiver.requests[0]["body"])
    assert first["kind"] == "onset"
    assert first["event_id"] == PK_OUTAGE.id
    assert first["networks"] == [
        {"asn": 45669, "name": "Jazz", "start": "2024-02-08T03:00:00Z",
         "end": "2024-02-08T20:00:00Z"}
    ]  # fmt: skip
    assert first["links"]["evidence"] == f"{EXPLORER}/events/{PK_OUTAGE.id}"
    assert first["title"].startswith("Connectivity outage in PK on AS45669 since")
    assert {"platform", "country", "start", "end", "method", "confidence", "text"} <= set(first)


def test_webhook_wrong_secret_fails_for_good_and_can_be_retried(store: Store) -> None:
    with Receiver(SECRET.encode()) as receiver:
        url = receiver.url
        code, out, _ = invoke("alerts", "--store", str(store.root), "--webhook", url,
                              "--webhook-secret-env", "HOOK", env={"HOOK": "wrong"})  # fmt: skip
        assert code == 1
        assert "failed" in out
        assert "answered 401" in out
        assert "0 delivered, 0 pending, 5 failed" in out
        # the hook's URL may hold its secret: never printed whole nor kept in the store
        assert "/hook" not in out
        assert "webhook http://127.0.0.1:" in out
        kept = b"".join(p.read_bytes() for p in ledger_path(store).parent.iterdir())
        assert b"/hook" not in kept
        assert receiver.acked == []
        assert len(receiver.requests) == 5
        code, out, _ = invoke("alerts", "--store", str(store.root), "--webhook", url,
                              "--webhook-secret-env", "HOOK", env={"HOOK": SECRET})  # fmt: skip
        assert code == 0
        assert "0 new alert(s); 0 delivered" in out
        code, out, _ = invoke("alerts", "--store", str(store.root), "--webhook", url,
                              "--webhook-secret-env", "HOOK", "--retry-failed",
                              env={"HOOK": SECRET})  # fmt: skip
        assert code == 0, out
        assert "5 delivered" in out
        assert "5 failed delivery(ies) tried again" in out
    assert receiver.acked == ALERT_IDS


def test_webhook_down_stays_pending_in_order(store: Store) -> None:
    with Receiver(SECRET.encode(), script=(503,) * 5) as receiver:
        sub = Subscription("hooks", webhooks=(Webhook(receiver.url, SECRET.encode()),))
        report = run_alerts(store, [sub], hook_settings(store))
        assert not report.ok
        assert [o.status for o in report.outcomes] == ["pending"] * 5
        assert len(receiver.requests) == 5  # the first alert, 5 times; the others wait
        assert report.outcomes[0].error == "answered 503"
        report = run_alerts(store, [sub], hook_settings(store))
    assert report.ok
    assert report.count("delivered") == 5
    assert receiver.acked == ALERT_IDS


# -- e-mail ---------------------------------------------------------------------------------


class Mailbox:
    """An aiosmtpd handler that keeps every message (or refuses every recipient)."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.messages: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:  # fmt: skip
        if self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def test_mail_through_smtp(store: Store, smtp_server: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp_server
    code, out, err = invoke("alerts", "--store", str(store.root), "--smtp", f"127.0.0.1:{port}",
                            "--mail-to", "desk@example.org", "--mail-to", "ops@example.org",
                            "--mail-from", "alerts@example.org",
                            "--explorer-url", EXPLORER)  # fmt: skip
    assert code == 0, out + err
    assert "5 delivered" in out
    assert len(mailbox.messages) == 5
    sender, rcpts, msg = mailbox.messages[2]
    assert sender == "alerts@example.org"
    assert sorted(rcpts) == ["desk@example.org", "ops@example.org"]
    # (a header unfolds with the space that followed its line break: readers strip it)
    assert (
        msg["Subject"].strip()
        == "X (Twitter) blocked in PK on AS17557, AS45669 since 2024-02-17 15:00 UTC"
    )
    assert msg["Message-ID"] == message_id(f"{PK_BLOCK.id}/onset")
    assert msg["X-Blockproof-Alert-Id"] == f"{PK_BLOCK.id}/onset"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["From"] == "alerts@example.org"
    body = msg.get_content()
    assert f"Evidence: {EXPLORER}/events/{PK_BLOCK.id}" in body
    assert "method tls (94%), confidence confirmed" in body
    _, _, resolution = mailbox.messages[3]
    assert (
        resolution["Subject"]
        .strip()
        .startswith("X (Twitter) reachable again in PK on AS17557, AS45669")
    )
    assert resolution["In-Reply-To"] == msg["Message-ID"]
    code, out, _ = invoke("alerts", "--store", str(store.root), "--smtp", f"127.0.0.1:{port}",
                          "--mail-to", "desk@example.org", "--mail-to", "ops@example.org",
                          "--mail-from", "alerts@example.org")  # fmt: skip
    assert code == 0
    assert "0 new alert(s); 0 delivered" in out
    assert len(mailbox.messages) == 5


def test_mail_refused_is_a_permanent_failure(store: Store) -> None:
    mailbox = Mailbox(refuse=True)
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        smtp = SmtpSettings("127.0.0.1", port, "alerts@example.org")
        settings = Settings(explorer_url=EXPLORER, store_label="s", smtp=smtp)
        sub = Subscription("mail", mail_to=("nobody@example.org",))
        report = run_alerts(store, [sub], settings)
    finally:
        controller.stop()
    assert report.count("failed") == 5
    assert not report.ok
    assert "550" in (report.outcomes[0].error or "")
    assert report.outcomes[0].attempts == 1


# -- crash between two deliveries -----------------------------------------------------------


def alerts_process(store: Store, url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HOOK_SECRET": SECRET}
    return subprocess.Popen(
        [sys.executable, "-m", "blockproof", "alerts", "--store", str(store.root),
         "--webhook", url, "--webhook-secret-env", "HOOK_SECRET"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def test_killed_between_deliveries_every_alert_arrives_once(store: Store) -> None:
    with Receiver(SECRET.encode(), block_on=2) as receiver:
        first = alerts_process(store, receiver.url)
        try:
            assert receiver.arrived.wait(60), "the second delivery never came"
            first.kill()  # SIGKILL, while the 2nd delivery waits for its answer
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait(10)
            assert first.stdout is not None
            assert first.stderr is not None
            first.stdout.close()
            first.stderr.close()
        receiver.release.set()
        assert receiver.acked == ALERT_IDS[:1]
        ledger = Ledger.peek(store)
        assert ledger is not None
        with ledger:
            assert ledger.counts() == {"delivered": 1, "pending": 4}

        second = alerts_process(store, receiver.url)
        out, err = second.communicate(timeout=60)
        assert second.returncode == 0, (out + err).decode()
        assert b"4 delivered, 0 pending, 0 failed" in out

        third = alerts_process(store, receiver.url)
        out, err = third.communicate(timeout=60)
        assert third.returncode == 0, (out + err).decode()
        assert b"0 new alert(s); 0 delivered" in out
    # every alert acknowledged exactly once, none lost; the one cut short came again
    assert receiver.acked == ALERT_IDS
    assert len(receiver.requests) == 6
    assert receiver.requests[1]["headers"]["x-blockproof-alert-id"] == ALERT_IDS[1]


def test_one_run_at_a_time(store: Store) -> None:
    with Ledger.open(store, "2024-03-05T09:00:00Z"), pytest.raises(AlertsBusy):
        Ledger.open(store, "2024-03-05T09:00:00Z")


# -- config, dry run, bad input -------------------------------------------------------------


def test_config_subscriptions_filter(store: Store, tmp_path: Path) -> None:
    config = tmp_path / "alerts.toml"
    config.write_text(
        f'explorer_url = "{EXPLORER}"\n'
        '[[subscription]]\nname = "outages"\nplatforms = ["*"]\natom = "outages.atom"\n'
        '[[subscription]]\nname = "ptcl-onsets"\nnetworks = ["AS17557"]\nkinds = ["onset"]\n'
        'atom = "ptcl.atom"\n'
    )
    code, out, err = invoke("alerts", "--store", str(store.root), "--config", str(config))
    assert code == 0, out + err
    outages = feedparser.parse((tmp_path / "outages.atom").read_bytes())
    ptcl = feedparser.parse((tmp_path / "ptcl.atom").read_bytes())
    assert [e.id for e in outages.entries] == [
        entry_id(f"{PK_OUTAGE.id}/resolution"), entry_id(f"{PK_OUTAGE.id}/onset")
    ]  # fmt: skip
    assert sorted(e.id for e in ptcl.entries) == sorted(
        entry_id(f"{e.id}/onset") for e in (PK_BLOCK, PK_ONGOING)
    )
    assert "4 delivered" in out


def test_dry_run_changes_nothing(store: Store, tmp_path: Path) -> None:
    code, out, _ = invoke("alerts", "--store", str(store.root), "--atom",
                          str(tmp_path / "a.atom"), "--dry-run")  # fmt: skip
    assert code == 0
    assert out.count("would deliver ") == 5
    assert "5 delivery(ies) would be made; nothing changed" in out
    assert not ledger_path(store).exists()
    assert not (tmp_path / "a.atom").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "nothing to deliver to"),
        (("--mail-to", "a@example.org"), "--mail-to needs --smtp"),
        (("--smtp", "127.0.0.1:25"), "--smtp needs --mail-to"),
        (("--webhook", "ftp://x"), "not a webhook URL"),
        (("--webhook", "http://127.0.0.1:9/", "--webhook-secret-env", "UNSET_FOR_SURE"),
         "UNSET_FOR_SURE is not set"),
        (("--atom", "a.atom", "--explorer-url", "nope"), "not the explorer's base URL"),
        (("--atom", "a.atom", "--config", "/nonexistent/alerts.toml"), "no such file"),
        (("--mail-to", "bad", "--smtp", "127.0.0.1:25"), "not an e-mail address"),
    ],
)  # fmt: skip
def test_bad_input(store: Store, args: tuple[str, ...], message: str) -> None:
    code, _, err = invoke("alerts", "--store", str(store.root), *args)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not ledger_path(store).exists()


def test_store_without_events(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = invoke("alerts", "--store", str(tmp_path / "empty"), "--atom", "x.atom")
    assert code == 2
    assert "run `blockproof analyze" in err


# -- the explorer's feed --------------------------------------------------------------------


def get(store_dir: Path, *paths: str) -> list[httpx.Response]:
    """GET ``paths`` from the explorer over ``store_dir`` (its ASGI app, no socket)."""

    async def fetch() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(store_dir))
        base = "http://127.0.0.1:8082"
        async with httpx.AsyncClient(transport=transport, base_url=base) as client:
            return [await client.get(path) for path in paths]

    return asyncio.run(fetch())


def test_explorer_feed(store: Store) -> None:
    response, x, outages, none, again = get(
        store.root,
        "/feeds/events.atom",
        "/feeds/events.atom?country=pk&platform=x",
        "/feeds/events.atom?platform=*",
        "/feeds/events.atom?country=IN",
        "/feeds/events.atom",
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    feed = feedparser.parse(response.content)
    assert feed.bozo == 0
    assert sorted(e.id for e in feed.entries) == sorted(entry_id(a) for a in ALERT_IDS)
    onset = next(e for e in feed.entries if e.id == entry_id(f"{PK_BLOCK.id}/onset"))
    assert onset.link == f"http://127.0.0.1:8082/events/{PK_BLOCK.id}"
    assert onset.updated == "2024-02-17T15:00:00Z"
    assert "--store STORE" in onset.content[0].value
    assert again.content == response.content  # stable

    x_ids = sorted(e.id for e in feedparser.parse(x.content).entries)
    assert x_ids == sorted(entry_id(a) for a in ALERT_IDS if not a.startswith(PK_OUTAGE.id))
    assert len(feedparser.parse(outages.content).entries) == 2
    assert none.status_code == 200
    assert feedparser.parse(none.content).entries == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("country=PAK", "not a country code"),
        ("country=P1", "not a country code"),
        ("platform=myspace", "not a platform"),
        ("country=PK&country=IN", "given twice"),
        ("since=2024-01-01", "unknown parameter 'since'"),
    ],
)
def test_explorer_feed_bad_query(store: Store, query: str, message: str) -> None:
    (response,) = get(store.root, f"/feeds/events.atom?{query}")
    assert response.status_code == 400
    assert message in response.text
    assert response.headers["content-type"].startswith("text/plain")


def test_explorer_feed_without_analysis(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (response,) = get(tmp_path / "s", "/feeds/events.atom")
    assert response.status_code == 200
    feed = feedparser.parse(response.content)
    assert feed.bozo == 0
    assert feed.entries == []
