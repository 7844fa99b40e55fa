"""The domain of Refract: pure functions of (state, event, definitions, now). No I/O, no clock."""
