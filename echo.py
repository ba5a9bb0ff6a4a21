"""WSGI entry for the echo service: gunicorn echo:app."""

from eta311.app import create_echo_app

app = create_echo_app()
