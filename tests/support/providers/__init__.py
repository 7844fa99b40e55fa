"""Local stand-ins for the outbound providers, on loopback, that can be told to fail.

Each implements the provider's documented request and answer formats (auth, fields, error
bodies and codes) closely enough that the real client code runs against it unchanged.
"""
