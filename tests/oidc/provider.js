// A real OpenID provider for the single sign-on tests: panva's oidc-provider (OpenID
// Certified), configured from a JSON file the test writes:
//   node provider.js CONFIG.json
//   {"issuer": "http://127.0.0.1:PORT", "fd": FD, "accounts": "ACCOUNTS.json",
//    "client": {"client_id", "client_secret", "redirect_uris", "post_logout_redirect_uris"}}
// ACCOUNTS.json maps a login to its claims ({"dave": {"preferred_username": "dave",
// "email": ..., "groups": [...]}}) and is read at every token, so a test changes a person's
// groups between two log-ins by rewriting it. The log-in page is the provider's development
// interaction (any password); consent is implied for this one first-party client. It serves on
// FD, a socket the test bound and listens on, passed down (no port is ever free for a moment
// for another server to take); "port" instead binds that port.
import fs from 'node:fs';
import Provider from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const accounts = () => JSON.parse(fs.readFileSync(config.accounts, 'utf8'));
const SCOPES = 'openid profile email groups';

const provider = new Provider(config.issuer, {
  clients: [{
    ...config.client,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
  }],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  // The scopes' claims go into the ID token itself (Apollo reads them there).
  conformIdTokenClaims: false,
  cookies: { keys: ['test-only-cookie-signing-key'] },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  async findAccount(ctx, id) {
    const claims = accounts()[id];
    if (!claims) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...claims }; } };
  },
  async loadExistingGrant(ctx) {
    const { oidc } = ctx;
    const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
    if (grantId) return oidc.provider.Grant.find(grantId);
    const grant = new oidc.provider.Grant({ clientId: oidc.client.clientId, accountId: oidc.session.accountId });
    grant.addOIDCScope(SCOPES);
    await grant.save();
    return grant;
  },
});
provider.proxy = false;
const where = config.fd !== undefined ? { fd: config.fd } : { port: config.port, host: '127.0.0.1' };
provider.listen(where, () => {
  console.log(`oidc-provider listening on ${config.issuer}`);
});
