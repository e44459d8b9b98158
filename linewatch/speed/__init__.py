"""The speed test both ends share: the protocol (protocol.py) that the agent's transfer client
and linewatch-speedserver (server.py) both import. The server runs at the provincial data
centre, inside or beside the collector; neither side owns the contract."""
