"""Render the settings table of docs/settings.md from the settings model.

``python -m vidsearch.cli.settings_doc`` prints it; paste it between the settings-table markers of
docs/settings.md (tests/test_docs.py fails until the two agree).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic.fields import FieldInfo

from pipeline.settings import Settings, env_name


def _default(field: FieldInfo) -> str:
    value: Any = field.get_default(call_default_factory=True)
    if value is None:
        return "(unset)"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def settings_table() -> str:
    """A Markdown table: setting, environment variable, default, meaning."""
    lines = ["| setting | environment variable | default | meaning |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = _default(field).replace("|", "\\|")
        lines.append(f"| `{name}` | `{env_name(name)}` | `{default}` | {field.description or ''} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(settings_table())
