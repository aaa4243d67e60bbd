"""What the webhook checks share: a local HTTP endpoint that queues every
request it receives, and a check that prints what it checked."""

import http.server
import queue
import threading

received = queue.Queue()


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"])).decode()
        received.put((dict((k.lower(), v) for k, v in self.headers.items()), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def start_receiver(path):
    """Listens on 127.0.0.1; returns the endpoint's URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}{path}"


def check(condition, what):
    if not condition:
        raise AssertionError(what)
    print(f"ok - {what}")
