"""The faust wiring: the app, topics, the customer state store, the processor agent."""
