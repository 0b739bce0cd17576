"""Drive mcp-broker's full OAuth flow headlessly with the official Python MCP SDK (`mcp` 2.x),
then call the `github_whoami` tool.

    tests/clients/python/.venv/bin/python tests/clients/python/whoami.py http://127.0.0.1:PORT/mcp

On success prints exactly one line to stdout, `TOOL_RESULT <text of the first text content>`,
and exits 0. Diagnostics go to stderr; any failure exits non-zero.

The SDK's OAuthClientProvider (an httpx2 auth flow) does discovery (RFC 9728 + RFC 8414),
dynamic client registration, PKCE, the state and RFC 9207 `iss` checks, the token exchange and
the bearer retry. The only "browser" part is ours: `redirect_handler` walks the authorization
URL -> consent page -> consent POST -> upstream -> callback chain by hand (redirects off) and
stops at the Location that points at our (unserved) redirect URI; `callback_handler` hands the
code, state and iss from that Location back to the SDK.

mcp 2.x is built on `httpx2` (the maintained httpx fork), so that is the HTTP client used here.
"""

from __future__ import annotations

import html
import logging
import re
import sys
from urllib.parse import parse_qs, urljoin, urlsplit

import anyio
import httpx2
from mcp import ClientSession, Implementation
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from mcp_types import TextContent
from pydantic import AnyUrl

TOTAL_TIMEOUT_S = 30
# Nothing listens here: the walk reads `code`/`state`/`iss` from the redirect that points at it.
REDIRECT_URI = "http://127.0.0.1:33418/callback"
MAX_REDIRECTS = 10


def log(message: str) -> None:
    print(f"[python-client] {message}", file=sys.stderr, flush=True)


class StepError(Exception):
    """A step of the headless browser walk got something unexpected."""


def excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat[:300] + "..." if len(flat) > 300 else flat


def unexpected(step: str, response: httpx2.Response) -> StepError:
    location = response.headers.get("location")
    return StepError(
        f"{step}: unexpected HTTP {response.status_code} from {response.request.url}"
        + (f" (Location: {location})" if location else "")
        + (f" body: {excerpt(response.text)}" if response.text else "")
    )


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# Reads attributes of one HTML tag, whatever their order and quoting.
ATTR_RE = re.compile(r"""([^\s"'<>/=]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+))""")


def attributes(tag: str) -> dict[str, str]:
    return {
        m.group(1).lower(): html.unescape(next(g for g in m.groups()[1:] if g is not None))
        for m in ATTR_RE.finditer(tag)
    }


def parse_consent_page(page: str, page_url: str) -> tuple[str, str, str]:
    """Return (absolute form action, request_id, csrf_token) of the consent form."""
    forms = [attributes(m.group(0)) for m in re.finditer(r"<form\b[^>]*>", page, re.I)]
    form = next((f for f in forms if f.get("method", "").lower() == "post"), None)
    if form is None:
        raise StepError(f'consent page has no <form method="post">: {excerpt(page)}')
    inputs: dict[str, str] = {}
    for m in re.finditer(r"<input\b[^>]*>", page, re.I):
        a = attributes(m.group(0))
        if "name" in a and "value" in a:
            inputs.setdefault(a["name"], a["value"])
    for name in ("request_id", "csrf_token"):
        if not inputs.get(name):
            raise StepError(f'consent page has no hidden input "{name}": {excerpt(page)}')
    return urljoin(page_url, form.get("action", "")), inputs["request_id"], inputs["csrf_token"]


def is_redirect_uri(url: str) -> bool:
    u, r = urlsplit(url), urlsplit(REDIRECT_URI)
    return (u.scheme, u.netloc, u.path) == (r.scheme, r.netloc, r.path)


