"""Bounds of `atdarchive serve`: what one request may make the local web app compute,
keep and show, so a URL (typed, linked, or fired by another page) cannot take the
machine's memory or every worker (`atdarchive.webapp`)."""

from atdarchive.limits import register

register("serve.max_cells_per_page", 20_000, "cells",
         "cells one page shows (changed cells of a diff, values of rows shown, table cells)")
register("serve.max_rows_per_page", 5_000, "rows",
         "rows one page shows (rows of a table, rows added or removed per table of a diff)")
register("serve.request_seconds", 30, "seconds",
         "time one request may compute")
register("serve.cache_bytes", 256 * 2**20, "bytes",
         "memory the results kept between requests may take (least recently used dropped)")
register("serve.workers", 4, "threads", "requests computed at once")
register("serve.pending", 16, "requests",
         "requests computing or waiting for a worker at once, abandoned ones included")
