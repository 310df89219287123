#!/usr/bin/python3
"""Chromium's first paint of a dashboard page (tests/testing/cdp.py drives
headless Chromium over its DevTools protocol). Loads URL N times, each from
a blank tab with the cache off, and prints the median and worst
first-contentful-paint and load-event times the page's own Performance API
reports, and when the page's response was complete.

Usage: web_paint.py URL [N]
"""

import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import cdp  # noqa: E402


def main():
    url = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    browser = cdp.Browser()
    try:
        browser.cdp.call("Network.enable")
        browser.cdp.call("Network.setCacheDisabled", cacheDisabled=True)
        fcp, load, response = [], [], []
        for _ in range(n):
            browser.navigate(url)
            for _ in range(300):
                v = json.loads(browser.evaluate(
                    "JSON.stringify({fcp: (performance.getEntriesByName("
                    "'first-contentful-paint')[0] || {}).startTime || 0,"
                    " load: (performance.getEntriesByType('navigation')[0] || {})"
                    ".loadEventEnd || 0,"
                    " response: (performance.getEntriesByType('navigation')[0] || {})"
                    ".responseEnd || 0})"))
                if v["fcp"] and v["load"]:
                    break
                time.sleep(0.05)
            else:
                raise RuntimeError(f"{url}: no paint within 15 s")
            fcp.append(v["fcp"])
            load.append(v["load"])
            response.append(v["response"])
        print(f"first paint {url}: first-contentful-paint median "
              f"{statistics.median(fcp):.0f} ms, worst {max(fcp):.0f} ms; "
              f"load event median {statistics.median(load):.0f} ms, worst "
              f"{max(load):.0f} ms; the page's response complete at median "
              f"{statistics.median(response):.0f} ms ({n} loads)")
    finally:
        browser.close()


if __name__ == "__main__":
    main()
