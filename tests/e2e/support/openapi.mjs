// The OpenAPI document (docs/openapi.json) against the code and the real
// answers of chatd (scenario zk).
//
// - loadDocument(): the document's bytes and its parsed form.
// - unresolvedRefs(doc): every `$ref` that names nothing in the document.
// - serverRoutes(): the routes chatd registers, read from its route tables
//   (`routes.add(V::get, p + "/sessions/{}", …)` in src/), as
//   "GET /api/v1/chat/sessions/{}".
// - documentedRoutes(doc): the document's operations in the same form.
// - ResponseChecker: validates one real answer (status, required headers,
//   JSON body or every SSE event) against what the document declares for its
//   path, method, status and content type, with ajv (JSON Schema 2020-12),
//   and records which operations and statuses were exercised.

import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { parseSse } from './sse.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '../../..');
export const DOCUMENT_FILE = path.join(REPO, 'docs/openapi.json');
const DOC_ID = 'openapi.json';
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

export function loadDocument() {
  const bytes = readFileSync(DOCUMENT_FILE);
  return { bytes, doc: JSON.parse(bytes.toString('utf8')) };
}

// JSON pointers (RFC 6901).
function escapeToken(token) {
  return String(token).replaceAll('~', '~0').replaceAll('/', '~1');
}

function unescapeToken(token) {
  return token.replaceAll('~1', '/').replaceAll('~0', '~');
}

export function pointerOf(tokens) {
  return tokens.map((t) => `/${escapeToken(t)}`).join('');
}

/** The value at a local reference (`#/a/b`), or undefined. */
export function resolvePointer(doc, ref) {
  if (!ref.startsWith('#')) return undefined;
  const pointer = decodeURIComponent(ref.slice(1));
  if (pointer === '') return doc;
  if (!pointer.startsWith('/')) return undefined;
  let node = doc;
  for (const token of pointer.slice(1).split('/').map(unescapeToken)) {
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, token)) return undefined;
    node = node[token];
  }
  return node;
}

/** Every `$ref` of the document that is not local or names nothing: [{ at, ref }]. */
export function unresolvedRefs(doc) {
  const bad = [];
  const walk = (node, at) => {
    if (Array.isArray(node)) {
      node.forEach((item, i) => walk(item, [...at, i]));
    } else if (node !== null && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if (key === '$ref' && typeof value === 'string') {
          if (resolvePointer(doc, value) === undefined) bad.push({ at: pointerOf(at), ref: value });
        } else {
          walk(value, [...at, key]);
        }
      }
    }
  };
  walk(doc, []);
  return bad;
}

// ---------------------------------------------------------------------------
// Routes.

function sourceFiles(dir, ext) {
  return readdirSync(dir, { recursive: true }).filter((f) => f.endsWith(ext)).sort().map((f) => path.join(dir, f));
}

const DECLARATION = /(?:const|constexpr)\s+(?:std::string(?:_view)?|char)\s+(\w+)(?:\[\])?\s*(?:=\s*|\{\s*)"((?:[^"\\]|\\.)*)"/g;
const ROUTE = /\b\w+\s*\.\s*add\s*\(\s*V::(\w+)\s*,\s*([^,]+?)\s*,/g;

/**
 * The routes of chatd's route tables: every `<table>.add(V::<verb>, <path>,`
 * in the .cpp files under src/ (`routes.add(V::get, p + "/sessions/{}", …)`), where
 * <path> is a string literal, a string constant (`const std::string p =
 * "…"`, or a `constexpr` string_view or char array) named earlier in the same
 * file or in any header, or a sum of those. Throws naming the call when a path
 * cannot be read, so a new way of writing routes fails loudly rather than
 * going unchecked. Returns ["GET /healthz", "POST /api/v1/chat/sessions", …]
 * with `{}` for parameters.
 */
export function serverRoutes(dir = path.join(REPO, 'src')) {
  const headerConstants = new Map();
  for (const file of sourceFiles(dir, '.hpp')) {
    for (const m of readFileSync(file, 'utf8').matchAll(DECLARATION)) headerConstants.set(m[1], m[2]);
  }
  const routes = [];
  for (const file of sourceFiles(dir, '.cpp')) {
    const source = readFileSync(file, 'utf8');
    const constants = new Map(headerConstants);
    // Declarations and calls in source order: a name means its latest value.
    const items = [];
    for (const m of source.matchAll(DECLARATION)) items.push({ at: m.index, kind: 'const', name: m[1], value: m[2] });
    for (const m of source.matchAll(ROUTE)) items.push({ at: m.index, kind: 'route', verb: m[1], expr: m[2] });
    items.sort((a, b) => a.at - b.at);
    for (const item of items) {
      if (item.kind === 'const') {
        constants.set(item.name, item.value);
        continue;
      }
      const parts = item.expr.split('+').map((s) => s.trim());
      const resolved = parts.map((part) => {
        const literal = /^"((?:[^"\\]|\\.)*)"$/.exec(part);
        if (literal) return literal[1];
        return constants.get(part);
      });
      if (resolved.some((p) => p === undefined)) {
        throw new Error(`${path.relative(REPO, file)}: cannot read the path of .add(V::${item.verb}, ${item.expr}, …); ` +
          'teach support/openapi.mjs serverRoutes() this form');
      }
      const verb = item.verb.replace(/_$/, '').toUpperCase();
      routes.push(`${verb} ${resolved.join('')}`);
    }
  }
  return routes;
}

