// The Node relying party of e2e.TestOIDCNodeRelyingParty (docs/oidc.md),
// built on openid-client from npm. It talks to the test on stdout and
// stdin, one JSON object per line:
//   argv: issuer client_id client_secret redirect_uri post_logout_redirect_uri [back_url]
//   -> {"authorize": URL}     the test signs in with a browser
//   <- {"callback": URL}      where the browser landed
//   -> {"sub", "email", "email_verified", "refreshed", "logout"}
// back_url, when given, is another instance of the same issuer: the code
// exchange, the refresh and userinfo go there.
import * as client from 'openid-client';
import { createInterface } from 'node:readline';

const [issuer, clientId, secret, redirectUri, postLogout, back] = process.argv.slice(2);
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const send = (v) => process.stdout.write(JSON.stringify(v) + '\n');

// Discovery (plain http: the test server has no TLS).
let config = await client.discovery(new URL(issuer), clientId, secret, client.ClientSecretBasic(secret), {
  execute: [client.allowInsecureRequests],
});
if (back) {
  const md = { ...config.serverMetadata() };
  for (const k of ['token_endpoint', 'userinfo_endpoint']) {
    md[k] = md[k].replace(new URL(issuer).origin, new URL(back).origin);
  }
  config = new client.Configuration(md, clientId, secret, client.ClientSecretBasic(secret));
  client.allowInsecureRequests(config);
}

// Authorization with PKCE, state and nonce.
const verifier = client.randomPKCECodeVerifier();
const state = client.randomState();
const nonce = client.randomNonce();
const authorize = client.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri,
  scope: 'openid profile email offline_access',
  code_challenge: await client.calculatePKCECodeChallenge(verifier),
  code_challenge_method: 'S256',
  state,
  nonce,
});
send({ authorize: authorize.href });
const { value } = await lines.next();
const { callback } = JSON.parse(value);

// Code exchange and ID-token validation (iss of RFC 9207, state, nonce).
const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
  pkceCodeVerifier: verifier,
  expectedState: state,
  expectedNonce: nonce,
  idTokenExpected: true,
});
const claims = tokens.claims();
const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
const logout = client.buildEndSessionUrl(config, {
  id_token_hint: tokens.id_token,
  post_logout_redirect_uri: postLogout,
  state: 'node-bye',
});
send({
  sub: claims.sub,
  email: info.email,
  email_verified: info.email_verified,
  refreshed: !!refreshed.access_token && refreshed.refresh_token !== tokens.refresh_token,
  logout: logout.href,
});
process.exit(0);
