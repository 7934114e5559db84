"""A real MCP client (official Python SDK, stdio) driven line by line.

Usage: client.py ERA COMMAND [ARGS...] -- spawns COMMAND (the proxy) as its
server, speaking the protocol of ERA: `handshake` (`ClientSession`,
`initialize`, the 2025-11-25 protocol) or `auto` (`Client`, which probes
`server/discover` and uses the 2026-07-28 stateless protocol when the
server offers it), then reads one request per line on stdin and prints one JSON answer
per line on stdout, so a test can act between calls without sleeping:

    {"op": "list"}                          -> {"tools": [names]}
    {"op": "call", "name": N, "arguments": A}
        -> {"is_error": bool, "text": "...", "structured": ...}
        or {"error": "..."} when the call raised (JSON-RPC error)

It exits when stdin closes.
"""

import json
import sys

import anyio
from mcp import Client, ClientSession, StdioServerParameters, stdio_client


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def serve(session):
    while True:
        line = await anyio.to_thread.run_sync(sys.stdin.readline)
        if not line:
            return
        request = json.loads(line)
        if request["op"] == "list":
            result = await session.list_tools()
            emit({"tools": sorted(t.name for t in result.tools)})
            continue
        try:
            result = await session.call_tool(request["name"], request["arguments"])
        except Exception as e:  # noqa: BLE001 - reported to the test
            emit({"error": f"{type(e).__name__}: {e}"})
            continue
        text = "".join(getattr(c, "text", "") for c in result.content)
        emit({"is_error": bool(result.is_error), "text": text})


async def main(argv):
    era, command = argv[0], argv[1:]
    params = StdioServerParameters(command=command[0], args=command[1:])
    if era == "auto":
        async with Client(params) as client:
            await serve(client)
        return
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await serve(session)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:])
