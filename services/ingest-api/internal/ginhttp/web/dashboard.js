// photopipe dashboard: plain JavaScript, no build step. It polls the API
// (counts every 2 s, lists every 4 s, dead letters every 5 s) with the API
// key kept in localStorage, sent as "Authorization: Bearer <key>". Data is
// put in the page with textContent only, never as HTML.
"use strict";

const KEY_STORAGE = "photopipe.apiKey";
const STATUSES = ["pending", "processing", "completed", "failed"];

const $ = (sel) => document.querySelector(sel);

function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

// el builds an element: el("td", {class: "x"}, "text", child, ...).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("data-") || k === "class" || k === "title" || k === "type" || k === "max" || k === "value" || k === "href") {
      e.setAttribute(k, v);
    } else {
      e[k] = v;
    }
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

class APIError extends Error {
  constructor(status, body) {
    super((body && (body.error || body.detail)) || "HTTP " + status);
    this.status = status;
    this.code = body && body.code;
  }
}

async function api(path, options) {
  const opts = Object.assign({}, options);
  const headers = new Headers(opts.headers || {});
  const key = apiKey();
  if (key) headers.set("Authorization", "Bearer " + key);
  opts.headers = headers;
  const resp = await fetch(path, opts);
  if (resp.status === 401) showAuth("The API needs a key: enter an API key above.", true);
  return resp;
}

async function getJSON(path, options) {
  const resp = await api(path, options);
  let body = null;
  try {
    body = await resp.json();
  } catch (e) {
    body = null;
  }
  if (!resp.ok) throw new APIError(resp.status, body);
  return body;
}

function showAuth(msg, bad) {
  const s = $("#auth-status");
  s.textContent = msg;
  s.className = bad ? "bad" : "";
}

function showError(err) {
  $("#error").textContent = err ? String(err.message || err) : "";
}

function short(id) {
  return id ? id.slice(0, 8) : "";
}

function when(ts) {
  if (!ts) return "";
  const d = new Date(ts);
  return isNaN(d) ? ts : d.toLocaleString();
}

// ---- counts ----

async function refreshCounts() {
  const s = await getJSON("/stats");
  for (const st of STATUSES) $("#count-" + st).textContent = s.photos[st];
  $("#count-jobs-ongoing").textContent = s.jobs.ongoing;
  $("#updated").textContent = "updated " + new Date().toLocaleTimeString();
}

// ---- gallery: thumbnails are fetched with the key and shown as blob: URLs ----

const blobs = new Map(); // file_url -> object URL

async function thumbURL(fileURL) {
  if (blobs.has(fileURL)) return blobs.get(fileURL);
  const resp = await api(fileURL);
  if (!resp.ok) throw new APIError(resp.status, null);
  const u = URL.createObjectURL(await resp.blob());
  blobs.set(fileURL, u);
  return u;
}

function pickThumb(p) {
  const ts = p.thumbnails || [];
  return ts.find((t) => t.rendition === "thumb" && t.page <= 1) || ts.find((t) => t.page <= 1) || ts[0];
}

let galleryShown = "";

async function refreshGallery() {
  const photos = await getJSON("/photos?status=completed&limit=24");
  const sig = photos.map((p) => p.uuid).join(",");
  $("#gallery-empty").hidden = photos.length > 0;
  if (sig === galleryShown) return;
  const items = await Promise.all(
    photos.map(async (p) => {
      const t = pickThumb(p);
      const fig = el("figure", { class: "thumb", "data-photo": p.uuid, title: p.filename || p.url });
      if (t) {
        try {
          fig.append(el("a", { href: t.file_url, target: "_blank", rel: "noopener" },
            el("img", { src: await thumbURL(t.file_url), alt: p.filename || p.uuid, width: t.width, height: t.height })));
        } catch (e) {
          fig.append(el("div", { class: "noimg" }, "no image"));
        }
      }
      fig.append(el("figcaption", {}, p.filename || short(p.uuid)));
      return fig;
    }),
  );
  $("#gallery").replaceChildren(...items);
  galleryShown = sig;
  const keep = new Set(photos.map((p) => (pickThumb(p) || {}).file_url));
  for (const [k, u] of blobs) {
    if (!keep.has(k)) {
      URL.revokeObjectURL(u);
      blobs.delete(k);
    }
  }
}

