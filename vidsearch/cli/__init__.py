"""The ``vidsearch`` command: argument parsing, one module per command family, display."""
