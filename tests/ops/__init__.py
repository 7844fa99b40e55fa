"""Tests of the operations tooling (``ops/``)."""
