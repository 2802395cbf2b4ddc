"""A TCP forwarder that the store-outage tests put between the bot and
PostgreSQL or Redis, so that a test can take a store away from this bot only
(the real servers keep serving everything else on the machine): killing the
forwarder is the store going down (new connections refused, open ones cut),
SIGSTOP is the store hanging, and starting it again on the same port is the
store coming back.

    python tests/integration/tcp_forwarder.py LISTEN_PORT TARGET_HOST TARGET_PORT
"""

from __future__ import annotations

import asyncio
import sys


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def forward(listen_port: int, host: str, port: int) -> None:
    async def connect(client_r, client_w) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(host, port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))

    server = await asyncio.start_server(
        connect, "127.0.0.1", listen_port, reuse_address=True
    )
    print("forwarding", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(forward(int(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
