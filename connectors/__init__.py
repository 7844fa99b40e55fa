"""The edges to the outside world: CSV reading and sync definitions, channel providers, webhooks."""
