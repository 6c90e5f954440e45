// Checks an entry's inclusion proof and its signed checkpoint in the
// browser, with nothing but WebCrypto and the verifier keys the operator
// publishes (given to the console in its configuration, not by the API):
// the audit path (RFC 9162 section 2.1.3.2, SHA-256) must lead from the
// entry's leaf hash to the root hash of the checkpoint, and the checkpoint
// (a C2SP signed note) must carry a valid Ed25519 signature by one of the
// keys, naming the ledger as its origin. Ed25519 is WebCrypto's where the
// browser has it, else the bundled @noble/ed25519. On the integrity panel
// (no entry) the checkpoint alone is checked.

const subtle = globalThis.crypto.subtle;
const encoder = new TextEncoder();

function hexBytes(hex) {
  if (!/^([0-9a-f]{2})*$/.test(hex)) throw new Error('a hash is not hexadecimal');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i += 1) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function base64Bytes(text) {
  const raw = atob(text);
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

function same(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function sha256(...parts) {
  const length = parts.reduce((n, p) => n + p.length, 0);
  const joined = new Uint8Array(length);
  let at = 0;
  for (const p of parts) { joined.set(p, at); at += p.length; }
  return new Uint8Array(await subtle.digest('SHA-256', joined));
}

const NODE = Uint8Array.of(1);

// RFC 9162 section 2.1.3.2: the root the path leads to, or an error.
async function rootFromPath(index, size, leaf, path) {
  if (index >= size) throw new Error('the entry is beyond the tree');
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  for (const p of path) {
    if (sn === 0n) throw new Error('the audit path is too long');
    if ((fn & 1n) === 1n || fn === sn) {
      r = await sha256(NODE, p, r);
      while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = await sha256(NODE, r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new Error('the audit path is too short');
  return r;
}

// A verifier key `name+hexid+base64(0x01 || key)`: its name, id and key.
async function parseKey(text) {
  // The base64 key may itself hold '+': split at the first two only.
  const first = text.indexOf('+');
  const second = text.indexOf('+', first + 1);
  if (first < 0 || second < 0) throw new Error('a verifier key is malformed');
  const name = text.slice(0, first);
  const hexId = text.slice(first + 1, second);
  const encoded = text.slice(second + 1);
  const bytes = base64Bytes(encoded);
  if (bytes.length !== 33 || bytes[0] !== 1) throw new Error('a verifier key is not Ed25519');
  const id = (await sha256(encoder.encode(`${name}\n`), bytes)).slice(0, 4);
  if (!same(id, hexBytes(hexId))) throw new Error('a verifier key\'s id does not match it');
  const raw = bytes.slice(1);
  let verify;
  try {
    const key = await subtle.importKey('raw', raw, { name: 'Ed25519' }, false, ['verify']);
    verify = (signature, message) => subtle.verify({ name: 'Ed25519' }, key, signature, message);
  } catch (e) {
    // This browser's WebCrypto has no Ed25519: the bundled library checks
    // it instead, strictly as RFC 8032 says (not ZIP 215's looser rules).
    const noble = await import('/assets/noble-ed25519.js');
    verify = (signature, message) => noble.verifyAsync(signature, message, raw, { zip215: false });
    return { name, id, verify, text, bundled: true };
  }
  return { name, id, verify, text, bundled: false };
}

// The note's text and the keys (of `keys`) with a valid signature on it.
async function openNote(note, keys) {
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw new Error('the checkpoint is not a signed note');
  const text = note.slice(0, split + 1);
  const signed = [];
  for (const line of note.slice(split + 2).split('\n').filter((l) => l)) {
    const match = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!match) throw new Error('the checkpoint has a malformed signature line');
    const bytes = base64Bytes(match[2]);
    for (const k of keys) {
      if (k.name === match[1] && same(bytes.slice(0, 4), k.id)) {
        const ok = await k.verify(bytes.slice(4), encoder.encode(text));
        if (!ok) throw new Error(`the checkpoint's signature by ${k.text} does not verify`);
        signed.push(k);
      }
    }
  }
  if (signed.length === 0) throw new Error('the checkpoint is signed by no published key');
  return { text, signed };
}

async function check(data) {
  const size = BigInt(data.size);
  const keys = await Promise.all(data.keys.split(' ').filter((k) => k).map(parseKey));
  const { text, signed } = await openNote(data.note, keys);
  const [origin, sizeLine, rootLine] = text.split('\n');
  if (signed.some((k) => k.name !== origin)) throw new Error('the checkpoint names another ledger');
  if (BigInt(sizeLine) !== size) throw new Error('the checkpoint is of another tree size');
  const bundled = signed.some((k) => k.bundled)
    ? ' (checked with the bundled Ed25519 library: this browser has no Ed25519 of its own)'
    : '';
  const by = signed.map((k) => k.text).join(' and ') + bundled;
  // The integrity panel: the checkpoint alone.
  if (data.index === undefined) return `Verified in your browser: checkpoint ${size} is signed by ${by}.`;
  const index = BigInt(data.index);
  const leaf = hexBytes(data.leaf);
  const path = data.path ? data.path.split(' ').map(hexBytes) : [];
  const root = await rootFromPath(index, size, leaf, path);
  if (!same(root, base64Bytes(rootLine))) {
    throw new Error('the audit path does not lead to the checkpoint\'s root hash');
  }
  return `Verified in your browser: entry ${index} is in the ledger's tree of ${size} entries, checkpoint ${size} signed by ${by}.`;
}

async function run() {
  const proof = document.getElementById('proof');
  const status = document.getElementById('proof-status');
  if (!proof || !status) return;
  status.textContent = 'Checking the proof in your browser…';
  status.dataset.result = 'checking';
  try {
    status.textContent = await check(proof.dataset);
    status.dataset.result = 'verified';
  } catch (e) {
    status.textContent = `The proof does not verify: ${e.message}. Do not rely on this entry; tell your information governance lead.`;
    status.dataset.result = 'failed';
  }
}

document.getElementById('proof-check')?.addEventListener('click', run);
run();
