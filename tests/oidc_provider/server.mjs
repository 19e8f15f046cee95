// A real OpenID provider on loopback for the OAuth end-to-end tests (tests/integration/oauth).
//
// Configured by the environment, so the pytest fixture decides everything:
//   OIDC_PORT            port to listen on (127.0.0.1 only)
//   OIDC_ISSUER          issuer URL (default http://127.0.0.1:$OIDC_PORT)
//   OIDC_CLIENT_ID       the one client ...
//   OIDC_CLIENT_SECRET   ... its secret (client_secret_basic or client_secret_post)
//   OIDC_REDIRECT_URIS   comma-separated redirect URIs (our callback and a native app's)
//   OIDC_ACCOUNTS        JSON {"<login>": {"email": ..., "email_verified": ..., "name": ...}}
//   OIDC_JWKS            JSON private JWK Set signing the id_tokens (RS256); generated if unset
//
// Interactions are oidc-provider's devInteractions: GET /interaction/<uid> renders a form,
// POST /interaction/<uid> with prompt=login&login=<account> (then prompt=consent) continues,
// GET /interaction/<uid>/abort answers the client with error=access_denied.
import { generateKeyPairSync } from 'node:crypto';

import Provider from 'oidc-provider';

const env = process.env;
const port = Number(env.OIDC_PORT || 0);
const issuer = env.OIDC_ISSUER || `http://127.0.0.1:${port}`;
const accounts = JSON.parse(env.OIDC_ACCOUNTS || '{}');

function signingKeys() {
  if (env.OIDC_JWKS) {
    return JSON.parse(env.OIDC_JWKS);
  }
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', use: 'sig', alg: 'RS256' }] };
}

const configuration = {
  clients: [
    {
      client_id: env.OIDC_CLIENT_ID || 'test-client',
      client_secret: env.OIDC_CLIENT_SECRET || 'test-secret',
      redirect_uris: (env.OIDC_REDIRECT_URIS || '').split(',').filter(Boolean),
      grant_types: ['authorization_code'],
      response_types: ['code'],
      id_token_signed_response_alg: 'RS256',
    },
  ],
  // Like Google: every authorization request needs PKCE, and only S256 exists.
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // Like Google: the id_token carries the email claims the scopes asked for.
  conformIdTokenClaims: false,
  jwks: signingKeys(),
  cookies: { keys: ['oidc-test-provider-cookie-key'] },
  async findAccount(ctx, id) {
    const account = accounts[id];
    if (!account) {
      return undefined;
    }
    return {
      accountId: id,
      async claims() {
        return { sub: id, ...account };
      },
    };
  },
};

const provider = new Provider(issuer, configuration);
const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
