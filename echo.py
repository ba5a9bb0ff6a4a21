"""WSGI entry for the echo service: gunicorn echo:app (or python echo.py for Flask's development server)."""

from eta311.web.app import create_echo_app

app = create_echo_app()

if __name__ == "__main__":  # as the original service ran: every interface, port 5000 unless PORT says
    app.run(host="0.0.0.0", port=int(app.config["SETTINGS"].port))
