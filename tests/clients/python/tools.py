"""Call every tool of mcp-broker with the official Python MCP SDK (`mcp` 2.x).

    tests/clients/python/.venv/bin/python tests/clients/python/tools.py http://127.0.0.1:PORT/mcp

Signs in as `whoami.py` does (its walk and storage), lists the tools, makes the calls of
`../tools.json` in order, and lists the tools again. A call's string argument `$label.field` is the
field of an earlier call's result (its first text block, as JSON); a call's label is its tool's
name unless the plan names one.

The SDK asks for the scope the server's 401 names, its defaults, not the plan's `scope`. So the
first write tool is refused with 403 `insufficient_scope`, and the SDK steps up by itself: it
sends the user to the browser again (our walk) for the scope the challenge names plus what it had,
exchanges the new code and retries the call.

stdout: once every call is made, one line `TOOL_RESULTS <json>`:
    {"tools": {"at_sign_in": [names], "at_end": [names]},
     "results": {"<label>": {"is_error": bool, "text": "<first text block>"}, ...}}
Exit 0 then, whatever the tools answered (tool errors are results too). Diagnostics go to stderr;
a failure to sign in, call or resolve a reference exits non-zero with `FAILED:`. Gives up after
60 s.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import ClientSession, Implementation
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata
from mcp_types import PaginatedRequestParams, TextContent
from pydantic import AnyUrl
from whoami import REDIRECT_URI, HeadlessBrowser, InMemoryTokenStorage, StepError, leaf_errors, log

TOTAL_TIMEOUT_S = 60
PLAN = Path(__file__).resolve().parent.parent / "tools.json"


async def list_tool_names(session: ClientSession) -> list[str]:
    names: list[str] = []
    cursor: str | None = None
    while True:
        page = await session.list_tools(params=PaginatedRequestParams(cursor=cursor) if cursor else None)
        names += [tool.name for tool in page.tools]
        cursor = page.next_cursor
        if cursor is None:
            return names


def resolve(value: Any, results: dict[str, dict[str, Any]]) -> Any:
    """`$label.field` strings replaced by that field of the earlier result, anywhere in `value`."""
    if isinstance(value, str) and value.startswith("$"):
        label, _, field = value[1:].partition(".")
        earlier = results.get(label)
        if earlier is None or earlier["is_error"]:
            raise StepError(f"{value}: no successful result labelled {label}")
        found = json.loads(earlier["text"]).get(field)
        if found is None:
            raise StepError(f"{value}: {label}'s result has no {field}: {earlier['text']}")
        return found
    if isinstance(value, list):
        return [resolve(v, results) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, results) for k, v in value.items()}
    return value


async def call_every_tool(mcp_url: str) -> dict[str, Any]:
    plan = json.loads(PLAN.read_text())
    browser = HeadlessBrowser()
    oauth = OAuthClientProvider(
        server_url=mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name="python-sdk-test",
            redirect_uris=[AnyUrl(REDIRECT_URI)],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=InMemoryTokenStorage(),
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )
    results: dict[str, dict[str, Any]] = {}
    async with (
        httpx2.AsyncClient(auth=oauth, timeout=httpx2.Timeout(15.0)) as http,
        streamable_http_client(mcp_url, http_client=http) as (read_stream, write_stream),
        ClientSession(
            read_stream, write_stream, client_info=Implementation(name="python-sdk-test", version="1.0.0")
        ) as session,
    ):
        await session.initialize()  # the 401 here starts the whole OAuth flow inside `oauth`
        if browser.result is None:
            raise StepError("the server accepted the MCP connection without any OAuth flow")
        at_sign_in = await list_tool_names(session)
        for call in plan["calls"]:
            label = call.get("label", call["tool"])
            result = await session.call_tool(call["tool"], resolve(call["arguments"], results))
            text = next((c.text for c in result.content if isinstance(c, TextContent)), None)
            if text is None:
                raise StepError(f"{label}: no text content in {result}")
            results[label] = {"is_error": bool(result.is_error), "text": text}
            log(f"{label}: {'tool error' if result.is_error else 'ok'}")
        at_end = await list_tool_names(session)
    return {"tools": {"at_sign_in": at_sign_in, "at_end": at_end}, "results": results}


async def main() -> int:
    args = sys.argv[1:]
    if len(args) != 1 or not args[0].startswith(("http://", "https://")):
        print("usage: tools.py <MCP_URL>", file=sys.stderr)
        return 2
    try:
        with anyio.fail_after(TOTAL_TIMEOUT_S):
            report = await call_every_tool(args[0])
    except BaseException as error:  # noqa: BLE001 - report whatever it was, then exit non-zero
        if isinstance(error, TimeoutError):
            print(f"python-client: FAILED: gave up after {TOTAL_TIMEOUT_S}s", file=sys.stderr)
            return 1
        for leaf in leaf_errors(error):
            cause = f" (cause: {leaf.__cause__!r})" if leaf.__cause__ else ""
            print(f"python-client: FAILED: {type(leaf).__name__}: {leaf}{cause}", file=sys.stderr)
        return 1
    print("TOOL_RESULTS " + json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="[python-client] %(name)s: %(levelname)s: %(message)s")
    sys.exit(anyio.run(main))
