// A real OpenID Provider for the end-to-end tests of the hub's OIDC login: panva's oidc-provider
// (OpenID-certified) on Node's own HTTPS server, with one static confidential client, accounts
// with passwords and groups, and a small login form of its own that checks the password. Consent for
// the static client is given with the login (a Grant of the requested scopes): no second page. The token
// endpoint demands HTTP Basic client authentication, and PKCE (S256) is required.
//
// Environment:
//   ISSUER          https://<address>:<port>, the issuer; the server listens on its port (default 8443)
//   CLIENT_ID, CLIENT_SECRET, REDIRECT_URI (several: separated by spaces)
//   POST_LOGOUT_REDIRECT_URIS  optional, separated by spaces (RP-initiated logout may return there)
//   ACCOUNTS        JSON {"alice": {"password": "...", "groups": ["jupyter-users"], "email": "...", "name": "..."}}
//   ACCOUNTS_FILE   or a JSON file of that form, read again at every use (a test may change groups)
//   COOKIE_KEYS     optional, separated by spaces; random keys otherwise
// Files: /certs/server.pem and /certs/server.key, the server's certificate (chain) and key.
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';

import Provider from 'oidc-provider';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`the environment variable ${name} is not set`);
  return value;
};
const words = (value) => (value || '').split(/\s+/).filter(Boolean);

const ISSUER = env('ISSUER');
const PORT = Number(new URL(ISSUER).port || 443);

// The accounts, read at every use: a test may rewrite ACCOUNTS_FILE between logins.
function accounts() {
  const text = process.env.ACCOUNTS_FILE ? fs.readFileSync(process.env.ACCOUNTS_FILE, 'utf8') : env('ACCOUNTS');
  return JSON.parse(text);
}

function account(username) {
  const all = accounts();
  return Object.hasOwn(all, username) ? all[username] : undefined;
}

// Compares digests, so that the time taken does not tell how much of a password was right.
function samePassword(given, expected) {
  const digest = (value) => crypto.createHash('sha256').update(String(value)).digest();
  return typeof expected === 'string' && crypto.timingSafeEqual(digest(given), digest(expected));
}

const configuration = {
  clients: [{
    client_id: env('CLIENT_ID'),
    client_secret: env('CLIENT_SECRET'),
    // A confidential web client. oidc-provider 9 accepts http:// (loopback or not) redirect URIs of web
    // clients that use the code flow; only the implicit flow would need https. Redirect URIs are matched
    // exactly (a "native" client would also match a loopback URI with any port, and ask for consent every time).
    application_type: 'web',
    redirect_uris: words(env('REDIRECT_URI')),
    post_logout_redirect_uris: words(process.env.POST_LOGOUT_REDIRECT_URIS),
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic', // HTTP Basic, oauthenticator's default (basic_auth)
  }],
  // Scopes and the claims they release; each key is a scope the provider then supports.
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email'],
    groups: ['groups'],
  },
  // sub is the username; userinfo releases the claims of the scopes that were granted.
  async findAccount(_ctx, sub) {
    const found = account(sub);
    if (!found) return undefined;
    return {
      accountId: sub,
      async claims() {
        const current = account(sub) || found;
        return {
          sub,
          preferred_username: sub,
          name: current.name || sub,
          email: current.email,
          groups: current.groups || [],
        };
      },
    };
  },
  // Signs the cookies (session, interaction); the server speaks HTTPS itself, so they are Secure.
  cookies: {
    keys: process.env.COOKIE_KEYS ? words(process.env.COOKIE_KEYS) : [crypto.randomBytes(32).toString('hex')],
  },
  // A fresh signing key for ID tokens at every start, instead of the library's development key.
  jwks: {
    keys: [{
      ...crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
      use: 'sig',
      kid: crypto.randomUUID(),
    }],
  },
  // PKCE (S256) is required: the hub sends it by default (oauthenticator's enable_pkce).
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false }, // its form accepts any password: the handler below replaces it
    rpInitiatedLogout: { enabled: true }, // end_session_endpoint (the default, said here)
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
};

