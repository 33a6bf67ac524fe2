//! What may follow `<`: raw HTML (tags, comments, declarations, processing instructions)
//! or an autolink, by CommonMark's grammar.

use super::bytes::{blank_line_after, is_ws};

#[derive(Debug, Clone, Copy)]
pub(super) enum Angle {
    Html(usize),
    Autolink { len: usize, email: bool },
    No(usize),
    More,
}

/// Raw HTML or an autolink at the start of `s` (which starts with `<`), by CommonMark's
/// grammar; `No(m)` when the byte at `m` does not fit. Neither may span a blank line.
pub(super) fn angle_at(s: &str, eof: bool) -> Angle {
    let b = s.as_bytes();
    let more = |k: usize| {
        if eof { Angle::No(k) } else { Angle::More }
    };
    let Some(&c1) = b.get(1) else {
        return more(1);
    };
    // An autolink `<scheme:...>`, an email autolink `<a@b.c>` or raw HTML: the first that
    // is one (waiting while any may still be); when none, the furthest any read is where
    // the text stopped fitting.
    let scheme = if c1.is_ascii_alphabetic() {
        scheme_autolink(b, eof)
    } else {
        Angle::No(1)
    };
    let email = if is_email_local(c1) {
        email_autolink(b, eof)
    } else {
        Angle::No(1)
    };
    let candidates = [scheme, email, html_at(b, eof)];
    if candidates.iter().any(|a| matches!(a, Angle::More)) {
        return Angle::More;
    }
    if let Some(found) = candidates
        .iter()
        .find(|a| matches!(a, Angle::Autolink { .. } | Angle::Html(_)))
    {
        return *found;
    }
    Angle::No(
        candidates
            .iter()
            .map(|a| match a {
                Angle::No(m) => *m,
                _ => 1,
            })
            .max()
            .unwrap_or(1),
    )
}

fn is_email_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b".!#$%&'*+/=?^_`{|}~-".contains(&c)
}

/// Raw HTML at the start of `b` (which starts with `<` and has a second byte).
fn html_at(b: &[u8], eof: bool) -> Angle {
    let more = |k: usize| if eof { Angle::No(k) } else { Angle::More };
    match b[1] {
        c if c.is_ascii_alphabetic() => open_tag(b, eof),
        b'/' => close_tag(b, eof),
        b'?' => delimited(b, 2, b"?>", eof),
        b'!' => {
            if b.len() < 4 && b"<!--".starts_with(b) || b.len() < 9 && b"<![CDATA[".starts_with(b) {
                return more(b.len());
            }
            if b.starts_with(b"<!-->") {
                Angle::Html(5)
            } else if b.starts_with(b"<!--->") {
                Angle::Html(6)
            } else if b.starts_with(b"<!--") {
                delimited(b, 4, b"-->", eof)
            } else if b.starts_with(b"<![CDATA[") {
                delimited(b, 9, b"]]>", eof)
            } else {
                match b.get(2) {
                    None => more(2),
                    Some(c) if c.is_ascii_alphabetic() => delimited(b, 3, b">", eof),
                    _ => Angle::No(2),
                }
            }
        }
        _ => Angle::No(1),
    }
}

/// Something that ends at `close`, from `from`, without a blank line.
fn delimited(b: &[u8], from: usize, close: &[u8], eof: bool) -> Angle {
    let mut k = from;
    while k + close.len() <= b.len() {
        if b[k..].starts_with(close) {
            return Angle::Html(k + close.len());
        }
        if b[k] == b'\n' && blank_line_after(&b[k + 1..]) == Some(true) {
            return Angle::No(k);
        }
        k += 1;
    }
    if eof { Angle::No(b.len()) } else { Angle::More }
}

/// A `<scheme:...>` autolink at the start of `b`: `Autolink`, `More`, or `No` at the first byte
/// that does not fit.
fn scheme_autolink(b: &[u8], eof: bool) -> Angle {
    // Scheme: 2 to 32 of [A-Za-z0-9+.-] after the first letter, then `:`.
    let mut k = 1;
    while k < b.len()
        && k <= 33
        && (b[k].is_ascii_alphanumeric() || matches!(b[k], b'+' | b'.' | b'-'))
    {
        k += 1;
    }
    if k == b.len() && !eof && k <= 33 {
        return Angle::More;
    }
    if b.get(k) == Some(&b':') && (3..=33).contains(&k) {
        let mut j = k + 1;
        while let Some(&c) = b.get(j) {
            if c == b'>' {
                return Angle::Autolink {
                    len: j + 1,
                    email: false,
                };
            }
            if c == b'<' || c <= b' ' || c == 0x7f {
                return Angle::No(j);
            }
            j += 1;
        }
        return if eof { Angle::No(j) } else { Angle::More };
    }
    Angle::No(k)
}

