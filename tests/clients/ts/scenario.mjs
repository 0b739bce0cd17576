#!/usr/bin/env node
// Longer runs of the TypeScript SDK v1 against mcp-broker than `whoami.mjs`:
//
//   node tests/clients/ts/scenario.mjs --scenario refresh|reregister http://127.0.0.1:PORT/mcp
//
// Both sign in (DCR, consent walk, token exchange) and call `github_whoami` once, then:
// - refresh:    wait until the access token has expired, call again. The SDK must get a 401,
//               refresh with its refresh token and retry, without a new browser walk.
// - reregister: print `READY` and wait for a line on stdin (the test deletes our client in
//               between), call again. The SDK gets a 401, its refresh gets 401 invalid_client,
//               it drops its registration, registers anew and sends the user to the browser.
//
// stdout carries one event per line for the test (see browser.mjs): `CLIENT_ID <id>`,
// `BROWSER_WALK <client_id>`, `TOKENS ...`, `INVALIDATE <scope>`, `HTTP <method> <path> <status>`
// for every request the SDK sends, `TOOL_RESULT <text>` per successful call, `READY`.
// Diagnostics go to stderr; any failure exits non-zero with `FAILED:`. Gives up after 40 s.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { HeadlessOAuthProvider, event, fail, log, readLine, runMain, toolText, tracingFetch } from './browser.mjs';

const [flag, scenario, url] = process.argv.slice(2);
if (flag !== '--scenario' || !['refresh', 'reregister'].includes(scenario) || !url) {
  fail('usage: node scenario.mjs --scenario refresh|reregister <MCP_URL>');
}
const mcpUrl = new URL(url);
const provider = new HeadlessOAuthProvider();
const fetchFn = tracingFetch();

// What a host app does after the SDK's UnauthorizedError: the user came back from the browser
// (our walk), so hand the code to the SDK (token exchange) and try once more.
async function withAuthorization(transport, attempt) {
  try {
    return await attempt();
  } catch (error) {
    const callback = provider.takeCallback();
    if (!(error instanceof UnauthorizedError) || !callback) throw error;
    await transport.finishAuth(callback.get('code'));
    return attempt();
  }
}

async function connect() {
  // The first connect ends in the browser walk; a fresh transport then connects with the token.
  const first = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: fetchFn });
  try {
    await new Client({ name: 'ts-sdk-test', version: '1.0.0' }).connect(first);
    throw new Error('the server accepted the MCP connection without any OAuth flow');
  } catch (error) {
    const callback = provider.takeCallback();
    if (!(error instanceof UnauthorizedError) || !callback) throw error;
    await first.finishAuth(callback.get('code'));
  }
  const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: fetchFn });
  const client = new Client({ name: 'ts-sdk-test', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport };
}

async function whoami({ client, transport }) {
  const result = await withAuthorization(transport, () => client.callTool({ name: 'github_whoami', arguments: {} }));
  event('TOOL_RESULT', toolText(result));
}

runMain(async () => {
  const session = await connect();
  await whoami(session);
  if (scenario === 'refresh') {
    const seconds = Number(provider.tokens().expires_in) + 1.5;
    if (!(seconds < 20)) throw new Error(`expires_in ${provider.tokens().expires_in}: start the broker with a short token lifetime`);
    log(`waiting ${seconds}s for the access token to expire`);
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  } else {
    event('READY');
    await readLine();
  }
  await whoami(session);
  await session.client.close();
}, 40);
