"""The managers' and leaders' dashboard: server-rendered pages served by the API's process.

GOV.UK Frontend (from ``node_modules``, installed by ``./run``) styles the pages; Jinja2
renders them; every page reads without JavaScript, and a small script refreshes the
escalation inbox when JavaScript is on. People sign in to a session cookie signed with
``settings.auth.session_secret``; what they may see is the API's scope, decided by the same
code (``caseclock.api.services``). ``mount_dashboard`` hands every path outside ``/api/``
of the API app to the dashboard.
"""

from caseclock.dashboard.assets import DashboardAssetsMissingError
from caseclock.dashboard.mount import mount_dashboard

__all__ = ["DashboardAssetsMissingError", "mount_dashboard"]
