// The text of one message as the page holds it: a string plus its length in
// UTF-8 bytes, because chatd's stream offsets count bytes. Text only grows.
//
// apply(offset, text) takes a stream delta: appended when offset equals the
// current length; the already-held part skipped when it overlaps; refused
// ('gap') when text is missing before it, so the caller can re-fetch.
// extend(text) takes a whole committed text (history, content endpoint, poll,
// cancel answer) and keeps it when it is longer. chatd splits text only between
// UTF-8 characters, so string prefixes and byte prefixes agree. Pure: no DOM.

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8');

// UTF-8 length of a string without allocating (lone surrogates count 3, as
// TextEncoder writes U+FFFD for them).
export function utf8Length(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else {
        n += 3;
      }
    } else n += 3;
  }
  return n;
}

export class MessageText {
  constructor(text = '') {
    this.text = text;
    this.bytes = utf8Length(text);
  }

  // Returns 'applied', 'overlap' (the new tail of an overlapping delta was
  // appended), 'duplicate' (nothing new) or 'gap' (nothing applied).
  apply(offset, text) {
    if (offset === this.bytes) {
      if (text.length === 0) return 'duplicate';
      this.text += text;
      this.bytes += utf8Length(text);
      return 'applied';
    }
    if (offset > this.bytes) return 'gap';
    const bytes = encoder.encode(text);
    const end = offset + bytes.length;
    if (end <= this.bytes) return 'duplicate';
    const rest = decoder.decode(bytes.subarray(this.bytes - offset));
    this.text += rest;
    this.bytes = end;
    return 'overlap';
  }

  // Returns 'extended', 'same', 'stale' (shorter: kept ours) or 'replaced'
  // (longer but not an extension of ours: committed text never changes, so
  // this means our copy was wrong; the server's wins).
  extend(text) {
    if (text.length === this.text.length && text === this.text) return 'same';
    const bytes = utf8Length(text);
    if (bytes <= this.bytes) return 'stale';
    const result = text.startsWith(this.text) ? 'extended' : 'replaced';
    this.text = text;
    this.bytes = bytes;
    return result;
  }
}
