"""Foundations: errors and exit codes, atomic files and locks, paths, explicit registries, progress,
threads and workers, HTTP downloads, tables. Nothing here knows about models or tasks."""
