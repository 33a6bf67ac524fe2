// A small Markdown reader for kb's passages: headings, paragraphs, lists, pipe tables, block
// quotes, code blocks, rules, and bold, italic and code spans inside them. It builds DOM nodes
// and inserts all text as text nodes: nothing from a document is ever parsed as HTML, and
// links and images are shown as their text (no URL from a document becomes live).
"use strict";

const Markdown = (() => {
  const HEADING = /^(#{1,6})[ \t]+(.*?)[ \t#]*$/;
  const FENCE = /^[ \t]{0,3}(```|~~~)/;
  const RULE = /^[ \t]{0,3}([-*_])([ \t]*\1){2,}[ \t]*$/;
  const ITEM = /^([ \t]*)([-*+]|\d{1,9}[.)])[ \t]+(.*)$/;
  const QUOTE = /^[ \t]{0,3}>[ \t]?(.*)$/;
  const TABLE_ROW = /^[ \t]*\|/;
  const TABLE_RULE = /^[ \t]*\|?[ \t]*:?-+:?[ \t]*(\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$/;
  const ESCAPABLE = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

  function node(tag, className) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    return el;
  }

  /** The cells of a pipe-table row: split on unescaped `|`, outer pipes dropped. */
  function cells(line) {
    let text = line.trim();
    if (text.startsWith("|")) text = text.slice(1);
    const out = [];
    let cell = "";
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (c === "\\" && text[i + 1] === "|") {
        cell += "|";
        i++;
      } else if (c === "|") {
        out.push(cell.trim());
        cell = "";
      } else {
        cell += c;
      }
    }
    if (cell.trim() !== "") out.push(cell.trim());
    return out;
  }

  /** Index of the `)` that closes a destination starting at `from` (nested pairs skipped). */
  function closingParen(text, from) {
    let depth = 0;
    for (let j = from; j < text.length; j++) {
      if (text[j] === "\\") j++;
      else if (text[j] === "(") depth++;
      else if (text[j] === ")" && depth-- === 0) return j;
    }
    return -1;
  }

  /** Inline text into `target`: `code`, **bold**, *italic*, links as their text, escapes. */
  function inline(target, text) {
    let plain = "";
    const flush = () => {
      if (plain) target.append(document.createTextNode(plain));
      plain = "";
    };
    let i = 0;
    while (i < text.length) {
      const c = text[i];
      if (c === "\\" && i + 1 < text.length && ESCAPABLE.includes(text[i + 1])) {
        plain += text[i + 1];
        i += 2;
        continue;
      }
      if (c === "`") {
        const end = text.indexOf("`", i + 1);
        if (end > i + 1) {
          flush();
          target.append(Object.assign(node("code"), { textContent: text.slice(i + 1, end) }));
          i = end + 1;
          continue;
        }
      }
      if ((c === "*" || c === "_") && text[i + 1] === c) {
        const end = text.indexOf(c + c, i + 2);
        if (end > i + 2) {
          flush();
          const strong = node("strong");
          inline(strong, text.slice(i + 2, end));
          target.append(strong);
          i = end + 2;
          continue;
        }
      }
      if (c === "*" && text[i + 1] !== " ") {
        const end = text.indexOf("*", i + 1);
        if (end > i + 1 && text[end - 1] !== " ") {
          flush();
          const em = node("em");
          inline(em, text.slice(i + 1, end));
          target.append(em);
          i = end + 1;
          continue;
        }
      }
      if (c === "[" || (c === "!" && text[i + 1] === "[")) {
        // [text](destination) or ![alt](source): the text alone.
        const open = c === "!" ? i + 1 : i;
        const close = text.indexOf("](", open);
        const end = close < 0 ? -1 : closingParen(text, close + 2);
        if (close > open && end > close) {
          flush();
          inline(target, text.slice(open + 1, close));
          i = end + 1;
          continue;
        }
      }
      plain += c;
      i++;
    }
    flush();
  }

  function table(rows) {
    const wrap = node("div", "table-wrap");
    const tableEl = node("table");
    let body = rows;
    if (rows.length > 1 && TABLE_RULE.test(rows[1]) && rows[1].includes("-")) {
      const head = node("thead");
      const tr = node("tr");
      for (const cell of cells(rows[0])) {
        const th = node("th");
        th.scope = "col";
        inline(th, cell);
        tr.append(th);
      }
      head.append(tr);
      tableEl.append(head);
      body = rows.slice(2);
    }
    const tbody = node("tbody");
    for (const row of body) {
      if (TABLE_RULE.test(row) && row.includes("-")) continue;
      const tr = node("tr");
      for (const cell of cells(row)) {
        const td = node("td");
        inline(td, cell);
        tr.append(td);
      }
      tbody.append(tr);
    }
    tableEl.append(tbody);
    wrap.append(tableEl);
    return wrap;
  }

  /** `text` (Markdown) as a fragment of DOM nodes. */
  function render(text) {
    const out = document.createDocumentFragment();
    const lines = String(text).replace(/\r\n?/g, "\n").split("\n");
    let paragraph = [];
    const endParagraph = () => {
      if (paragraph.length) {
        const p = node("p");
        // Lines of one paragraph read as one run of text (PDF lines, wrapped text).
        inline(p, paragraph.map((l) => l.trim()).join(" "));
        out.append(p);
      }
      paragraph = [];
    };
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      if (line.trim() === "") {
        endParagraph();
        i++;
        continue;
      }
      const fence = line.match(FENCE);
      if (fence) {
        endParagraph();
        const code = [];
        i++;
        while (i < lines.length && !lines[i].trim().startsWith(fence[1])) code.push(lines[i++]);
        i++;
        const pre = node("pre");
        pre.append(Object.assign(node("code"), { textContent: code.join("\n") }));
        out.append(pre);
        continue;
      }
      const heading = line.match(HEADING);
      if (heading) {
        endParagraph();
        // The passage panel's own title is an h2: document headings start one level below.
        const h = node(`h${Math.min(heading[1].length + 2, 6)}`, "md-heading");
        inline(h, heading[2]);
        out.append(h);
        i++;
        continue;
      }
      if (TABLE_ROW.test(line)) {
        endParagraph();
        const rows = [];
        while (i < lines.length && TABLE_ROW.test(lines[i])) rows.push(lines[i++]);
        out.append(table(rows));
        continue;
      }
      if (RULE.test(line)) {
        endParagraph();
        out.append(node("hr"));
        i++;
        continue;
      }
      const item = line.match(ITEM);
      if (item) {
        endParagraph();
        const ordered = /\d/.test(item[2]);
        const list = node(ordered ? "ol" : "ul");
        if (ordered) list.start = parseInt(item[2], 10);
        while (i < lines.length) {
          const m = lines[i].match(ITEM);
          if (m && /\d/.test(m[2]) === ordered) {
            const li = node("li");
            // Nested items keep their depth as an indent.
            const depth = Math.min(Math.floor(m[1].replace(/\t/g, "  ").length / 2), 6);
            if (depth) li.className = `depth-${depth}`;
            inline(li, m[3]);
            list.append(li);
          } else if (!m && /^[ \t]+\S/.test(lines[i]) && list.lastChild) {
            // A continuation line of the item above.
            inline(list.lastChild, ` ${lines[i].trim()}`);
          } else {
            break;
          }
          i++;
        }
        out.append(list);
        continue;
      }
      const quote = line.match(QUOTE);
      if (quote) {
        endParagraph();
        const quoted = [];
        while (i < lines.length) {
          const m = lines[i].match(QUOTE);
          if (!m) break;
          quoted.push(m[1]);
          i++;
        }
        const block = node("blockquote");
        block.append(render(quoted.join("\n")));
        out.append(block);
        continue;
      }
      paragraph.push(line);
      i++;
    }
    endParagraph();
    return out;
  }

  return { render };
})();
