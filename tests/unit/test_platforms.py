"""Platform profiles: every shipped profile validates; domains map to the right platform."""

from __future__ import annotations

import pytest

from blockproof.experiments.web_connectivity import validate_url
from blockproof.platforms import (
    FUNCTIONS,
    ProfileError,
    parse_profiles,
    platform_of_test,
    platform_of_url,
    profiles,
)


def test_shipped_profiles_validate() -> None:
    shipped = profiles()
    assert {
        "x",
        "youtube",
        "facebook",
        "instagram",
        "whatsapp",
        "telegram",
        "signal",
        "tiktok",
        "wikipedia",
    } <= set(shipped)
    for platform in shipped.values():
        assert platform.endpoints, platform.id
        for endpoint in platform.endpoints:
            assert endpoint.function in FUNCTIONS
            assert platform_of_url(endpoint.url) == platform.id
            assert validate_url(endpoint.url) == endpoint.url  # the probe can measure it


@pytest.mark.parametrize(
    ("url", "platform"),
    [
        ("https://x.com/", "x"),
        ("https://twitter.com/home", "x"),
        ("http://t.co/abc", "x"),
        ("https://pbs.twimg.com/media/a.jpg", "x"),
        ("https://API.X.COM./1.1", "x"),
        ("https://nottwimg.com/", None),
        ("https://x.com.evil.example/", None),
        ("https://www.youtube.com/watch?v=1", "youtube"),
        ("https://web.whatsapp.com/", "whatsapp"),
        ("https://[2001:db8::1]/", None),
        ("x.com", "x"),
        ("", None),
        (None, None),
    ],
)
def test_platform_of_url(url: str | None, platform: str | None) -> None:
    assert platform_of_url(url) == platform


def test_platform_of_app_tests() -> None:
    assert platform_of_test("whatsapp") == "whatsapp"
    assert platform_of_test("facebook_messenger") == "facebook"
    assert platform_of_test("vanilla_tor") == "tor"
    assert platform_of_test("web_connectivity") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[a]\nname = "A"\ndomains = ["a.com"]\nbogus = 1', "unknown keys"),
        ('[a]\ndomains = ["a.com"]', "name"),
        ('[a]\nname = "A"\ndomains = ["A.com"]', "lower-case"),
        (
            '[a]\nname = "A"\ndomains = ["a.com"]\n[b]\nname = "B"\ndomains = ["a.com"]',
            "already belongs",
        ),
        (
            '[a]\nname = "A"\ndomains = ["a.com"]\nendpoints = [{url = "https://a.com/", '
            'function = "teleport"}]',
            "unknown function",
        ),
        (
            '[a]\nname = "A"\ndomains = ["a.com"]\nendpoints = [{url = "https://b.com/", '
            'function = "web"}]',
            "outside the domains",
        ),
        (
            '[a]\nname = "A"\ndomains = ["a.com"]\nendpoints = [{url = "ftp://a.com/", '
            'function = "web"}]',
            "not an http",
        ),
        ("[a", "platform profiles"),
    ],
)
def test_bad_profiles_are_rejected_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        parse_profiles(text)
