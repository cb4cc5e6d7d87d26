"""The kernel lab's plan, without I/O: namespaces, links, addresses, nftables and tc.

A scenario becomes three network namespaces joined by two veth pairs::

    probe ns                 censor ns                           internet ns
    100.64.0.2 ---veth--- 100.64.0.1 | 100.65.0.1 ---veth--- 100.65.0.2
    (blockproof run)       ISP resolver :53                    every host's public
    resolv.conf ->         DNS interceptor (redirected :53)    addresses on lo: sites,
    100.64.0.1             DPI proxy (redirected TCP)          8.8.8.8 (UDP, TCP, DoH),
                           nftables: tcp rules, redirects,     proxies abroad, control
                           loss; tc: htb + tbf to the probe    server; blackhole default

Every name (namespace, veth, nftables table) carries the run's id, so runs never
collide and a leftover is recognisable (``blockproof-<id>-...``). The functions
here turn a ``Scenario`` into the commands and rulesets the shell
(``lab/kernel/shell.py``) applies, and ``unsupported`` says which scenario
features the kernel cannot express; everything is pure and unit-tested.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from blockproof.lab.internet import (
    CONNECT_PORT,
    ROLE_CONTROL,
    ROLE_ISP_PROXY,
    ROLE_PROXY,
    ROLE_RESOLVER,
    ROLE_SITE,
    SOCKS_PORT,
    Host,
)
from blockproof.lab.scenario import Rule, Scenario

PREFIX = "blockproof-"  # every namespace of a kernel lab run starts with it
PROBE_ADDR = "100.64.0.2"
GATEWAY = "100.64.0.1"  # the censor's router on the probe's side; the ISP resolver
TRANSIT_CENSOR = "100.65.0.1"
TRANSIT_INTERNET = "100.65.0.2"
PROBE_LAN = "100.64.0.0/24"
# The probe's side of the censor: its own LAN and the censor's transit address (what
# the DPI proxy's connections come from). Servers tell the probe's requests (which
# get a host's [host.probe] view and the hostile resolver) by this source range.
PROBE_SIDE = ipaddress.ip_network("100.64.0.0/15")
DPI_PORT = 15001  # the transparent DPI proxy, in the censor namespace
DNS_PORT = 15053  # the DNS interceptor (UDP and TCP), in the censor namespace
HTB_DEFAULT = 1  # the htb class of unthrottled traffic
THROTTLE_CLASS_BASE = 0x10  # throttle rule i goes to htb class 1:(0x10 + i)
MAX_THROTTLE_RULES = 64


@dataclass(frozen=True, slots=True)
class Names:
    """The names one run creates, all carrying its id."""

    run_id: str

    @property
    def probe(self) -> str:
        return f"{PREFIX}{self.run_id}-probe"

    @property
    def censor(self) -> str:
        return f"{PREFIX}{self.run_id}-censor"

    @property
    def internet(self) -> str:
        return f"{PREFIX}{self.run_id}-internet"

    @property
    def namespaces(self) -> tuple[str, str, str]:
        return (self.probe, self.censor, self.internet)

    # veth names are at most 15 bytes: "bk" + id + a two-letter end
    @property
    def probe_veth(self) -> str:  # in the probe namespace
        return f"bk{self.run_id}pa"

    @property
    def censor_probe_veth(self) -> str:  # in the censor namespace, towards the probe
        return f"bk{self.run_id}pb"

    @property
    def censor_internet_veth(self) -> str:  # in the censor namespace, towards the internet
        return f"bk{self.run_id}na"

    @property
    def internet_veth(self) -> str:  # in the internet namespace
        return f"bk{self.run_id}nb"

    @property
    def table(self) -> str:  # the nftables table in the censor and internet namespaces
        return f"blockproof_{self.run_id}"


def ipv4(addresses: tuple[str, ...]) -> list[str]:
    return [a for a in addresses if ipaddress.ip_address(a).version == 4]


def role_address(scenario: Scenario, role: str) -> str | None:
    """The first IPv4 address of the first host with ``role`` (the resolver, the control)."""
    for host in scenario.hosts:
        if host.role == role and ipv4(host.addresses):
            return ipv4(host.addresses)[0]
    return None


def served_endpoints(scenario: Scenario) -> list[tuple[str, int]]:
    """Every (address, port) some server of the internet namespace listens on."""
    out: list[tuple[str, int]] = []
    for host in scenario.hosts:
        if host.down != "no":
            continue
        for ip in ipv4(host.addresses):
            out.extend((ip, port) for port in host_ports(host))
    return out


def host_ports(host: Host) -> tuple[int, ...]:
    """The TCP ports a host serves (as the in-process lab's listeners)."""
    match host.role:
        case r if r in (ROLE_SITE, ROLE_ISP_PROXY):
            return tuple(p for p, on in ((80, host.http), (443, host.https)) if on)
        case r if r == ROLE_RESOLVER:
            return (53, 443)
        case r if r == ROLE_PROXY:
            return (SOCKS_PORT, CONNECT_PORT)
        case r if r == ROLE_CONTROL:
            return (80,)
    return ()


def unsupported(scenario: Scenario) -> list[str]:
    """Why the kernel backend cannot run ``scenario`` (empty: it can)."""
    problems: list[str] = []
    if scenario.probe.getaddrinfo != "default":
        problems.append(
            f"[probe] getaddrinfo = {scenario.probe.getaddrinfo!r}: the kernel lab's probe "
            "uses this machine's real getaddrinfo (glibc), which cannot act as another libc"
        )
    own = ipaddress.ip_network("100.64.0.0/15")
    for host in scenario.hosts:
        for ip in host.addresses:
            if ipaddress.ip_address(ip) in own:
                problems.append(f"host {host.name}: {ip} is in the kernel lab's own {own}")
    throttles = scenario.rules_for("throttle")
    if len(throttles) > MAX_THROTTLE_RULES:
        problems.append(f"more than {MAX_THROTTLE_RULES} throttle rules")
    for rule in throttles:
        if rule.delay_ms > 0 and rule.loss > 0:
            problems.append(
                f"throttle rule on {', '.join(rule.match) or 'every flow'} with both delay_ms "
                "and loss: TCP pays for losses on a long path only when the delay is in the "
                "kernel (netem, which this backend does not use); behind the DPI proxy's "
                "delay it would recover in microseconds"
            )
    return problems


def notes(scenario: Scenario, *, netem: bool) -> list[str]:
    """What the kernel backend emulates differently from the in-process lab (printed)."""
    out: list[str] = []
    if scenario.rtt_ms and not netem:
        out.append(f"rtt_ms = {scenario.rtt_ms:g} is not emulated: this kernel has no netem qdisc")
    six = [h.name for h in scenario.hosts if len(ipv4(h.addresses)) != len(h.addresses)]
    if six:
        out.append(f"IPv6 addresses are not routed (hosts {', '.join(six)})")
    return out


def needs_dpi(scenario: Scenario) -> bool:
    """Whether the probe's TCP flows go through the DPI proxy (else they are routed)."""
    return any(scenario.rules_for(layer) for layer in ("tls", "http", "throttle"))


def tcp_rule_addresses(scenario: Scenario, rule: Rule) -> list[str]:
    """The server addresses a ``tcp`` rule applies to: its ``ips`` and the addresses of
    every host one of whose names it matches (as ``Censor.tcp``)."""
    out = dict.fromkeys(ipv4(rule.ips))
    for host in scenario.hosts:
        if any(rule.matches(n) for n in host.names):
            out.update(dict.fromkeys(ipv4(host.addresses)))
    return list(out)


def throttle_classid(index: int) -> int:
    """The htb class (major 1) of the ``index``-th throttle rule, as SO_PRIORITY wants it:
    the DPI proxy sets it on the probe's socket of a throttled flow."""
    return (1 << 16) | (THROTTLE_CLASS_BASE + index)


def _set(items: list[str]) -> str:
    return "{ " + ", ".join(items) + " }"


def censor_ruleset(scenario: Scenario, names: Names) -> str:
    """The censor namespace's nftables table: tcp rules, the redirects to the DNS
    interceptor and the DPI proxy, and the throttle rules' packet loss."""
    probe_in = f'iifname "{names.censor_probe_veth}"'
    tcp_lines: list[str] = []
    for rule in scenario.rules_for("tcp"):
        addrs = tcp_rule_addresses(scenario, rule)
        if not addrs:
            continue
        ports = f" tcp dport {_set([str(p) for p in rule.ports])}" if rule.ports else ""
        match = f"{probe_in} ip daddr {_set(addrs)} meta l4proto tcp{ports}"
        if rule.action == "blackhole":
            tcp_lines.append(f"{match} drop")
        else:  # refuse: the SYN is answered with a RST, as a closed port does
            tcp_lines.append(f"{match} tcp flags & (syn | ack) == syn reject with tcp reset")
    nat_lines: list[str] = []
    resolver = [ip for h in scenario.hosts if h.role == ROLE_RESOLVER for ip in ipv4(h.addresses)]
    if resolver:
        for proto in ("udp", "tcp"):
            nat_lines.append(
                f"{probe_in} ip daddr {_set(resolver)} {proto} dport 53 redirect to :{DNS_PORT}"
            )
    if needs_dpi(scenario):
        endpoints = [f"{ip} . {port}" for ip, port in served_endpoints(scenario) if port != 53]
        if endpoints:
            nat_lines.append(
                f"{probe_in} ip daddr . tcp dport {_set(endpoints)} redirect to :{DPI_PORT}"
            )
    loss_lines: list[str] = []
    for i, rule in enumerate(scenario.rules_for("throttle")):
        if rule.loss > 0:
            per_10k = max(1, round(rule.loss * 10000))
            classid = throttle_classid(i)
            loss_lines.append(
                f'oifname "{names.censor_probe_veth}" meta priority '
                f"{classid >> 16:x}:{classid & 0xFFFF:x} numgen random mod 10000 < {per_10k} drop"
            )
    chains = [
        ("tcp_rules", "type filter hook prerouting priority -150; policy accept;", tcp_lines),
        ("redirects", "type nat hook prerouting priority -100; policy accept;", nat_lines),
        ("loss", "type filter hook output priority 0; policy accept;", loss_lines),
    ]
    return _table(names.table, chains)


def internet_ruleset(scenario: Scenario, names: Names) -> str:
    """The internet namespace's table: hosts that are ``down = "timeout"`` never answer."""
    silent = [ip for h in scenario.hosts if h.down == "timeout" for ip in ipv4(h.addresses)]
    lines = [f"ip daddr {_set(silent)} drop"] if silent else []
    return _table(
        names.table, [("down", "type filter hook input priority 0; policy accept;", lines)]
    )


def _table(name: str, chains: list[tuple[str, str, list[str]]]) -> str:
    out = [f"table inet {name} {{"]
    for chain, head, lines in chains:
        out.append(f"  chain {chain} {{")
        out.append(f"    {head}")
        out.extend(f"    {line}" for line in lines)
        out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"


def link_commands(scenario: Scenario, names: Names) -> list[list[str]]:
    """``ip`` and ``sysctl`` commands that build the three namespaces and their links.
    The veths are created inside the namespaces: nothing of a run is ever in the root
    namespace, so deleting the namespaces removes everything."""
    p, c, n = names.namespaces
    cmds: list[list[str]] = [["ip", "netns", "add", ns] for ns in names.namespaces]
    cmds += [
        ["ip", "link", "add", names.probe_veth, "netns", p, "type", "veth",
         "peer", "name", names.censor_probe_veth, "netns", c],
        ["ip", "link", "add", names.censor_internet_veth, "netns", c, "type", "veth",
         "peer", "name", names.internet_veth, "netns", n],
    ]  # fmt: skip
    for ns in names.namespaces:
        cmds.append(["ip", "-n", ns, "link", "set", "lo", "up"])
    cmds += [
        ["ip", "-n", p, "addr", "add", f"{PROBE_ADDR}/24", "dev", names.probe_veth],
        ["ip", "-n", p, "link", "set", names.probe_veth, "up"],
        ["ip", "-n", p, "route", "add", "default", "via", GATEWAY],
        ["ip", "-n", c, "addr", "add", f"{GATEWAY}/24", "dev", names.censor_probe_veth],
        ["ip", "-n", c, "addr", "add", f"{TRANSIT_CENSOR}/24", "dev", names.censor_internet_veth],
        ["ip", "-n", c, "link", "set", names.censor_probe_veth, "up"],
        ["ip", "-n", c, "link", "set", names.censor_internet_veth, "up"],
        ["ip", "-n", c, "route", "add", "default", "via", TRANSIT_INTERNET],
        ["ip", "netns", "exec", c, "sysctl", "-qw", "net.ipv4.ip_forward=1"],
        ["ip", "netns", "exec", c, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"],
        ["ip", "-n", n, "addr", "add", f"{TRANSIT_INTERNET}/24", "dev", names.internet_veth],
        ["ip", "-n", n, "link", "set", names.internet_veth, "up"],
        ["ip", "-n", n, "route", "add", PROBE_LAN, "via", TRANSIT_CENSOR],
        # an address no host owns gets no answer, as on the internet (not "unreachable")
        ["ip", "-n", n, "route", "add", "blackhole", "default"],
    ]
    seen: set[str] = set()
    for host in scenario.hosts:
        for ip in ipv4(host.addresses):
            if ip not in seen:
                seen.add(ip)
                cmds.append(["ip", "-n", n, "addr", "add", f"{ip}/32", "dev", "lo"])
    return cmds


def tc_commands(scenario: Scenario, names: Names) -> list[list[str]]:
    """The censor's rate caps: an htb tree on its veth towards the probe, one class per
    throttle rule with a tbf below it. The DPI proxy puts a throttled flow in its class
    (SO_PRIORITY = the class id); the rest goes to the default class, uncapped."""
    rules = scenario.rules_for("throttle")
    if not rules:
        return []
    c, dev = names.censor, names.censor_probe_veth
    tc = ["ip", "netns", "exec", c, "tc"]
    cmds = [
        [*tc, "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb",
         "default", f"{HTB_DEFAULT:x}", "r2q", "100000"],
        [*tc, "class", "add", "dev", dev, "parent", "1:", "classid", f"1:{HTB_DEFAULT:x}",
         "htb", "rate", "10gbit"],
    ]  # fmt: skip
    for i, rule in enumerate(rules):
        minor = throttle_classid(i) & 0xFFFF
        cmds.append([*tc, "class", "add", "dev", dev, "parent", "1:", "classid", f"1:{minor:x}",
                     "htb", "rate", "10gbit"])  # fmt: skip
        if rule.rate_kbps > 0:
            rate_bits = int(rule.rate_kbps * 1000)
            burst = max(3200, rate_bits // 8 // 50)  # 20 ms of the rate, at least 2 segments
            cmds.append([*tc, "qdisc", "add", "dev", dev, "parent", f"1:{minor:x}",
                         "handle", f"{minor:x}:", "tbf", "rate", f"{rate_bits}bit",
                         "burst", str(burst), "latency", "60s"])  # fmt: skip
    return cmds


def netem_commands(scenario: Scenario, names: Names) -> list[list[str]]:
    """Half the scenario's round trip each way on the censor's veths (needs netem)."""
    if not scenario.rtt_ms:
        return []
    half = f"{scenario.rtt_ms / 2:g}ms"
    return [
        ["ip", "netns", "exec", names.probe, "tc", "qdisc", "add", "dev", names.probe_veth,
         "root", "netem", "delay", half],
        ["ip", "netns", "exec", names.internet, "tc", "qdisc", "add", "dev",
         names.internet_veth, "root", "netem", "delay", half],
    ]  # fmt: skip


def etc_files(scenario: Scenario) -> dict[str, dict[str, str]]:
    """Files ``ip netns exec`` mounts over /etc in each namespace ("probe", "censor",
    "internet"): the probe's system resolver is the ISP's, the others ask 8.8.8.8 (which
    answers the truth to anyone but the probe); no host file or other name service
    of this machine leaks in."""
    resolver = role_address(scenario, ROLE_RESOLVER) or GATEWAY
    hosts = "127.0.0.1 localhost\n::1 localhost\n"
    nss = "hosts: files dns\n"

    def files(nameserver: str) -> dict[str, str]:
        return {
            "resolv.conf": f"nameserver {nameserver}\n",
            "hosts": hosts,
            "nsswitch.conf": nss,
        }

    return {"probe": files(GATEWAY), "censor": files(resolver), "internet": files(resolver)}


def from_probe_side(address: str | None) -> bool:
    """Whether a connection or query came from the probe (directly or via the DPI)."""
    if not address:
        return False
    try:
        return ipaddress.ip_address(address) in PROBE_SIDE
    except ValueError:
        return False
