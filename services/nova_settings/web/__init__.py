"""The settings page: server-rendered HTML (Jinja2) over the same handlers as the JSON API,
with a little progressive JavaScript (copy buttons, streaming in Try it, Status refresh).

``routes.py`` has the pages, ``session.py`` sign-in, CSRF and throttling, ``render.py`` the
templates, security headers and static files, ``charts.py`` the usage chart (SVG, no library),
``host_state.py`` what the Status page reads besides the API's status.
"""
