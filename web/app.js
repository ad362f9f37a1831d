// app.js - the page: the key once (kept in sessionStorage), then chat and
// files over one authenticated WebSocket (proto.js).
import { AuthError, Conn, clean, secretOf, textOf } from "./proto.js";

const $ = (id) => document.getElementById(id);
const KEY = "sockit.key";
let conn = null;
let room = null; // the room we are in
const members = new Set();

function status(text) {
  $("status").textContent = text;
}

function filesStatus(text) {
  $("files-status").textContent = text;
}

function showLogin(error) {
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-error").hidden = !error;
  $("login-error").textContent = error || "";
  $("key").value = "";
  $("key").focus();
}

function logLine(parts, note) {
  const li = document.createElement("li");
  if (note) li.className = "note";
  for (const [cls, text] of parts) {
    const span = document.createElement("span");
    if (cls) span.className = cls;
    span.textContent = text;
    li.append(span);
  }
  $("log").append(li);
  $("log").scrollTop = $("log").scrollHeight;
}

function showMembers() {
  const ul = $("members");
  ul.replaceChildren();
  for (const m of [...members].sort()) {
    const li = document.createElement("li");
    li.textContent = clean(m);
    ul.append(li);
  }
}

function inRoom(on) {
  $("text").disabled = !on;
  $("say").disabled = !on;
  $("leave").disabled = !on;
  $("join").disabled = on;
  $("room").disabled = on;
  $("nick").disabled = on;
}

// Frames that answer none of our requests.
function onPush(head, body) {
  if (head.type === "msg" && head.room === room) {
    const t = new Date(head.ts * 1000).toLocaleTimeString();
    logLine([["time", "[" + t + "] "], ["from", clean(head.from) + ": "],
             ["text", clean(textOf(body))]]);
  } else if (head.type === "presence" && head.room === room) {
    if (head.event === "join") members.add(head.nick); else members.delete(head.nick);
    showMembers();
    logLine([[null, clean(head.nick) + (head.event === "join" ? " joined" : " left")]], true);
  } else if (head.type === "error") {
    status("The server said: " + clean(head.message || head.code));
  }
}

function onClose(why) {
  status("Disconnected: " + why + ".");
  inRoom(false);
  room = null;
  if (!$("app").hidden) {
    $("app").hidden = true;
    $("login").hidden = false;
    $("connect").focus();
  }
}

async function connect(keyText) {
  status("Connecting...");
  conn = new Conn(onPush, onClose);
  try {
    await conn.open();
    const hello = await conn.authenticate(secretOf(keyText));
    sessionStorage.setItem(KEY, keyText);
    status("Connected to " + clean(hello.server) + ".");
  } catch (e) {
    conn.close();
    conn = null;
    if (e instanceof AuthError) sessionStorage.removeItem(KEY);
    status("Not connected.");
    showLogin(e.message);
    return;
  }
  $("login").hidden = true;
  $("app").hidden = false;
  if (!$("nick").value) $("nick").value = "web-" + Math.floor(Math.random() * 10000);
  $("room").focus();
  refresh();
}

// quiet: keep the status line (it reports an upload that just ended)
async function refresh(quiet) {
  try {
    const entries = await conn.list("");
    const tbody = $("entries");
    tbody.replaceChildren();
    for (const e of entries) {
      const tr = document.createElement("tr");
      for (const v of [clean(e.name), e.type, e.type === "file" ? String(e.length) : ""]) {
        const td = document.createElement("td");
        td.textContent = v;
        tr.append(td);
      }
      const td = document.createElement("td");
      if (e.type === "file") {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = "Download";
        b.setAttribute("aria-label", "Download " + clean(e.name));
        b.dataset.name = e.name;
        b.addEventListener("click", () => download(e.name));
        td.append(b);
      }
      tr.append(td);
      tbody.append(tr);
    }
    if (quiet !== true) filesStatus(entries.length + (entries.length === 1 ? " entry." : " entries."));
  } catch (e) {
    filesStatus("Listing failed: " + clean(e.message));
  }
}

async function download(name) {
  filesStatus("Downloading " + clean(name) + "...");
  try {
    const r = await conn.download(name);
    const a = document.createElement("a");
    a.href = URL.createObjectURL(r.blob);
    a.download = name.split("/").pop();
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    filesStatus("Downloaded " + clean(name) + ": " + r.total + " bytes, " + r.hash + " verified.");
  } catch (e) {
    filesStatus("Download of " + clean(name) + " failed: " + clean(e.message));
  }
}

async function upload(file) {
  const bar = $("progress");
  bar.hidden = false;
  bar.value = 0;
  $("upload").disabled = true;
  filesStatus("Uploading " + clean(file.name) + "...");
  try {
    const ok = await conn.upload(file, file.name, (sent, total) => {
      bar.value = total ? sent / total : 1;
    });
    bar.value = 1;
    filesStatus("Uploaded " + clean(ok.name) + ": " + ok.total + " bytes, " + ok.hash + ".");
    refresh(true);
  } catch (e) {
    filesStatus("Upload of " + clean(file.name) + " failed: " + clean(e.message));
  } finally {
    $("upload").disabled = false;
  }
}

$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  connect($("key").value);
});

$("join-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const r = $("room").value, n = $("nick").value;
  try {
    const joined = await conn.join(r, n, 50);
    room = r;
    members.clear();
    for (const m of joined.members) members.add(m);
    showMembers();
    inRoom(true);
    logLine([[null, "You joined " + clean(r) + " as " + clean(n) + "."]], true);
    $("text").focus();
  } catch (e) {
    status("Join failed: " + clean(e.message));
  }
});

$("leave").addEventListener("click", () => {
  conn.leave(room);
  logLine([[null, "You left " + clean(room) + "."]], true);
  room = null;
  members.clear();
  showMembers();
  inRoom(false);
  $("room").focus();
});

$("say-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const t = $("text").value;
  if (!t || room === null) return;
  conn.say(room, t);
  $("text").value = "";
});

$("refresh").addEventListener("click", () => refresh());

$("upload-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const f = $("file").files[0];
  if (f) upload(f);
});

$("forget").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  if (conn) conn.close();
  showLogin(null);
});

const saved = sessionStorage.getItem(KEY);
if (!window.isSecureContext || !crypto.subtle) {
  // Web Crypto exists only over https or on this machine (localhost)
  showLogin("This page needs a secure context for Web Crypto: open it over https " +
            "(the server's --tls-cert) or from this machine (127.0.0.1, or an SSH tunnel).");
  $("connect").disabled = true;
} else if (saved) connect(saved);
else showLogin(null);
