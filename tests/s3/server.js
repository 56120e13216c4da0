// server.js — the S3-compatible server of helios's tests: s3rver (npm) on loopback, with what
// s3rver 3.7.1 leaves out added in front of it, so the tests exercise what real S3 does:
//  - AWS Signature Version 4 is verified (s3rver checks only the access key id): a request
//    signed with the wrong secret, or whose signed headers were altered, gets 403
//    SignatureDoesNotMatch;
//  - conditional writes (S3's PutObject since 2024): `If-None-Match: *` fails with 412 when the
//    key exists, `If-Match: "etag"` with 412 when the object's ETag differs (404 when absent).
//    Requests to one directory of keys are serialised, so the check and the write are one step, a
//    read never sees a write half done (s3rver rewrites files in place; S3 itself is atomic), and
//    a delete's removal of an emptied directory never races a write into it. A listing reads
//    past what changes under it (s3rver's listing walks the directories, which a delete may
//    empty and remove meanwhile).
//  - a put and a delete are each one step even when the server is killed in their middle
//    (commitFiles, below), as S3's are.
// Usage: node server.js DIR [PORT [plain]]   (PORT 0 or none: a free port; "plain": no conditional
// writes, as some S3-compatible servers). Prints "listening PORT" once ready.
// Bucket "helios" exists; credentials: access key "helios-test", secret "helios-secret".
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
// s3rver's continuation tokens (listings past 1000 keys) use single DES, which OpenSSL 3 keeps
// in its legacy provider only: the same cipher as triple DES with one key three times.
for (const name of ['createCipheriv', 'createDecipheriv']) {
  const orig = crypto[name];
  crypto[name] = (alg, key, iv, ...rest) =>
    alg === 'des' ? orig('des-ede3-cbc', Buffer.concat([key, key, key]), iv, ...rest) : orig(alg, key, iv, ...rest);
}
// s3rver's store takes walk from utils when it loads: patched first (below)
const utils = require('s3rver/lib/utils');
utils.walk = function* walk(dir, recurseFilter) {
  let names;
  try {
    names = fs.readdirSync(dir);
  } catch (e) {
    if (e.code === 'ENOENT') return; // removed by a delete meanwhile
    throw e;
  }
  for (const filename of names) {
    const filePath = path.posix.join(dir, filename);
    let stats;
    try {
      stats = fs.statSync(filePath);
    } catch (e) {
      if (e.code === 'ENOENT') continue;
      throw e;
    }
    if (!stats.isDirectory()) yield filePath;
    else if (!recurseFilter || recurseFilter(filePath)) yield* walk(filePath, recurseFilter);
  }
};

const S3rver = require('s3rver');
const S3Object = require('s3rver/lib/models/object');
const { pick, pickBy } = require('lodash');

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
  const dir = key.includes('/') ? key.slice(0, key.lastIndexOf('/')) : '';
  return serialised(`${bucket}/${dir}`, async () => {
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

// S3 writes an object whole or not at all, even when it fails in the middle; s3rver keeps an
// object as three files (bytes, MD5, metadata) rewritten in place, so a server killed mid-put (the
// fleet tests kill it) left bytes with the metadata of the body before, or an empty metadata file
// every later read failed on. Here the files are written beside their places ("<file>.tmp"), then
// a list of them ("<object file>.intent", renamed into place: the commit point), then each is
// renamed over its place and the list removed. A server started on the directory finishes every
// list it finds and drops the temporaries no list names (recover). Only a killed server is
// covered, not a lost machine (nothing is synced): that is all the tests do to it.
async function commitFiles(files) {
  const intent = files[0][0] + '.intent';
  await fs.promises.mkdir(path.dirname(intent), { recursive: true });
  for (const [file, data] of files) await fs.promises.writeFile(file + '.tmp', data);
  await fs.promises.writeFile(intent + '.tmp', JSON.stringify(files.map(([file]) => file)));
  await fs.promises.rename(intent + '.tmp', intent);
  for (const [file] of files) await fs.promises.rename(file + '.tmp', file);
  await fs.promises.unlink(intent);
}

function recover(root) {
  const found = [...utils.walk(root)];
  for (const intent of found.filter(f => f.endsWith('.intent'))) {
    for (const file of JSON.parse(fs.readFileSync(intent, 'utf8')))
      if (fs.existsSync(file + '.tmp')) fs.renameSync(file + '.tmp', file);
    fs.unlinkSync(intent);
  }
  for (const tmp of found.filter(f => f.endsWith('.tmp')))
    if (fs.existsSync(tmp)) fs.unlinkSync(tmp);
}

// A put is stored whole or not at all, as on S3: the body is read to its end before s3rver
// touches a file (a client killed mid-upload otherwise left a torn object that later reads and
// conditional puts took for the real one, and a request that never finished held its key).
const FilesystemStore = require('s3rver/lib/stores/filesystem');
FilesystemStore.prototype.putObject = async function (object) {
  if (!Buffer.isBuffer(object.content)) {
    const req = object.content, parts = [];
    await new Promise((resolve, reject) => {
      if (req.aborted || req.destroyed) // gone while the request waited for its turn
        return reject(new Error('the client went away before its upload was read'));
      req.on('data', p => parts.push(p));
      req.on('end', resolve);
      req.on('error', reject);
      req.on('aborted', () => reject(new Error('the client went away mid-upload')));
      req.on('close', () => (req.complete ? resolve() : reject(new Error('the client went away mid-upload'))));
    });
    object.content = Buffer.concat(parts);
  }
  // s3rver answers a Buffer put before its write stream has finished (a read in the next turn
  // saw a torn object): the bytes are written, and waited for, here — all three files at once
  const content = object.content;
  const md5 = crypto.createHash('md5').update(content).digest('hex');
  const metadata = {
    ...pick(object.metadata, S3Object.ALLOWED_METADATA),
    ...pickBy(object.metadata, (v, k) => k.startsWith('x-amz-meta-')),
  };
  await commitFiles([
    [this.getResourcePath(object.bucket, object.key, 'object'), content],
    [this.getResourcePath(object.bucket, object.key, 'object.md5'), md5],
    [this.getResourcePath(object.bucket, object.key, 'metadata.json'), JSON.stringify(metadata, null, 2)],
  ]);
  return { size: content.length, md5 };
};

// A delete is one step too: the object's file goes first (a key is there while it is), then
// what describes it (a later put rewrites both), then the directories it emptied, as s3rver does.
FilesystemStore.prototype.deleteObject = async function (bucket, key) {
  for (const resource of ['object', 'object.md5', 'metadata.json']) {
    await fs.promises.unlink(this.getResourcePath(bucket, key, resource)).catch(err => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
  const parts = key.split('/');
  parts.pop(); // the last part is in the file names
  for (; parts.length; parts.pop()) {
    const d = path.join(this.getBucketPath(bucket), ...parts);
    try {
      if (fs.readdirSync(d).length) break;
      await fs.promises.rmdir(d);
    } catch (e) {
      if (e.code !== 'ENOENT') throw e;
    }
  }
};

recover(dir);
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
// Stopped, it goes at once, as a bucket that goes down does: close() alone waits for every open
// keep-alive connection to end (a node's connection pool kept one open for ten minutes in a
// loaded sanitizer run, and the test's wait for the exit hung).
for (const sig of ['SIGTERM', 'SIGINT'])
  process.on(sig, () => {
    server.close(() => process.exit(0));
    if (server.httpServer) server.httpServer.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  });
