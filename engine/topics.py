"""The one place that builds topic names: every topic is prefixed by the settings' namespace."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class TopicNames:
    namespace: str

    @property
    def events(self) -> str:
        return f"{self.namespace}.events"

    @property
    def definitions(self) -> str:
        return f"{self.namespace}.definitions"

    @property
    def deliveries(self) -> str:
        return f"{self.namespace}.deliveries"

    @property
    def segment_changes(self) -> str:
        return f"{self.namespace}.segment-changes"

    @property
    def audit(self) -> str:
        return f"{self.namespace}.audit"

    @property
    def dead_letters(self) -> str:
        return f"{self.namespace}.dead-letters"

    @property
    def contacts(self) -> str:
        """Compacted: ``phone:<E.164>`` / ``email:<address>`` -> customer id (engine.contact_index)."""
        return f"{self.namespace}.contacts"

    def customer_keyed(self) -> tuple[str, ...]:
        """Topics keyed by customer id: they must have equal partition counts."""
        return (self.events, self.deliveries, self.segment_changes, self.audit)

    def all(self) -> tuple[str, ...]:
        return (*self.customer_keyed(), self.definitions, self.dead_letters, self.contacts)
