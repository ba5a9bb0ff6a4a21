"""WSGI entry for the echo service: gunicorn echo:app."""

from eta311.web.app import create_echo_app

app = create_echo_app()
