#!/usr/bin/env node
// Drives mcp-broker's full OAuth flow headlessly with the official TypeScript MCP SDK v2
// (`@modelcontextprotocol/client`), then calls the `github_whoami` tool.
//
//   node tests/clients/ts2/whoami.mjs [--client-metadata-url URL] http://127.0.0.1:PORT/mcp
//
// v2 checks more than v1: the AS metadata's `issuer` must echo the URL it was derived from
// (RFC 8414 §3.3), the callback's `iss` must name that issuer (RFC 9207; required when the AS
// advertises it), and the token endpoint must be HTTPS or loopback.
//
// stdout: the events of ../ts/browser.mjs (`CLIENT_ID`, `BROWSER_WALK`, `TOKENS`, `HTTP ...`)
// and, on success, `TOOL_RESULT <text of the first text content>`; exit 0. Diagnostics go to
// stderr; any failure exits non-zero with `FAILED:`. Gives up after 40 s.

import { Client, StreamableHTTPClientTransport, UnauthorizedError } from '@modelcontextprotocol/client';
import { event, runMain, signIn, toolText, whoamiArgs } from '../ts/browser.mjs';

const { mcpUrl, clientMetadataUrl } = whoamiArgs('whoami.mjs');
const sdk = {
  Client,
  StreamableHTTPClientTransport,
  UnauthorizedError,
  // v2's preferred form: the callback's parameters, so the SDK checks `iss` itself.
  finishAuth: (transport, callback) => transport.finishAuth(callback),
};

runMain(async () => {
  // Keeping the discovery state lets v2 bind the callback to the authorization server (SEP-2352).
  const { client } = await signIn(sdk, mcpUrl, { keepDiscovery: true, clientMetadataUrl });
  const result = await client.callTool({ name: 'github_whoami', arguments: {} });
  await client.close();
  event('TOOL_RESULT', toolText(result));
}, 40);
