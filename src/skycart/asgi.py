"""ASGI entry point for servers: `uvicorn skycart.asgi:app`."""

from skycart.app import create_app

app = create_app()
