// An independent verifier of this service's access tokens: the npm `jose` package, as a
// Node resource server would use it (RFC 9068 `typ: at+jwt`, issuer, audience, keys fetched
// from the JWKS URL).
//
//   node tests/interop/verify_with_jose.mjs JWKS_URL ISSUER AUDIENCE TOKEN
//
// Prints the verified payload as one JSON line and exits 0; prints why on stderr and exits 1
// when jose refuses the token. jose is a dependency of tests/oidc_provider (`make test-tools`),
// resolved from there since this script lives outside that package.
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const fromProvider = createRequire(new URL("../oidc_provider/package.json", import.meta.url));
const { createRemoteJWKSet, jwtVerify } = await import(
  pathToFileURL(fromProvider.resolve("jose")).href
);

const [jwksUrl, issuer, audience, token] = process.argv.slice(2);
if (!token) {
  process.stderr.write("usage: verify_with_jose.mjs JWKS_URL ISSUER AUDIENCE TOKEN\n");
  process.exit(2);
}

try {
  const jwks = createRemoteJWKSet(new URL(jwksUrl));
  const { payload } = await jwtVerify(token, jwks, { typ: "at+jwt", issuer, audience });
  process.stdout.write(`${JSON.stringify(payload)}\n`);
} catch (error) {
  process.stderr.write(`${error.code ?? error.name}: ${error.message}\n`);
  process.exit(1);
}
