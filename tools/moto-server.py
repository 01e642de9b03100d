"""Starts moto's server (DynamoDB API and more) on 127.0.0.1 for the Rust tests, where a
DynamoDB feature dynalite lacks is needed (ReturnValuesOnConditionCheckFailure).

Usage: .venv/bin/python tools/moto-server.py
Prints "listening PORT" once ready. Exits when its standard input closes, so a test process
that dies, however it dies, never leaves a server behind."""
import socket
import sys
import urllib.request

from moto.server import ThreadedMotoServer


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=10)
    print(f"listening {port}", flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