// ---- failures ----

async function refreshFailures() {
  const photos = await getJSON("/photos?status=failed&limit=20");
  $("#failures-empty").hidden = photos.length > 0;
  $("#failures").hidden = photos.length === 0;
  $("#failures-body").replaceChildren(
    ...photos.map((p) => {
      const f = p.failure || {};
      return el("tr", { "data-photo": p.uuid },
        el("td", { title: p.uuid }, el("code", {}, short(p.uuid)), " ", p.filename || p.url),
        el("td", {}, when(p.updated_at)),
        el("td", {}, f.stage || ""),
        el("td", {}, el("code", {}, f.code || "")),
        el("td", { class: "reason" }, f.message || ""));
    }),
  );
}

// ---- jobs ----

async function refreshJobs() {
  const jobs = await getJSON("/jobs?status=ongoing&limit=20");
  $("#jobs-empty").hidden = jobs.length > 0;
  $("#jobs").replaceChildren(
    ...jobs.map((j) => {
      const done = j.counts.completed + j.counts.failed + j.counts.skipped;
      return el("li", { "data-job": j.job_id },
        el("code", { title: j.job_id }, short(j.job_id)), " ",
        el("progress", { max: String(j.total), value: String(done) }),
        ` ${done} / ${j.total} photos · ${j.groups.finished} / ${j.groups.total} groups`,
        j.counts.failed ? el("span", { class: "bad" }, ` · ${j.counts.failed} failed`) : null);
    }),
  );
}

// ---- dead letters ----

