#!/usr/bin/python3
"""The real-time model server, in TensorFlow Serving's REST shape:

    POST /v1/models/cancer:predict   {"instances": [{"id": "patient_0042"}]}
    -> {"predictions": [{"score": 0.98, "label": "benign", "model": "v1"}]}

Unknown patients are a 404.  Python standard library plus the model.

    demo/model_server.py MODEL.pkl [--port 8501]
"""

import argparse
import json
import os
import pickle
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import features  # noqa: E402

PATH = "/v1/models/cancer:predict"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keepalive with nginx's upstream pool
    saved = None

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)

        if self.path != PATH:
            return self.reply(404, {"error": "no such model"})

        try:
            instances = json.loads(body)["instances"]
            ids = [i["id"] for i in instances]
        except (ValueError, KeyError, TypeError):
            return self.reply(400, {"error": "expected {\"instances\": "
                                             "[{\"id\": ...}]}"})

        rows = [features.features(pid) for pid in ids]
        if any(x is None for x in rows):
            return self.reply(404, {"error": "unknown patient"})

        model, name = self.saved["model"], "realtime-" + self.saved["name"]
        self.reply(200, {"predictions": [features.answer(model, name, x)
                                         for x in rows]})

    def do_GET(self):
        self.reply(200, {"model": "cancer", "state": "AVAILABLE"})

    def log_message(self, fmt, *args):
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--port", type=int, default=8501)
    args = ap.parse_args()

    with open(args.model, "rb") as f:
        Handler.saved = pickle.load(f)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"model server on http://127.0.0.1:{args.port}{PATH}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
