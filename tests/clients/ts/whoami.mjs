#!/usr/bin/env node
// Drives mcp-broker's full OAuth flow headlessly with the official TypeScript MCP SDK (v1),
// then calls the `github_whoami` tool.
//
//   node tests/clients/ts/whoami.mjs http://127.0.0.1:PORT/mcp
//
// On success prints exactly one line to stdout, `TOOL_RESULT <text of the first text content>`,
// and exits 0. Diagnostics go to stderr; any failure exits non-zero.
//
// The SDK does discovery (RFC 9728 + RFC 8414), dynamic client registration, PKCE, the token
// exchange and the bearer retry. The only "browser" part is ours: redirectToAuthorization()
// walks the authorization URL -> consent page -> consent POST -> upstream -> callback chain by
// hand (redirects off) and stops at the Location that points at our (unserved) redirect URI.

import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const TOTAL_TIMEOUT_MS = 30_000;
// Nothing listens here: the walk reads `code`/`state` from the redirect that points at it.
const REDIRECT_URI = 'http://127.0.0.1:33418/callback';
const MAX_REDIRECTS = 10;

const log = (...args) => console.error('[ts-client]', ...args);

function fail(message) {
  console.error(`ts-client: FAILED: ${message}`);
  process.exit(1);
}

// ---------------------------------------------------------------------------------------------
// Minimal per-origin cookie jar: cookies go back only to the exact origin (scheme+host+port)
// that set them. Browsers ignore the port for cookies, but the fake upstream shares the broker's
// host on another port and must not see the broker's consent cookie.
class CookieJar {
  #byOrigin = new Map();

  store(url, response) {
    const origin = new URL(url).origin;
    const jar = this.#byOrigin.get(origin) ?? new Map();
    for (const line of response.headers.getSetCookie()) {
      const pair = line.split(';', 1)[0];
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      // An empty value or Max-Age=0 is how a server deletes a cookie.
      if (value === '' || /;\s*max-age=0\b/i.test(line)) jar.delete(name);
      else jar.set(name, value);
    }
    this.#byOrigin.set(origin, jar);
  }

