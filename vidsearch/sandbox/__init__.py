"""The Twelve Labs sandbox: a separate program serving the Embed API locally (``vidsearch sandbox``).

It lives under ``vidsearch`` because it ships with the product (the demo and the tests run against
it) and a top-level import name as generic as ``sandbox`` would clash in any environment that
installs us; it imports nothing else of ours (an import-linter contract checks that).
"""
