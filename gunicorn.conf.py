"""Gunicorn settings for Heroku and for `make run`; each says why. GUNICORN_CMD_ARGS overrides these."""

import os
import tempfile

from gunicorn import glogging

from eta311.logfmt import LogfmtFormatter, configure_root

# Heroku routes to $PORT; locally honcho sets PORT=5000 as `heroku local` would set its own.
bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"

# The Python buildpack sets WEB_CONCURRENCY to fit the dyno (2 on a 512 MB dyno).
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))

# Heroku's router streams request bodies unbuffered, so a slow client would hold a sync worker;
# with threads it holds one thread. Heroku's reference config uses 5 threads, but each request
# here is CPU-bound under one GIL: more threads only queue behind it and stretch the tail
# (scripts/bench.py, one core, c=8: p99 33-38 ms with 5 threads, 17 ms with 2, same requests/s).
# Two keep one slow upload from stalling a worker.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "2"))

# Router 2.0 keeps idle connections to dynos for 90 s; closing ours first would race its reuse.
keepalive = 95

# Under the router's 30 s request limit and inside the 30 s between SIGTERM and SIGKILL on
# every deploy and daily restart, so in-flight requests finish before the dyno is killed.
timeout = 20
graceful_timeout = 20

# The Procfile sets MALLOC_ARENA_MAX=2 (it must be in the environment before Python starts): with
# a glibc arena per thread, memory freed after a 10,000-row batch stays pinned; measured 170 MB a
# worker after batches without it, 107 MB with it (scripts/bench.py).

# Load the app (and its model) once before forking, so workers share those pages of memory and
# a recycled worker starts at once.
preload_app = True

# Recycle workers now and then to bound any slow leak; jitter keeps them from restarting together.
max_requests = 20000
max_requests_jitter = 2000

# Heartbeat files on tmpfs: a disk-backed /tmp can stall and get healthy workers killed.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# Logs go to stdout, where Heroku's log router collects them.
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()

# Heroku's router adds X-Forwarded-For/Proto; trust them as the buildpack does.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "*")


# --- Operating it (issue 15): logfmt logs and Prometheus metrics across workers ---------------------


class LogfmtLogger(glogging.Logger):
    """Gunicorn's own lines (boot, signals, worker exits) in the app's logfmt, and no access log:
    the app writes one line per request, with its route, request id, key id and model version."""

    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(LogfmtFormatter())
        configure_root(self.loglevel)  # before the app is preloaded, so its start-up lines match

    def access(self, resp, req, environ, request_time):
        pass


logger_class = LogfmtLogger

# Each worker writes its metrics to mmapped files here and a scrape of any worker adds them all
# up. It must be set before anything imports prometheus_client (the app is preloaded after this
# file runs). On tmpfs: the files are written on every request. One folder per port, so two
# servers on one machine (tests, the benchmark) never add up each other's counts.
_shm = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
metrics_dir = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", f"{_shm}/eta311-metrics-{bind.rsplit(':', 1)[1]}")

from eta311.web import metrics as service_metrics  # noqa: E402 - after PROMETHEUS_MULTIPROC_DIR is set

service_metrics.claim_folder(metrics_dir)  # wiped at master start (once: SIGHUP re-reads this file)


def child_exit(server, worker):
    # Recycled by max_requests, timed out, crashed or shut down: its live gauges go, its counts
    # are folded into the archive files so totals stay monotonic and the folder stays small.
    service_metrics.retire_worker(worker.pid, metrics_dir)


def on_exit(server):
    # Nothing left behind in /dev/shm; the next master would wipe it anyway.
    service_metrics.remove_folder(metrics_dir)
