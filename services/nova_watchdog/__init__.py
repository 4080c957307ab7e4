"""nova-watchdog: restart a nova unit that is active but no longer answers.

One run per timer tick (oneshot, as root): each target whose unit is active gets a real, tiny
request with a short timeout; a consecutive-failure counter per target lives in a state file;
after N failures in a row the unit is restarted and the counter reset. Log lines go to stderr
with journald's ``<N>`` priority prefixes (``<3>`` err for restarts).
"""
