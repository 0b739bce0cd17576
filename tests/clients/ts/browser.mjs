// The SDK-independent half of the scripts here and in `../ts2/`: a headless "browser" that walks
// the broker's consent page and redirects, an in-memory OAuthClientProvider whose
// redirectToAuthorization() is that walk (its shape is the same in SDK v1 and v2), a fetch wrapper
// that traces the SDK's own HTTP requests, the stdout event lines the Rust tests read, the
// sign-ins, and the scenarios themselves, given the SDK's classes. Node built-ins only, so any
// SDK package can import it.

import { randomBytes } from 'node:crypto';

// Nothing listens here: the walk reads `code`/`state`/`iss` from the redirect that points at it.
export const REDIRECT_URI = 'http://127.0.0.1:33418/callback';
const MAX_REDIRECTS = 10;

export const log = (...args) => console.error('[ts-client]', ...args);

/** One stdout line for the Rust test: `NAME arg...`. */
export const event = (...parts) => process.stdout.write(`${parts.join(' ')}\n`);

export function fail(message) {
  console.error(`ts-client: FAILED: ${message}`);
  process.exit(1);
}

/** Exits non-zero after `seconds`; `main` is the script body. */
export function runMain(main, seconds) {
  setTimeout(() => fail(`gave up after ${seconds}s`), seconds * 1000).unref();
  main().then(
    () => process.exit(0),
    (error) => {
      const cause = error?.cause ? ` (cause: ${error.cause.message ?? error.cause})` : '';
      fail(`${error?.stack ?? error}${cause}`);
    },
  );
}

// Cookies go back only to the exact origin (scheme+host+port) that set them: the fake upstream
// shares the broker's host on another port and must not see the broker's consent cookie.
class CookieJar {
  #byOrigin = new Map();

  store(url, response) {
    const origin = new URL(url).origin;
    const jar = this.#byOrigin.get(origin) ?? new Map();
    for (const line of response.headers.getSetCookie()) {
      const pair = line.split(';', 1)[0];
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const [name, value] = [pair.slice(0, eq).trim(), pair.slice(eq + 1).trim()];
      if (value === '' || /;\s*max-age=0\b/i.test(line)) jar.delete(name);
      else jar.set(name, value);
    }
    this.#byOrigin.set(origin, jar);
  }

  header(url) {
    const jar = this.#byOrigin.get(new URL(url).origin);
    return jar?.size ? [...jar].map(([k, v]) => `${k}=${v}`).join('; ') : undefined;
  }
}

const excerpt = (text) => {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 300 ? `${flat.slice(0, 300)}...` : flat;
};

async function unexpected(step, url, response) {
  const body = await response.text().catch(() => '');
  const location = response.headers.get('location');
  throw new Error(
    `${step}: unexpected HTTP ${response.status} from ${url}` +
      (location ? ` (Location: ${location})` : '') +
      (body ? ` body: ${excerpt(body)}` : ''),
  );
}

