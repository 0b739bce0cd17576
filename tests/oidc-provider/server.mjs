// A real OpenID provider (the `oidc-provider` package) for the broker's OIDC
// sign-in test. Listens on 127.0.0.1:<free port>, prints `ISSUER=<url>` on
// stdout once it serves, and exits when stdin closes (the test ends).
//
// Environment: CALLBACK_URL (the broker's /callback/<id>, required),
// CLIENT_ID, CLIENT_SECRET, ACCOUNT_SUB, ACCOUNT_LOGIN, and
// ROTATE_REFRESH_TOKENS=1 for a provider that issues a new refresh token on
// every refresh (the old one dies); otherwise refresh tokens are kept;
// REVOCATION=off for a provider without a revocation endpoint.
// Sign-in is scripted: the login and consent interactions finish at once
// for ACCOUNT_SUB, as if the user clicked through.
//
// Refresh tokens follow the package's defaults: issued when the client may
// use the refresh_token grant and was granted `offline_access`, which the
// provider only keeps in an authorization request with `prompt=consent`.
// Revocation (RFC 7009) and introspection (RFC 7662) are on, so a test can
// ask the provider whether a token is still live.
import http from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const callback = process.env.CALLBACK_URL;
if (!callback) {
  console.error('CALLBACK_URL is required');
  process.exit(2);
}
const clientId = process.env.CLIENT_ID ?? 'mcp-broker-test';
const clientSecret = process.env.CLIENT_SECRET ?? randomBytes(24).toString('hex');
const sub = process.env.ACCOUNT_SUB ?? 'oidc-user-1';
const login = process.env.ACCOUNT_LOGIN ?? 'ada';
const rotateRefreshTokens = process.env.ROTATE_REFRESH_TOKENS === '1';
const revocation = process.env.REVOCATION !== 'off';

let handler = (_req, res) => { res.statusCode = 503; res.end(); };
const server = http.createServer((req, res) => handler(req, res));
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

// A fresh RSA signing key per run: id_tokens are RS256, published in the JWKS.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [callback],
    response_types: ['code'],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'client_secret_post',
  }],
  jwks: { keys: [jwk] },
  cookies: { keys: [randomBytes(16).toString('hex')] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['preferred_username', 'name'],
  },
  features: {
    devInteractions: { enabled: false },
    // A client may revoke and introspect only its own tokens.
    revocation: {
      enabled: revocation,
      allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
    },
    introspection: {
      enabled: true,
      allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
    },
  },
  // Fixed either way (the package's default rotates once 70% of a refresh
  // token's lifetime has passed), so the test knows which it gets.
  rotateRefreshToken: rotateRefreshTokens,
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(_ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: login, name: login, email: `${login}@example.test`, email_verified: true };
      },
    };
  },
});

// Scripted user: every interaction (login, then consent) succeeds at once.
provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([^/]+)$/);
  if (!match) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const { prompt, params } = details;
  let result;
  if (prompt.name === 'login') {
    result = { login: { accountId: sub } };
  } else {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    result = { consent: { grantId: await grant.save() } };
  }
  const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
  ctx.status = 303;
  ctx.redirect(returnTo);
});

handler = provider.callback();
console.log(`ISSUER=${issuer}`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
