// Where a JSON text stops being JSON: browsers' JSON.parse messages do not always say
// (Chromium's "Unexpected token" does not), so this small recursive-descent checker finds
// the offset and the editor can name the line and column.

export function jsonErrorPlace(text) {
  let i = 0;
  const fail = (what) => { throw { offset: i, what }; };
  const ws = () => { while (i < text.length && ' \t\r\n'.includes(text[i])) i++; };
  const lit = (word) => { if (text.startsWith(word, i)) i += word.length; else fail('a value'); };
  const str = () => {
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === '\\') i++;
      else if (text[i] < ' ') fail('a closing quote');
      i++;
    }
    if (text[i] !== '"') fail('a closing quote');
    i++;
  };
  const number = () => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (!m) fail('a value');
    i += m[0].length;
  };
  const value = () => {
    ws();
    const ch = text[i];
    if (ch === '{') {
      i++; ws();
      if (text[i] === '}') { i++; return; }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('a quoted key');
        str(); ws();
        if (text[i] !== ':') fail("':'");
        i++; value(); ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') { i++; return; }
        fail("',' or '}'");
      }
    } else if (ch === '[') {
      i++; ws();
      if (text[i] === ']') { i++; return; }
      for (;;) {
        value(); ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === ']') { i++; return; }
        fail("',' or ']'");
      }
    } else if (ch === '"') str();
    else if (ch === 't') lit('true');
    else if (ch === 'f') lit('false');
    else if (ch === 'n') lit('null');
    else number();
  };
  try {
    value(); ws();
    if (i < text.length) fail('the end of the text');
    return null;
  } catch (e) {
    if (e.offset === undefined) throw e;
    const before = text.slice(0, e.offset).split('\n');
    return { offset: e.offset, line: before.length, column: before[before.length - 1].length + 1, expected: e.what };
  }
}