// Attributes of one HTML tag, whatever their order and quoting.
function attributes(tag) {
  const attrs = {};
  const re = /([^\s"'<>\/=]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+))/g;
  for (const m of tag.matchAll(re)) {
    attrs[m[1].toLowerCase()] = (m[2] ?? m[3] ?? m[4]).replace(/&amp;/g, '&').replace(/&#x2f;|&#47;/gi, '/');
  }
  return attrs;
}

// The consent form's action and its hidden request_id / csrf_token.
function parseConsentPage(html, pageUrl) {
  const form = [...html.matchAll(/<form\b[^>]*>/gi)]
    .map((m) => attributes(m[0]))
    .find((a) => (a.method ?? '').toLowerCase() === 'post');
  if (!form) throw new Error(`consent page has no <form method="post">: ${excerpt(html)}`);
  const inputs = {};
  for (const m of html.matchAll(/<input\b[^>]*>/gi)) {
    const a = attributes(m[0]);
    if (a.name && a.value !== undefined && !(a.name in inputs)) inputs[a.name] = a.value;
  }
  for (const name of ['request_id', 'csrf_token']) {
    if (!inputs[name]) throw new Error(`consent page has no hidden input "${name}": ${excerpt(html)}`);
  }
  return { action: new URL(form.action ?? '', pageUrl).href, requestId: inputs.request_id, csrfToken: inputs.csrf_token };
}

function isRedirectUri(url) {
  const [u, r] = [new URL(url), new URL(REDIRECT_URI)];
  return u.origin === r.origin && u.pathname === r.pathname;
}

/** What a user with a browser does: open the authorization URL, approve, follow the redirects
 * (by hand, redirects off) until the client's redirect URI. Returns its query parameters. */
export async function walkAuthorization(authorizationUrl) {
  const jar = new CookieJar();
  const request = async (url, init = {}) => {
    const headers = new Headers(init.headers);
    const cookie = jar.header(url);
    if (cookie) headers.set('cookie', cookie);
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    jar.store(url, response);
    return response;
  };

  log(`GET authorization URL ${authorizationUrl}`);
  const page = await request(authorizationUrl, { headers: { accept: 'text/html' } });
  if (page.status !== 200) await unexpected('authorization endpoint', authorizationUrl, page);
  const form = parseConsentPage(await page.text(), authorizationUrl);

  log(`POST consent to ${form.action}`);
  let url = form.action;
  let response = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ request_id: form.requestId, csrf_token: form.csrfToken, decision: 'approve' }),
  });
  for (let hop = 0; hop < MAX_REDIRECTS; hop++) {
    const location = response.headers.get('location');
    if (response.status < 300 || response.status > 399 || !location) {
      await unexpected(hop === 0 ? 'consent POST' : 'redirect chain', url, response);
    }
    await response.body?.cancel();
    const next = new URL(location, url);
    if (isRedirectUri(next.href)) {
      const params = next.searchParams;
      if (params.get('error')) throw new Error(`authorization failed: ${params.get('error')} ${params.get('error_description') ?? ''}`);
      if (!params.get('code')) throw new Error(`redirect to the client carries no code: ${next}`);
      return params;
    }
    log(`follow ${response.status} -> ${next.origin}${next.pathname}`);
    url = next.href;
    response = await request(url);
  }
  throw new Error(`no redirect to ${REDIRECT_URI} after ${MAX_REDIRECTS} redirects (last: ${url})`);
}

/** In-memory OAuthClientProvider whose "browser" is walkAuthorization(). Prints `CLIENT_ID <id>`
 * for each new registration, `BROWSER_WALK` per walk and `TOKENS ...` per token response. */
export class HeadlessOAuthProvider {
  _clientInformation = undefined;
  _tokens = undefined;
  _codeVerifier = undefined;
  _state = undefined;
  /** The callback's query parameters of the last walk, until the app takes them. */
  callback = undefined;

  /**
   * `keepDiscovery`: also keep the SDK's discovery state (v2 checks the callback against it).
   * `clientMetadataUrl`: a Client ID Metadata Document URL the SDK uses as client_id (instead of
   * registering) when the server advertises support.
   */
  constructor({ keepDiscovery = false, clientMetadataUrl = undefined } = {}) {
    if (clientMetadataUrl) this.clientMetadataUrl = clientMetadataUrl;
    if (keepDiscovery) {
      this.saveDiscoveryState = (state) => {
        this._discovery = state;
      };
      this.discoveryState = () => this._discovery;
    }
  }

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

  state() {
    this._state = randomBytes(24).toString('base64url');
    return this._state;
  }

  clientInformation() {
    return this._clientInformation;
  }

  saveClientInformation(info) {
    if (info.client_id !== this._clientInformation?.client_id) event('CLIENT_ID', info.client_id);
    this._clientInformation = info;
  }

  tokens() {
    return this._tokens;
  }

  saveTokens(tokens) {
    event('TOKENS', `expires_in=${tokens.expires_in ?? '-'}`, `refresh_token=${tokens.refresh_token ? 'yes' : 'no'}`);
    this._tokens = tokens;
  }

  saveCodeVerifier(verifier) {
    this._codeVerifier = verifier;
  }

  codeVerifier() {
    if (!this._codeVerifier) throw new Error('no PKCE code verifier saved');
    return this._codeVerifier;
  }

