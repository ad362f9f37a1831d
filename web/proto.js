// proto.js - the sockit/1 protocol over the server's WebSocket at /ws.
//
// Every binary message we send holds bytes of the native stream (a whole
// frame, or a piece of an upload's body); the server's messages are read
// the same way, as one byte stream cut into frames:
//   [head_len: u32 big-endian][head: JSON][body: head.size bytes]
// Authentication is the exchange of the protocol's hello, computed here with
// Web Crypto: mac = HMAC-SHA256(secret, "sockit/1 client:" + SN + ":" + CN),
// and the server's answer is checked the same way (mutual authentication).

const enc = new TextEncoder();
const dec = new TextDecoder();
const CHUNK = 256 * 1024;      // upload pieces
const HIGH_WATER = 1 << 20;    // wait while this much is unsent
const BLOB_FOLD = 16 << 20;    // a download's pieces go into a Blob this often

export class AuthError extends Error {}

export function hex(buf) {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
}

// The key file's content with trailing spaces, tabs, CR and LF removed, as bytes.
export function secretOf(text) {
  return enc.encode(text.replace(/[ \t\r\n]+$/, ""));
}

async function hmacHex(secret, text) {
  const key = await crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" },
                                            false, ["sign"]);
  return hex(await crypto.subtle.sign("HMAC", key, enc.encode(text)));
}

// SHA-256 (FIPS 180-4) fed piece by piece: Web Crypto's digest takes only
// the whole input at once, which a large download would have to be held as.
const K256 = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

export class Sha256 {
  constructor() {
    this.h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                              0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    this.w = new Uint32Array(64);
    this.block = new Uint8Array(64);
    this.fill = 0;  // bytes in block
    this.length = 0; // bytes hashed in all
  }

