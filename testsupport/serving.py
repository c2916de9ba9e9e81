"""Shared start/stop plumbing for the loopback test servers in this folder.

write_port_file publishes the bound port atomically; serve_until_idle runs an
HTTP server until it has been idle for a while (or is interrupted) and then
closes it.  Standard library only.
"""

import os
import ssl
import threading
import time
from http.server import ThreadingHTTPServer


def write_port_file(path, port):
    """Write `port` to `path` via a temporary file, so readers never see half a file."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)


def serve_tls(handler, port, cert, key, port_file, max_seconds):
    """Serve `handler` over HTTPS on 127.0.0.1:`port` (0: any) with `cert`/`key`, publish
    the port in `port_file`, and stop after `max_seconds`."""
    httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
    httpd.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    write_port_file(port_file, httpd.server_address[1])
    timer = threading.Timer(max_seconds, httpd.shutdown)
    timer.daemon = True
    timer.start()
    httpd.serve_forever(poll_interval=0.2)


def serve_until_idle(httpd, idle_seconds, last_activity, clock=time.monotonic, cleanup=None):
    """Serve until `idle_seconds` pass with no request, then close the server.

    `last_activity()` returns the time of the latest request, on the same clock
    as `clock()`.  The check runs every half second on a daemon thread.  Ctrl-C
    stops quietly.  `cleanup`, if given, runs after the socket is closed.
    """
    def watchdog():
        while True:
            time.sleep(0.5)
            if clock() - last_activity() > idle_seconds:
                httpd.shutdown()
                return

    threading.Thread(target=watchdog, daemon=True).start()
    try:
        httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
        if cleanup is not None:
            cleanup()


def respond(handler, status, body=b"", ctype="application/json", headers=None):
    """Writes one whole HTTP answer: status, headers (Content-Type only with a body), body."""
    handler.send_response(status)
    if body:
        handler.send_header("Content-Type", ctype)
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("Cache-Control", "no-store")
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    if body:
        handler.wfile.write(body)