async function settle(service, action, selection) {
  if (action === "discard" && !window.confirm(`Discard these dead letters of ${service}? They are gone for good, and the photo attempts they carried end failed (code discarded).`)) return;
  const status = $("#dlq-status");
  try {
    const res = await getJSON(`/admin/dead-letters/${encodeURIComponent(service)}/${action}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(selection),
    });
    const n = action === "replay" ? res.replayed || 0 : res.discarded || 0;
    status.textContent = `${action === "replay" ? "Replayed" : "Discarded"} ${n} message(s) of ${service}.` +
      (res.failed && res.failed.length ? ` Not done: ${res.failed.join(", ")}` : "");
    status.className = res.failed && res.failed.length ? "bad" : "ok";
  } catch (e) {
    status.textContent = `${action} failed: ${e.message}`;
    status.className = "bad";
  }
  refreshDeadLetters().catch(showError);
  refreshCounts().catch(showError);
}

function topReasons(reasons) {
  return Object.entries(reasons || {})
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([r, n]) => `${n}× ${r}`)
    .join("; ");
}

async function refreshDeadLetters() {
  let res;
  try {
    res = await getJSON("/admin/dead-letters");
  } catch (e) {
    if (e.status === 401 || e.status === 403) {
      $("#dlq-status").textContent = "The dead-letter queues need an admin key (ADMIN_API_KEYS).";
      $("#dlq-status").className = "bad";
      $("#dlq-body").replaceChildren();
      $("#dlq-entries").replaceChildren();
      return;
    }
    throw e;
  }
  $("#dlq-body").replaceChildren(
    ...res.queues.map((q) => {
      const buttons = el("td", { class: "actions" });
      if (q.count > 0) {
        buttons.append(
          el("button", { type: "button", class: "replay", "data-action": "replay", "data-service": q.service,
            onclick: () => settle(q.service, "replay", { all: true }) }, "Replay all"),
          " ",
          el("button", { type: "button", class: "discard", "data-action": "discard", "data-service": q.service,
            onclick: () => settle(q.service, "discard", { all: true }) }, "Discard all"));
      }
      return el("tr", { "data-service": q.service },
        el("td", {}, q.service), el("td", {}, el("code", {}, q.queue)),
        el("td", { class: "num", "data-count": String(q.count) }, q.count),
        el("td", { class: "reason" }, topReasons(q.reasons)), buttons);
    }),
  );
  const lists = await Promise.all(
    res.queues.filter((q) => q.count > 0).map((q) =>
      getJSON(`/admin/dead-letters/${encodeURIComponent(q.service)}?limit=20`).then((l) => [q.service, l])),
  );
  $("#dlq-entries").replaceChildren(
    ...lists.map(([service, l]) =>
      el("details", { open: true },
        el("summary", {}, `${service}: ${l.summary.count} message(s)` + (l.summary.count > l.entries.length ? `, first ${l.entries.length} shown` : "")),
        el("table", { class: "entries" },
          el("thead", {}, el("tr", {}, el("th", {}, "photo"), el("th", {}, "event"), el("th", {}, "since"), el("th", {}, "reason"), el("th", {}, ""))),
          el("tbody", {},
            ...l.entries.map((e) =>
              el("tr", { "data-message": e.message_id },
                el("td", { title: e.photo_id }, el("code", {}, short(e.photo_id))),
                el("td", {}, e.event), el("td", {}, when(e.dead_lettered_at)),
                el("td", { class: "reason" }, e.reason),
                el("td", { class: "actions" },
                  el("button", { type: "button", onclick: () => settle(service, "replay", { message_ids: [e.message_id] }) }, "Replay"),
                  " ",
                  el("button", { type: "button", onclick: () => settle(service, "discard", { message_ids: [e.message_id] }) }, "Discard")))))))),
  );
}

// ---- upload ----

async function upload(ev) {
  ev.preventDefault();
  const files = $("#upload-files").files;
  if (!files.length) return;
  const form = new FormData();
  for (const f of files) form.append("file", f, f.name);
  const r = $("#upload-renditions").value.trim();
  if (r) form.append("renditions", r);
  const out = $("#upload-result");
  out.replaceChildren(el("li", {}, `Uploading ${files.length} file(s)…`));
  try {
    const res = await getJSON("/photos/upload", { method: "POST", body: form });
    out.replaceChildren(...res.photos.map((p) =>
      el("li", { "data-photo": p.uuid, class: "ok" }, "Uploaded ", p.filename || "", " as ", el("code", {}, p.uuid))));
    $("#upload-form").reset();
  } catch (e) {
    out.replaceChildren(el("li", { class: "bad" }, `Upload refused: ${e.message}`));
  }
  refreshCounts().catch(showError);
}

// ---- polling ----

function every(ms, fn) {
  const tick = async () => {
    if (!document.hidden) {
      try {
        await fn();
        showError(null);
      } catch (e) {
        showError(e);
      }
    }
    setTimeout(tick, ms);
  };
  tick();
}

function start() {
  $("#api-key").value = apiKey();
  showAuth(apiKey() ? "key saved in this browser" : "no key");
  $("#key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    localStorage.setItem(KEY_STORAGE, $("#api-key").value.trim());
    showAuth(apiKey() ? "key saved in this browser" : "no key");
    galleryShown = "";
    refreshAll();
  });
  $("#clear-key").addEventListener("click", () => {
    localStorage.removeItem(KEY_STORAGE);
    $("#api-key").value = "";
    showAuth("no key");
  });
  $("#upload-form").addEventListener("submit", upload);
  every(2000, refreshCounts);
  every(4000, () => Promise.all([refreshGallery(), refreshFailures(), refreshJobs()]));
  every(5000, refreshDeadLetters);
}

function refreshAll() {
  Promise.all([refreshCounts(), refreshGallery(), refreshFailures(), refreshJobs(), refreshDeadLetters()]).catch(showError);
}

document.addEventListener("DOMContentLoaded", start);
