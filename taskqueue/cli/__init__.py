"""Command-line entry points: ``task-worker`` (``cli.worker``) and ``tqctl`` (``cli.tqctl``)."""
