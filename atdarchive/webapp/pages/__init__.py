"""The pages of the web app, one module each, registered by `@page` in `PAGES`
(`atdarchive.webapp.pages.base`); importing this package registers them all."""

from atdarchive.webapp.pages import (  # noqa: F401 - imported to register
    audit,
    cell,
    datasets,
    diff,
    release,
    table,
    timeline,
)
from atdarchive.webapp.pages.base import PAGES, BadRequest, NotFound, Page, Redirect, Site

__all__ = ["PAGES", "BadRequest", "NotFound", "Page", "Redirect", "Site"]
