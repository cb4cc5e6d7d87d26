"""Which control servers the probe asks: OONI's public test helpers by default, else what
the user named (option or environment, then config.toml), or none, explicitly."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from blockproof.cli import main
from blockproof.control.choice import OONI_TEST_HELPERS, choose_controls, parse_controls
from blockproof.errors import ConfigError, InputError

OURS = "https://th.example.net/"


@pytest.mark.parametrize(
    ("option", "config", "expected"),
    [
        (None, None, OONI_TEST_HELPERS),
        (None, 'control = "https://th.example.net/"', (OURS,)),
        (None, 'control = ["https://a.example/", "https://b.example/"]',
         ("https://a.example/", "https://b.example/")),
        (None, 'control = "none"', ()),
        (None, "collector = 'x'", OONI_TEST_HELPERS),  # other keys: still the default
        (OURS, 'control = "https://a.example/"', (OURS,)),  # the option wins
        ("none", None, ()),
        ("NONE", None, ()),
        (f"{OURS}, https://0.th.ooni.org/", None, (OURS, "https://0.th.ooni.org/")),
        (f"{OURS},{OURS}", None, (OURS,)),
    ],
)  # fmt: skip
def test_choice(tmp_path: Path, option: str | None, config: str | None, expected: tuple) -> None:
    if config is not None:
        (tmp_path / "config.toml").write_text(config + "\n")
    assert choose_controls(option, config_dir=tmp_path) == expected


@pytest.mark.parametrize("bad", ["", " , ", "th.example.net", "ftp://x/", "https://", "none,x"])
def test_bad_control_urls_say_what_is_expected(bad: str) -> None:
    with pytest.raises(InputError, match="control"):
        parse_controls(bad)


@pytest.mark.parametrize("config", ["control = 3", "control = [1]", "control = ", "control = 'x'"])
def test_a_bad_config_file_names_itself(tmp_path: Path, config: str) -> None:
    (tmp_path / "config.toml").write_text(config + "\n")
    with pytest.raises((ConfigError, InputError), match=r"config\.toml"):
        choose_controls(None, config_dir=tmp_path)


def test_run_help_names_the_default_control() -> None:
    result = CliRunner().invoke(main, ["run", "--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "BLOCKPROOF_CONTROL" in text
    assert "config.toml" in text
    for url in OONI_TEST_HELPERS:
        assert url in text
    assert "'none'" in text


def test_watch_help_names_the_default_control() -> None:
    result = CliRunner().invoke(main, ["watch", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert OONI_TEST_HELPERS[0] in " ".join(result.output.split())
