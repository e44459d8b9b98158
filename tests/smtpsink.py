"""A real SMTP server (aiosmtpd) that keeps every message it accepts as a file:
``python tests/smtpsink.py HOST PORT DIR``. Prints READY when it listens."""
import sys
import time
from pathlib import Path

from aiosmtpd.controller import Controller


class Keep:
    def __init__(self, folder: Path):
        self.folder = folder
        self.n = len(list(folder.glob("*.eml")))

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        tmp = self.folder / f".{self.n}.tmp"
        head = f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\nX-Received-At: {time.time():.3f}\r\n".encode()
        tmp.write_bytes(head + envelope.original_content)
        tmp.rename(self.folder / f"{time.time_ns()}-{self.n}.eml")
        return "250 OK"


if __name__ == "__main__":
    host, port, folder = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    folder.mkdir(parents=True, exist_ok=True)
    c = Controller(Keep(folder), hostname=host, port=port)
    c.start()
    print("READY", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        c.stop()
