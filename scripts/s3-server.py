"""The S3-protocol server that dala's tests and benchmarks start on 127.0.0.1: moto's
standalone server, with conditional writes made atomic.

Amazon S3 performs a conditional PUT (`If-None-Match: *`, `If-Match`) atomically: of two
writers racing for one key, exactly one succeeds. moto checks the condition and stores the
object in two steps, and its server handles requests on many threads, so two racing
writers can both succeed. dala commits a version by creating its log entry with
`If-None-Match: *`, and its concurrency tests depend on that guarantee. This wrapper runs
every request that changes state (PUT, POST, DELETE) under one lock, which makes each
check-and-store atomic as on S3; reads stay concurrent.

Run with the Python of the environment that `scripts/fetch-s3-server.sh` installs:
`.s3-server/venv/bin/python scripts/s3-server.py -H 127.0.0.1 -p PORT`.
"""

import argparse
import os
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

WRITES = frozenset({"PUT", "POST", "DELETE"})


class SerializedWrites:
    """A WSGI middleware that runs state-changing requests one at a time."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") not in WRITES:
            return self.app(environ, start_response)
        with self.lock:
            # Materialize the response inside the lock: a lazy body could run the
            # backend after the lock is released.
            return list(self.app(environ, start_response))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        SerializedWrites(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
