"""The programs that run inside the pods (standard library only, one process each).

Servers:

    apps.py model   --bind IP --port 8000           a model server answering completions
    apps.py store   --bind 127.0.0.1 --port 9000    a tiny key/value data store (pod-local)
    apps.py gateway --bind IP --port 8080 --upstream http://127.0.0.1:9000 --opa http://127.0.0.1:8181
                    --peers FILE --resource-namespace NS --resource-name NAME
        the policy enforcement point in front of the store: it names the caller from its source
        address (FILE maps pod IPs to namespace/serviceAccount, as a mesh identity would), asks OPA
        POST /v1/data/aitrust/authz/decision, and forwards only allowed requests. It fails closed.

Clients (kind mode runs these with `kubectl exec`; netns mode makes the same calls in-process):

    apps.py connect --host IP --port N [--timeout S]     prints connected|refused|timeout|unreachable
    apps.py http --host IP --port N [--method M] [--path P] [--body JSON]   prints {"status", "body"}
    apps.py probe --host IP --port N [--timeout S]       one line "<unix time> <outcome>" per new
                                                         connection, until the first failure
"""

from __future__ import annotations

import argparse
import errno
import http.client
import json
import socket
import sys
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class _Json(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.client_address[0]} {format % args}\n")


def model_handler(model: str) -> type[BaseHTTPRequestHandler]:
    class Model(_Json):
        def do_GET(self) -> None:
            self.reply(200, {"model": model, "ready": True})

        def do_POST(self) -> None:
            prompt = json.loads(self.body() or b"{}").get("prompt", "")
            self.reply(200, {"model": model, "completion": f"echo: {prompt}"})

    return Model


def store_handler() -> type[BaseHTTPRequestHandler]:
    data: dict[str, Any] = {"embeddings": [[0.1, 0.2, 0.3]], "documents": ["quarterly report"]}

    class Store(_Json):
        def do_GET(self) -> None:
            key = self.path.strip("/")
            if key in data:
                self.reply(200, {"key": key, "value": data[key]})
            else:
                self.reply(404, {"error": f"no key {key!r}"})

        def do_PUT(self) -> None:
            data[self.path.strip("/")] = json.loads(self.body() or b"null")
            self.reply(200, {"stored": self.path.strip("/")})

    return Store


def gateway_handler(args: argparse.Namespace) -> type[BaseHTTPRequestHandler]:
    peers_file = Path(args.peers)

    def decide(peer: str, action: str) -> dict[str, Any]:
        peers: dict[str, dict[str, str]] = json.loads(peers_file.read_text())
        subject = peers.get(peer)
        if subject is None:
            return {"allow": False, "reason": f"unknown peer {peer}"}
        query = {
            "input": {
                "subject": subject,
                "resource": {
                    "kind": "DataSource",
                    "namespace": args.resource_namespace,
                    "name": args.resource_name,
                },
                "action": action,
            }
        }
        req = urllib.request.Request(  # noqa: S310 - the pod-local sidecar
            f"{args.opa}/v1/data/aitrust/authz/decision",
            data=json.dumps(query).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=2) as resp:  # noqa: S310 - the pod-local sidecar
            result: dict[str, Any] = json.loads(resp.read()).get("result") or {}
        return result

    class Gateway(_Json):
        def handle_any(self, action: str) -> None:
            payload = self.body()
            try:
                decision = decide(self.client_address[0], action)
            except (OSError, ValueError) as exc:  # OPA down or garbled: fail closed
                self.reply(503, {"error": f"decision point unavailable: {exc}"})
                return
            if decision.get("allow") is not True:
                self.reply(403, {"denied": True, "decision": decision})
                return
            upstream = args.upstream + self.path
            req = urllib.request.Request(upstream, data=payload or None, method=self.command)  # noqa: S310
            if payload:
                req.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(req, timeout=2) as resp:  # noqa: S310 - the pod-local store
                    status, body = resp.status, json.loads(resp.read())
            except urllib.error.HTTPError as err:
                status, body = err.code, json.loads(err.read() or b"{}")
            self.reply(status, {**body, "decision": decision})

        def do_GET(self) -> None:
            self.handle_any("read")

        def do_PUT(self) -> None:
            self.handle_any("write")

    return Gateway


def connect(host: str, port: int, timeout: float) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((host, port))
        except ConnectionRefusedError:
            return "refused"
        except TimeoutError:
            return "timeout"
        except OSError as exc:
            if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES, errno.EPERM):
                return "unreachable"
            raise
        return "connected"


def request(host: str, port: int, method: str, path: str, body: Any, timeout: float) -> dict[str, Any]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        conn.request(method, path, body=payload, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            parsed = json.loads(raw) if raw else {}
        except ValueError:
            parsed = {"raw": raw.decode(errors="replace")}
        return {"status": resp.status, "body": parsed if isinstance(parsed, dict) else {"value": parsed}}
    finally:
        conn.close()


def client(args: argparse.Namespace) -> None:
    if args.app == "connect":
        print(connect(args.host, args.port, args.timeout), flush=True)
    elif args.app == "http":
        body = json.loads(args.body) if args.body else None
        print(
            json.dumps(request(args.host, args.port, args.method, args.path, body, args.timeout)), flush=True
        )
    else:  # probe
        while True:
            began = time.time()
            outcome = connect(args.host, args.port, args.timeout)
            print(f"{began:.6f} {outcome}", flush=True)
            if outcome != "connected":
                return
            time.sleep(0.005)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a full accept queue drops SYNs, which would look like a firewall drop


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("app", choices=["model", "store", "gateway", "connect", "http", "probe"])
    parser.add_argument("--bind", default="0.0.0.0")  # noqa: S104 - inside a pod
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host")
    parser.add_argument("--timeout", type=float, default=1.5)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--path", default="/")
    parser.add_argument("--body")
    parser.add_argument("--model", default="e2e-llm")
    parser.add_argument("--upstream")
    parser.add_argument("--opa")
    parser.add_argument("--peers")
    parser.add_argument("--resource-namespace")
    parser.add_argument("--resource-name")
    args = parser.parse_args(argv)
    if args.app in ("connect", "http", "probe"):
        client(args)
        return
    handler: type[BaseHTTPRequestHandler]
    if args.app == "model":
        handler = model_handler(args.model)
    elif args.app == "store":
        handler = store_handler()
    else:
        handler = gateway_handler(args)
    server = Server((args.bind, args.port), handler)
    print(f"{args.app} listening on {args.bind}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
