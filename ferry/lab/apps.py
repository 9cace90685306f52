"""Small programs the lab runs in containers (tests, benchmarks, experiments by hand)."""

# A web server answering every GET with the name of the container it runs in: which replica
# a request reached, e.g. `ferry service create ... tools python3 -c "$WHOAMI"`.
WHOAMI = (
    "import http.server as h, socket\n"
    "class H(h.BaseHTTPRequestHandler):\n"
    "  def do_GET(s):\n"
    "    b = socket.gethostname().encode()\n"
    "    s.send_response(200); s.send_header('Content-Length', str(len(b))); s.end_headers()\n"
    "    s.wfile.write(b)\n"
    "  def log_message(s, *a): pass\n"
    "h.ThreadingHTTPServer(('', 80), H).serve_forever()\n"
)
