"""WSGI entry for the prediction service: gunicorn predict:app, or Zappa's app_function "predict.app"."""

from eta311.web.app import create_app

app = create_app()
