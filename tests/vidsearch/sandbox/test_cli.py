"""The command line: --help documents every option; bad options stop the server with a message."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys

from vidsearch.sandbox.config import SandboxConfig, build_parser

OPTION_OF = {"api_keys": "--api-key"}


def test_help_documents_every_option():
    out = subprocess.run([sys.executable, "-m", "vidsearch.sandbox", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for field in dataclasses.fields(SandboxConfig):
        option = OPTION_OF.get(field.name, "--" + field.name.replace("_", "-"))
        assert option in out, option
    parser = argparse.ArgumentParser()
    build_parser(parser)
    assert all(action.help for action in parser._actions)


def test_an_invalid_rate_stops_the_server_with_exit_code_2():
    result = subprocess.run([sys.executable, "-m", "vidsearch.sandbox", "--rate-429", "3"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert "rate_429" in result.stderr