class HeadlessBrowser:
    """What a user with a browser does: open the authorization URL, approve on the consent page,
    and let the redirects run until the client's redirect URI."""

    def __init__(self) -> None:
        self.result: AuthorizationCodeResult | None = None
        # Per-origin cookie jar: cookies go back only to the exact origin (scheme+host+port) that
        # set them. Browsers ignore the port, but the fake upstream shares the broker's host on
        # another port and must not see the broker's consent cookie.
        self._cookies: dict[str, dict[str, str]] = {}

    async def _request(self, http: httpx2.AsyncClient, method: str, url: str, **kwargs) -> httpx2.Response:
        jar = self._cookies.setdefault(origin(url), {})
        headers = dict(kwargs.pop("headers", {}))
        if jar:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        response = await http.request(method, url, headers=headers, **kwargs)
        http.cookies.clear()  # we keep our own jar (above); never let httpx2 send cookies on its own
        for line in response.headers.get_list("set-cookie"):
            name, sep, value = line.split(";", 1)[0].partition("=")
            if not sep or not name.strip():
                continue
            if not value.strip() or re.search(r";\s*max-age=0\b", line, re.I):
                jar.pop(name.strip(), None)  # how a server deletes a cookie
            else:
                jar[name.strip()] = value.strip()
        return response

    async def redirect_handler(self, authorization_url: str) -> None:
        sent_state = parse_qs(urlsplit(authorization_url).query).get("state", [None])[0]
        async with httpx2.AsyncClient(follow_redirects=False, timeout=10.0) as http:
            # 1. The consent page (server-rendered, before any upstream redirect).
            log(f"GET authorization URL {authorization_url}")
            page = await self._request(http, "GET", authorization_url, headers={"accept": "text/html"})
            if page.status_code != 200:
                raise unexpected("authorization endpoint", page)
            action, request_id, csrf_token = parse_consent_page(page.text, authorization_url)

            # 2. Approve. The consent cookie set by step 1 goes with it.
            log(f"POST consent to {action}")
            url = action
            response = await self._request(
                http,
                "POST",
                url,
                data={"request_id": request_id, "csrf_token": csrf_token, "decision": "approve"},
            )

            # 3. Follow the redirects one by one (broker -> fake upstream -> broker callback -> us).
            for hop in range(MAX_REDIRECTS):
                location = response.headers.get("location")
                if not (300 <= response.status_code < 400 and location):
                    raise unexpected("consent POST" if hop == 0 else "redirect chain", response)
                target = urljoin(url, location)
                if is_redirect_uri(target):
                    params = {k: v[0] for k, v in parse_qs(urlsplit(target).query).items()}
                    if "error" in params:
                        raise StepError(
                            f"authorization failed: {params['error']} {params.get('error_description', '')}".strip()
                        )
                    if not params.get("code"):
                        raise StepError(f"redirect to the client carries no code: {target}")
                    if params.get("state") != sent_state:
                        raise StepError(f"state mismatch: sent {sent_state}, got back {params.get('state')}")
                    log(f"authorization code received (iss={params.get('iss', 'absent')})")
                    self.result = AuthorizationCodeResult(
                        code=params["code"], state=params.get("state"), iss=params.get("iss")
                    )
                    return
                parts = urlsplit(target)
                log(f"follow {response.status_code} -> {parts.scheme}://{parts.netloc}{parts.path}")
                url = target
                response = await self._request(http, "GET", url)
            raise StepError(f"no redirect to {REDIRECT_URI} after {MAX_REDIRECTS} redirects (last: {url})")

    async def callback_handler(self) -> AuthorizationCodeResult:
        if self.result is None:
            raise StepError("callback_handler called before the authorization walk finished")
        return self.result


class InMemoryTokenStorage:
    """`mcp.client.auth.TokenStorage` kept in memory for this one run."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        log(
            f"got tokens (expires_in={tokens.expires_in}, refresh_token={'yes' if tokens.refresh_token else 'no'})"
        )
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        log(f"registered client_id={client_info.client_id}")
        self.client_info = client_info


async def whoami(mcp_url: str, client_metadata_url: str | None = None) -> str:
    browser = HeadlessBrowser()
    oauth = OAuthClientProvider(
        server_url=mcp_url,
        # With a Client ID Metadata Document URL (and a server advertising
        # support) the SDK uses it as client_id instead of registering.
        client_metadata_url=client_metadata_url,
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
    async with (
        httpx2.AsyncClient(auth=oauth, timeout=httpx2.Timeout(15.0)) as http,
        streamable_http_client(mcp_url, http_client=http) as (read_stream, write_stream),
        ClientSession(
            read_stream, write_stream, client_info=Implementation(name="python-sdk-test", version="1.0.0")
        ) as session,
    ):
        # The first POST (initialize) gets the 401 that starts the whole OAuth flow inside `oauth`.
        await session.initialize()
        if browser.result is None:
            raise StepError("the server accepted the MCP connection without any OAuth flow")
        result = await session.call_tool("github_whoami", {})
    text = next((c.text for c in result.content if isinstance(c, TextContent)), None)
    if result.is_error:
        raise StepError(f"github_whoami returned an error: {text or result}")
    if text is None:
        raise StepError(f"github_whoami returned no text content: {result}")
    return text


def leaf_errors(error: BaseException) -> list[BaseException]:
    """Task groups wrap the real error in (nested) exception groups; dig it out."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for sub in error.exceptions for leaf in leaf_errors(sub)]
    return [error]


async def main() -> int:
    args = sys.argv[1:]
    metadata_url = None
    if len(args) == 3 and args[0] == "--client-metadata-url":
        metadata_url, args = args[1], args[2:]
    if len(args) != 1 or not args[0].startswith(("http://", "https://")):
        print("usage: whoami.py [--client-metadata-url URL] <MCP_URL>", file=sys.stderr)
        return 2
    try:
        with anyio.fail_after(TOTAL_TIMEOUT_S):
            text = await whoami(args[0], metadata_url)
    except BaseException as error:  # noqa: BLE001 - report whatever it was, then exit non-zero
        if isinstance(error, TimeoutError):
            print(f"python-client: FAILED: gave up after {TOTAL_TIMEOUT_S}s", file=sys.stderr)
            return 1
        for leaf in leaf_errors(error):
            cause = f" (cause: {leaf.__cause__!r})" if leaf.__cause__ else ""
            print(f"python-client: FAILED: {type(leaf).__name__}: {leaf}{cause}", file=sys.stderr)
        return 1
    print("TOOL_RESULT " + re.sub(r"\r?\n", " ", text), flush=True)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="[python-client] %(name)s: %(levelname)s: %(message)s")
    sys.exit(anyio.run(main))
