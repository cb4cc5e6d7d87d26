"""The kernel lab's plan: names, refusals, nftables rulesets, tc, /etc files and links.

Everything in ``lab/kernel/plan.py`` is pure; only the ``kernel`` tests touch the
kernel, and then only to have ``nft -c`` (check mode) parse each ruleset inside a
throwaway network namespace.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import secrets
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from blockproof.lab.censor import Censor
from blockproof.lab.kernel.plan import (
    DNS_PORT,
    DPI_PORT,
    GATEWAY,
    PREFIX,
    PROBE_ADDR,
    TRANSIT_CENSOR,
    Names,
    censor_ruleset,
    etc_files,
    from_probe_side,
    internet_ruleset,
    ipv4,
    link_commands,
    needs_dpi,
    netem_commands,
    tc_commands,
    throttle_classid,
    unsupported,
)
from blockproof.lab.scenario import Scenario, load_scenario, parse_scenario, shipped_scenarios

NAMES = Names("abc123")
X_COM = {"104.244.42.1", "104.244.42.129"}
EXAMPLE_ORG = "93.184.215.14"


def scenario(text: str = "") -> Scenario:
    """A scenario from a small TOML text (the default internet plus what it adds)."""
    return parse_scenario(tomllib.loads(text), source="plan.toml", name="plan")


@functools.cache
def shipped() -> dict[str, Scenario]:
    return {_scenario_id(path): load_scenario(path) for path in shipped_scenarios()}


def _scenario_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}" if path.parent.name == "ooni-qa" else path.stem


SHIPPED_IDS = [_scenario_id(p) for p in shipped_scenarios()]


def chain(ruleset: str, name: str) -> list[str]:
    """The statements of chain ``name`` (its ``type ... hook`` head left out)."""
    found = re.search(rf"^  chain {name} {{\n(.*?)^  }}", ruleset, re.M | re.S)
    assert found, f"no chain {name} in\n{ruleset}"
    lines = [line.strip() for line in found.group(1).splitlines()]
    assert lines[0].startswith("type "), lines
    return lines[1:]


def set_items(text: str) -> set[str]:
    """``{ a, b }`` -> {"a", "b"}."""
    assert text.startswith("{ "), text
    assert text.endswith(" }"), text
    return {item.strip() for item in text[2:-2].split(",")}


# --- Names -------------------------------------------------------------------------------

RUN_IDS = ["abc123", "000000", "ffffff", "2d591f", "9a0b7c"]


@pytest.mark.parametrize("run_id", RUN_IDS)
def test_names_carry_the_run_id(run_id: str) -> None:
    names = Names(run_id)
    assert len(set(names.namespaces)) == 3
    for ns in names.namespaces:
        assert ns.startswith(PREFIX)
        assert run_id in ns
    veths = [names.probe_veth, names.censor_probe_veth, names.censor_internet_veth,
             names.internet_veth]  # fmt: skip
    assert len(set(veths)) == 4
    for veth in veths:
        assert run_id in veth
        assert len(veth.encode()) <= 15  # IFNAMSIZ - 1
    assert run_id in names.table
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", names.table)  # a bare nft identifier


def _all_names(names: Names) -> set[str]:
    return {*names.namespaces, names.probe_veth, names.censor_probe_veth,
            names.censor_internet_veth, names.internet_veth, names.table}  # fmt: skip


@pytest.mark.parametrize(
    ("a", "b"), [("abc123", "abc124"), ("000000", "ffffff"), ("2d591f", "f195d2")]
)
def test_names_of_two_runs_never_collide(a: str, b: str) -> None:
    assert not _all_names(Names(a)) & _all_names(Names(b))


# --- unsupported -------------------------------------------------------------------------

MANY_THROTTLES = "".join(
    f'[[rule]]\nlayer = "throttle"\nmatch = ["h{i}.example"]\nrate_kbps = 100\n' for i in range(65)
)

# (id, scenario text, substrings one problem must contain, or None: no problem)
UNSUPPORTED: list[tuple[str, str, tuple[str, ...] | None]] = [
    ("ordinary", '[[rule]]\nlayer = "tcp"\nmatch = ["x.com"]\naction = "blackhole"\n', None),
    ("default internet", "", None),
    ("android getaddrinfo", '[probe]\ngetaddrinfo = "android"\n', ("getaddrinfo", "android")),
    ("host in the probe lan",
     '[[host]]\nname = "inside.example"\naddresses = ["100.64.0.9"]\n',
     ("inside.example", "100.64.0.9", "100.64.0.0/15")),
    ("host in the transit lan",
     '[[host]]\nname = "transit.example"\naddresses = ["198.51.100.1", "100.65.3.3"]\n',
     ("transit.example", "100.65.3.3")),
    ("just outside the lab's range",
     '[[host]]\nname = "cgnat.example"\naddresses = ["100.66.0.1"]\n', None),
    ("too many throttle rules", MANY_THROTTLES, ("throttle",)),
    ("throttle delay with loss",
     '[[rule]]\nlayer = "throttle"\nmatch = ["big.example"]\ndelay_ms = 300\nloss = 0.1\n',
     ("big.example", "delay_ms", "loss", "netem")),
    ("throttle delay alone",
     '[[rule]]\nlayer = "throttle"\nmatch = ["big.example"]\ndelay_ms = 300\n', None),
    ("throttle loss alone",
     '[[rule]]\nlayer = "throttle"\nmatch = ["big.example"]\nloss = 0.1\n', None),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), [u[1:] for u in UNSUPPORTED],
                         ids=[u[0] for u in UNSUPPORTED])  # fmt: skip
def test_unsupported(text: str, expected: tuple[str, ...] | None) -> None:
    problems = unsupported(scenario(text))
    if expected is None:
        assert problems == []
    else:
        assert len(problems) == 1, problems
        for part in expected:
            assert part in problems[0]


@pytest.mark.parametrize("scenario_id", SHIPPED_IDS)
def test_unsupported_on_shipped_scenarios(scenario_id: str) -> None:
    problems = unsupported(shipped()[scenario_id])
    assert isinstance(problems, list)
    assert all(isinstance(p, str) and p for p in problems)


# --- censor_ruleset ----------------------------------------------------------------------

BLACKHOLE_X = '[[rule]]\nlayer = "tcp"\nmatch = ["x.com"]\naction = "blackhole"\n'
DOWN_HOSTS = """
[[host]]
name = "refusing.example"
addresses = ["198.51.100.7"]
down = "refuse"
[[host]]
name = "silent.example"
addresses = ["198.51.100.8"]
down = "timeout"
"""

# (id, scenario text, {chain: substrings some line must contain},
#  {chain: substrings no line may contain})
RULESETS: list[tuple[str, str, dict[str, list[str]], dict[str, list[str]]]] = [
    ("tcp blackhole",
     BLACKHOLE_X,
     {"tcp_rules": ['iifname "bkabc123pb" ip daddr { 104.244.42.1, 104.244.42.129 } '
                    "meta l4proto tcp drop"]},
     {"tcp_rules": [EXAMPLE_ORG, "reject"]}),
    ("tcp refuse answers the SYN only",
     '[[rule]]\nlayer = "tcp"\nmatch = ["www.example.org"]\naction = "refuse"\n',
     {"tcp_rules": [f"ip daddr {{ {EXAMPLE_ORG} }} meta l4proto tcp "
                    "tcp flags & (syn | ack) == syn reject with tcp reset"]},
     {"tcp_rules": ["drop", "104.244.42.1"]}),
    ("tcp ports",
     '[[rule]]\nlayer = "tcp"\nmatch = ["x.com"]\naction = "blackhole"\nports = [443, 8443]\n',
     {"tcp_rules": ["meta l4proto tcp tcp dport { 443, 8443 } drop"]},
     {}),
    ("tcp alias",
     '[[rule]]\nlayer = "tcp"\nmatch = ["api.twitter.com"]\naction = "blackhole"\n',
     {"tcp_rules": ["ip daddr { 104.244.42.66 } meta l4proto tcp drop"]},
     {}),
    ("tcp rule matching nothing",
     '[[rule]]\nlayer = "tcp"\nmatch = ["nowhere.example"]\naction = "blackhole"\n',
     {},
     {"tcp_rules": ["ip daddr"]}),
    ("dns redirects always",
     "",
     {"redirects": [f'iifname "bkabc123pb" ip daddr {{ 8.8.8.8 }} udp dport 53 '
                    f"redirect to :{DNS_PORT}",
                    f'iifname "bkabc123pb" ip daddr {{ 8.8.8.8 }} tcp dport 53 '
                    f"redirect to :{DNS_PORT}"]},
     {"redirects": [f":{DPI_PORT}"], "tcp_rules": ["ip daddr"], "loss": ["drop"]}),
    ("no dpi for tcp rules alone",
     BLACKHOLE_X,
     {"redirects": [f"udp dport 53 redirect to :{DNS_PORT}"]},
     {"redirects": [f":{DPI_PORT}"]}),
    ("dpi for tls",
     '[[rule]]\nlayer = "tls"\nmatch = ["x.com"]\naction = "reset"\n' + DOWN_HOSTS,
     {"redirects": ["ip daddr . tcp dport { 104.244.42.1 . 80, 104.244.42.1 . 443,",
                    f"}} redirect to :{DPI_PORT}", "8.8.8.8 . 443",
                    "185.220.101.20 . 1080", "185.220.101.20 . 3128",
                    "37.218.240.10 . 80", "202.83.170.10 . 80",
                    f"tcp dport 53 redirect to :{DNS_PORT}"]},
     {"redirects": ["8.8.8.8 . 53", "198.51.100.7", "198.51.100.8", "37.218.240.10 . 443",
                    "202.83.170.10 . 443", "185.220.101.20 . 80"]}),
    ("dpi for http",
     '[[rule]]\nlayer = "http"\nmatch = ["x.com"]\naction = "reset"\n',
     {"redirects": [f"redirect to :{DPI_PORT}"]},
     {}),
    ("dpi and loss for throttle",
     '[[rule]]\nlayer = "throttle"\nmatch = ["*.twimg.com"]\nrate_kbps = 256\nloss = 0.05\n',
     {"redirects": [f"redirect to :{DPI_PORT}"],
      "loss": ['oifname "bkabc123pb" meta priority 1:10 numgen random mod 10000 < 500 drop']},
     {}),
    ("loss of the second throttle rule",
     '[[rule]]\nlayer = "throttle"\nmatch = ["x.com"]\nrate_kbps = 100\n'
     '[[rule]]\nlayer = "throttle"\nmatch = ["*.twimg.com"]\ndelay_ms = 50\nloss = 0.125\n',
     {"loss": ["meta priority 1:11 numgen random mod 10000 < 1250 drop"]},
     {"loss": ["1:10"]}),
    ("the smallest loss still drops",
     '[[rule]]\nlayer = "throttle"\nmatch = ["x.com"]\nloss = 0.00001\n',
     {"loss": ["meta priority 1:10 numgen random mod 10000 < 1 drop"]},
     {}),
    ("no loss without loss",
     '[[rule]]\nlayer = "throttle"\nmatch = ["x.com"]\nrate_kbps = 100\n',
     {"redirects": [f"redirect to :{DPI_PORT}"]},
     {"loss": ["drop"]}),
]  # fmt: skip


@pytest.mark.parametrize(("text", "present", "absent"), [r[1:] for r in RULESETS],
                         ids=[r[0] for r in RULESETS])  # fmt: skip
def test_censor_ruleset(
    text: str, present: dict[str, list[str]], absent: dict[str, list[str]]
) -> None:
    ruleset = censor_ruleset(scenario(text), NAMES)
    assert ruleset.startswith(f"table inet {NAMES.table} {{\n")
    for name, parts in present.items():
        lines = chain(ruleset, name)
        for part in parts:
            assert any(part in line for line in lines), f"{part!r} not in {name}: {lines}"
    for name, parts in absent.items():
        lines = chain(ruleset, name)
        for part in parts:
            assert not any(part in line for line in lines), f"{part!r} in {name}: {lines}"


_TCP_LINE = re.compile(
    r'iifname "\S+" ip daddr (\{ [^}]* \}) meta l4proto tcp(?: tcp dport (\{ [^}]* \}))? '
    r"(drop|tcp flags & \(syn \| ack\) == syn reject with tcp reset)$"
)


def parse_tcp_rules(ruleset: str) -> list[tuple[set[str], set[int] | None, str]]:
    """The tcp_rules chain as (addresses, ports or None for any, "blackhole"/"refuse")."""
    out = []
    for line in chain(ruleset, "tcp_rules"):
        found = _TCP_LINE.fullmatch(line)
        assert found, line
        ports = {int(p) for p in set_items(found.group(2))} if found.group(2) else None
        action = "blackhole" if found.group(3) == "drop" else "refuse"
        out.append((set_items(found.group(1)), ports, action))
    return out


def candidates(sc: Scenario) -> tuple[set[str], set[int]]:
    """Every IPv4 address a tcp rule could concern and the ports worth asking about."""
    addresses = {ip for h in sc.hosts for ip in ipv4(h.addresses)}
    ports = {80, 443}
    for rule in sc.rules_for("tcp"):
        addresses.update(ipv4(rule.ips))
        ports.update(rule.ports)
    return addresses, ports


# Scenarios whose tcp rules do not overlap: each rule's address set is exactly the
# addresses Censor.tcp gives that rule for.
DISJOINT_TCP = [
    BLACKHOLE_X,
    '[[rule]]\nlayer = "tcp"\nmatch = ["x.com"]\nips = ["192.0.2.50", "2001:db8::1"]\n'
    'action = "refuse"\n',
    '[[rule]]\nlayer = "tcp"\nips = ["104.244.42.66"]\naction = "blackhole"\nports = [443]\n'
    '[[rule]]\nlayer = "tcp"\nmatch = ["*.twimg.com", "t.co"]\naction = "refuse"\n',
    '[[rule]]\nlayer = "tcp"\nmatch = ["www.example.org"]\nips = ["198.51.100.99"]\n'
    'action = "blackhole"\nports = [80]\n'
    '[[host]]\nname = "extra.example"\naddresses = ["198.51.100.99"]\n',
]


@pytest.mark.parametrize("text", DISJOINT_TCP)
def test_tcp_rule_addresses_agree_with_censor(text: str) -> None:
    sc = scenario(text)
    censor = Censor(sc)
    addresses, _ = candidates(sc)
    lines = parse_tcp_rules(censor_ruleset(sc, NAMES))
    rules = sc.rules_for("tcp")
    assert len(lines) == len(rules)
    for (in_ruleset, ports, action), rule in zip(lines, rules, strict=True):
        asked = sorted({80, 443} | set(rule.ports))
        expected = {ip for ip in addresses if any(censor.tcp(ip, p) == rule for p in asked)}
        assert in_ruleset == expected
        assert ports == (set(rule.ports) or None)
        assert action == rule.action


def test_ips_are_or_ed_with_the_matched_hosts() -> None:
    sc = scenario(DISJOINT_TCP[1])
    ((addresses, _, _),) = parse_tcp_rules(censor_ruleset(sc, NAMES))
    assert addresses == {"192.0.2.50", *X_COM}  # the IPv6 address is not routed


OVERLAPPING_TCP = (
    '[[rule]]\nlayer = "tcp"\nmatch = ["api.x.com"]\naction = "refuse"\nports = [443]\n'
    '[[rule]]\nlayer = "tcp"\nmatch = ["*.x.com", "x.com"]\naction = "blackhole"\n'
    '[[rule]]\nlayer = "tcp"\nips = ["93.184.215.14", "104.244.42.1"]\naction = "refuse"\n'
)


def nft_verdict(
    lines: list[tuple[set[str], set[int] | None, str]], ip: str, port: int
) -> str | None:
    """What the tcp_rules chain does to a SYN (drop and reject are final: first match)."""
    for addresses, ports, action in lines:
        if ip in addresses and (ports is None or port in ports):
            return action
    return None


@pytest.mark.parametrize("scenario_id", ["overlapping", *SHIPPED_IDS])
def test_tcp_rules_decide_as_the_censor(scenario_id: str) -> None:
    sc = scenario(OVERLAPPING_TCP) if scenario_id == "overlapping" else shipped()[scenario_id]
    censor = Censor(sc)
    lines = parse_tcp_rules(censor_ruleset(sc, NAMES))
    addresses, ports = candidates(sc)
    for ip in sorted(addresses):
        for port in sorted(ports):
            rule = censor.tcp(ip, port)
            expected = rule.action if rule else None
            assert nft_verdict(lines, ip, port) == expected, (ip, port)


def test_dpi_redirect_iff_needed() -> None:
    texts = [text for _, text, _, _ in RULESETS] + list(DISJOINT_TCP)
    for sc in [scenario(t) for t in texts] + list(shipped().values()):
        redirects = chain(censor_ruleset(sc, NAMES), "redirects")
        redirected = any(f"redirect to :{DPI_PORT}" in line for line in redirects)
        assert redirected == needs_dpi(sc), sc.name


def test_dpi_redirect_lists_only_served_endpoints() -> None:
    sc = scenario('[[rule]]\nlayer = "tls"\nmatch = ["x.com"]\naction = "reset"\n' + DOWN_HOSTS)
    (line,) = [line for line in chain(censor_ruleset(sc, NAMES), "redirects") if "dport {" in line]
    found = re.search(r"ip daddr \. tcp dport (\{ [^}]* \})", line)
    assert found
    endpoints = {tuple(e.split(" . ")) for e in set_items(found.group(1))}
    assert all(port != "53" for _, port in endpoints)
    served = {ip for ip, _ in endpoints}
    assert "198.51.100.7" not in served  # down = "refuse"
    assert "198.51.100.8" not in served  # down = "timeout"
    assert served == {ip for h in sc.hosts if h.down == "no" for ip in ipv4(h.addresses)}
    assert {("104.244.42.1", "80"), ("104.244.42.1", "443"), ("8.8.8.8", "443")} <= endpoints


def test_internet_ruleset_silences_timeout_hosts() -> None:
    lines = chain(internet_ruleset(scenario(DOWN_HOSTS), NAMES), "down")
    assert lines == ["ip daddr { 198.51.100.8 } drop"]
    assert chain(internet_ruleset(scenario(), NAMES), "down") == []


# --- nft -c on every shipped scenario (the real parser, in a throwaway namespace) ----------


def _kernel_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create a network namespace"
    missing = [tool for tool in ("ip", "nft") if shutil.which(tool) is None]
    if missing:
        return f"needs {' and '.join(missing)} (iproute2, nftables)"
    return None


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    reason = _kernel_skip_reason()
    if reason:
        pytest.skip(reason)
    name = f"blockproof-test-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def nft_check(ns: str, text: str) -> subprocess.CompletedProcess[str]:
    """``nft -c`` (parse and validate against the kernel, change nothing) in ``ns``."""
    return subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "-c", "-f", "-"],
        input=text, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def assert_nft_accepts(ns: str, rulesets: dict[str, str]) -> None:
    """Every ruleset passes ``nft -c``: all in one call (fast), and on a refusal each
    alone, to name the ones at fault."""
    if nft_check(ns, "".join(rulesets.values())).returncode == 0:
        return
    refused = {}
    for key, text in rulesets.items():
        done = nft_check(ns, text)
        if done.returncode != 0:
            refused[key] = f"{done.stderr}\n{text}"
    assert not refused, "nft -c refused:\n" + "\n".join(f"{k}: {v}" for k, v in refused.items())


def both_rulesets(label: str, sc: Scenario) -> dict[str, str]:
    return {f"{label} (censor)": censor_ruleset(sc, NAMES),
            f"{label} (internet)": internet_ruleset(sc, NAMES)}  # fmt: skip


@pytest.mark.kernel
def test_nft_accepts_the_shipped_rulesets(netns: str) -> None:
    rulesets: dict[str, str] = {}
    for scenario_id, sc in shipped().items():
        rulesets.update(both_rulesets(scenario_id, sc))
    assert len(rulesets) == 2 * len(SHIPPED_IDS) > 0
    assert_nft_accepts(netns, rulesets)


@pytest.mark.kernel
def test_nft_accepts_the_table_rulesets(netns: str) -> None:
    texts = {r[0]: r[1] for r in RULESETS} | {"overlapping tcp": OVERLAPPING_TCP}
    rulesets: dict[str, str] = {}
    for label, text in texts.items():
        rulesets.update(both_rulesets(label, scenario(text)))
    assert_nft_accepts(netns, rulesets)


@pytest.mark.kernel
def test_nft_refuses_a_broken_ruleset(netns: str) -> None:
    """The check is real: a ruleset nft cannot parse is reported, by name."""
    broken = censor_ruleset(scenario(BLACKHOLE_X), NAMES).replace(" drop", " dorp")
    with pytest.raises(AssertionError, match="broken"):
        assert_nft_accepts(netns, {"broken": broken, "fine": internet_ruleset(scenario(), NAMES)})


# --- tc ----------------------------------------------------------------------------------


def test_no_tc_without_throttle_rules() -> None:
    assert tc_commands(scenario(BLACKHOLE_X), NAMES) == []
    assert tc_commands(scenario(), NAMES) == []


def test_tc_for_a_rate_cap() -> None:
    sc = scenario('[[rule]]\nlayer = "throttle"\nmatch = ["*.twimg.com"]\nrate_kbps = 256\n')
    cmds = tc_commands(sc, NAMES)
    prefix = ["ip", "netns", "exec", NAMES.censor, "tc"]
    assert all(cmd[:5] == prefix for cmd in cmds)
    assert all(cmd[cmd.index("dev") + 1] == NAMES.censor_probe_veth for cmd in cmds)
    text = [" ".join(cmd[5:]) for cmd in cmds]
    root = [t for t in text if t.startswith("qdisc add") and " root " in t]
    assert len(root) == 1
    assert "handle 1: htb default 1" in root[0]
    assert any("class add" in t and "parent 1: classid 1:1 htb" in t for t in text)
    assert any("class add" in t and "parent 1: classid 1:10 htb" in t for t in text)
    (tbf,) = [t for t in text if " tbf " in t]
    assert "parent 1:10 " in tbf
    assert "rate 256000bit" in tbf
    assert text.index(root[0]) == 0  # the root qdisc comes before its classes


def test_tc_without_a_rate_has_no_tbf() -> None:
    sc = scenario(
        '[[rule]]\nlayer = "throttle"\nmatch = ["x.com"]\ndelay_ms = 300\n'
        '[[rule]]\nlayer = "throttle"\nmatch = ["t.co"]\nrate_kbps = 1.5\n'
    )
    text = [" ".join(cmd[5:]) for cmd in tc_commands(sc, NAMES)]
    assert any("classid 1:10 htb" in t for t in text)
    assert any("classid 1:11 htb" in t for t in text)
    (tbf,) = [t for t in text if " tbf " in t]
    assert "parent 1:11 " in tbf
    assert "rate 1500bit" in tbf


@pytest.mark.parametrize("index", [0, 1, 5, 63])
def test_throttle_classid(index: int) -> None:
    classid = throttle_classid(index)
    assert classid >> 16 == 1
    assert classid & 0xFFFF == 0x10 + index


# --- /etc files --------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", BLACKHOLE_X])
def test_etc_files(text: str) -> None:
    files = etc_files(scenario(text))
    assert set(files) == {"probe", "censor", "internet"}
    assert files["probe"]["resolv.conf"] == f"nameserver {GATEWAY}\n"
    assert files["censor"]["resolv.conf"] == "nameserver 8.8.8.8\n"
    assert files["internet"]["resolv.conf"] == "nameserver 8.8.8.8\n"
    for ns_files in files.values():
        assert "localhost" in ns_files["hosts"]
        assert ns_files["nsswitch.conf"].startswith("hosts:")


# --- links -------------------------------------------------------------------------------

LINK_SCENARIOS = [
    "",
    DOWN_HOSTS,
    # a dual-stack host and a second host on an address already used
    '[[host]]\nname = "dual.example"\naddresses = ["198.51.100.20", "2001:db8::20"]\n'
    '[[host]]\nname = "mirror.example"\naddresses = ["198.51.100.20", "198.51.100.21"]\n',
]


@pytest.mark.parametrize("text", LINK_SCENARIOS)
def test_every_host_address_on_the_internet_lo_once(text: str) -> None:
    sc = scenario(text)
    cmds = link_commands(sc, NAMES)
    on_lo = [cmd for cmd in cmds if cmd[-2:] == ["dev", "lo"] and "addr" in cmd]
    for cmd in on_lo:
        assert cmd[:5] == ["ip", "-n", NAMES.internet, "addr", "add"]
    added = [cmd[5] for cmd in on_lo]
    expected = {f"{ip}/32" for h in sc.hosts for ip in ipv4(h.addresses)}
    assert sorted(added) == sorted(expected)  # each once
    assert not any(":" in a for a in added)


def _check_in_namespaces(cmd: list[str], names: Names) -> None:
    """An ``ip`` command that creates nothing in the root namespace."""
    assert cmd[0] == "ip", cmd
    if cmd[1:3] == ["netns", "add"]:
        assert cmd[3] in names.namespaces, cmd
    elif cmd[1:3] == ["link", "add"]:
        peer = cmd.index("peer")
        for end in (cmd[:peer], cmd[peer:]):
            assert end.count("netns") == 1, cmd
            assert end[end.index("netns") + 1] in names.namespaces, cmd
    elif cmd[1] == "-n":
        assert cmd[2] in names.namespaces, cmd
    else:
        assert cmd[1:3] == ["netns", "exec"], cmd
        assert cmd[3] in names.namespaces, cmd


@pytest.mark.parametrize("text", LINK_SCENARIOS)
def test_nothing_in_the_root_namespace(text: str) -> None:
    sc = scenario(text)
    cmds = link_commands(sc, NAMES)
    assert [c[3] for c in cmds if c[1:3] == ["netns", "add"]] == list(NAMES.namespaces)
    assert sum(c[1:3] == ["link", "add"] for c in cmds) == 2
    for cmd in cmds:
        _check_in_namespaces(cmd, NAMES)
    throttled = scenario('[[rule]]\nlayer = "throttle"\nmatch = ["x.com"]\nrate_kbps = 64\n')
    for cmd in tc_commands(throttled, NAMES) + netem_commands(scenario("rtt_ms = 80\n"), NAMES):
        _check_in_namespaces(cmd, NAMES)


def test_link_addresses() -> None:
    cmds = [" ".join(c) for c in link_commands(scenario(), NAMES)]
    assert f"ip -n {NAMES.probe} addr add {PROBE_ADDR}/24 dev {NAMES.probe_veth}" in cmds
    assert f"ip -n {NAMES.censor} addr add {GATEWAY}/24 dev {NAMES.censor_probe_veth}" in cmds
    assert (
        f"ip -n {NAMES.censor} addr add {TRANSIT_CENSOR}/24 dev {NAMES.censor_internet_veth}"
        in cmds
    )
    assert f"ip -n {NAMES.probe} route add default via {GATEWAY}" in cmds


# --- from_probe_side ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [("100.64.0.2", True), ("100.65.0.1", True), ("100.64.0.1", True),
     ("104.244.42.1", False), ("100.66.0.1", False), ("100.63.255.255", False),
     (None, False), ("", False), ("garbage", False), ("::1", False)],
)  # fmt: skip
def test_from_probe_side(address: str | None, expected: bool) -> None:
    assert from_probe_side(address) is expected


def test_probe_addresses_are_on_the_probe_side() -> None:
    for address in (PROBE_ADDR, GATEWAY, TRANSIT_CENSOR):
        assert ipaddress.ip_address(address) in ipaddress.ip_network("100.64.0.0/15")
        assert from_probe_side(address)
