#!/usr/bin/env node
// Drives mcp-broker's full OAuth flow headlessly with the official TypeScript MCP SDK v1
// (`@modelcontextprotocol/sdk`), then calls the `github_whoami` tool.
//
//   node tests/clients/ts/whoami.mjs [--client-metadata-url URL] http://127.0.0.1:PORT/mcp
//
// The SDK does discovery (RFC 9728 + RFC 8414), dynamic client registration, PKCE, the token
// exchange and the bearer retry; browser.mjs only plays the browser (consent page, fake GitHub,
// callback) in the provider's redirectToAuthorization.
//
// stdout: the events of browser.mjs (`CLIENT_ID`, `BROWSER_WALK`, `TOKENS`, `HTTP ...`) and, on
// success, `TOOL_RESULT <text of the first text content>`; exit 0. Diagnostics go to stderr; any
// failure exits non-zero with `FAILED:`. Gives up after 40 s.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { event, runMain, signIn, toolText, whoamiArgs } from './browser.mjs';

const { mcpUrl, clientMetadataUrl } = whoamiArgs('whoami.mjs');
const sdk = {
  Client,
  StreamableHTTPClientTransport,
  UnauthorizedError,
  finishAuth: (transport, callback) => transport.finishAuth(callback.get('code')), // v1 takes the code only
};

runMain(async () => {
  const { client } = await signIn(sdk, mcpUrl, { clientMetadataUrl });
  const result = await client.callTool({ name: 'github_whoami', arguments: {} });
  await client.close();
  event('TOOL_RESULT', toolText(result));
}, 40);
