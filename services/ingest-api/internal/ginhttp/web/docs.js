// photopipe API docs: renders /openapi.json (operations by tag, their
// parameters, bodies and responses, schemas as readable sketches) with
// plain JavaScript, nothing fetched from elsewhere.
"use strict";

const METHODS = ["get", "head", "post", "put", "patch", "delete"];

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

let spec;

function resolve(obj) {
  let seen = 0;
  while (obj && obj.$ref && seen++ < 20) {
    const path = obj.$ref.replace(/^#\//, "").split("/");
    obj = path.reduce((o, k) => (o ? o[k] : undefined), spec);
  }
  return obj || {};
}

// sketch writes a schema as indented pseudo-JSON: field: type (notes).
function sketch(schema, indent, depth) {
  const s = resolve(schema);
  const pad = "  ".repeat(indent);
  if (depth > 6) return "…";
  if (s.oneOf || s.anyOf) {
    return (s.oneOf || s.anyOf).map((x) => sketch(x, indent, depth + 1)).join("\n" + pad + "| or |\n" + pad);
  }
  const nullable = s.nullable ? " | null" : "";
  if (s.type === "array") return "[ " + sketch(s.items || {}, indent, depth + 1) + " ]" + nullable;
  if (s.type === "object" || s.properties) {
    const props = Object.entries(s.properties || {});
    if (!props.length) {
      if (s.additionalProperties && typeof s.additionalProperties === "object") {
        return "{ name: " + sketch(s.additionalProperties, indent + 1, depth + 1) + " }" + nullable;
      }
      return "object" + nullable;
    }
    const req = new Set(s.required || []);
    const lines = props.map(([name, p]) => {
      const r = resolve(p);
      const notes = [];
      if (req.has(name)) notes.push("required");
      if (r.description) notes.push(r.description);
      return pad + "  " + name + ": " + sketch(p, indent + 1, depth + 1) + (notes.length ? "  // " + notes.join("; ") : "");
    });
    return "{\n" + lines.join(",\n") + "\n" + pad + "}" + nullable;
  }
  let t = s.type || "any";
  if (s.format) t += " (" + s.format + ")";
  if (s.enum) t += " " + s.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (s.default !== undefined) t += " = " + JSON.stringify(s.default);
  return t + nullable;
}

function content(c) {
  const out = [];
  for (const [type, media] of Object.entries(c || {})) {
    out.push(el("div", {}, el("code", {}, type)));
    if (media.schema) out.push(el("pre", {}, sketch(media.schema, 0, 0)));
  }
  return out;
}

function operation(path, method, op, pathParams) {
  const secured = op.security ? op.security.length > 0 : (spec.security || []).length > 0;
  const body = el("div", { class: "body" });
  if (op.description) body.append(el("p", { class: "desc" }, op.description));
  const params = [...(pathParams || []), ...(op.parameters || [])].map(resolve);
  if (params.length) {
    body.append(el("h4", {}, "Parameters"));
    const tb = el("tbody", {});
    for (const p of params) {
      tb.append(el("tr", {}, el("td", {}, el("code", {}, p.name)), el("td", {}, p.in),
        el("td", {}, p.required ? "required" : ""), el("td", {}, sketch(p.schema || {}, 0, 0)),
        el("td", {}, p.description || "")));
    }
    body.append(el("table", {}, tb));
  }
  if (op.requestBody) {
    const rb = resolve(op.requestBody);
    body.append(el("h4", {}, "Request body" + (rb.required ? " (required)" : "")), ...content(rb.content));
  }
  body.append(el("h4", {}, "Responses"));
  for (const [code, r0] of Object.entries(op.responses || {})) {
    const r = resolve(r0);
    body.append(el("div", {}, el("strong", {}, code), " ", r.description || ""), ...content(r.content));
  }
  return el("details", { class: "op", id: (op.operationId || method + path) },
    el("summary", {}, el("span", { class: "method " + method }, method.toUpperCase()), el("span", { class: "path" }, path),
      el("span", { class: "summary" }, op.summary || ""), secured ? el("span", { class: "lock", title: "needs an API key" }, "key") : null),
    body);
}

async function start() {
  try {
    const resp = await fetch("/openapi.json");
    if (!resp.ok) throw new Error("GET /openapi.json: HTTP " + resp.status);
    spec = await resp.json();
  } catch (e) {
    document.getElementById("error").textContent = String(e.message || e);
    return;
  }
  document.getElementById("title").textContent = spec.info.title + " " + spec.info.version;
  document.getElementById("description").textContent = spec.info.description || "";
  const byTag = new Map((spec.tags || []).map((t) => [t.name, []]));
  for (const [path, item] of Object.entries(spec.paths || {})) {
    for (const m of METHODS) {
      if (!item[m]) continue;
      const tag = (item[m].tags || ["other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operation(path, m, item[m], item.parameters));
    }
  }
  const ops = document.getElementById("operations");
  ops.replaceChildren();
  const tagInfo = new Map((spec.tags || []).map((t) => [t.name, t.description || ""]));
  for (const [tag, list] of byTag) {
    if (!list.length) continue;
    ops.append(el("h2", { class: "tag", id: "tag-" + tag }, tag + " "), el("p", { class: "summary" }, tagInfo.get(tag) || ""), ...list);
  }
}

document.addEventListener("DOMContentLoaded", start);
