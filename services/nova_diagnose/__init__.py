"""nova-diagnose: one screen on the state of the nova-* units, their health and the host.

Read-only; run it as root to see the journal, the master key (for the test chat) and the
secrets it redacts from ``--bundle``. Exit code 0 when healthy, 1 when problems were found.
"""
