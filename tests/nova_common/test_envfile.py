"""nova_common.envfile reads an EnvironmentFile as systemd does (systemd.exec(5))."""

from __future__ import annotations

import pytest

from nova_common.envfile import parse_env, read_env_file


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A=1\nB=two words\n", {"A": "1", "B": "two words"}),
        ("  A =  spaced value \t\n", {"A": "spaced value"}),
        ("# comment\n; also a comment\n\nA=1\n", {"A": "1"}),
        ("no equals sign\nA=1", {"A": "1"}),
        ("A=\n", {"A": ""}),
        ("A", {}),
        ('A="double quoted"\n', {"A": "double quoted"}),
        ("A='single quoted'\n", {"A": "single quoted"}),
        ("A=  'kept  inside'  \n", {"A": "kept  inside"}),
        # quotes after the first character are part of an unquoted value
        ('A=it\'s\nB=a"b"\n', {"A": "it's", "B": 'a"b"'}),
        # a value that only ends with a quote is not quoted (simple stripping got this wrong)
        ("A=x'\n", {"A": "x'"}),
        # single quotes: no escapes at all
        ("A='a\\nb'\n", {"A": "a\\nb"}),
        # double quotes: \" \\ \` \$ unescape, other backslashes stay
        ('A="q\\"q \\\\ \\$HOME \\n"\n', {"A": 'q"q \\ $HOME \\n'}),
        # unquoted: a backslash keeps the next character
        ("A=a\\ b\\\\c\n", {"A": "a b\\c"}),
        # line continuations
        ("A=one \\\ntwo\nB=x\n", {"A": "one two", "B": "x"}),
        ('A="multi\nline"\n', {"A": "multi\nline"}),
        ("A='multi\nline'\n", {"A": "multi\nline"}),
        ('A="joined \\\nline"\n', {"A": "joined line"}),
        # adjacent pieces join
        ("A='x'\"y\"z\n", {"A": "xyz"}),
        # a '#' inside a value is not a comment
        ("A=b # c\n", {"A": "b # c"}),
        # invalid names are ignored, as systemd ignores them
        ("export A=1\n1A=2\nA-B=3\n_OK=4\n", {"_OK": "4"}),
        # the last assignment wins
        ("A=1\nA=2\n", {"A": "2"}),
        # a comment ends at its line, even after a backslash (systemd >= 254)
        ("# note \\\nA=1\n", {"A": "1"}),
        # CRLF files
        ("A=1\r\nB='2'\r\n", {"A": "1", "B": "2"}),
        # a last line without a newline
        ("A=1\nB=2", {"A": "1", "B": "2"}),
        ('A="unterminated', {"A": "unterminated"}),
        # URLs as the settings env file has them
        (
            'NOVA_LLAMA_URL=http://127.0.0.1:8080\nNOVA_LOCAL_MODEL="SmolLM2"\n',
            {"NOVA_LLAMA_URL": "http://127.0.0.1:8080", "NOVA_LOCAL_MODEL": "SmolLM2"},
        ),
    ],
)
def test_systemd_rules(text, expected):
    assert parse_env(text) == expected


def test_unreadable_file_is_empty(tmp_path):
    assert read_env_file(tmp_path / "missing.env") == {}
    (tmp_path / "dir.env").mkdir()
    assert read_env_file(tmp_path / "dir.env") == {}


def test_reads_a_file(tmp_path):
    path = tmp_path / "settings.env"
    path.write_text("NOVA_SETTINGS_PORT='8001'\n")
    assert read_env_file(path) == {"NOVA_SETTINGS_PORT": "8001"}
