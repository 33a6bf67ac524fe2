//! Bare URLs (`http://`, `https://`, `ftp://`, `www.`), as GFM-style autolinkers find them.

use super::bytes::is_ws;

pub(super) enum UrlAt {
    /// `extent`: up to whitespace, `<`, a bracket or a backtick; `end`: without trailing
    /// punctuation.
    Url {
        extent: usize,
        end: usize,
    },
    No(usize),
    More,
}

const URL_PREFIXES: [&[u8]; 4] = [b"http://", b"https://", b"ftp://", b"www."];

/// A bare URL at the start of `s`. Backslash escapes inside the prefix are read through
/// (`http:\/\/` renders as `http://`).
pub(super) fn url_at(s: &str, eof: bool) -> UrlAt {
    let b = s.as_bytes();
    let mut best_mismatch = 0;
    let mut matched = None;
    for prefix in URL_PREFIXES {
        let (mut k, mut p) = (0, 0);
        let outcome = loop {
            if p == prefix.len() {
                break Some(Ok(k));
            }
            let Some(&c) = b.get(k) else {
                break if eof { Some(Err(k)) } else { None };
            };
            if c == b'\\' && prefix[p].is_ascii_punctuation() {
                match b.get(k + 1) {
                    None if !eof => break None,
                    Some(&n) if n == prefix[p] => {
                        k += 2;
                        p += 1;
                        continue;
                    }
                    _ => break Some(Err(k)),
                }
            }
            if c.eq_ignore_ascii_case(&prefix[p]) {
                k += 1;
                p += 1;
            } else {
                break Some(Err(k));
            }
        };
        match outcome {
            None => return UrlAt::More,
            Some(Ok(k)) => {
                matched = Some(k);
                break;
            }
            Some(Err(k)) => best_mismatch = best_mismatch.max(k),
        }
    }
    let Some(start) = matched else {
        return UrlAt::No(best_mismatch);
    };
    // Up to whitespace or `<` as renderers do; past the host also up to a bracket or a
    // backtick, so that a kept URL never swallows the `](` of a link around it. Inside the
    // host they belong to the URL (which is then refused): a renderer that links
    // `https://a.example[@b.example` sends the browser to b.example.
    let mut extent = start;
    let mut in_path = false;
    while let Some(&c) = b.get(extent) {
        if is_ws(c) || c == b'<' || in_path && matches!(c, b'[' | b']' | b'`') {
            break;
        }
        in_path |= matches!(c, b'/' | b'?' | b'#');
        extent += 1;
    }
    if extent == b.len() && !eof {
        return UrlAt::More;
    }
    let mut end = extent;
    while end > start {
        let trim = match b[end - 1] {
            b'?' | b'!' | b'.' | b',' | b':' | b'*' | b'_' | b'~' | b'\'' | b'"' | b';' => true,
            b')' => {
                let url = &b[..end];
                url.iter().filter(|&&c| c == b')').count()
                    > url.iter().filter(|&&c| c == b'(').count()
            }
            _ => false,
        };
        if !trim {
            break;
        }
        end -= 1;
    }
    // Trimming only removes ASCII, so `end` is on a character boundary.
    UrlAt::Url { extent, end }
}
