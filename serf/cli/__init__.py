"""The ``serf`` command."""