  // What a host app implements so the SDK can drop credentials the server refused: after
  // `invalid_client` v1 asks for 'all', v2 for 'client' then 'tokens'; after `invalid_grant`,
  // both for 'tokens'.
  invalidateCredentials(scope) {
    event('INVALIDATE', scope);
    if (scope === 'all' || scope === 'client') this._clientInformation = undefined;
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'verifier') this._codeVerifier = undefined;
    if (scope === 'all' || scope === 'discovery') this._discovery = undefined;
  }

  async redirectToAuthorization(authorizationUrl) {
    event('BROWSER_WALK', authorizationUrl.searchParams.get('client_id'));
    const sent = authorizationUrl.searchParams.get('state');
    if (!sent || sent !== this._state) throw new Error(`authorization URL state ${sent} is not the one we issued`);
    const params = await walkAuthorization(authorizationUrl.href);
    if (params.get('state') !== sent) throw new Error(`state mismatch: sent ${sent}, got back ${params.get('state')}`);
    log(`authorization code received (iss=${params.get('iss') ?? 'absent'})`);
    this.callback = params;
  }

  /** The last walk's callback parameters, once. */
  takeCallback() {
    const params = this.callback;
    this.callback = undefined;
    return params;
  }
}

/** A fetch that prints `HTTP <method> <path> <status> [grant_type=...] [error=...]` for each SDK request. */
export function tracingFetch(inner = fetch) {
  return async (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const method = init.method ?? (input instanceof Request ? input.method : 'GET');
    // Token requests are form bodies (URLSearchParams, or its string form); MCP bodies are JSON.
    const body = init.body;
    const form = body instanceof URLSearchParams ? body : typeof body === 'string' && !/^\s*[[{]/.test(body) ? new URLSearchParams(body) : null;
    const grant = form?.get('grant_type');
    const response = await inner(input, init);
    // An OAuth error answer names its code (`invalid_client`, ...).
    const json = response.status >= 400 && /json/.test(response.headers.get('content-type') ?? '');
    const error = json ? (await response.clone().json().catch(() => ({}))).error : undefined;
    event('HTTP', method, url.pathname, response.status, ...(grant ? [`grant_type=${grant}`] : []), ...(error ? [`error=${error}`] : []));
    return response;
  };
}

/** The next line on stdin (the Rust test's go-ahead). */
export function readLine() {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const onData = (chunk) => {
      buffered += chunk;
      const nl = buffered.indexOf('\n');
      if (nl < 0) return;
      process.stdin.off('data', onData).pause();
      resolve(buffered.slice(0, nl));
    };
    process.stdin.setEncoding('utf8').on('data', onData).once('end', () => reject(new Error('stdin closed before the go-ahead line')));
  });
}

/** The first text content of a tool result; throws on a tool error. */
export function toolText(result) {
  const text = result.content?.find((c) => c.type === 'text')?.text;
  if (result.isError) throw new Error(`tool returned an error: ${text ?? JSON.stringify(result)}`);
  if (text === undefined) throw new Error(`tool returned no text content: ${JSON.stringify(result)}`);
  return text.replace(/\r?\n/g, ' ');
}

/**
 * Signs in and connects with either SDK (`sdk`: its `Client`, `StreamableHTTPClientTransport` and
 * `UnauthorizedError`, and `finishAuth(transport, callbackParams)`). Returns the connected client,
 * its transport, the provider, and `finish(error, transport)`: what a host app does after the
 * SDK's UnauthorizedError once the user is back from the browser (our walk) — hand the callback
 * to the SDK for the token exchange; false if the error was something else.
 */
export async function signIn(sdk, mcpUrl, providerOptions = {}) {
  const provider = new HeadlessOAuthProvider(providerOptions);
  const newTransport = () => new sdk.StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: tracingFetch() });
  const newClient = () => new sdk.Client({ name: 'ts-sdk-test', version: '1.0.0' });
  const finish = async (error, transport) => {
    const callback = provider.takeCallback();
    if (!(error instanceof sdk.UnauthorizedError) || !callback) return false;
    await sdk.finishAuth(transport, callback);
    return true;
  };
  // The first connect ends in the browser walk; a fresh transport then connects with the token.
  const first = newTransport();
  try {
    await newClient().connect(first);
    throw new Error('the server accepted the MCP connection without any OAuth flow');
  } catch (error) {
    if (!(await finish(error, first))) throw error;
  }
  const transport = newTransport();
  const client = newClient();
  await client.connect(transport);
  return { client, transport, provider, finish };
}

