"""Registers ragate's gate plugin (also installed as the ``pytest11`` entry point)."""

pytest_plugins = ["gates.plugin"]
