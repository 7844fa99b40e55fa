"""The campaign examples in docs/campaigns.md are valid: what the docs show is what Refract accepts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ops.apply import load_apply_file, load_campaigns

DOCS = Path(__file__).resolve().parents[2] / "docs" / "campaigns.md"
BLOCKS = [b for b in re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), re.S) if "campaigns:" in b]


def test_the_docs_show_the_format_and_three_examples():
    assert len(BLOCKS) == 4


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: re.search(r"id: ([\w-]+)", b).group(1))
def test_each_campaign_example_in_the_docs_is_accepted(block):
    campaigns = load_campaigns(block)
    load_apply_file(block)  # and its segments
    assert campaigns and all(c.body.get("flow") for c in campaigns)
