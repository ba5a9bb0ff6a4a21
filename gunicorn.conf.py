"""Gunicorn settings for Heroku and for `make run`; each says why. GUNICORN_CMD_ARGS overrides these."""

# gevent (the worker class, below) must patch the standard library before anything else imports
# it: with preload_app the app (threading, socket, redis, boto3) is imported in the master, before
# the worker would patch. Patched, the model-store poller is a greenlet and Redis and S3 calls
# yield instead of blocking.
from gevent import monkey

monkey.patch_all()

import os  # noqa: E402
import tempfile  # noqa: E402

from gunicorn import glogging  # noqa: E402

from eta311.logfmt import LogfmtFormatter, configure_root  # noqa: E402

# Heroku routes to $PORT; locally honcho sets PORT=5000 as `heroku local` would set its own.
bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"

# The Python buildpack sets WEB_CONCURRENCY to fit the dyno (2 on a 512 MB dyno).
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))

# --- Worker class (issue #12: slow clients) ---------------------------------------------------
# Heroku's router streams request bodies unbuffered and passes slow clients through. A thread per
# connection (gthread, sync) is held for as long as a client takes to send its headers or body:
# four clients trickling a header line every 2 s stopped a 2 x 2-thread service outright. gevent
# holds a greenlet (a few KB) per connection instead, so hundreds of slow sockets cost nothing
# while the CPU serves everyone else (scripts/chaos.py: 200 slow sockets for 30 s, normal
# requests p99 15-22 ms; 10 s timeouts under gthread). Requests here are CPU-bound under one GIL
# either way: scripts/bench_workers.py (gthread x 2 against this, same code, interleaved) measured
# the same CPU per request (model route 0.43-0.48 ms against 0.46-0.52 ms; 10,000-row batch 128
# against 122 ms). The subclass adds a drain on SIGTERM that fails no request (see its doc).
worker_class = "eta311.web.worker.DrainingGeventWorker"
# Connections each worker holds at once, slow ones included; past it the listener queues them.
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "1000"))
# The standard library is patched by gevent at the top of this file (see there).

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
# With every address trusted, Gunicorn would also take a SCRIPT_NAME header from any client (its
# default forwarder_headers): one naming a prefix the path lacks was a 500, one it has re-routed
# the request. Heroku's router sets neither SCRIPT_NAME nor PATH_INFO, so no client may.
forwarder_headers = ""


# --- Operating it (issue 15): logfmt logs and Prometheus metrics across workers ---------------------


# The app writes one line per request (route, request id, key id, model version), so Gunicorn's
# access log is off; with METRICS=off the app writes none and Gunicorn's plain line is back.
accesslog = "-" if os.environ.get("METRICS") == "off" else None


class LogfmtLogger(glogging.Logger):
    """Gunicorn's own lines (boot, signals, worker exits) in the app's logfmt; its access log only with METRICS=off."""

    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(LogfmtFormatter())
        configure_root(self.loglevel)  # before the app is preloaded, so its start-up lines match

    def access(self, resp, req, environ, request_time):
        if self.cfg.accesslog:
            super().access(resp, req, environ, request_time)


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
    try:
        service_metrics.retire_worker(worker.pid, metrics_dir)
    except Exception:  # the master must outlive any surprise in a metrics file; its counts stay unfolded
        server.log.exception("could not fold the metrics of worker %s into the archive", worker.pid)


def on_exit(server):
    # Nothing left behind in /dev/shm; the next master would wipe it anyway.
    try:
        service_metrics.remove_folder(metrics_dir)
    except OSError:
        server.log.exception("could not remove %s", metrics_dir)


def when_ready(server):
    # Runs in the master after preload_app loaded the app and model, before any worker is forked.
    # Frozen, those objects are never scanned again by the cyclic collector: a worker's full
    # collections walk only what it made itself (shorter pauses in the latency tail), and as the
    # collector no longer writes to their headers, fewer pages shared with the master get copied.
    import gc

    gc.collect()
    gc.freeze()