/**
 * Signs in asking for `scope`, as a host app that knows it needs more than the server's defaults
 * does: the SDK's `auth()` (`sdk.auth`) discovers, registers and sends the user to the browser
 * (our walk), a second `auth()` exchanges the code; then the client connects with that token.
 * (Through the transport's 401 the SDK asks for the scope the server's challenge names, its
 * defaults; and SDK v1's step-up on a 403 `insufficient_scope` refreshes the token it holds,
 * which cannot widen its scope, instead of asking the user.)
 */
export async function signInWithScope(sdk, mcpUrl, scope) {
  const provider = new HeadlessOAuthProvider();
  const fetchFn = tracingFetch();
  const started = await sdk.auth(provider, { serverUrl: mcpUrl, scope, fetchFn });
  const callback = provider.takeCallback();
  if (started !== 'REDIRECT' || !callback) throw new Error(`auth() did not send the user to the browser (${started})`);
  const exchanged = await sdk.auth(provider, { serverUrl: mcpUrl, scope, authorizationCode: callback.get('code'), fetchFn });
  if (exchanged !== 'AUTHORIZED') throw new Error(`auth() did not exchange the code (${exchanged})`);
  const client = new sdk.Client({ name: 'ts-sdk-test', version: '1.0.0' });
  await client.connect(new sdk.StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: fetchFn }));
  return { client, provider };
}

/**
 * The scenarios, for either SDK (`sdk` as for `signIn`). Both sign in and call `github_whoami`,
 * then:
 * - refresh:    wait until the access token has expired, call again. The SDK must get a 401,
 *               refresh with its refresh token and retry, without a new browser walk.
 * - reregister: print `READY`, wait for a line on stdin (the test deletes our client in between),
 *               call again. The SDK gets a 401, its refresh 401 invalid_client; it drops its
 *               registration, registers anew and sends the user to the browser.
 */
export async function runScenario(sdk, name, mcpUrl, providerOptions = {}) {
  const { client, provider, finish, transport } = await signIn(sdk, mcpUrl, providerOptions);
  const whoami = async () => {
    const call = () => client.callTool({ name: 'github_whoami', arguments: {} });
    let result;
    try {
      result = await call();
    } catch (error) {
      if (!(await finish(error, transport))) throw error;
      result = await call(); // signed in again: once more
    }
    event('TOOL_RESULT', toolText(result));
  };

  await whoami();
  if (name === 'refresh') {
    const seconds = Number(provider.tokens().expires_in) + 1.5;
    if (!(seconds < 20)) throw new Error(`expires_in ${provider.tokens().expires_in}: start the broker with a short token lifetime`);
    log(`waiting ${seconds}s for the access token to expire`);
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  } else {
    event('READY');
    await readLine();
  }
  await whoami();
  await client.close();
}

/** `[--client-metadata-url URL] <MCP_URL>` from argv, or exit with the usage. */
export function whoamiArgs(script) {
  let args = process.argv.slice(2);
  let clientMetadataUrl;
  if (args.length === 3 && args[0] === '--client-metadata-url') [, clientMetadataUrl, ...args] = args;
  if (args.length !== 1 || !URL.canParse(args[0])) fail(`usage: node ${script} [--client-metadata-url URL] <MCP_URL>`);
  return { mcpUrl: new URL(args[0]), clientMetadataUrl };
}

/** `--scenario refresh|reregister <MCP_URL>` from argv, or exit with the usage. */
export function scenarioArgs(script) {
  const [flag, name, url] = process.argv.slice(2);
  if (flag !== '--scenario' || !['refresh', 'reregister'].includes(name) || !URL.canParse(url ?? '')) {
    fail(`usage: node ${script} --scenario refresh|reregister <MCP_URL>`);
  }
  return { name, mcpUrl: new URL(url) };
}
