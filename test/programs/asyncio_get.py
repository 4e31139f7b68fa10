"""An asyncio HTTP GET (the event loop must never block): prints the body."""
import asyncio, sys

async def main(host, port, path):
    for _ in range(20):
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 20)
            break
        except OSError:
            await asyncio.sleep(0.5)
    w.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
    await w.drain()
    data = await asyncio.wait_for(r.read(), 20)
    print('BODY', data.split(b'\r\n\r\n', 1)[1].decode().strip())

asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
