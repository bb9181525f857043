"""Bounds on what `watch` and `fetch` take from the network (README "Watch" → bounds).

A server decides how much it sends, how fast, and where it points next; each of those
is bounded here so that a hostile or broken site costs at most these amounts. The
defaults are generous for real agency files (workbooks of a few hundred MB).
"""

from __future__ import annotations

from atdarchive.limits import register

register("net.max_redirects", 10, "redirects",
         "redirects followed for one request")
register("net.max_body_bytes", 1 << 30, "bytes",
         "a file's response body, decoded")
register("net.max_page_bytes", 32 << 20, "bytes",
         "a landing page's (or an error answer's) body, decoded")
register("net.max_compression_ratio", 200, "x",
         "a gzip body's decoded size per byte received (checked past 16 MiB decoded)")
register("net.idle_timeout", 30, "seconds",
         "seconds without a byte from the server (--timeout)")
register("net.response_deadline", 600, "seconds",
         "time for one response: connection, headers and body")
register("net.source_deadline", 900, "seconds",
         "time for one source in a watch pass: its page and its files")
register("net.watch_budget", 600, "seconds",
         "time for a whole watch pass (--budget)")
register("net.fetch_deadline", 1800, "seconds",
         "time for one `fetch` of a URL: redirects and retries included")
register("net.max_retry_after", 120, "seconds",
         "a server's Retry-After that is waited for (longer waits are capped)")
register("net.max_links_per_page", 1000, "links",
         "links matching the source's regex on one page")
