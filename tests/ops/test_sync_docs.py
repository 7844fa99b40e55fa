"""The apply file of syncs in docs/imports.md is accepted as shown."""

from __future__ import annotations

import re
from pathlib import Path

from ops.apply import load_apply_file, load_syncs

DOCS = Path(__file__).resolve().parents[2] / "docs" / "imports.md"


def test_the_syncs_apply_file_of_the_docs_is_accepted() -> None:
    [block] = [b for b in re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), re.S) if "syncs:" in b]
    assert load_apply_file(block) == []
    syncs = load_syncs(block)
    assert [(s.campaign_id, "schedule" in s.body) for s in syncs] == [
        ("customers", False),
        ("branches", True),
    ]
