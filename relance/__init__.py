"""The ``relance`` command."""
