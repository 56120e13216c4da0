// server.js — the S3-compatible server of helios's tests: s3rver (npm) on loopback, with two
// things s3rver 3.7.1 leaves out added in front of it, so the tests exercise what real S3 does:
//  - AWS Signature Version 4 is verified (s3rver checks only the access key id): a request
//    signed with the wrong secret, or whose signed headers were altered, gets 403
//    SignatureDoesNotMatch;
//  - conditional writes (S3's PutObject since 2024): `If-None-Match: *` fails with 412 when the
//    key exists, `If-Match: "etag"` with 412 when the object's ETag differs (404 when absent).
//    Requests to one key are serialised, so the check and the write are one step, and a read
//    never sees a write half done (s3rver rewrites files in place; S3 itself is atomic).
// Usage: node server.js DIR [PORT [plain]]   (PORT 0 or none: a free port; "plain": no conditional
// writes, as some S3-compatible servers). Prints "listening PORT" once ready.
// Bucket "helios" exists; credentials: access key "helios-test", secret "helios-secret".
'use strict';
const crypto = require('crypto');
const S3rver = require('s3rver');

const ACCESS = 'helios-test', SECRET = 'helios-secret', BUCKET = 'helios';
const dir = process.argv[2];
const port = Number(process.argv[3] || 0);
const plain = process.argv[4] === 'plain';
if (!dir) {
  console.error('usage: node server.js DIR [PORT]');
  process.exit(2);
}

const hmac = (key, s) => crypto.createHmac('sha256', key).update(s).digest();
const sha256hex = s => crypto.createHash('sha256').update(s).digest('hex');

function fail(ctx, status, code, message) {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
}

// AWS's canonical URI encoding: everything but unreserved characters and '/'
const uriEncode = s => encodeURIComponent(s).replace(/[!'()*]/g, c => '%' + c.charCodeAt(0).toString(16).toUpperCase());

function signatureValid(ctx) {
  const auth = ctx.headers.authorization || '';
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m || m[1] !== ACCESS) return false;
  const [, , date, region, signed, given] = m;
  const amzDate = ctx.headers['x-amz-date'] || '';
  if (!amzDate.startsWith(date)) return false;
  const [rawPath, rawQuery = ''] = ctx.req.url.split('?');
  const path = rawPath.split('/').map(p => uriEncode(decodeURIComponent(p))).join('/');
  const query = rawQuery === '' ? '' : rawQuery.split('&').map(kv => {
    const i = kv.indexOf('=');
    const k = decodeURIComponent(i < 0 ? kv : kv.slice(0, i)), v = i < 0 ? '' : decodeURIComponent(kv.slice(i + 1).replace(/\+/g, ' '));
    return [uriEncode(k), uriEncode(v)];
  }).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : 1)).map(p => p.join('=')).join('&');
  const names = signed.split(';');
  if (!names.includes('host') || !names.includes('x-amz-date')) return false;
  if (names.some(n => ctx.headers[n] === undefined)) return false; // signed, so it must be sent
  const headers = names.map(n => `${n}:${String(ctx.headers[n] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const payload = ctx.headers['x-amz-content-sha256'];
  if (!payload) return false;
  const canonical = [ctx.method, path, query, headers, signed, payload].join('\n');
  const scope = `${date}/${region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256hex(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac('AWS4' + SECRET, date), region), 's3'), 'aws4_request');
  const want = hmac(key, toSign).toString('hex');
  return crypto.timingSafeEqual(Buffer.from(want), Buffer.from(given));
}

const tails = new Map(); // key -> the promise of the last write queued on it
async function serialised(key, fn) {
  const before = tails.get(key) || Promise.resolve();
  let release;
  const mine = new Promise(r => (release = r));
  const tail = before.then(() => mine);
  tails.set(key, tail);
  await before;
  try {
    return await fn();
  } finally {
    release();
    if (tails.get(key) === tail) tails.delete(key);
  }
}

async function conditions(ctx, next) {
  if (!signatureValid(ctx))
    return fail(ctx, 403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.');
  const [, bucket, ...rest] = ctx.path.split('/');
  const key = rest.join('/');
  if (!bucket || !key || ctx.querystring) return next();
  return serialised(`${bucket}/${key}`, async () => {
    const ifNone = ctx.headers['if-none-match'], ifMatch = ctx.headers['if-match'];
    if (ctx.method === 'PUT' && (ifNone || ifMatch) && !plain) {
      let etag = null;
      try {
        etag = (await ctx.app.store.getMetadata(bucket, key)).etag;
      } catch (e) {
        if (e.code !== 'ENOENT') throw e;
      }
      if (ifNone === '*' && etag !== null)
        return fail(ctx, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
      if (ifMatch && etag === null)
        return fail(ctx, 404, 'NoSuchKey', 'The specified key does not exist.');
      if (ifMatch && ifMatch !== etag)
        return fail(ctx, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
    }
    await next();
    // s3rver streams a file that a later write may be replacing: read it whole inside the turn
    if (ctx.body && typeof ctx.body.pipe === 'function') {
      const parts = [];
      for await (const part of ctx.body) parts.push(part);
      const length = ctx.length;
      ctx.body = Buffer.concat(parts);
      if (length !== undefined) ctx.length = length;
    }
  });
}

const server = new S3rver({
  address: '127.0.0.1', port, directory: dir, silent: true,
  configureBuckets: [{ name: BUCKET }],
});
server.middleware.unshift(conditions); // before s3rver's own routes
// s3rver registers the test account "S3RVER"; ours goes beside it
require('s3rver/lib/models/account').registry.get('S3RVER').createKeyPair(ACCESS, SECRET);
server.run().then(addr => {
  process.stdout.write(`listening ${addr.port}\n`);
}, err => {
  console.error(`server.js: ${err.message}`);
  process.exit(1);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
