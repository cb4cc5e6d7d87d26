"""The lab's default internet: X's domains, a few uncensored sites, a blockpage server,
the control server and a public resolver, at realistic public addresses.

Every scenario starts from ``DEFAULT_HOSTS`` and adds or replaces hosts with
``[[host]]`` tables. Addresses are what the probe sees and records; the lab
routes them to loopback listeners (``blockproof.lab.lab``). An address belongs
to exactly one host, so the lab can route a connection by address alone.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLE_SITE = "site"
ROLE_CONTROL = "control"
ROLE_RESOLVER = "resolver"
ROLE_PROXY = "proxy"  # SOCKS5 on :1080 and HTTP CONNECT on :3128, outside the censor
ROLE_ISP_PROXY = "isp_proxy"  # a transparent proxy on :80 and :443 (lab/ispproxy.py)
SOCKS_PORT, CONNECT_PORT = 1080, 3128


@dataclass(frozen=True, slots=True, kw_only=True)
class Probe:
    cc: str = "ZZ"
    asn: int = 0
    network: str = ""
    # How the system resolver reports failures: "default" (glibc's codes) or "android"
    # (bionic: every failure of the DNS proxy is EAI_NODATA, android_dns_cache_no_data).
    getaddrinfo: str = "default"

    @property
    def asn_string(self) -> str:
        return f"AS{self.asn}"


Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PathResponse:
    """What a host answers for one exact request target (``[[host.path]]``).

    A redirect when ``location`` is set (``status`` 301, 302, 303, 307 or 308), else a
    page; ``None`` fields fall back to the host's own.
    """

    path: str
    scheme: str = ""  # "http", "https", or "" for both
    status: int | None = None
    location: str | None = None
    title: str | None = None
    body: str | None = None
    body_bytes: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeView:
    """How a site answers requests that arrive over the probe's (censored) path
    (``[host.probe]``): ``None`` fields are the host's own."""

    status: int | None = None
    title: str | None = None
    body: str | None = None
    body_bytes: int | None = None
    headers: Headers = ()  # added to (or replacing) the host's headers
    location: str | None = None  # every request redirected there
    redirect_http: str | None = None
    redirect_https: str | None = None

    @property
    def answers_every_path(self) -> bool:
        """True when the view replaces the page itself (the host's paths are not used)."""
        return any(
            v is not None
            for v in (self.status, self.title, self.body, self.body_bytes, self.location)
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Host:
    """A machine of the lab internet. Sites serve a page on :80 and :443."""

    name: str
    addresses: tuple[str, ...]
    aliases: tuple[str, ...] = ()  # more names served by the same host and certificate
    asn: int = 0
    org: str = ""
    title: str = ""
    body_bytes: int = 6000
    status: int = 200
    cert: str = "valid"  # valid | expired | wrong_host | self_signed
    down: str = "no"  # no | refuse | timeout
    http: bool = True  # listens on :80
    https: bool = True  # listens on :443
    redirect_http: str = ""  # requests over plain HTTP get a 301 to this URL
    redirect_https: str = ""  # requests over HTTPS get a 301 to this URL
    blockpage: str = ""  # serve this shipped blockpage instead of a page
    hostile: str = ""  # misbehave on purpose (lab/hostile.py): "endless_body", "reset"...
    role: str = ROLE_SITE
    body: str | None = None  # the exact page body, instead of the generated page
    headers: Headers = ()  # more response headers (a name already sent is replaced)
    paths: tuple[PathResponse, ...] = ()  # per-target answers, before everything else
    probe: ProbeView | None = None  # what the probe's requests get instead

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


TWITTER_ASN, TWITTER_ORG = 13414, "Twitter Inc."
FASTLY_ASN, FASTLY_ORG = 54113, "Fastly, Inc."
X_TITLE = "X. It's what's happening / X"

DEFAULT_HOSTS: tuple[Host, ...] = (
    # X (Twitter): web front ends on AS13414, media on Fastly.
    Host(name="x.com", addresses=("104.244.42.1", "104.244.42.129"), title=X_TITLE,
         redirect_http="https://x.com/", body_bytes=9000, asn=TWITTER_ASN, org=TWITTER_ORG),
    Host(name="www.x.com", addresses=("104.244.42.65",), title=X_TITLE,
         redirect_http="https://x.com/", redirect_https="https://x.com/",
         asn=TWITTER_ASN, org=TWITTER_ORG),
    Host(name="twitter.com", aliases=("www.twitter.com", "mobile.twitter.com"),
         addresses=("104.244.42.193", "104.244.42.6"), title=X_TITLE,
         redirect_http="https://twitter.com/", body_bytes=9000, asn=TWITTER_ASN, org=TWITTER_ORG),
    Host(name="api.x.com", aliases=("api.twitter.com",), addresses=("104.244.42.66",),
         title="X API", body_bytes=300, asn=TWITTER_ASN, org=TWITTER_ORG),
    Host(name="t.co", addresses=("104.244.42.69",), title="t.co / X", body_bytes=2000,
         asn=TWITTER_ASN, org=TWITTER_ORG),
    Host(name="pbs.twimg.com", addresses=("151.101.36.159",), title="pbs.twimg.com",
         body_bytes=40000, asn=FASTLY_ASN, org=FASTLY_ORG),
    Host(name="abs.twimg.com", addresses=("151.101.40.158",), title="abs.twimg.com",
         body_bytes=40000, asn=FASTLY_ASN, org=FASTLY_ORG),
    Host(name="video.twimg.com", addresses=("151.101.44.158",), title="video.twimg.com",
         body_bytes=60000, asn=FASTLY_ASN, org=FASTLY_ORG),
    # Uncensored sites, the demo's yardstick.
    Host(name="www.example.org", aliases=("example.org",), addresses=("93.184.215.14",),
         asn=15133, org="Edgecast Inc.", title="Example Domain", body_bytes=1256),
    Host(name="www.wikipedia.org", aliases=("wikipedia.org",), addresses=("185.15.59.224",),
         asn=14907, org="Wikimedia Foundation Inc.", title="Wikipedia", body_bytes=12000),
    # The probe's ISP's blockpage server (HTTP only, as most are).
    Host(name="blockpage.isp.example", addresses=("202.83.170.10",), asn=17557,
         org="Pakistan Telecommunication Company Limited",
         blockpage="isp_pk_nayatel_block_optin", https=False),
    # Infrastructure.
    Host(name="th.blockproof.example", addresses=("37.218.240.10",), asn=14061,
         org="DigitalOcean, LLC", role=ROLE_CONTROL, https=False),
    Host(name="dns.google", addresses=("8.8.8.8",), asn=15169, org="Google LLC",
         role=ROLE_RESOLVER, http=False),  # UDP and TCP :53, DoH on :443
    # A VPN/proxy server abroad: what `--via socks5://...` reaches (lab/proxy.py).
    Host(name="vpn.proxy.example", addresses=("185.220.101.20",), asn=60729,
         org="Stiftung Erneuerbare Freiheit", role=ROLE_PROXY, http=False, https=False),
)  # fmt: skip

CONTROL_HOST = "th.blockproof.example"
RESOLVER_HOST = "dns.google"
PROXY_HOST = "vpn.proxy.example"
DEFAULT_PROBE = Probe()
