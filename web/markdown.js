// Renders assistant text as safe Markdown into an element.
//
// Uses Debian's markdown-it (a classic script, /vendor/markdown-it.js,
// which sets window.markdownit) with html: false, so raw HTML in the text is
// escaped; images are disabled (model text must not make the browser fetch
// URLs); links are validated by markdown-it (no javascript:, vbscript:, file:,
// data:) and open in a new tab with rel="noopener noreferrer". Without
// markdown-it the text is shown as plain text (textContent, pre-wrap). Text
// never reaches the DOM any other way.

let md;  // undefined: not tried yet; null: unavailable

function instance() {
  if (md !== undefined) return md;
  const factory = globalThis.markdownit;
  if (typeof factory !== 'function') {
    md = null;
    return md;
  }
  const m = factory({ html: false, linkify: false, typographer: false, breaks: false });
  m.disable(['image']);
  // Table alignment comes as style="text-align:…", which the CSP (style-src
  // 'self') would block: use a class instead.
  m.core.ruler.push('chatd_align_class', (stateCore) => {
    for (const token of stateCore.tokens) {
      const style = token.attrGet && token.attrGet('style');
      if (!style) continue;
      const align = /^text-align:(left|right|center)$/.exec(style);
      token.attrs = token.attrs.filter(([name]) => name !== 'style');
      if (align) token.attrJoin('class', `align-${align[1]}`);
    }
  });
  const renderToken = (tokens, idx, options, env, self) => self.renderToken(tokens, idx, options);
  const linkOpen = m.renderer.rules.link_open || renderToken;
  m.renderer.rules.link_open = (tokens, idx, options, env, self) => {
    tokens[idx].attrSet('target', '_blank');
    tokens[idx].attrSet('rel', 'noopener noreferrer');
    return linkOpen(tokens, idx, options, env, self);
  };
  md = m;
  return md;
}

export function markdownAvailable() {
  return instance() !== null;
}

const SAFE_PROTOCOLS = new Set(['http:', 'https:', 'mailto:']);

function safeHref(href) {
  try {
    return SAFE_PROTOCOLS.has(new URL(href, document.baseURI).protocol);
  } catch {
    return false;
  }
}

export function renderAssistant(el, text) {
  const m = instance();
  if (m === null) {
    el.classList.add('plain');
    el.textContent = text;
    return;
  }
  el.classList.remove('plain');
  el.innerHTML = m.render(text);  // markdown-it's escaped output (html: false)
  for (const a of el.querySelectorAll('a')) {
    if (!safeHref(a.getAttribute('href') || '')) a.removeAttribute('href');
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
  }
}

export function renderPlain(el, text) {
  el.classList.add('plain');
  el.textContent = text;
}
