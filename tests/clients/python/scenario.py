"""Longer runs of the Python SDK (`mcp` 2.x) against mcp-broker than `whoami.py`:

    tests/clients/python/.venv/bin/python tests/clients/python/scenario.py --scenario refresh|reregister MCP_URL

Both sign in (DCR, consent walk, token exchange) and call `github_whoami` once, then:
- refresh:    wait until the access token has expired, call again. The SDK must refresh with its
              refresh token (it does so on its own clock, before sending), without a new walk.
- reregister: print `READY` and wait for a line on stdin (the test deletes our client in between),
              call again. mcp 2.3.0 does not get back in: it keeps the deleted registration and
              walks to `/authorize` with it, which fails (the test asserts that).

stdout carries one event per line for the test, as `../ts/browser.mjs` does: `CLIENT_ID <id>`,
`BROWSER_WALK <client_id>`, `TOKENS ...`, `HTTP <method> <path> <status> [grant_type=..]
[error=..]` for every request the SDK sends, `TOOL_RESULT <text>` per successful call, `READY`.
Diagnostics go to stderr; any failure exits non-zero with `FAILED:`. Gives up after 40 s.

The browser walk and the token storage are `whoami.py`'s, with events added.
"""

from __future__ import annotations

import logging
import re
import sys
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
from mcp import ClientSession, Implementation
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from mcp_types import TextContent
from pydantic import AnyUrl
from whoami import REDIRECT_URI, HeadlessBrowser, InMemoryTokenStorage, StepError, leaf_errors

TOTAL_TIMEOUT_S = 40


def event(*parts: object) -> None:
    print(" ".join(str(p) for p in parts), flush=True)


class Browser(HeadlessBrowser):
    async def redirect_handler(self, authorization_url: str) -> None:
        event("BROWSER_WALK", parse_qs(urlsplit(authorization_url).query).get("client_id", ["-"])[0])
        self.result = None  # a walk that fails must not hand the SDK the previous walk's code
        await super().redirect_handler(authorization_url)


class Storage(InMemoryTokenStorage):
    async def set_tokens(self, tokens: OAuthToken) -> None:
        event("TOKENS", f"expires_in={tokens.expires_in}", f"refresh_token={'yes' if tokens.refresh_token else 'no'}")
        await super().set_tokens(tokens)

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        if self.client_info is None or self.client_info.client_id != client_info.client_id:
            event("CLIENT_ID", client_info.client_id)
        await super().set_client_info(client_info)


async def trace(response: httpx2.Response) -> None:
    """httpx2 response hook: `HTTP <method> <path> <status> [grant_type=...] [error=...]` per SDK request."""
    request = response.request
    parts = [request.method, request.url.path, response.status_code]
    if request.method == "POST":
        parts += [f"grant_type={g}" for g in parse_qs(request.content.decode(errors="replace")).get("grant_type", [])]
    if response.status_code >= 400 and "json" in response.headers.get("content-type", ""):
        await response.aread()  # an OAuth error answer names its code (`invalid_client`, ...)
        try:
            parts += [f"error={response.json()['error']}"]
        except (ValueError, KeyError, TypeError):
            pass
    event("HTTP", *parts)


async def call_whoami(session: ClientSession) -> None:
    result = await session.call_tool("github_whoami", {})
    text = next((c.text for c in result.content if isinstance(c, TextContent)), None)
    if result.is_error or text is None:
        raise StepError(f"github_whoami failed: {text or result}")
    event("TOOL_RESULT", re.sub(r"\r?\n", " ", text))


async def run(scenario: str, mcp_url: str) -> None:
    storage = Storage()
    browser = Browser()
    oauth = OAuthClientProvider(
        server_url=mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name="python-sdk-test",
            redirect_uris=[AnyUrl(REDIRECT_URI)],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )
    async with (
        httpx2.AsyncClient(auth=oauth, timeout=httpx2.Timeout(15.0), event_hooks={"response": [trace]}) as http,
        streamable_http_client(mcp_url, http_client=http) as (read_stream, write_stream),
        ClientSession(
            read_stream, write_stream, client_info=Implementation(name="python-sdk-test", version="1.0.0")
        ) as session,
    ):
        await session.initialize()  # the 401 here starts the whole OAuth flow inside `oauth`
        if browser.result is None:
            raise StepError("the server accepted the MCP connection without any OAuth flow")
        await call_whoami(session)
        if scenario == "refresh":
            expires_in = storage.tokens.expires_in if storage.tokens else None
            if expires_in is None or expires_in > 20:
                raise StepError(f"expires_in {expires_in}: start the broker with a short token lifetime")
            wait_s = expires_in + 1.5
            print(f"[python-client] waiting {wait_s}s for the access token to expire", file=sys.stderr)
            await anyio.sleep(wait_s)
        else:
            event("READY")
            line = await anyio.to_thread.run_sync(sys.stdin.readline)
            if not line:
                raise StepError("stdin closed before the go-ahead line")
        await call_whoami(session)


async def main() -> int:
    args = sys.argv[1:]
    if len(args) != 3 or args[0] != "--scenario" or args[1] not in ("refresh", "reregister"):
        print("usage: scenario.py --scenario refresh|reregister <MCP_URL>", file=sys.stderr)
        return 2
    try:
        with anyio.fail_after(TOTAL_TIMEOUT_S):
            await run(args[1], args[2])
    except BaseException as error:  # noqa: BLE001 - report whatever it was, then exit non-zero
        if isinstance(error, TimeoutError):
            print(f"python-client: FAILED: gave up after {TOTAL_TIMEOUT_S}s", file=sys.stderr)
            return 1
        for leaf in leaf_errors(error):
            cause = f" (cause: {leaf.__cause__!r})" if leaf.__cause__ else ""
            print(f"python-client: FAILED: {type(leaf).__name__}: {leaf}{cause}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="[python-client] %(name)s: %(levelname)s: %(message)s")
    sys.exit(anyio.run(main))
