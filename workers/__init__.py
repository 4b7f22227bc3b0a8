"""The Celery adapters: the app, thin tasks, per-process context, the tick loop."""