const provider = new Provider(ISSUER, configuration);
provider.on('server_error', (_ctx, error) => console.error('server_error', error));

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(res, uid, { login = '', error = '' } = {}) {
  res.statusCode = 200;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Sign in</title></head>
<body>
<h1>Sign in</h1>
${error ? `<p class="error" role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login" autocomplete="off">
  <label>Username <input name="login" value="${escape(login)}" required autofocus></label>
  <label>Password <input name="password" type="password" required></label>
  <button type="submit">Sign in</button>
</form>
</body></html>
`);
}

async function formBody(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 64 * 1024) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

// Consent without a page: the static client is trusted, so the Grant holds what it asked for.
async function grantRequested(details, accountId, grantId) {
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId, clientId: details.params.client_id });
  grant.addOIDCScope(String(details.params.scope || 'openid'));
  if (details.params.claims) {
    const requested = JSON.parse(details.params.claims);
    grant.addOIDCClaims([...Object.keys(requested.userinfo || {}), ...Object.keys(requested.id_token || {})]);
  }
  for (const scope of details.prompt.details.missingOIDCScope || []) grant.addOIDCScope(scope);
  grant.addOIDCClaims(details.prompt.details.missingOIDCClaims || []);
  return grant.save();
}

// GET /interaction/:uid shows the login form (or grants a missing consent at once);
// POST /interaction/:uid/login checks the password and finishes login and consent together.
async function interaction(req, res) {
  const { pathname } = new URL(req.url, ISSUER);
  const match = pathname.match(/^\/interaction\/([^/]+)(\/login)?$/);
  if (!match) return false;
  const details = await provider.interactionDetails(req, res); // throws without a valid interaction cookie
  if (details.uid !== match[1]) throw new Error('interaction mismatch');
  if (req.method === 'GET' && !match[2]) {
    if (details.prompt.name === 'consent') {
      const accountId = details.session.accountId;
      const grantId = await grantRequested(details, accountId, details.grantId);
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    } else {
      loginPage(res, details.uid);
    }
    return true;
  }
  if (req.method === 'POST' && match[2]) {
    const form = await formBody(req);
    const login = form.get('login') || '';
    const found = account(login);
    if (!found || !samePassword(form.get('password') || '', found.password)) {
      console.log(`login refused: ${JSON.stringify(login)}`);
      loginPage(res, details.uid, { login, error: 'Invalid username or password.' });
      return true;
    }
    console.log(`login: ${JSON.stringify(login)}`);
    const grantId = await grantRequested(details, login);
    await provider.interactionFinished(req, res, {
      login: { accountId: login },
      consent: { grantId },
    }, { mergeWithLastSubmission: false });
    return true;
  }
  res.statusCode = 405;
  res.end();
  return true;
}

// oidc-provider takes a client secret in the body (client_secret_post) as well as in HTTP Basic for a
// client_secret_basic client: both are the same secret check to it. The client here is to use HTTP Basic
// (oauthenticator's default), so the token endpoint refuses a request without it, as a stricter provider would.
function basicAuthMissing(req, res) {
  const { pathname } = new URL(req.url, ISSUER);
  if (req.method !== 'POST' || pathname !== '/token' || /^basic /i.test(req.headers.authorization || '')) return false;
  console.log('token request without HTTP Basic client authentication refused');
  res.statusCode = 401;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('WWW-Authenticate', 'Basic realm="token"');
  res.setHeader('Cache-Control', 'no-store');
  res.end(JSON.stringify({ error: 'invalid_client', error_description: 'HTTP Basic client authentication required' }));
  return true;
}

const callback = provider.callback();
const server = https.createServer({
  cert: fs.readFileSync('/certs/server.pem'),
  key: fs.readFileSync('/certs/server.key'),
}, async (req, res) => {
  try {
    if (!basicAuthMissing(req, res) && !(await interaction(req, res))) callback(req, res);
  } catch (error) {
    console.error(`${req.method} ${req.url}:`, error.message);
    if (!res.headersSent) {
      res.statusCode = 400;
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    }
    res.end(`interaction failed: ${error.message}\n`);
  }
});

server.listen(PORT, () => console.log(`oidc-provider ${ISSUER} listening on port ${PORT}`));

// PID 1 in a container: leave at once on docker stop.
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
