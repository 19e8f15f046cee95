"""The ceiling of any endpoint: Flask returning a small JSON object, nothing else.

Served by bench/run.py under the same gunicorn.conf.py and wrk settings as the service, so
"/me / bare" says what the service's own work costs on top of Flask + gunicorn + HTTP.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify

app = Flask(__name__)


@app.get("/bare")
def bare() -> Response:
    return jsonify(status="ok", service="bare")


@app.get("/health/live")
def live() -> Response:
    return jsonify(status="ok")
