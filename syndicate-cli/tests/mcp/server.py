"""A real MCP server (official Python SDK, stdio) for the proxy tests.

Tools: `echo` returns its text, `write_note` pretends to write a note and
says so, `crash` kills the server process in the middle of the call.
"""

import os
import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("notes")


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return f"ECHO {text}"


@server.tool()
def write_note(path: str, body: str) -> str:
    """Write a note (only reports what it would write)."""
    return f"wrote {len(body)} bytes to {path}"


@server.tool()
def crash(reason: str) -> str:
    """Exit the server process before answering."""
    sys.stderr.write(f"server crashing on purpose: {reason}\n")
    sys.stderr.flush()
    os._exit(3)


if __name__ == "__main__":
    server.run("stdio")
