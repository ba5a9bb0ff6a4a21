"""Gunicorn for the seed's stack in `make bench-peers`: its defaults (sync workers), two of them as Heroku's WEB_CONCURRENCY=2 ran it.

Passed explicitly: Gunicorn would otherwise read the service's gunicorn.conf.py from the working
folder, which needs gevent and the service's package, neither in the seed's environment.
"""

import os

bind = f"127.0.0.1:{os.environ['PORT']}"
workers = 2
timeout = 120  # unpickling the forest takes seconds on a busy host
