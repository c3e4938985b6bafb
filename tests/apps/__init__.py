"""Worker apps that tests run as subprocesses, e.g. ``tests.apps.<module>:worker``."""