/// An email autolink at the start of `b`: local part, `@`, labels, `>`.
fn email_autolink(b: &[u8], eof: bool) -> Angle {
    let mut j = 1;
    while b.get(j).is_some_and(|c| is_email_local(*c)) {
        j += 1;
    }
    if j == b.len() {
        return if eof { Angle::No(j) } else { Angle::More };
    }
    if b[j] != b'@' {
        return Angle::No(j);
    }
    j += 1;
    let domain_start = j;
    while let Some(&c) = b.get(j) {
        if c.is_ascii_alphanumeric() || c == b'-' || c == b'.' {
            j += 1;
        } else {
            break;
        }
    }
    match b.get(j) {
        None if eof => Angle::No(j),
        None => Angle::More,
        Some(b'>') if j > domain_start => Angle::Autolink {
            len: j + 1,
            email: true,
        },
        _ => Angle::No(j),
    }
}

/// Whitespace inside a tag: spaces, tabs, and at most one line ending per run (a blank line
/// ends it). Returns the offset after it, `Err(offset)` at a blank line, or `None` at the end.
pub(super) fn tag_space(b: &[u8], mut k: usize) -> Option<Result<usize, usize>> {
    let mut newlines = 0;
    while let Some(&c) = b.get(k) {
        match c {
            b' ' | b'\t' | b'\r' | b'\x0c' => {}
            b'\n' => {
                newlines += 1;
                if newlines > 1 {
                    return Some(Err(k));
                }
            }
            _ => return Some(Ok(k)),
        }
        k += 1;
    }
    None
}

fn open_tag(b: &[u8], eof: bool) -> Angle {
    let more = |k| if eof { Angle::No(k) } else { Angle::More };
    let mut k = 1;
    while b
        .get(k)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'-')
    {
        k += 1;
    }
    loop {
        let Some(&c) = b.get(k) else { return more(k) };
        match c {
            b'>' => return Angle::Html(k + 1),
            b'/' => {
                return match b.get(k + 1) {
                    Some(b'>') => Angle::Html(k + 2),
                    None => more(k + 1),
                    _ => Angle::No(k + 1),
                };
            }
            c if is_ws(c) => {}
            _ => return Angle::No(k),
        }
        // Whitespace, then an attribute, `/>` or `>`.
        let after = match tag_space(b, k) {
            None => return more(b.len()),
            Some(Err(at)) => return Angle::No(at),
            Some(Ok(after)) => after,
        };
        k = after;
        let c = b[k];
        if c == b'>' || c == b'/' {
            continue;
        }
        if !(c.is_ascii_alphabetic() || c == b'_' || c == b':') {
            return Angle::No(k);
        }
        while b
            .get(k)
            .is_some_and(|c| c.is_ascii_alphanumeric() || b"_.:-".contains(c))
        {
            k += 1;
        }
        // Optional `= value`.
        let before_eq = k;
        let at = match tag_space(b, k) {
            None => return more(b.len()),
            Some(Err(at)) => return Angle::No(at),
            Some(Ok(at)) => at,
        };
        if b[at] != b'=' {
            k = before_eq;
            continue;
        }
        k = match tag_space(b, at + 1) {
            None => return more(b.len()),
            Some(Err(at)) => return Angle::No(at),
            Some(Ok(v)) => v,
        };
        match b[k] {
            q @ (b'"' | b'\'') => {
                let mut j = k + 1;
                loop {
                    let Some(&c) = b.get(j) else { return more(j) };
                    if c == q {
                        break;
                    }
                    if c == b'\n' && blank_line_after(&b[j + 1..]) != Some(false) {
                        return match blank_line_after(&b[j + 1..]) {
                            Some(true) => Angle::No(j),
                            _ => more(j),
                        };
                    }
                    j += 1;
                }
                k = j + 1;
            }
            _ => {
                let start = k;
                while b
                    .get(k)
                    .is_some_and(|c| !is_ws(*c) && !b"\"'=<>`".contains(c))
                {
                    k += 1;
                }
                if k == start {
                    return Angle::No(k);
                }
            }
        }
    }
}

fn close_tag(b: &[u8], eof: bool) -> Angle {
    let more = |k| if eof { Angle::No(k) } else { Angle::More };
    match b.get(2) {
        None => return more(2),
        Some(c) if c.is_ascii_alphabetic() => {}
        _ => return Angle::No(2),
    }
    let mut k = 3;
    while b
        .get(k)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'-')
    {
        k += 1;
    }
    match tag_space(b, k) {
        None => more(b.len()),
        Some(Err(at)) => Angle::No(at),
        Some(Ok(at)) if b[at] == b'>' => Angle::Html(at + 1),
        Some(Ok(at)) => Angle::No(at),
    }
}
