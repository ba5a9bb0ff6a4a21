"""WSGI entry for the prediction service: gunicorn predict:app, or Zappa's app_function "predict.app"."""

from eta311.web.app import create_app

app = create_app()

if (
    __name__ == "__main__"
):  # python predict.py: Flask's development server on every interface, port 5000 unless PORT says
    app.run(host="0.0.0.0", port=int(app.config["SETTINGS"].port))
