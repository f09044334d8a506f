#!/usr/bin/env python3
# Usage: scripts/check-chat-page.py http://127.0.0.1:8000 KEY   (needs Debian's chromium and the
# websocket-client package; run against `validator localnet --serve-api 127.0.0.1:8000 --api-key KEY`).
"""Drives GET /chat in headless chromium over the DevTools protocol, as a person would: type the key,
load models, type a message, press Send, and wait for the streamed reply."""
import json, subprocess, sys, time, urllib.request, base64
import websocket

BASE = sys.argv[1]; KEY = sys.argv[2]
proc = subprocess.Popen(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
                         "--remote-debugging-port=9333", "about:blank"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            tabs = json.load(urllib.request.urlopen("http://127.0.0.1:9333/json"))
            page = [t for t in tabs if t["type"] == "page"][0]
            break
        except Exception:
            time.sleep(0.2)
    ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30)
    n = [0]
    def call(method, **params):
        n[0] += 1
        ws.send(json.dumps({"id": n[0], "method": method, "params": params}))
        while True:
            m = json.loads(ws.recv())
            if m.get("id") == n[0]:
                return m.get("result", {})
    def js(expr):
        r = call("Runtime.evaluate", expression=expr, awaitPromise=True, returnByValue=True)
        return r.get("result", {}).get("value")
    call("Page.enable")
    call("Page.navigate", url=BASE + "/chat")
    time.sleep(1.5)
    # Type the key, load the models.
    js(f'document.getElementById("key").value = {json.dumps(KEY)}; document.getElementById("load").click(); 1')
    for _ in range(50):
        if js('document.getElementById("model").options.length') : break
        time.sleep(0.2)
    models = js('[...document.getElementById("model").options].map(o => o.value)')
    print("models:", models)
    js('document.getElementById("msg").value = "Name three colours."; document.getElementById("send").click(); 1')
    reply = ""
    for _ in range(300):
        reply = js('document.querySelector("#log .assistant, #log .err") ? document.querySelector("#log .assistant, #log .err").textContent : ""')
        done = js('!document.getElementById("send").disabled')
        if reply and done: break
        time.sleep(0.2)
    meta = js('document.getElementById("meta").textContent')
    print("reply:", reply)
    print("meta:", meta)
    shot = call("Page.captureScreenshot")
    open("/tmp/chat_page.png", "wb").write(base64.b64decode(shot["data"]))
    ok = models == ["smollm2"] and len(reply.strip()) > 0 and "completion tokens" in meta
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)
finally:
    proc.terminate()
