"""LAN discovery: which devices share the office's network with the agent.

Split so the idle agent stays small: the pure parts (OUI lookup, device class, neighbour
table parsing, subnet planning, sweep-state diff) are importable anywhere; the sweep itself
(scapy, ~80 MB once imported) runs in a short-lived child process (:mod:`.sweep`).
"""
