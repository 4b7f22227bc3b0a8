"""The domain: shared modules at the root, one sub-package per subsystem; it never imports Celery."""
