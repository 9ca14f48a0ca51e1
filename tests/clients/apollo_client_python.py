#!/usr/bin/env python3
"""Drives the real PyPI client apollo-client-python (0.2.x, module `apollo`, installed into
the shared test venv by .ci/python-clients-up.sh) for tests/tests/it/module_config.rs.

The client fetches every namespace synchronously in its constructor (`/configs` with an
empty releaseKey and its `ip`), signs each request with the access-key secret if one is
given (over the URL minus its configured base), and falls back to its cache file under
~/data/apollo/cache when a fetch fails. Run it with HOME in a temp dir.

Two things are patched, neither changing what goes on the wire:
- `apollo.apollo_client.init_ip`, which learns the local address by a UDP 'connect' to a
  public address: it returns --ip instead (default 127.0.0.1; gray rules match on it);
- `apollo.apollo_client.http_request` is wrapped to report each answer's status.

Prints one JSON line per event on stdout:
  {"event":"http","path":P,"status":S,"signed":bool}    every request the client made
                                                        (status null: no answer, "error" says why)
  {"event":"ready","configs":{NS:{...}|null},"releaseKeys":{NS:K|null}}  the constructor returned
  {"event":"change","action":"add|update|delete","namespace":NS,"key":K,"value":V,"old_value":O}
Options (argv, else the environment variable):
  --config-url URL   APOLLO_CONFIG_URL  base URL, e.g. http://127.0.0.1:PORT/api/module/config
  --app-id ID        APOLLO_APP_ID
  --cluster C        APOLLO_CLUSTER     (default "default")
  --namespaces a,b   APOLLO_NAMESPACES  (default "application")
  --secret S         APOLLO_SECRET      access-key secret; empty: unsigned
  --ip IP            APOLLO_IP          (default 127.0.0.1)
  --watch                               then long-poll (the client's enable_long_pool_updates)
  --max-secs N       APOLLO_MAX_SECS    exits after this long (default 300)
Exits when its stdin closes, so a test that dies takes its clients with it.
"""

import argparse
import json
import logging
import os
import sys
import threading
import urllib.error
import urllib.parse

import apollo.apollo_client as client_module
from apollo import ApolloClient

_print_lock = threading.Lock()


def emit(**fields):
    with _print_lock:
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()


def parse_args():
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-url", default=env("APOLLO_CONFIG_URL"))
    parser.add_argument("--app-id", default=env("APOLLO_APP_ID"))
    parser.add_argument("--cluster", default=env("APOLLO_CLUSTER", "default"))
    parser.add_argument("--namespaces", default=env("APOLLO_NAMESPACES", "application"))
    parser.add_argument("--secret", default=env("APOLLO_SECRET", ""))
    parser.add_argument("--ip", default=env("APOLLO_IP", "127.0.0.1"))
    parser.add_argument("--watch", action="store_true")
    parser.add_argument("--max-secs", type=float, default=float(env("APOLLO_MAX_SECS", "300")))
    args = parser.parse_args()
    if not args.config_url or not args.app_id:
        parser.error("--config-url and --app-id (or APOLLO_CONFIG_URL, APOLLO_APP_ID) are required")
    return args


def main():
    args = parse_args()
    # The client passes exception objects as stray logging arguments; without this each
    # failed request prints a "--- Logging error ---" traceback.
    logging.raiseExceptions = False

    client_module.init_ip = lambda: args.ip

    real_http_request = client_module.http_request

    def traced_http_request(url, timeout, headers=None):
        split = urllib.parse.urlsplit(url)
        path = split.path + ("?" + split.query if split.query else "")
        signed = bool(headers and "Authorization" in headers)
        try:
            code, body = real_http_request(url, timeout, headers=headers)
        except urllib.error.HTTPError as e:
            emit(event="http", path=path, status=e.code, signed=signed)
            raise
        except Exception as e:
            emit(event="http", path=path, status=None, signed=signed, error=str(e))
            raise
        emit(event="http", path=path, status=code, signed=signed)
        return code, body

    client_module.http_request = traced_http_request

    def on_change(event):
        emit(event="change", **event)

    namespaces = args.namespaces.split(",")
    client = ApolloClient(
        config_url=args.config_url,
        app_id=args.app_id,
        cluster=args.cluster,
        namespaces=namespaces,
        secret=args.secret,
        enable_long_pool_updates=args.watch,
        auto_update_enabled=False,
        value_change_listeners=[on_change],
        enable_dotenv=False,
    )
    emit(
        event="ready",
        configs={ns: client.get_config(ns) for ns in namespaces},
        releaseKeys={ns: (client._cache.get(ns) or {}).get("releaseKey") for ns in namespaces},
    )
    if args.watch:
        client.start()

    # Bounded lifetime: exit on stdin EOF or after --max-secs (the client's threads are daemons).
    done = threading.Event()

    def watch_stdin():
        try:
            while sys.stdin.read(4096):
                pass
        finally:
            done.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    done.wait(args.max_secs)


if __name__ == "__main__":
    main()
