import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { signClaims, signConnectionToken, signSubscriptionToken } from '../src/auth/token-signer.js';
import { TokenVerifier, tokenVerifierOptions, type TokenConfigSection } from '../src/auth/token-verifier.js';
import { DisconnectError, ProtocolError } from '../src/protocol/codes.js';

const secret = 'test-secret-0123456789';

function pemPair(kind: 'rsa', bits: number): { publicKey: string; privateKey: string };
function pemPair(kind: 'ec', curve: string): { publicKey: string; privateKey: string };
function pemPair(kind: 'rsa' | 'ec', param: number | string): { publicKey: string; privateKey: string } {
  const pair =
    kind === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: param as number })
      : generateKeyPairSync('ec', { namedCurve: param as string });
  return {
    publicKey: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKey: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

const rsa = pemPair('rsa', 2048);
const ec256 = pemPair('ec', 'P-256');
const ec384 = pemPair('ec', 'P-384');

const hmacVerifier = new TokenVerifier({ hmacSecretKey: secret });
const allVerifier = new TokenVerifier({
  hmacSecretKey: secret,
  rsaPublicKey: rsa.publicKey,
  ecdsaPublicKey: ec256.publicKey,
});

const now = () => Math.floor(Date.now() / 1000);
const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const b64 = (text: string) => Buffer.from(text).toString('base64');

/** Asserts `promise` rejects with DisconnectError 3500 and a cause explaining why. */
async function rejectsInvalid(promise: Promise<unknown>, causeMatch?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof DisconnectError, `expected DisconnectError, got ${String(err)}`);
    assert.equal(err.disconnect.code, 3500);
    assert.equal(err.disconnect.reason, 'invalid token');
    assert.ok(err.cause instanceof Error, 'cause is set');
    if (causeMatch) assert.match(err.cause.message, causeMatch);
    return true;
  });
}

/** Asserts `promise` rejects with ProtocolError `code`. */
async function rejectsProtocol(promise: Promise<unknown>, code: number, causeMatch?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.temporary, false);
    assert.ok(err.cause instanceof Error, 'cause is set');
    if (causeMatch) assert.match(err.cause.message, causeMatch);
    return true;
  });
}