  compress(p, off) {
    const w = this.w, h = this.h;
    for (let i = 0; i < 16; i++, off += 4)
      w[i] = (p[off] << 24) | (p[off + 1] << 16) | (p[off + 2] << 8) | p[off + 3];
    for (let i = 16; i < 64; i++) {
      const a = w[i - 15], b = w[i - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    let [a, b, c, d, e, f, g, k] = h;
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (k + S1 + ((e & f) ^ (~e & g)) + K256[i] + w[i]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      k = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
  }

  update(bytes) {
    let i = 0;
    this.length += bytes.length;
    if (this.fill > 0) {
      const k = Math.min(64 - this.fill, bytes.length);
      this.block.set(bytes.subarray(0, k), this.fill);
      this.fill += k;
      i = k;
      if (this.fill < 64) return;
      this.compress(this.block, 0);
      this.fill = 0;
    }
    for (; i + 64 <= bytes.length; i += 64) this.compress(bytes, i);
    this.block.set(bytes.subarray(i), 0);
    this.fill = bytes.length - i;
  }

  digest() { // the 32-byte hash; the object is spent
    const bits = this.length * 8;
    const pad = new Uint8Array((this.fill < 56 ? 64 : 128) - this.fill);
    pad[0] = 0x80;
    const view = new DataView(pad.buffer);
    view.setUint32(pad.length - 8, Math.floor(bits / 0x100000000));
    view.setUint32(pad.length - 4, bits >>> 0);
    this.update(pad);
    const out = new Uint8Array(32);
    const v = new DataView(out.buffer);
    this.h.forEach((x, i) => v.setUint32(4 * i, x));
    return out;
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class Conn {
  // onPush(head, body): frames that answer no request of ours (msg,
  // presence, errors without an id); onClose(reason) once.
  constructor(onPush, onClose) {
    this.onPush = onPush;
    this.onClose = onClose;
    this.chunks = [];      // received bytes not yet parsed
    this.have = 0;
    this.frame = null;     // the frame whose body is arriving
    this.pending = new Map();
    this.nextId = 1;
    this.hello = null;
    this.helloWaiters = [];
    this.closed = false;
  }

  open() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.ws = new WebSocket(scheme + "//" + location.host + "/ws");
    this.ws.binaryType = "arraybuffer";
    this.ws.onmessage = (ev) => this.received(new Uint8Array(ev.data));
    this.ws.onclose = (ev) => this.gone(ev.code === 1000 ? "closed" : "closed (" + ev.code + ")");
    return new Promise((resolve, reject) => {
      this.ws.onopen = () => resolve();
      this.ws.onerror = () => reject(new Error("cannot reach the server's WebSocket"));
    });
  }

  gone(why) {
    if (this.closed) return;
    this.closed = true;
    for (const h of this.pending.values()) h.fail(new Error("connection " + why));
    this.pending.clear();
    for (const w of this.helloWaiters) w.reject(new Error("connection " + why));
    this.onClose(why);
  }

  close() {
    if (this.ws) this.ws.close(1000);
  }

  // ---- receiving ----

  take(n) { // n bytes off the front of the stream, as one array
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0];
      const k = Math.min(c.length, n - off);
      out.set(c.subarray(0, k), off);
      off += k;
      if (k === c.length) this.chunks.shift(); else this.chunks[0] = c.subarray(k);
    }
    this.have -= n;
    return out;
  }

  received(bytes) {
    this.chunks.push(bytes);
    this.have += bytes.length;
    for (;;) {
      if (this.frame !== null) {
        if (!this.bodyStep()) return;
        continue;
      }
      if (this.have < 4) return;
      const c = this.chunks[0];
      const p = c.length >= 4 ? c : this.peek4();
      const hlen = ((p[0] << 24) >>> 0) + (p[1] << 16) + (p[2] << 8) + p[3];
      if (this.have < 4 + hlen) return;
      this.take(4);
      const head = JSON.parse(dec.decode(this.take(hlen)));
      this.frame = { head, left: head.size || 0, parts: [] };
      if (this.frame.left === 0) this.frameDone();
    }
  }

  peek4() {
    const out = new Uint8Array(4);
    let off = 0;
    for (const c of this.chunks) {
      const k = Math.min(c.length, 4 - off);
      out.set(c.subarray(0, k), off);
      off += k;
      if (off === 4) break;
    }
    return out;
  }

  // Body bytes go to a streaming handler piece by piece, or are gathered.
  bodyStep() {
    const f = this.frame;
    if (this.have === 0) return false;
    const c = this.chunks[0];
    const k = Math.min(c.length, f.left);
    const piece = c.subarray(0, k);
    if (k === c.length) this.chunks.shift(); else this.chunks[0] = c.subarray(k);
    this.have -= k;
    f.left -= k;
    const h = f.head.id !== undefined ? this.pending.get(f.head.id) : undefined;
    if (h && h.onBody) h.onBody(piece); else f.parts.push(piece);
    if (f.left === 0) this.frameDone();
    return true;
  }

  frameDone() {
    const f = this.frame;
    this.frame = null;
    let body = null;
    if (f.parts.length === 1) body = f.parts[0];
    else if (f.parts.length > 1) {
      body = new Uint8Array(f.parts.reduce((n, p) => n + p.length, 0));
      let off = 0;
      for (const p of f.parts) { body.set(p, off); off += p.length; }
    }
    const head = f.head;
    if (this.hello === null && head.type === "hello") {
      this.hello = head;
      for (const w of this.helloWaiters) w.resolve(head);
      return;
    }
    const h = head.id !== undefined && head.type !== "msg" && head.type !== "presence"
      ? this.pending.get(head.id) : undefined;
    if (h === undefined) {
      this.onPush(head, body);
      return;
    }
    if (h.onFrame(head, body)) this.pending.delete(head.id);
  }

  // ---- sending ----

  send(head, body) {
    const size = body ? body.byteLength : (head.size || 0);
    const h = body ? Object.assign({}, head, { size }) : head;
    const json = enc.encode(JSON.stringify(h));
    const out = new Uint8Array(4 + json.length + (body ? body.byteLength : 0));
    new DataView(out.buffer).setUint32(0, json.length);
    out.set(json, 4);
    if (body) out.set(new Uint8Array(body), 4 + json.length);
    this.ws.send(out);
  }

  // Send a request; handler.onFrame(head, body) returns true when the
  // request is over. Resolves with what handler.result() says then.
  request(head, body, handler) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const h = {
        onBody: handler.onBody,
        onFrame: (fh, fb) => {
          if (fh.type === "error") {
            reject(Object.assign(new Error(fh.message || fh.code), { code: fh.code }));
            return true;
          }
          let done = false;
          try { done = handler.onFrame(fh, fb, resolve, reject); } catch (e) { reject(e); return true; }
          return done;
        },
        fail: reject,
      };
      this.pending.set(id, h);
      if (handler.alias) this.pending.set(handler.alias(this), h);
      this.send(Object.assign({}, head, { id }), body);
    });
  }

  call(head, body) { // the first answer
    return this.request(head, body, { onFrame: (h, b, resolve) => { resolve([h, b]); return true; } });
  }

  waitHello() {
    if (this.hello) return Promise.resolve(this.hello);
    return new Promise((resolve, reject) => this.helloWaiters.push({ resolve, reject }));
  }

  // ---- the protocol ----

  async authenticate(secret) {
    const hello = await this.waitHello();
    if (hello.auth === "none") return hello;
    if (hello.auth !== "hmac-sha256") throw new AuthError("the server asks for " + hello.auth);
    const cn = hex(crypto.getRandomValues(new Uint8Array(32)));
    const mac = await hmacHex(secret, "sockit/1 client:" + hello.nonce + ":" + cn);
    let ok;
    try {
      [ok] = await this.call({ type: "auth", nonce: cn, mac });
    } catch (e) {
      if (e.code === "auth_failed")
        throw new AuthError("Wrong key: the server did not accept it. Check the key and try again.");
      if (e.code === "rate_limited")
        throw new AuthError("Too many wrong keys from this address: wait a minute, then try again.");
      throw e;
    }
    const want = await hmacHex(secret, "sockit/1 server:" + cn + ":" + hello.nonce);
    if (ok.type !== "auth_ok" || ok.mac !== want) {
      this.close();
      throw new AuthError("The server failed mutual authentication: it does not hold this key.");
    }
    return hello;
  }

  list(name) {
    return this.call({ type: "list", name: name || "" }).then(([h]) => h.entries);
  }

  // Download name: the body arrives in pieces, each hashed as it comes (so
  // the file is never needed in one piece to check it) and gathered in
  // Blobs, which the browser may keep on disk; the SHA-256 is checked
  // against the server's file_end before the caller saves anything.
  download(name) {
    const blobs = [];
    let parts = [], held = 0, info = null;
    const sha = new Sha256();
    const take = (piece) => {
      sha.update(piece);
      parts.push(piece.slice());
      held += piece.length;
      if (held >= BLOB_FOLD) { blobs.push(new Blob(parts)); parts = []; held = 0; }
    };
    return this.request({ type: "get", name, offset: 0, hash: "sha256" }, null, {
      onBody: take,
      onFrame: (h, b, resolve, reject) => {
        if (h.type === "file") { info = h; if (b) take(b); return false; }
        if (h.type !== "file_end") return false;
        const blob = new Blob(blobs.concat(parts), { type: "application/octet-stream" });
        const got = "sha256:" + hex(sha.digest());
        if (h.hash !== got) reject(new Error("hash mismatch: the server said " + h.hash));
        else resolve({ blob, hash: got, total: info ? info.total : blob.size });
        return true;
      },
    });
  }

  // Upload file as name: the put's head, then the body in pieces read from
  // the file one at a time (never the whole file in memory), then put_end.
  // A file of one piece goes whole in the head's message: one frame, one
  // message.
  async upload(file, name, onProgress) {
    const total = file.size;
    const whole = total <= CHUNK ? await file.arrayBuffer() : null;
    let failed = null;
    let endId = 0;
    const done = this.request({ type: "put", name, total, offset: 0, size: total, hash: "sha256" },
                              whole, {
      alias: (conn) => (endId = conn.nextId++),
      onFrame: (h, b, resolve) => { if (h.type === "put_ok") { resolve(h); return true; } return false; },
    });
    done.catch((e) => { failed = e; });
    if (whole !== null) onProgress(total, total);
    for (let off = whole !== null ? total : 0; off < total && failed === null && !this.closed; ) {
      const buf = await file.slice(off, off + CHUNK).arrayBuffer();
      while (this.ws.bufferedAmount > HIGH_WATER && failed === null && !this.closed) await sleep(5);
      this.ws.send(buf);
      off += buf.byteLength;
      onProgress(off, total);
    }
    if (failed === null && !this.closed) this.send({ type: "put_end", id: endId });
    return done;
  }

  join(room, nick, history) {
    return this.call({ type: "join", room, nick, history }).then(([h]) => h);
  }

  say(room, text) {
    this.send({ type: "say", room }, enc.encode(text));
  }

  leave(room) {
    this.send({ type: "leave", room });
  }
}

// Show text from the network safely: C0/C1 controls, DEL and bidi controls
// become visible escapes (the text always goes in as textContent as well).
export function clean(s) {
  return String(s).replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => "\\u{" + c.codePointAt(0).toString(16) + "}");
}

export function textOf(bytes) {
  return bytes ? dec.decode(bytes) : "";
}
