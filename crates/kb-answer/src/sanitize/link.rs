//! Link destinations and titles: the `(destination "title")` of an inline link or image,
//! and what follows `[label]:` in a link reference definition.

use super::angle::tag_space;
use super::bytes::blank_line_after;

/// Bytes taken by a backslash at `j`: an escape of ASCII punctuation, or itself.
fn escape_len(b: &[u8], j: usize) -> usize {
    if b.get(j + 1).is_some_and(u8::is_ascii_punctuation) {
        2
    } else {
        1
    }
}

pub(super) enum Group {
    /// Its length (from the opening byte) and its destination as written.
    Done {
        len: usize,
        dest: String,
    },
    No(usize),
    More,
}

/// Spaces and tabs with at most one line ending; `Err` at a blank line, `None` at the end.
fn link_space(b: &[u8], k: usize) -> Option<Result<usize, usize>> {
    tag_space(b, k)
}

/// A link destination at `k`: `<...>` or a run without spaces with balanced parentheses.
/// Returns (start, end of destination text, offset after it).
fn destination_at(b: &[u8], k: usize, eof: bool) -> Result<(usize, usize, usize), Group> {
    let more = |k| if eof { Group::No(k) } else { Group::More };
    if b.get(k) == Some(&b'<') {
        let mut j = k + 1;
        loop {
            match b.get(j) {
                None => return Err(more(j)),
                Some(b'>') => return Ok((k + 1, j, j + 1)),
                Some(b'\n' | b'<') => return Err(Group::No(j)),
                Some(b'\\') => j += escape_len(b, j),
                Some(_) => j += 1,
            }
        }
    }
    let mut depth = 0usize;
    let mut j = k;
    loop {
        let Some(&c) = b.get(j) else {
            return Err(more(j));
        };
        match c {
            b'\\' => {
                if j + 1 >= b.len() && !eof {
                    return Err(Group::More);
                }
                j += escape_len(b, j);
                continue;
            }
            b'(' => depth += 1,
            b')' if depth == 0 => break,
            b')' => depth -= 1,
            c if c <= b' ' || c == 0x7f => break,
            _ => {}
        }
        j += 1;
    }
    if depth > 0 {
        return Err(Group::No(j));
    }
    Ok((k, j, j))
}

/// A link title at `k` (`"..."`, `'...'` or `(...)`), no blank line inside: offset after it.
fn title_at(b: &[u8], k: usize, eof: bool) -> Result<usize, Group> {
    let more = |k| if eof { Group::No(k) } else { Group::More };
    let close = match b[k] {
        b'"' => b'"',
        b'\'' => b'\'',
        b'(' => b')',
        _ => return Err(Group::No(k)),
    };
    let mut j = k + 1;
    loop {
        let Some(&c) = b.get(j) else {
            return Err(more(j));
        };
        if c == b'\\' {
            if j + 1 >= b.len() && !eof {
                return Err(Group::More);
            }
            j += escape_len(b, j);
            continue;
        }
        if c == close {
            return Ok(j + 1);
        }
        if close == b')' && c == b'(' {
            return Err(Group::No(j));
        }
        if c == b'\n' {
            match blank_line_after(&b[j + 1..]) {
                Some(true) => return Err(Group::No(j)),
                None => return Err(more(j)),
                Some(false) => {}
            }
        }
        j += 1;
    }
}

/// `(destination "title")` at the start of `s` (which starts with `(`).
pub(super) fn destination_group(s: &str, eof: bool) -> Group {
    let b = s.as_bytes();
    let more = |k| if eof { Group::No(k) } else { Group::More };
    let k = match link_space(b, 1) {
        None => return more(b.len()),
        Some(Err(at)) => return Group::No(at),
        Some(Ok(k)) => k,
    };
    if b[k] == b')' {
        return Group::Done {
            len: k + 1,
            dest: String::new(),
        };
    }
    let (start, end, after) = match destination_at(b, k, eof) {
        Ok(d) => d,
        Err(g) => return g,
    };
    let mut k = match link_space(b, after) {
        None => return more(b.len()),
        Some(Err(at)) => return Group::No(at),
        Some(Ok(k)) => k,
    };
    if b[k] != b')' {
        if k == after {
            return Group::No(k);
        }
        k = match title_at(b, k, eof) {
            Ok(k) => k,
            Err(g) => return g,
        };
        k = match link_space(b, k) {
            None => return more(b.len()),
            Some(Err(at)) => return Group::No(at),
            Some(Ok(k)) => k,
        };
        if b[k] != b')' {
            return Group::No(k);
        }
    }
    Group::Done {
        len: k + 1,
        dest: s[start..end].to_owned(),
    }
}

/// What follows `[label]:` of a link reference definition: a destination, an optional
/// title, then the end of the line. The length excludes the line ending.
pub(super) fn definition_tail(s: &str, eof: bool) -> Group {
    let b = s.as_bytes();
    let more = |k| if eof { Group::No(k) } else { Group::More };
    let k = match link_space(b, 0) {
        None => return more(b.len()),
        Some(Err(at)) => return Group::No(at),
        Some(Ok(k)) => k,
    };
    let (start, end, after) = match destination_at(b, k, eof) {
        Ok(d) if d.2 > k => d,
        Ok(_) => return Group::No(k),
        Err(Group::No(m)) if m == b.len() && eof => (k, m, m),
        Err(g) => return g,
    };
    let done = |len| Group::Done {
        len,
        dest: s[start..end].to_owned(),
    };
    // The end of the line, right after the destination or after a title.
    let line_end = |from: usize| -> Option<Result<usize, usize>> {
        let mut j = from;
        loop {
            match b.get(j) {
                None => return None,
                Some(b' ' | b'\t' | b'\r') => j += 1,
                Some(b'\n') => return Some(Ok(j)),
                Some(_) => return Some(Err(j)),
            }
        }
    };
    match line_end(after) {
        None if eof => done(b.len()),
        None => Group::More,
        Some(Ok(_)) => done(after),
        Some(Err(t)) if t > after => match title_at(b, t, eof) {
            Ok(k) => match line_end(k) {
                None if eof => done(b.len()),
                None => Group::More,
                Some(Ok(_)) => done(k),
                Some(Err(m)) => Group::No(m),
            },
            Err(g) => g,
        },
        Some(Err(m)) => Group::No(m),
    }
}
