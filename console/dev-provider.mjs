// A real OpenID Connect provider for the console's tests and for a local
// console (`accord dev init` writes its settings), from the certified
// `oidc-provider` library: HTTPS on a loopback port (the settings' `port`,
// or a free one), the accounts and the console's client from a JSON file
// (argv[2]), access tokens as JWTs for Accord's audience (RFC 8707 resource
// indicators) carrying the staff member's roles. Consent is granted
// automatically; the library's development login form signs any listed
// account in with any password. Prints `listening PORT` once it serves.
// Development only: never an identity provider for real staff.
import fs from 'node:fs';
import https from 'node:https';
import Provider, { errors } from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const server = https.createServer({
  cert: fs.readFileSync(config.cert),
  key: fs.readFileSync(config.key),
});

server.listen(config.port ?? 0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `https://localhost:${port}`;
  const provider = new Provider(issuer, {
    clients: config.clients.map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      redirect_uris: c.redirect_uris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    })),
    pkce: { required: () => true },
    claims: { openid: ['sub'], profile: ['name'] },
    features: {
      devInteractions: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => config.audience,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource) => {
          if (resource !== config.audience) {
            throw new errors.InvalidTarget();
          }
          return {
            scope: 'openid profile',
            audience: config.audience,
            accessTokenFormat: 'jwt',
            accessTokenTTL: 600,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    async findAccount(ctx, id) {
      const account = config.accounts[id];
      if (!account) {
        return undefined;
      }
      return { accountId: id, claims: () => ({ sub: id, name: account.name }) };
    },
    async extraTokenClaims(ctx, token) {
      const account = config.accounts[token.accountId];
      return account ? { roles: account.roles } : undefined;
    },
    async loadExistingGrant(ctx) {
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid profile');
      grant.addOIDCClaims(['sub', 'name']);
      grant.addResourceScope(config.audience, 'openid profile');
      await grant.save();
      return grant;
    },
  });
  server.on('request', provider.callback());
  console.log(`listening ${port}`);
});