  header(url) {
    const jar = this.#byOrigin.get(new URL(url).origin);
    if (!jar || jar.size === 0) return undefined;
    return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

function excerpt(text) {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 300 ? `${flat.slice(0, 300)}...` : flat;
}

async function unexpected(step, url, response) {
  const body = await response.text().catch(() => '');
  const location = response.headers.get('location');
  throw new Error(
    `${step}: unexpected HTTP ${response.status} from ${url}` +
      (location ? ` (Location: ${location})` : '') +
      (body ? ` body: ${excerpt(body)}` : ''),
  );
}

// Reads attributes of one HTML tag, whatever their order and quoting.
function attributes(tag) {
  const attrs = {};
  const re = /([^\s"'<>\/=]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+))/g;
  for (const m of tag.matchAll(re)) {
    attrs[m[1].toLowerCase()] = (m[2] ?? m[3] ?? m[4]).replace(/&amp;/g, '&').replace(/&#x2f;|&#47;/gi, '/');
  }
  return attrs;
}

// Finds the consent form: its action (resolved against the page URL) and the hidden
// request_id / csrf_token values.
function parseConsentPage(html, pageUrl) {
  const formTag = [...html.matchAll(/<form\b[^>]*>/gi)]
    .map((m) => attributes(m[0]))
    .find((a) => (a.method ?? '').toLowerCase() === 'post');
  if (!formTag) throw new Error(`consent page has no <form method="post">: ${excerpt(html)}`);
  const inputs = {};
  for (const m of html.matchAll(/<input\b[^>]*>/gi)) {
    const a = attributes(m[0]);
    if (a.name && a.value !== undefined && !(a.name in inputs)) inputs[a.name] = a.value;
  }
  for (const name of ['request_id', 'csrf_token']) {
    if (!inputs[name]) throw new Error(`consent page has no hidden input "${name}": ${excerpt(html)}`);
  }
  return {
    action: new URL(formTag.action ?? '', pageUrl).href,
    requestId: inputs.request_id,
    csrfToken: inputs.csrf_token,
  };
}

function isRedirectUri(url) {
  const u = new URL(url);
  const r = new URL(REDIRECT_URI);
  return u.origin === r.origin && u.pathname === r.pathname;
}

// What a user with a browser does: open the authorization URL, approve on the consent page,
// and let the redirects run until the client's redirect URI. Returns { code, state, iss }.
async function walkAuthorization(authorizationUrl) {
  const jar = new CookieJar();
  const request = async (url, init = {}) => {
    const headers = new Headers(init.headers);
    const cookie = jar.header(url);
    if (cookie) headers.set('cookie', cookie);
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    jar.store(url, response);
    return response;
  };

  // 1. The consent page (server-rendered, before any upstream redirect).
  log(`GET authorization URL ${authorizationUrl}`);
  const page = await request(authorizationUrl, { headers: { accept: 'text/html' } });
  if (page.status !== 200) await unexpected('authorization endpoint', authorizationUrl, page);
  const form = parseConsentPage(await page.text(), authorizationUrl);

  // 2. Approve. The consent cookie set by step 1 goes with it.
  log(`POST consent to ${form.action}`);
  let response = await request(form.action, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ request_id: form.requestId, csrf_token: form.csrfToken, decision: 'approve' }),
  });
  let url = form.action;

  // 3. Follow the redirects one by one (broker -> fake upstream -> broker callback -> us).
  for (let hop = 0; hop < MAX_REDIRECTS; hop++) {
    const location = response.headers.get('location');
    if (response.status < 300 || response.status > 399 || !location) {
      await unexpected(hop === 0 ? 'consent POST' : 'redirect chain', url, response);
    }
    await response.body?.cancel();
    const next = new URL(location, url).href;
    if (isRedirectUri(next)) {
      const params = new URL(next).searchParams;
      if (params.get('error')) {
        throw new Error(`authorization failed: ${params.get('error')} ${params.get('error_description') ?? ''}`.trim());
      }
      if (!params.get('code')) throw new Error(`redirect to the client carries no code: ${next}`);
      return { code: params.get('code'), state: params.get('state'), iss: params.get('iss') };
    }
    log(`follow ${response.status} -> ${new URL(next).origin}${new URL(next).pathname}`);
    url = next;
    response = await request(url);
  }
  throw new Error(`no redirect to ${REDIRECT_URI} after ${MAX_REDIRECTS} redirects (last: ${url})`);
}

// ---------------------------------------------------------------------------------------------
// In-memory OAuthClientProvider whose "browser" is walkAuthorization().
class HeadlessOAuthProvider {
  _clientInformation = undefined;
  _tokens = undefined;
  _codeVerifier = undefined;
  _state = undefined;
  authResult = undefined; // { code, state, iss } once the walk is done

  get redirectUrl() {
    return REDIRECT_URI;
  }

  get clientMetadata() {
    return {
      client_name: 'ts-sdk-test',
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  // The SDK calls this once per authorization request and puts the value in the URL.
  state() {
    this._state = randomBytes(24).toString('base64url');
    return this._state;
  }

  clientInformation() {
    return this._clientInformation;
  }

  saveClientInformation(info) {
    log(`registered client_id=${info.client_id}`);
    this._clientInformation = info;
  }

  tokens() {
    return this._tokens;
  }

  saveTokens(tokens) {
    log(`got tokens (token_type=${tokens.token_type}, expires_in=${tokens.expires_in ?? '-'}, refresh_token=${tokens.refresh_token ? 'yes' : 'no'})`);
    this._tokens = tokens;
  }

  saveCodeVerifier(verifier) {
    this._codeVerifier = verifier;
  }

  codeVerifier() {
    if (!this._codeVerifier) throw new Error('no PKCE code verifier saved');
    return this._codeVerifier;
  }

  async redirectToAuthorization(authorizationUrl) {
    const sentState = authorizationUrl.searchParams.get('state');
    if (!sentState || sentState !== this._state) {
      throw new Error(`authorization URL state ${sentState} is not the one the provider issued`);
    }
    const result = await walkAuthorization(authorizationUrl.href);
    if (result.state !== sentState) {
      throw new Error(`state mismatch: sent ${sentState}, got back ${result.state}`);
    }
    log(`authorization code received (iss=${result.iss ?? 'absent'})`);
    this.authResult = result;
  }
}

async function connect(url, provider) {
  const transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
  const client = new Client({ name: 'ts-sdk-test', version: '1.0.0' });
  try {
    await client.connect(transport);
    return { client };
  } catch (error) {
    // After redirectToAuthorization() the SDK aborts the connection with UnauthorizedError;
    // the app is expected to finish the flow on this same transport.
    if (error instanceof UnauthorizedError && provider.authResult) return { transport };
    throw error;
  }
}

async function main() {
  const arg = process.argv[2];
  if (!arg) fail('usage: node whoami.mjs <MCP_URL>');
  let mcpUrl;
  try {
    mcpUrl = new URL(arg);
  } catch {
    fail(`not a URL: ${arg}`);
  }

  const provider = new HeadlessOAuthProvider();
  const first = await connect(mcpUrl, provider);
  if (first.client) {
    await first.client.close();
    fail('the server accepted the MCP connection without any OAuth flow');
  }
  await first.transport.finishAuth(provider.authResult.code); // token exchange at /token
  const { client } = await connect(mcpUrl, provider); // now with the bearer token
  if (!client) fail('server still asks for authorization after the token exchange');

  const result = await client.callTool({ name: 'github_whoami', arguments: {} });
  const text = result.content?.find((c) => c.type === 'text')?.text;
  await client.close();
  if (result.isError) fail(`github_whoami returned an error: ${text ?? JSON.stringify(result)}`);
  if (text === undefined) fail(`github_whoami returned no text content: ${JSON.stringify(result)}`);
  process.stdout.write(`TOOL_RESULT ${text.replace(/\r?\n/g, ' ')}\n`);
}

setTimeout(() => fail(`gave up after ${TOTAL_TIMEOUT_MS / 1000}s`), TOTAL_TIMEOUT_MS).unref();
main().then(
  () => process.exit(0),
  (error) => {
    const cause = error?.cause ? ` (cause: ${error.cause.message ?? error.cause})` : '';
    fail(`${error?.stack ?? error}${cause}`);
  },
);
