"""ASGI entry point for uvicorn workers: `uvicorn carepath.api.asgi:app`."""

from .app import create_app

app = create_app()
