#!/usr/bin/env node
// Longer runs of the TypeScript SDK v1 against mcp-broker than `whoami.mjs`:
//
//   node tests/clients/ts/scenario.mjs --scenario refresh|reregister http://127.0.0.1:PORT/mcp
//
// refresh: sign in, call `github_whoami`, wait past the access token's expiry, call again.
// reregister: sign in, call, print `READY`, wait for a line on stdin (the test deletes our
// client meanwhile), call again. What each expects of the SDK: `runScenario` in browser.mjs.
//
// stdout carries one event per line for the test: `CLIENT_ID <id>`, `BROWSER_WALK <client_id>`,
// `TOKENS ...`, `INVALIDATE <scope>`, `HTTP <method> <path> <status> [grant_type=..] [error=..]`
// for every request the SDK sends, `TOOL_RESULT <text>` per successful call, `READY`.
// Diagnostics go to stderr; any failure exits non-zero with `FAILED:`. Gives up after 40 s.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { runMain, runScenario, scenarioArgs } from './browser.mjs';

const { name, mcpUrl } = scenarioArgs('scenario.mjs');
const sdk = {
  Client,
  StreamableHTTPClientTransport,
  UnauthorizedError,
  finishAuth: (transport, callback) => transport.finishAuth(callback.get('code')), // v1 takes the code only
};
runMain(() => runScenario(sdk, name, mcpUrl), 40);
