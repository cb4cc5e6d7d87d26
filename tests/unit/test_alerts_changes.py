"""What changed since the last announcement (blockproof.alerts.changes), and who wants it
(blockproof.alerts.subscriptions): table-driven, no I/O but for the config files."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import pytest

from alerts_kit import PK_BLOCK, PK_OUTAGE, event, net
from blockproof.alerts.changes import Alert, Announced, Context, clean, compute
from blockproof.alerts.subscriptions import Filters, load_config, parse_hostport
from blockproof.errors import ConfigError, InputError
from blockproof.pipeline.events import StoredEvent

CTX = Context("https://explorer.example.org", "/srv/pk store", {"x": "X", "youtube": "YouTube"})
NOW = "2024-03-05T09:00:00Z"
E = "pk-x-2024021715-0a1b2c3d"

ONGOING = event([net(17557), net(45669)])
THREE = event([net(17557), net(45669), net(24499, "2024-02-19T06:00:00Z")])
TWO_ONE_ENDED = event([net(17557), net(45669, end="2024-02-20T10:00:00Z")])
ALL_ENDED = event([net(17557, end="2024-02-28T10:00:00Z"), net(45669, end="2024-02-20T10:00:00Z")])
RELAPSED = event(
    [
        net(17557, restorations=[("2024-02-28T10:00:00Z", "2024-03-01T07:00:00Z")]),
        net(45669, end="2024-02-20T10:00:00Z"),
    ]
)
RELAPSE_ENDED = event(
    [
        net(17557, end="2024-03-04T10:00:00Z",
            restorations=[("2024-02-28T10:00:00Z", "2024-03-01T07:00:00Z")]),
        net(45669, end="2024-02-20T10:00:00Z"),
    ]
)  # fmt: skip


def runs(*states: Sequence[StoredEvent]) -> list[list[Alert]]:
    """The alerts of successive runs over successive states of the events."""
    announced: dict[str, Announced] = {}
    out = []
    for events in states:
        alerts, announced = compute(events, announced, CTX, NOW)
        # the record survives its JSON form unchanged
        announced = {k: Announced.from_json(v.to_json()) for k, v in announced.items()}
        out.append(alerts)
    return out


CASES = [
    pytest.param(
        [[ONGOING]],
        [[f"{E}/onset"]],
        ["X blocked in PK on AS17557, AS45669 since 2024-02-17 15:00 UTC"],
        id="new-event",
    ),
    pytest.param(
        [[ALL_ENDED]],
        [[f"{E}/onset", f"{E}/resolution"]],
        [
            "X blocked in PK on AS17557, AS45669 since 2024-02-17 15:00 UTC",
            "X reachable again in PK on AS17557, AS45669 since 2024-02-28 10:00 UTC",
        ],
        id="new-event-already-ended",
    ),
    pytest.param(
        [[ONGOING], [dataclasses.replace(ONGOING, n_measurements=900, n_blocked=400)]],
        [[f"{E}/onset"], []],
        [],
        id="extended-no-alert",
    ),
    pytest.param(
        [[ONGOING], [THREE]],
        [[f"{E}/onset"], [f"{E}/update/1"]],
        ["X block in PK: now also on AS24499 since 2024-02-19 06:00 UTC"],
        id="new-network",
    ),
    pytest.param(
        [[ONGOING], [event(list(ONGOING.networks), methods=[("dns", 0.6), ("tls", 0.4)])]],
        [[f"{E}/onset"], [f"{E}/update/1"]],
        ["X block in PK: method now dns (60%), was tls"],
        id="method-change",
    ),
    pytest.param(
        [[event(list(ONGOING.networks), confidence="high")], [ONGOING]],
        [[f"{E}/onset"], [f"{E}/update/1"]],
        ["X block in PK: confidence now confirmed, was high"],
        id="confidence-change",
    ),
    pytest.param(
        [[ONGOING], [TWO_ONE_ENDED], [ALL_ENDED]],
        [[f"{E}/onset"], [f"{E}/resolution/AS45669"], [f"{E}/resolution"]],
        [
            "X reachable again in PK on AS45669 since 2024-02-20 10:00 UTC",
            "X reachable again in PK on AS17557 since 2024-02-28 10:00 UTC",
        ],
        id="network-ends-then-event-ends",
    ),
    pytest.param(
        [[ONGOING], [ALL_ENDED], [ALL_ENDED]],
        [[f"{E}/onset"], [f"{E}/resolution"], []],
        ["X reachable again in PK on AS17557, AS45669 since 2024-02-28 10:00 UTC"],
        id="ended-once",
    ),
    pytest.param(
        [[ALL_ENDED], [RELAPSED], [RELAPSE_ENDED]],
        [[f"{E}/onset", f"{E}/resolution"], [f"{E}/update/1"], [f"{E}/resolution/2"]],
        [
            "X block in PK: blocked again on AS17557 since 2024-03-01 07:00 UTC",
            "X reachable again in PK on AS17557 since 2024-03-04 10:00 UTC",
        ],
        id="blocked-again-and-ended-again",
    ),
    pytest.param(
        [[ONGOING], [THREE], [event(list(THREE.networks), methods=[("dns", 0.7)])]],
        [[f"{E}/onset"], [f"{E}/update/1"], [f"{E}/update/2"]],
        ["method now dns (70%), was tls"],
        id="second-update",
    ),
    pytest.param(
        [
            [event([net(45669, "2024-02-08T03:00:00Z")], id="o", platform="*")],
            [
                event(
                    [net(45669, "2024-02-08T03:00:00Z", "2024-02-08T20:00:00Z")],
                    id="o",
                    platform="*",
                )
            ],
        ],
        [["o/onset"], ["o/resolution"]],
        [
            "Connectivity outage in PK on AS45669 since 2024-02-08 03:00 UTC",
            "Connectivity back in PK on AS45669 since 2024-02-08 20:00 UTC",
        ],
        id="outage-onset-then-end",
    ),
    pytest.param(
        [[PK_OUTAGE]],
        [[f"{PK_OUTAGE.id}/onset", f"{PK_OUTAGE.id}/resolution"]],
        ["Connectivity back in PK on AS45669 since 2024-02-08 20:00 UTC"],
        id="outage-ended",
    ),
    pytest.param(
        [[PK_BLOCK, ONGOING]],
        [[f"{E}/onset", f"{PK_BLOCK.id}/onset", f"{PK_BLOCK.id}/resolution"]],
        [],
        id="two-events-in-start-order",
    ),
]


@pytest.mark.parametrize(("states", "ids", "titles"), CASES)
def test_changes(states: list[list[StoredEvent]], ids: list[list[str]], titles: list[str]) -> None:
    found = runs(*states)
    assert [[a.id for a in alerts] for alerts in found] == ids
    all_titles = [a.title for alerts in found for a in alerts]
    for title in titles:
        assert any(title in t for t in all_titles), (title, all_titles)


def test_same_input_same_alerts() -> None:
    """Interrupted before its record was saved, a run computes the very same alerts."""
    first, _ = compute([ALL_ENDED, PK_OUTAGE], {}, CTX, NOW)
    again, _ = compute([PK_OUTAGE, ALL_ENDED], {}, CTX, NOW)
    assert first == again


def test_onset_wording_and_links() -> None:
    (onset,) = runs([ONGOING])[0]
    assert onset.text.splitlines()[0] == (
        "X blocked in PK on AS17557, AS45669 since 2024-02-17 15:00 UTC, "
        "method tls (94%), confidence confirmed."
    )
    assert "  AS17557 (PTCL): blocked since 2024-02-17 15:00 UTC" in onset.text
    assert onset.evidence_url == f"https://explorer.example.org/events/{E}"
    assert (
        onset.report_command == f"blockproof report {E} --store '/srv/pk store' --out report.html"
    )
    assert f"Evidence: {onset.evidence_url}" in onset.text
    assert f"Report:   {onset.report_command}" in onset.text
    assert (onset.kind, onset.platform_name, onset.country) == ("onset", "X", "PK")
    assert (onset.method, onset.method_share, onset.issued) == ("tls", 0.94, NOW)
    assert onset.occurred == "2024-02-17T15:00:00Z"
    assert Alert.from_json(onset.to_json()) == onset


def test_stateless_alerts_are_dated_by_the_data() -> None:
    onset, resolution = compute([ALL_ENDED], {}, CTX, None)[0]
    assert (onset.issued, resolution.issued) == ("2024-02-17T15:00:00Z", "2024-02-28T10:00:00Z")


def test_many_networks_are_counted_in_the_title() -> None:
    many = event([net(asn) for asn in range(100, 107)])
    (onset,) = runs([many])[0]
    assert "on AS100, AS101, AS102, AS103 and 3 more networks since" in onset.title
    assert onset.text.count(": blocked since") == 7


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("PTCL", "PTCL"),
        ("Evil\r\nBcc: x@y", "Evil Bcc: x@y"),
        ("a\x00b\x1bc\u202ed", "abcd"),
        ("  spaced\t\tout  ", "spaced out"),
        ("x" * 200, "x" * 79 + "…"),
    ],
)
def test_clean(raw: str, cleaned: str) -> None:
    assert clean(raw) == cleaned


def test_hostile_network_name_stays_on_one_line() -> None:
    hostile = event([net(17557, name="PTCL\r\nX-Injected: 1\x07")])
    (onset,) = runs([hostile])[0]
    assert "\n" not in onset.title
    assert "\x07" not in onset.text
    assert "AS17557 (PTCL X-Injected: 1): blocked" in onset.text


# -- filters ----------------------------------------------------------------------------

(ONSET,) = runs([ONGOING])[0]
OUTAGE_ONSET = runs([PK_OUTAGE])[0][0]


@pytest.mark.parametrize(
    ("filters", "alert", "matches"),
    [
        (Filters(), ONSET, True),
        (Filters(countries=frozenset({"PK"})), ONSET, True),
        (Filters(countries=frozenset({"IN"})), ONSET, False),
        (Filters(platforms=frozenset({"x"})), ONSET, True),
        (Filters(platforms=frozenset({"youtube"})), ONSET, False),
        (Filters(platforms=frozenset({"*"})), OUTAGE_ONSET, True),
        (Filters(platforms=frozenset({"*"})), ONSET, False),
        (Filters(networks=frozenset({45669})), ONSET, True),
        (Filters(networks=frozenset({24499})), ONSET, False),
        (Filters(kinds=frozenset({"resolution"})), ONSET, False),
        (Filters(kinds=frozenset({"onset", "update"})), ONSET, True),
        (Filters(frozenset({"PK"}), frozenset({17557}), frozenset({"x"}), frozenset({"onset"})),
         ONSET, True),
    ],
)  # fmt: skip
def test_filters(filters: Filters, alert: Alert, matches: bool) -> None:
    assert filters.matches(alert) is matches


def test_update_concerns_the_networks_that_changed() -> None:
    update = runs([ONGOING], [THREE])[1][0]
    assert update.asns == {24499}
    assert not Filters(networks=frozenset({17557})).matches(update)
    method = runs([ONGOING], [event(list(ONGOING.networks), methods=[("dns", 1.0)])])[1][0]
    assert method.asns == {17557, 45669}


# -- the subscriptions file ---------------------------------------------------------------

GOOD = """
explorer_url = "https://explorer.example.org/"
[smtp]
host = "mail.example.org"
port = 587
from = "blockproof@example.org"
starttls = true
user = "alerts"
password_env = "SMTP_PASSWORD"

