"""A worker service in miniature, run as ``python -m reloading_service [--reload]``.

tests/test_reload.py copies it and edits the copy while its worker runs.
"""