describe('connection tokens: algorithms and signatures', () => {
  it('accepts HS256, HS384 and HS512 tokens signed with the secret', async () => {
    for (const alg of ['HS256', 'HS384', 'HS512'] as const) {
      const token = await signConnectionToken({ secret, alg, user: '42', ttlSeconds: 60 });
      const claims = await hmacVerifier.verifyConnectToken(token);
      assert.equal(claims.user, '42');
      assert.ok(Math.abs(claims.expireAt - (now() + 60)) <= 2);
      assert.deepEqual(claims.channels, []);
      assert.equal(claims.info, undefined);
      assert.equal(claims.subs, undefined);
      assert.equal(claims.meta, undefined);
    }
  });

  it('accepts RS256/RS384/RS512 tokens signed with the RSA private key', async () => {
    for (const alg of ['RS256', 'RS384', 'RS512'] as const) {
      const token = await signConnectionToken({ privateKey: rsa.privateKey, alg, user: 'rsa-user' });
      const claims = await allVerifier.verifyConnectToken(token);
      assert.equal(claims.user, 'rsa-user');
      assert.equal(claims.expireAt, 0);
    }
  });

  it('accepts ES256 tokens, and ES384 with a P-384 key', async () => {
    const token = await signConnectionToken({
      privateKey: ec256.privateKey,
      alg: 'ES256',
      user: 'ec-user',
      ttlSeconds: 30,
    });
    assert.equal((await allVerifier.verifyConnectToken(token)).user, 'ec-user');

    const v384 = new TokenVerifier({ ecdsaPublicKey: ec384.publicKey });
    assert.deepEqual(v384.algorithms, ['ES384']);
    const t384 = await signConnectionToken({ privateKey: ec384.privateKey, alg: 'ES384', user: 'p384' });
    assert.equal((await v384.verifyConnectToken(t384)).user, 'p384');
  });

  it('accepts an anonymous token (no sub, or sub "")', async () => {
    assert.equal((await hmacVerifier.verifyConnectToken(await signClaims({ secret }, {}))).user, '');
    assert.equal((await hmacVerifier.verifyConnectToken(await signConnectionToken({ secret, user: '' }))).user, '');
  });

  it('rejects a token signed with another secret (3500)', async () => {
    const token = await signConnectionToken({ secret: 'another-secret', user: '42' });
    await rejectsInvalid(hmacVerifier.verifyConnectToken(token), /signature/);
  });

  it('rejects a token whose payload was tampered with (3500)', async () => {
    const token = await signConnectionToken({ secret, user: '42' });
    const [header, , signature] = token.split('.');
    const forged = `${header}.${b64url({ sub: 'admin' })}.${signature}`;
    await rejectsInvalid(hmacVerifier.verifyConnectToken(forged), /signature/);
  });

  it('rejects an RSA token signed by another RSA key, and an EC token signed by another curve', async () => {
    const other = pemPair('rsa', 2048);
    await rejectsInvalid(
      allVerifier.verifyConnectToken(
        await signConnectionToken({ privateKey: other.privateKey, alg: 'RS256', user: 'x' }),
      ),
    );
    const otherEc = pemPair('ec', 'P-256');
    await rejectsInvalid(
      allVerifier.verifyConnectToken(
        await signConnectionToken({ privateKey: otherEc.privateKey, alg: 'ES256', user: 'x' }),
      ),
    );
  });

  it('rejects alg "none" (unsigned tokens), with or without a signature part', async () => {
    const unsigned = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub: '42' })}.`;
    await rejectsInvalid(allVerifier.verifyConnectToken(unsigned), /alg none/);
    await rejectsInvalid(allVerifier.verifyConnectToken(`${unsigned}c2ln`), /alg none/);
    await rejectsInvalid(
      allVerifier.verifyConnectToken(`${b64url({ typ: 'JWT' })}.${b64url({ sub: '42' })}.`),
      /not enabled/,
    );
  });

  it('rejects an algorithm whose key is not configured (3500)', async () => {
    const rsaToken = await signConnectionToken({ privateKey: rsa.privateKey, alg: 'RS256', user: 'x' });
    await rejectsInvalid(hmacVerifier.verifyConnectToken(rsaToken), /RS256 is not enabled/);

    const rsaOnly = new TokenVerifier({ rsaPublicKey: rsa.publicKey });
    assert.deepEqual(rsaOnly.algorithms, ['RS256', 'RS384', 'RS512']);
    const hsToken = await signConnectionToken({ secret, user: 'x' });
    await rejectsInvalid(rsaOnly.verifyConnectToken(hsToken), /HS256 is not enabled/);

    // Algorithm confusion: HS256 "signed" with the RSA public key as the HMAC secret.
    const confused = await signClaims({ secret: rsa.publicKey }, { sub: 'admin' });
    await rejectsInvalid(rsaOnly.verifyConnectToken(confused), /HS256 is not enabled/);

    // ES384 token when the EC key is on P-256: only ES256 is enabled.
    const es384 = await signConnectionToken({ privateKey: ec384.privateKey, alg: 'ES384', user: 'x' });
    await rejectsInvalid(allVerifier.verifyConnectToken(es384), /ES384 is not enabled/);
  });

  it('rejects algorithms Bulwark never accepts (PS256)', async () => {
    const header = b64url({ alg: 'PS256', typ: 'JWT' });
    await rejectsInvalid(allVerifier.verifyConnectToken(`${header}.${b64url({ sub: '1' })}.AAAA`), /PS256/);
  });

  it('rejects malformed tokens (3500)', async () => {
    for (const garbage of ['', 'abc', 'a.b.c', 'a.b', '...', `${b64url({ alg: 'HS256' })}.!!!.x`]) {
      await rejectsInvalid(hmacVerifier.verifyConnectToken(garbage));
    }
    // A valid header and signature over a payload that is not a JSON object.
    const header = Buffer.from(JSON.stringify({ alg: 'HS256' })).toString('base64url');
    const { createHmac } = await import('node:crypto');
    const payload = Buffer.from('[1,2]').toString('base64url');
    const sig = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
    await rejectsInvalid(hmacVerifier.verifyConnectToken(`${header}.${payload}.${sig}`), /JSON object/);
  });

  it('rejects every token when no key is configured', async () => {
    const none = new TokenVerifier({});
    assert.deepEqual(none.algorithms, []);
    await rejectsInvalid(none.verifyConnectToken(await signConnectionToken({ secret, user: '1' })), /enabled: none/);
  });
});

describe('connection tokens: expiry', () => {
  it('answers an expired token with ProtocolError 109 (the client refreshes)', async () => {
    const token = await signConnectionToken({ secret, user: '42', ttlSeconds: -10 });
    await rejectsProtocol(hmacVerifier.verifyConnectToken(token), 109, /expired/);
  });

  it('answers a token that is not valid yet (nbf) with 109, as Centrifugo does', async () => {
    const token = await signConnectionToken({ secret, user: '42', claims: { nbf: now() + 600 } });
    await rejectsProtocol(hmacVerifier.verifyConnectToken(token), 109, /nbf/);
  });

  it('rejects exp / nbf that are not numbers as invalid (3500)', async () => {
    await rejectsInvalid(hmacVerifier.verifyConnectToken(await signClaims({ secret }, { sub: '1', exp: 'soon' })));
    await rejectsInvalid(hmacVerifier.verifyConnectToken(await signClaims({ secret }, { sub: '1', nbf: 'later' })));
  });

  it('checks signature before expiry: an expired token with a bad signature is invalid', async () => {
    const token = await signConnectionToken({ secret: 'wrong', user: '42', ttlSeconds: -10 });
    await rejectsInvalid(hmacVerifier.verifyConnectToken(token));
  });

  it('honours a configured clock tolerance', async () => {
    const tolerant = new TokenVerifier({ hmacSecretKey: secret, clockToleranceSeconds: 30 });
    const token = await signConnectionToken({ secret, user: '42', ttlSeconds: -5 });
    assert.equal((await tolerant.verifyConnectToken(token)).user, '42');
    await rejectsProtocol(hmacVerifier.verifyConnectToken(token), 109);
  });

  it('uses expire_at for the connection expiry when present', async () => {
    const exp = now() + 600;
    const at = now() + 60;
    const withAt = await signConnectionToken({ secret, user: '1', ttlSeconds: 600, expireAt: at });
    assert.equal((await hmacVerifier.verifyConnectToken(withAt)).expireAt, at);
    const never = await signConnectionToken({ secret, user: '1', ttlSeconds: 600, expireAt: 0 });
    assert.equal((await hmacVerifier.verifyConnectToken(never)).expireAt, 0);
    const negative = await signConnectionToken({ secret, user: '1', expireAt: -5 });
    assert.equal((await hmacVerifier.verifyConnectToken(negative)).expireAt, 0);
    const onlyExp = await signClaims({ secret }, { sub: '1', exp });
    assert.equal((await hmacVerifier.verifyConnectToken(onlyExp)).expireAt, exp);
    const bad = await signConnectionToken({ secret, user: '1', claims: { expire_at: '1' } });
    await rejectsInvalid(hmacVerifier.verifyConnectToken(bad), /expire_at/);
  });
});

describe('connection tokens: aud and iss', () => {
  const strict = new TokenVerifier({ hmacSecretKey: secret, audience: 'bulwark', issuer: 'game-backend' });

  it('accepts the configured aud (string or array) and iss', async () => {
    const token = await signConnectionToken({ secret, user: '1', audience: 'bulwark', issuer: 'game-backend' });
    assert.equal((await strict.verifyConnectToken(token)).user, '1');
    const arr = await signConnectionToken({
      secret,
      user: '1',
      issuer: 'game-backend',
      claims: { aud: ['other', 'bulwark'] },
    });
    assert.equal((await strict.verifyConnectToken(arr)).user, '1');
  });

  it('rejects a missing or wrong aud (3500)', async () => {
    const missing = await signConnectionToken({ secret, user: '1', issuer: 'game-backend' });
    await rejectsInvalid(strict.verifyConnectToken(missing), /aud/);
    const wrong = await signConnectionToken({ secret, user: '1', audience: 'other', issuer: 'game-backend' });
    await rejectsInvalid(strict.verifyConnectToken(wrong), /aud/);
  });

  it('rejects a missing or wrong iss (3500)', async () => {
    const missing = await signConnectionToken({ secret, user: '1', audience: 'bulwark' });
    await rejectsInvalid(strict.verifyConnectToken(missing), /iss/);
    const wrong = await signConnectionToken({ secret, user: '1', audience: 'bulwark', issuer: 'evil' });
    await rejectsInvalid(strict.verifyConnectToken(wrong), /iss/);
  });

  it('ignores aud and iss when they are not configured', async () => {
    const token = await signConnectionToken({ secret, user: '1', audience: 'whatever', issuer: 'anyone' });
    assert.equal((await hmacVerifier.verifyConnectToken(token)).user, '1');
  });
});

describe('connection tokens: claims', () => {
  it('decodes info, channels and meta', async () => {
    const token = await signConnectionToken({
      secret,
      user: '42',
      info: { name: 'Ada', level: 7 },
      channels: ['news', 'game:lobby'],
      meta: { plan: 'gold' },
    });
    const claims = await hmacVerifier.verifyConnectToken(token);
    assert.deepEqual(JSON.parse(claims.info ?? 'null'), { name: 'Ada', level: 7 });
    assert.deepEqual(claims.channels, ['news', 'game:lobby']);
    assert.deepEqual(JSON.parse(claims.meta ?? 'null'), { plan: 'gold' });
  });

  it('keeps info of any JSON type as raw JSON; null means absent', async () => {
    const str = await signConnectionToken({ secret, user: '1', info: 'hello' });
    assert.equal((await hmacVerifier.verifyConnectToken(str)).info, '"hello"');
    const nul = await signConnectionToken({ secret, user: '1', claims: { info: null, meta: null, channels: null } });
    const claims = await hmacVerifier.verifyConnectToken(nul);
    assert.equal(claims.info, undefined);
    assert.equal(claims.meta, undefined);
    assert.deepEqual(claims.channels, []);
  });

  it('decodes b64info, which wins over info', async () => {
    const only = await signConnectionToken({ secret, user: '1', claims: { b64info: b64('{"a":1}') } });
    assert.equal((await hmacVerifier.verifyConnectToken(only)).info, '{"a":1}');
    const both = await signConnectionToken({ secret, user: '1', info: { a: 2 }, claims: { b64info: b64(' [1, 2] ') } });
    assert.equal((await hmacVerifier.verifyConnectToken(both)).info, '[1,2]');
    const empty = await signConnectionToken({ secret, user: '1', info: { a: 3 }, claims: { b64info: '' } });
    assert.equal((await hmacVerifier.verifyConnectToken(empty)).info, '{"a":3}');
  });

  it('rejects a b64info that is not base64, not JSON, not UTF-8 or not a string (3500)', async () => {
    for (const b64info of ['not base64!', 'YWJj=', b64('not json'), Buffer.from([0xff, 0xfe]).toString('base64'), 42]) {
      const token = await signConnectionToken({ secret, user: '1', claims: { b64info } });
      await rejectsInvalid(hmacVerifier.verifyConnectToken(token), /b64info/);
    }
  });

  it('rejects a malformed channels claim (3500)', async () => {
    for (const channels of ['news', [1, 2], ['ok', ''], { a: 1 }, [null]]) {
      const token = await signConnectionToken({ secret, user: '1', claims: { channels } });
      await rejectsInvalid(hmacVerifier.verifyConnectToken(token), /channels/);
    }
  });

  it('rejects a sub that is not a string (3500)', async () => {
    for (const sub of [42, true, { id: 1 }]) {
      const token = await signClaims({ secret }, { sub });
      await rejectsInvalid(hmacVerifier.verifyConnectToken(token), /"sub"/);
    }
  });

  it('rejects a subscription token used as a connection token (3500)', async () => {
    const token = await signSubscriptionToken({ secret, user: '1', channel: '$private' });
    await rejectsInvalid(hmacVerifier.verifyConnectToken(token), /channel/);
    const badType = await signConnectionToken({ secret, user: '1', claims: { channel: 5 } });
    await rejectsInvalid(hmacVerifier.verifyConnectToken(badType), /channel/);
  });

  it('decodes subs (info, b64info, data, b64data, override); channels are then ignored', async () => {
    const token = await signConnectionToken({
      secret,
      user: '1',
      channels: ['ignored'],
      subs: {
        'game:1': { info: { role: 'host' }, data: { welcome: true }, override: { presence: true, joinLeave: false } },
        'game:2': {},
        ['__proto__']: { data: 'safe' },
      },
      claims: {},
    });
    const claims = await hmacVerifier.verifyConnectToken(token);
    assert.deepEqual(claims.channels, []);
    const subs = claims.subs;
    assert.ok(subs);
    assert.deepEqual(Object.keys(subs).sort(), ['__proto__', 'game:1', 'game:2']);
    assert.equal(subs['game:1']?.info, '{"role":"host"}');
    assert.equal(subs['game:1']?.data, '{"welcome":true}');
    assert.deepEqual(subs['game:1']?.override, { presence: true, joinLeave: false });
    assert.deepEqual(subs['game:2'], {});
    assert.equal(subs['__proto__']?.data, '"safe"');
    assert.equal(Object.getPrototypeOf(subs), null);

    const b64subs = await signConnectionToken({
      secret,
      user: '1',
      claims: {
        subs: {
          a: { b64info: b64('{"x":1}'), info: { x: 2 }, b64data: b64('"d"'), override: { force_recovery: {} } },
          b: null,
        },
      },
    });
    const decoded = await hmacVerifier.verifyConnectToken(b64subs);
    assert.equal(decoded.subs?.['a']?.info, '{"x":1}');
    assert.equal(decoded.subs?.['a']?.data, '"d"');
    assert.deepEqual(decoded.subs?.['a']?.override, { forceRecovery: false });
    assert.deepEqual(decoded.subs?.['b'], {});
  });

  it('keeps channels when subs is present but empty', async () => {
    const token = await signConnectionToken({ secret, user: '1', channels: ['news'], subs: {} });
    const claims = await hmacVerifier.verifyConnectToken(token);
    assert.deepEqual(claims.channels, ['news']);
    assert.deepEqual(Object.keys(claims.subs ?? { missing: true }), []);
  });

  it('rejects a malformed subs claim (3500)', async () => {
    const cases: unknown[] = [
      ['a'],
      'a',
      { a: 'x' },
      { a: [1] },
      { '': {} },
      { a: { b64data: 'x' } },
      { a: { override: 'yes' } },
      { a: { override: { presence: true } } },
      { a: { override: { presence: { value: 'yes' } } } },
    ];
    for (const subs of cases) {
      const token = await signConnectionToken({ secret, user: '1', claims: { subs } });
      await rejectsInvalid(hmacVerifier.verifyConnectToken(token), /subs/);
    }
  });

  it('rejects a refresh token for another user when expectedUser is given (3500)', async () => {
    const token = await signConnectionToken({ secret, user: 'mallory' });
    await rejectsInvalid(hmacVerifier.verifyConnectToken(token, { expectedUser: 'alice' }), /user/);
    assert.equal((await hmacVerifier.verifyConnectToken(token, { expectedUser: 'mallory' })).user, 'mallory');
  });
});

describe('subscription tokens', () => {
  it('accepts a token for the channel and user, with info, data, override and expiry', async () => {
    const token = await signSubscriptionToken({
      secret,
      user: '42',
      channel: '$game:7',
      ttlSeconds: 120,
      info: { seat: 3 },
      data: { map: 'dust' },
      override: { forcePositioning: true, forcePushJoinLeave: false },
    });
    const claims = await hmacVerifier.verifySubscriptionToken(token, '$game:7', '42');
    assert.equal(claims.user, '42');
    assert.equal(claims.channel, '$game:7');
    assert.ok(Math.abs(claims.expireAt - (now() + 120)) <= 2);
    assert.equal(claims.info, '{"seat":3}');
    assert.equal(claims.data, '{"map":"dust"}');
    assert.deepEqual(claims.override, { forcePositioning: true, forcePushJoinLeave: false });
    assert.equal(claims.client, undefined);
  });

  it('accepts RS256 and ES256 subscription tokens, and b64info / b64data / expire_at', async () => {
    const rs = await signSubscriptionToken({ privateKey: rsa.privateKey, alg: 'RS256', user: 'u', channel: '$c' });
    assert.equal((await allVerifier.verifySubscriptionToken(rs, '$c', 'u')).channel, '$c');
    const es = await signSubscriptionToken({
      privateKey: ec256.privateKey,
      alg: 'ES256',
      user: 'u',
      channel: '$c',
      ttlSeconds: 60,
      expireAt: 0,
      claims: { b64info: b64('{"i":1}'), b64data: b64('[true]') },
    });
    const claims = await allVerifier.verifySubscriptionToken(es, '$c', 'u');
    assert.equal(claims.info, '{"i":1}');
    assert.equal(claims.data, '[true]');
    assert.equal(claims.expireAt, 0);
  });

  it('accepts an anonymous subscription token for an anonymous connection', async () => {
    const token = await signClaims({ secret }, { channel: '$open' });
    assert.equal((await hmacVerifier.verifySubscriptionToken(token, '$open', '')).user, '');
  });

  it('disconnects (3500) when the token is for another channel', async () => {
    const token = await signSubscriptionToken({ secret, user: '42', channel: '$a' });
    await rejectsInvalid(hmacVerifier.verifySubscriptionToken(token, '$b', '42'), /channel/);
    await rejectsInvalid(hmacVerifier.verifySubscriptionToken(token, '$b', '42', { purpose: 'sub_refresh' }));
  });

  it('disconnects (3500) when the token is for another user', async () => {
    const token = await signSubscriptionToken({ secret, user: 'mallory', channel: '$a' });
    await rejectsInvalid(hmacVerifier.verifySubscriptionToken(token, '$a', 'alice'), /user/);
    const anon = await signSubscriptionToken({ secret, user: '', channel: '$a' });
    await rejectsInvalid(hmacVerifier.verifySubscriptionToken(anon, '$a', 'alice'), /user/);
  });

  it('checks the client claim against the connection client ID', async () => {
    const token = await signSubscriptionToken({ secret, user: '1', channel: '$a', client: 'c-1' });
    assert.equal((await hmacVerifier.verifySubscriptionToken(token, '$a', '1', { clientId: 'c-1' })).client, 'c-1');
    await rejectsInvalid(hmacVerifier.verifySubscriptionToken(token, '$a', '1', { clientId: 'c-2' }), /client/);
    await rejectsInvalid(hmacVerifier.verifySubscriptionToken(token, '$a', '1'), /client/);
  });

  it('answers an expired subscription token with 109 on subscribe and on sub_refresh', async () => {
    const token = await signSubscriptionToken({ secret, user: '1', channel: '$a', ttlSeconds: -1 });
    await rejectsProtocol(hmacVerifier.verifySubscriptionToken(token, '$a', '1'), 109, /expired/);
    await rejectsProtocol(hmacVerifier.verifySubscriptionToken(token, '$a', '1', { purpose: 'sub_refresh' }), 109);
  });

  it('answers a token that does not verify with 103 on subscribe, 3500 on sub_refresh', async () => {
    const forged = await signSubscriptionToken({ secret: 'wrong', user: '1', channel: '$a' });
    await rejectsProtocol(hmacVerifier.verifySubscriptionToken(forged, '$a', '1'), 103, /signature/);
    await rejectsInvalid(hmacVerifier.verifySubscriptionToken(forged, '$a', '1', { purpose: 'sub_refresh' }));

    const unsigned = `${b64url({ alg: 'none' })}.${b64url({ sub: '1', channel: '$a' })}.`;
    await rejectsProtocol(hmacVerifier.verifySubscriptionToken(unsigned, '$a', '1'), 103, /alg none/);
    await rejectsProtocol(hmacVerifier.verifySubscriptionToken('garbage', '$a', '1'), 103);
  });

  it('rejects a missing or malformed channel claim and other bad claims (103)', async () => {
    const cases: Record<string, unknown>[] = [
      { sub: '1' },
      { sub: '1', channel: '' },
      { sub: '1', channel: ['$a'] },
      { sub: 1, channel: '$a' },
      { sub: '1', channel: '$a', client: 7 },
      { sub: '1', channel: '$a', b64data: '***' },
      { sub: '1', channel: '$a', override: { join_leave: { value: 1 } } },
      { sub: '1', channel: '$a', expire_at: true },
    ];
    for (const claims of cases) {
      const token = await signClaims({ secret }, claims);
      await rejectsProtocol(hmacVerifier.verifySubscriptionToken(token, '$a', '1'), 103);
    }
  });

  it('checks aud / iss on subscription tokens too', async () => {
    const strict = new TokenVerifier({ hmacSecretKey: secret, audience: 'bulwark', issuer: 'game' });
    const ok = await signSubscriptionToken({ secret, user: '1', channel: '$a', audience: 'bulwark', issuer: 'game' });
    assert.equal((await strict.verifySubscriptionToken(ok, '$a', '1')).channel, '$a');
    const bad = await signSubscriptionToken({ secret, user: '1', channel: '$a', audience: 'bulwark', issuer: 'x' });
    await rejectsProtocol(strict.verifySubscriptionToken(bad, '$a', '1'), 103, /iss/);
  });
});

describe('building verifiers', () => {
  const section = (patch: Partial<TokenConfigSection>): TokenConfigSection => ({
    hmac_secret_key: '',
    rsa_public_key: '',
    ecdsa_public_key: '',
    audience: '',
    issuer: '',
    ...patch,
  });

  it('maps a config section to options, empty strings meaning "not configured"', async () => {
    const options = tokenVerifierOptions(section({ hmac_secret_key: secret, audience: 'a' }), 'client.token');
    assert.equal(options.hmacSecretKey, secret);
    assert.equal(options.audience, 'a');
    const verifier = TokenVerifier.fromConfig(section({ hmac_secret_key: secret }));
    assert.deepEqual(verifier.algorithms, ['HS256', 'HS384', 'HS512']);
    // Empty audience / issuer are not checked.
    assert.equal((await verifier.verifyConnectToken(await signConnectionToken({ secret, user: '1' }))).user, '1');
  });

  it('reuses client.token for subscription tokens unless subscription_token.enabled', async () => {
    const shared = TokenVerifier.fromClientConfig({
      token: section({ hmac_secret_key: secret }),
      subscription_token: { enabled: false, ...section({ hmac_secret_key: 'ignored' }) },
    });
    assert.equal(shared.subscription, shared.connection);

    const split = TokenVerifier.fromClientConfig({
      token: section({ hmac_secret_key: secret }),
      subscription_token: { enabled: true, ...section({ hmac_secret_key: 'sub-secret' }) },
    });
    assert.notEqual(split.subscription, split.connection);
    const subToken = await signSubscriptionToken({ secret: 'sub-secret', user: '1', channel: '$a' });
    assert.equal((await split.subscription.verifySubscriptionToken(subToken, '$a', '1')).user, '1');
    await rejectsProtocol(split.connection.verifySubscriptionToken(subToken, '$a', '1'), 103);
  });

  it('accepts a PKCS#1 RSA public key and imports keys eagerly with ready()', async () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pkcs1 = publicKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    assert.match(pkcs1, /BEGIN RSA PUBLIC KEY/);
    const verifier = new TokenVerifier({ rsaPublicKey: pkcs1 });
    await verifier.ready();
    await allVerifier.ready();
  });

  it('rejects bad key configuration at construction, naming the config key', () => {
    assert.throws(
      () => new TokenVerifier({ rsaPublicKey: 'not a pem', configPath: 'client.token' }),
      /client\.token\.rsa_public_key: not a valid PEM/,
    );
    assert.throws(() => new TokenVerifier({ rsaPublicKey: rsa.privateKey }), /private key/);
    assert.throws(() => new TokenVerifier({ ecdsaPublicKey: rsa.publicKey }), /ecdsa_public_key: expected an EC key/);
    assert.throws(() => new TokenVerifier({ rsaPublicKey: ec256.publicKey }), /rsa_public_key: expected an RSA key/);
    assert.throws(() => new TokenVerifier({ rsaPublicKey: pemPair('rsa', 1024).publicKey }), /at least 2048/);
    assert.throws(
      () => new TokenVerifier({ ecdsaPublicKey: pemPair('ec', 'secp256k1').publicKey }),
      /unsupported curve/,
    );
    assert.throws(() => new TokenVerifier({ hmacSecretKey: secret, clockToleranceSeconds: -1 }), /tolerance/);
  });
});

describe('token signer', () => {
  it('signs tokens the verifier accepts, with iat and typ JWT', async () => {
    const token = await signConnectionToken({ secret, user: '7', ttlSeconds: 10 });
    const [header, payload] = token.split('.');
    assert.deepEqual(JSON.parse(Buffer.from(header ?? '', 'base64url').toString()), { alg: 'HS256', typ: 'JWT' });
    const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()) as Record<string, unknown>;
    assert.equal(claims['sub'], '7');
    assert.equal(typeof claims['iat'], 'number');
    assert.equal(claims['exp'], (claims['iat'] as number) + 10);
    assert.equal((await hmacVerifier.verifyConnectToken(token)).user, '7');
  });

  it('rejects bad input', async () => {
    await assert.rejects(signConnectionToken({ secret: '', user: '1' }), /secret/);
    await assert.rejects(signConnectionToken({ secret, user: 1 as unknown as string }), /user/);
    await assert.rejects(signConnectionToken({ secret, user: '1', ttlSeconds: Number.NaN }), /ttlSeconds/);
    await assert.rejects(signSubscriptionToken({ secret, user: '1', channel: '' }), /channel/);
    await assert.rejects(signConnectionToken({ privateKey: ec256.privateKey, alg: 'RS256', user: '1' }));
    await assert.rejects(signConnectionToken({ privateKey: 'nope', alg: 'ES256', user: '1' }));
  });
});
