#!/usr/bin/env python3
"""TLS 1.3 terminator for run.sh's TLS mode: accepts TLS on LISTEN_HOST:LISTEN_PORT and
relays the plaintext to TARGET_HOST:TARGET_PORT (the mock server). Runs inside the
namespace run.sh creates; prints `listening` when ready.

usage: tls_proxy.py CERT KEY LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT
"""
import asyncio
import ssl
import sys


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    cert, key, host, port, target_host, target_port = sys.argv[1:7]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(cert, key)

    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(target_host, int(target_port))
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    server = await asyncio.start_server(handle, host, int(port), ssl=ctx)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
