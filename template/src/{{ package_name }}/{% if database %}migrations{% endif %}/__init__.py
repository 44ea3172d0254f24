"""Alembic migrations of the service's database: ``alembic upgrade head`` applies them.

They live inside the package so that the image carries them; ``[tool.alembic]`` in
pyproject.toml points Alembic here, locally and in the image alike.
"""