/** The document's operations as "METHOD /path/{}" (parameter names dropped). */
export function documentedRoutes(doc) {
  const out = [];
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      if (item[method]) out.push(`${method.toUpperCase()} ${p.replace(/\{[^}]+\}/g, '{}')}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Answers against the document.

function mediaType(contentType) {
  return (contentType || '').split(';')[0].trim().toLowerCase();
}

function headerOf(headers, name) {
  if (!headers) return null;
  if (typeof headers.get === 'function') return headers.get(name);
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? null : headers[key];
}

function short(value, max = 800) {
  const s = typeof value === 'string' ? value : JSON.stringify(value);
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/**
 * An SSE event as the document's event schemas describe it: { event, id,
 * data } with `event` left out for unnamed events and `data` JSON-decoded
 * (kept as text when it is not JSON, e.g. `[DONE]`).
 */
export function eventObject(ev) {
  const out = {};
  if (ev.type !== 'message') out.event = ev.type;
  if (ev.id !== undefined) out.id = ev.id;
  try { out.data = JSON.parse(ev.data); } catch { out.data = ev.data; }
  return out;
}

export class ResponseChecker {
  constructor(doc) {
    this.doc = doc;
    // Strict: a keyword ajv does not know in a schema of the document is an error.
    this.ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
    addFormats(this.ajv);
    // The document's own fields around its schemas, which ajv takes for keywords.
    this.ajv.addVocabulary(['openapi', 'info', 'jsonSchemaDialect', 'servers', 'security', 'tags', 'paths', 'webhooks',
      'components', 'externalDocs', 'discriminator', 'xml', 'example']);
    this.ajv.addSchema(doc, DOC_ID);
    this.templates = Object.keys(doc.paths).map((template) => ({ template, segments: template.split('/') }));
    this.exercised = new Map(); // "METHOD template" -> statuses of answers that passed
  }

  /** The compiled schema at a pointer of the document. */
  schemaAt(pointer) {
    const validate = this.ajv.getSchema(`${DOC_ID}#${pointer.split('/').map(encodeURIComponent).join('/')}`);
    if (!validate) throw new Error(`no schema at ${pointer}`);
    return validate;
  }

  /** Follows a `$ref` (once or more); returns { node, pointer }. */
  deref(node, pointer) {
    while (node && typeof node.$ref === 'string') {
      pointer = node.$ref.slice(1);
      node = resolvePointer(this.doc, node.$ref);
    }
    return { node, pointer };
  }

  /** The document's path template for a concrete path: literal segments first. */
  match(pathname) {
    const segments = pathname.split('/');
    let best = null;
    for (const t of this.templates) {
      if (t.segments.length !== segments.length) continue;
      let literals = 0;
      const ok = t.segments.every((s, i) => {
        if (/^\{[^}]+\}$/.test(s)) return segments[i] !== '';
        if (s === segments[i]) { literals += 1; return true; }
        return false;
      });
      if (ok && (!best || literals > best.literals)) best = { template: t.template, literals };
    }
    return best && best.template;
  }

  /** The response object the document declares: { response, pointer, operationId }. */
  declared(label, method, pathname, status) {
    const template = this.match(pathname);
    const responses = '/components/responses';
    if (!template) {
      if (status !== 404) throw new Error(`${label}: ${method} ${pathname} is no documented path; expected 404, got ${status}`);
      return { ...this.deref({ $ref: `#${responses}/NotFound` }), operationId: '(no such path)' };
    }
    const op = this.doc.paths[template][method.toLowerCase()];
    if (!op) {
      if (status !== 405) throw new Error(`${label}: ${method} ${template} is not documented; expected 405, got ${status}`);
      return { ...this.deref({ $ref: `#${responses}/MethodNotAllowed` }), operationId: `(${method} ${template})` };
    }
    const declaredStatus = Object.keys(op.responses);
    if (!op.responses[String(status)]) {
      throw new Error(`${label}: ${op.operationId} answered ${status}, which the document does not declare ` +
        `(declared: ${declaredStatus.join(', ')})`);
    }
    const base = pointerOf(['paths', template, method.toLowerCase(), 'responses', String(status)]);
    return { ...this.deref(op.responses[String(status)], base), operationId: op.operationId,
      key: `${method.toUpperCase()} ${template}` };
  }

  /**
   * Checks one answer: r = { status, headers, text } (as support/chatd.mjs
   * request() or support/sse.mjs readRawSse() return). For event streams every
   * complete event is checked. Returns the JSON body, or the events.
   */
  check(label, method, urlPath, r) {
    const pathname = new URL(urlPath, 'http://x').pathname;
    const { node: response, pointer, operationId, key } = this.declared(label, method, pathname, r.status);
    const what = `${label} (${operationId} → ${r.status})`;
    const fail = (msg) => { throw new Error(`${what}: ${msg}`); };
    const body = this.checkBody(response, pointer, r, fail);
    if (key) {
      if (!this.exercised.has(key)) this.exercised.set(key, new Set());
      this.exercised.get(key).add(r.status);
    }
    return body;
  }

  /** The headers and body of an answer against its declared response object. */
  checkBody(response, pointer, r, fail) {
    for (const [name, raw] of Object.entries(response.headers || {})) {
      const { node: header, pointer: hp } = this.deref(raw, `${pointer}/headers/${escapeToken(name)}`);
      const value = headerOf(r.headers, name);
      if (value === null || value === undefined) {
        if (header.required) fail(`the required header ${name} is missing`);
        continue;
      }
      const schema = header.schema || {};
      const typed = schema.type === 'integer' && /^-?\d+$/.test(value) ? Number(value) : value;
      const validate = this.schemaAt(`${hp}/schema`);
      if (!validate(typed)) fail(`header ${name}: ${JSON.stringify(value)}: ${this.ajv.errorsText(validate.errors)}`);
    }

    if (!response.content) {
      if (r.text !== '') fail(`the document declares no body, got ${short(r.text)}`);
      return null;
    }
    const type = mediaType(headerOf(r.headers, 'content-type'));
    if (!response.content[type]) {
      fail(`Content-Type ${JSON.stringify(type)} is not declared (declared: ${Object.keys(response.content).join(', ')})`);
    }
    const validate = this.schemaAt(`${pointer}/content/${escapeToken(type)}/schema`);
    if (type === 'text/event-stream') {
      const events = parseSse(r.text).events.map(eventObject);
      events.forEach((ev, i) => {
        if (!validate(ev)) fail(`event #${i} ${short(ev)}: ${this.ajv.errorsText(validate.errors)}`);
      });
      return events;
    }
    if (type === 'text/plain') {
      if (!validate(r.text)) fail(`${this.ajv.errorsText(validate.errors)} in ${short(r.text)}`);
      return r.text;
    }
    let body;
    try { body = JSON.parse(r.text); } catch { fail(`the body is not JSON: ${short(r.text)}`); }
    if (!validate(body)) fail(`${this.ajv.errorsText(validate.errors)} in ${short(body)}`);
    return body;
  }
}
