"""A stand-in for vLLM's API server: answers /v1/models and spawns a grandchild, like vLLM's engine does.

Usage: python _fake_server.py PORT NAME [--die] [--child-pidfile PATH]
"""

import json
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

port, name = int(sys.argv[1]), sys.argv[2]
if "--die" in sys.argv:
    print("loading model ...\nValueError: the fake engine refused to start", flush=True)
    sys.exit(3)
if "--busy-once" in sys.argv:  # the first launch loses the race for its port
    marker = sys.argv[sys.argv.index("--busy-once") + 1]
    try:
        open(marker, "x").close()
        print("OSError: [Errno 98] error while attempting to bind on address: address already in use", flush=True)
        sys.exit(1)
    except FileExistsError:
        pass
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
if "--child-pidfile" in sys.argv:
    with open(sys.argv[sys.argv.index("--child-pidfile") + 1], "w") as f:
        f.write(str(child.pid))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = json.dumps({"object": "list", "data": [{"id": name}]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


server = HTTPServer(("127.0.0.1", port), Handler)
server.allow_reuse_address = True
print("ready", flush=True)
server.serve_forever()
