"""The body of each command, one module per command; :mod:`generator.cli` parses the command lines."""
