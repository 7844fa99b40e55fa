"""Campaigns: definitions, triggers, flows, eligibility rules, content and funnels (pure)."""
