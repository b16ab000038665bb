#!/usr/bin/python3
"""Loads the scheduler's dashboard in headless Chromium (Debian's chromium) over the DevTools protocol and
reports what a person would see: console errors and uncaught exceptions, the host rows, the running jobs.

    scripts/dashboard-check.py URL [--screenshot FILE] [--want-hosts N] [--want-running N] [--timeout S]

Waits until the page is live (its first snapshot arrived) with at least the wanted hosts and running jobs shown,
then prints one JSON object: {"errors": [...], "hosts": [...], "running": [...], "state": ...}. Exit status 0
when the wanted hosts and jobs were seen and nothing was logged as an error, 1 otherwise, 2 when Chromium could
not be driven. Needs python3-websocket (Debian).
"""
import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--screenshot")
    parser.add_argument("--want-hosts", type=int, default=1)
    parser.add_argument("--want-running", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=30)
    parser.add_argument("--size", default="1280,860")
    args = parser.parse_args()

    profile = tempfile.mkdtemp(prefix="swlaunch-chromium-")
    browser = subprocess.Popen(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-port=0",
         "--user-data-dir=" + profile, "--window-size=" + args.size, "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        return drive(browser, args)
    finally:
        browser.terminate()
        try:
            browser.wait(10)
        except subprocess.TimeoutExpired:
            browser.kill()
        shutil.rmtree(profile, ignore_errors=True)


def drive(browser, args):
    port = None
    deadline = time.time() + 30
    while time.time() < deadline and port is None:
        line = browser.stderr.readline()
        if not line:
            break
        match = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
        if match:
            port = int(match.group(1))
    if port is None:
        print(json.dumps({"error": "chromium did not start its DevTools endpoint"}))
        return 2
    pages = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
    page = next(p for p in pages if p.get("type") == "page")
    ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=5)
    counter = [0]
    errors = []

    def note(message):
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            errors.append("exception: " + details.get("exception", {}).get("description", details.get("text", "?")))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append("console." + params["type"] + ": " + " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            errors.append("log: " + entry.get("text", "") + " " + entry.get("url", ""))

    def call(method, **params):
        counter[0] += 1
        ident = counter[0]
        ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            note(message)

    for domain in ("Runtime", "Log", "Page"):
        call(domain + ".enable")
    call("Page.navigate", url=args.url)
    probe = """JSON.stringify({
        state: document.body ? document.body.dataset.state : null,
        hosts: [...document.querySelectorAll('#hosts tbody tr')].map((r) => r.dataset.host),
        running: [...document.querySelectorAll('#running li.running-job')].map((li) => li.textContent),
        lanes: document.querySelectorAll('#timeline .job.running').length,
        pageErrors: document.getElementById('errors') ? document.getElementById('errors').textContent : ''})"""
    seen = {}
    end = time.time() + args.timeout
    while time.time() < end:
        value = call("Runtime.evaluate", expression=probe, returnByValue=True).get("result", {}).get("value")
        seen = json.loads(value) if value else {}
        if seen.get("state") == "live" and len(seen.get("hosts", [])) >= args.want_hosts and len(seen.get("running", [])) >= args.want_running:
            break
        time.sleep(0.25)
    # Let the page run a little longer, so that errors from its periodic redraw show too.
    settle = time.time() + 1.0
    ws.settimeout(0.2)
    while time.time() < settle:
        try:
            note(json.loads(ws.recv()))
        except websocket.WebSocketTimeoutException:
            pass
    ws.settimeout(5)
    if seen.get("pageErrors"):
        errors.append("page: " + seen["pageErrors"])
    if args.screenshot:
        shot = call("Page.captureScreenshot", format="png")
        with open(args.screenshot, "wb") as out:
            out.write(base64.b64decode(shot["data"]))
    ok = (not errors and seen.get("state") == "live" and len(seen.get("hosts", [])) >= args.want_hosts
          and len(seen.get("running", [])) >= args.want_running)
    print(json.dumps({"errors": errors, "state": seen.get("state"), "hosts": seen.get("hosts", []),
                      "running": seen.get("running", []), "timeline_running": seen.get("lanes", 0)}))
    ws.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
