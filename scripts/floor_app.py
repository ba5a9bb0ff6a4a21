"""The benchmark's floor: a bare Flask JSON endpoint, served by the same Gunicorn config as the service."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/")
def ok():
    return jsonify({"status": "ok"})
