"""Looking at the web dashboard with Debian's headless Chromium, for the
seeded web test (tests/integration/web_test.py) and the lab one
(tests/lab/web_lab_test.py): a page's DOM after its scripts ran, its console
messages, the check that nothing on it leaves the collector, and its PNG
screenshot under build/tests/web/. Each call runs its own Chromium, ended
when it returns (subprocess.run; its timeout kills it by PID)."""

import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse

import nvtest

SHOTS = os.path.join(nvtest.BUILD_DIR, "tests", "web")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def chromium(url, *args, netns=None, timeout=60):
    """Runs headless Chromium on `url`; (stdout, console lines). No other
    host resolves, so a request that tried to leave would fail (and show).
    With `netns` (a network namespace's name) Chromium runs inside it, to
    reach a collector listening on that namespace's loopback."""
    profile = tempfile.mkdtemp(prefix="nv-web-chromium-")
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--no-first-run", "--disable-extensions", "--disable-sync",
            "--disable-background-networking", "--disable-component-update",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--enable-logging=stderr", "--v=0",
            f"--user-data-dir={profile}", *args, url]
    if netns is not None:
        argv = ["ip", "netns", "exec", netns] + argv
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    console = [line for line in r.stderr.splitlines()
               if "CONSOLE" in line or "Refused to" in line
               or "Content Security Policy" in line]
    return r.stdout, console


def load(test, base, path, shot, netns=None):
    """The page's DOM after its scripts ran, asserting (on unittest case
    `test`) a clean console and only same-origin references; saves the
    screenshot as SHOTS/`shot`."""
    os.makedirs(SHOTS, exist_ok=True)
    url = base + path
    dom, console = chromium(url, "--dump-dom", netns=netns)
    test.assertEqual(console, [], f"console messages on {path}")
    test.assertIn("</html>", dom)
    for attr, ref in re.findall(r'\b(src|href|action)="([^"]*)"', dom):
        parsed = urllib.parse.urlsplit(ref.replace("&amp;", "&"))
        test.assertFalse(parsed.scheme or parsed.netloc,
                         f"{path}: {attr}={ref} leaves the collector")
    out = os.path.join(SHOTS, shot)
    _, console = chromium(url, f"--screenshot={out}", "--window-size=1280,1600",
                          "--hide-scrollbars", netns=netns)
    test.assertEqual(console, [], f"console messages on {path} (screenshot)")
    test.assertTrue(os.path.getsize(out) > 10000, f"{out} is not a page")
    return dom


def timeline_points(svg_tag):
    """A timeline's points from its <svg> tag's data (Timeline in
    collector/web/pages.cc): dicts of at (s), at_us, avg (None: no answer),
    loss, runs, seq (None: no run to open), run_at_us (the run a click
    opens), agg."""
    attrs = dict(re.findall(r'\b(data-[a-z0-9]+)="([^"]*)"', svg_tag))
    t0 = int(attrs["data-t0"])
    out = []
    for entry in attrs["data-pts"].split():
        f = entry.split(",") + [""] * 9
        at_us = t0 + int(f[0])
        out.append({"at": at_us // 1000000, "at_us": at_us,
                    "avg": float(f[1]) if f[1] else None,
                    "loss": float(f[4]), "runs": int(f[5]),
                    "seq": int(f[6]) if f[6] else None,
                    "run_at_us": t0 + int(f[7]) if f[7] else at_us,
                    "agg": f[8] == "1"})
    return out


def timeline_dots(svg_body):
    """{loss class: how many points its path draws} (a point is a
    zero-length segment, "h0")."""
    return {cls: d.count("h0")
            for cls, d in re.findall(r'<path class="pts (loss\d)" d="([^"]*)"', svg_body)}
