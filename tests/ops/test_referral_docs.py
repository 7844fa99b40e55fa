"""The campaign example in docs/referrals.md is valid: its landing page is what Refract accepts."""

from __future__ import annotations

import re
from pathlib import Path

from engine.campaigns.definition import campaign_from_body
from ops.apply import load_campaigns

DOCS = Path(__file__).resolve().parents[2] / "docs" / "referrals.md"


def test_the_landing_example_in_the_docs_is_accepted_with_its_form() -> None:
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), re.S) if "campaigns:" in b]
    (planned,) = load_campaigns(block)
    landing = campaign_from_body(planned.campaign_id, 1, planned.body).landing
    assert landing is not None
    assert [f.type for f in landing.fields] == ["text", "email", "phone", "select", "checkbox", "checkbox"]
    assert landing.redirect_url == "https://bank.example/thanks"