[[subscription]]
name = "pk-x"
countries = ["pk"]
networks = [17557, "AS45669"]
platforms = ["x", "*"]
kinds = ["onset", "resolution"]
atom = "feeds/pk.atom"
webhook = "https://hooks.example.org/b"
secret_env = "HOOK_SECRET"
mail_to = ["desk@example.org"]

[[subscription]]
name = "all"
atom = "all.atom"
"""


def test_config(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(GOOD)
    env = {"SMTP_PASSWORD": "pw", "HOOK_SECRET": "s3cret"}
    config = load_config(path, env, ["x", "youtube"])
    assert config.explorer_url == "https://explorer.example.org"
    assert config.smtp is not None
    assert (config.smtp.host, config.smtp.port, config.smtp.starttls) == (
        "mail.example.org", 587, True
    )  # fmt: skip
    assert config.smtp.password == "pw"
    assert "pw" not in repr(config)
    pk, everything = config.subscriptions
    assert pk.filters == Filters(
        frozenset({"PK"}), frozenset({17557, 45669}), frozenset({"x", "*"}),
        frozenset({"onset", "resolution"}),
    )  # fmt: skip
    assert pk.atom == tmp_path / "feeds" / "pk.atom"
    assert pk.webhooks[0].secret == b"s3cret"
    assert "s3cret" not in repr(pk)
    assert [d.kind for d in pk.destinations()] == ["atom", "webhook", "mail"]
    assert everything.filters == Filters()
    assert everything.atom == tmp_path / "all.atom"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[subscription]]\nname = 'a'\n", "subscription[0]: has no destination"),
        ("[[subscription]]\natom = 'a'\n", "subscription[0].name: is required"),
        ("[[subscription]]\nname = 'a'\natom = 'a'\ncolor = 1\n", "unknown key(s): color"),
        ("[[subscription]]\nname = 'a b'\natom = 'a'\n", "subscription[0].name"),
        ("[[subscription]]\nname = 'a'\natom = 'a'\n[[subscription]]\nname = 'a'\natom = 'b'\n",
         "already the name"),
        ("[[subscription]]\nname = 'a'\natom = 'a'\ncountries = ['PAK']\n", "not a country code"),
        ("[[subscription]]\nname = 'a'\natom = 'a'\nnetworks = ['ASX']\n", "not a network"),
        ("[[subscription]]\nname = 'a'\natom = 'a'\nplatforms = ['myspace']\n", "not a platform"),
        ("[[subscription]]\nname = 'a'\natom = 'a'\nkinds = ['rumour']\n", "not one of"),
        ("[[subscription]]\nname = 'a'\nwebhook = 'ftp://x'\n", "not a webhook URL"),
        ("[[subscription]]\nname = 'a'\nwebhook = 'https://x'\nsecret_env = 'UNSET_VAR'\n",
         "UNSET_VAR is not set"),
        ("[[subscription]]\nname = 'a'\nwebhook = 'https://x'\nsecret = 's'\nsecret_env = 'S'\n",
         "not both"),
        ("[[subscription]]\nname = 'a'\nmail_to = ['desk@example.org']\n", "needs an [smtp]"),
        ("[[subscription]]\nname = 'a'\natom = 'a'\nmail_to = ['no-at-sign']\n",
         "not an e-mail address"),
        ("[smtp]\nhost = 'm'\n", "smtp.from: is required"),
        ("[smtp]\nhost = 'm'\nfrom = 'a@b'\nport = 99999\n", "between 1 and 65535"),
        ("[smtp]\nhost = 'm'\nfrom = 'a@b'\nuser = 'u'\n", "password_env: is required"),
        ("explorer_url = 'javascript:alert(1)'\n", "not the explorer's base URL"),
        ("subscription = 3\n", "subscription: must be an array"),
        ("[[subscription]\n", "not valid TOML"),
    ],
)  # fmt: skip
def test_bad_config(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, {}, ["x"])
    assert message in str(info.value)
    assert str(info.value).startswith(str(path))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail.example.org:587", ("mail.example.org", 587)),
        ("127.0.0.1", ("127.0.0.1", 25)),
        ("[::1]:2525", ("::1", 2525)),
    ],
)
def test_hostport(text: str, expected: tuple[str, int]) -> None:
    assert parse_hostport(text) == expected


@pytest.mark.parametrize("text", ["", "host:0", "host:99999", "a b:25", "host:port"])
def test_bad_hostport(text: str) -> None:
    with pytest.raises(InputError):
        parse_hostport(text)
