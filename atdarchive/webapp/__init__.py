"""`atdarchive serve`: a read-only local web app over an archive.

Pages (`atdarchive.webapp.pages`, one file each) turn `Archive` calls into data —
the same calls the CLI makes — and that data is both the page's JSON twin
(`?format=json`) and what its Jinja2 template renders. `atdarchive.webapp.app`
wires them into a Starlette application: GET and HEAD only, local assets only,
every value HTML-escaped by the templates' autoescaping and a strict
Content-Security-Policy behind it.
"""

from atdarchive.webapp.app import create_app

__all__ = ["create_app"]
