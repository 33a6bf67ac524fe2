//! Character references and backslash escapes, decoded as a renderer reads them.

/// Character references that decode to letters, digits or `:/.@` are decoded before the
/// scan, so that `&#104;ttps&#58;//` is seen for the URL a renderer will show; the others
/// are left as written. Returns the decoded text and the tail that may still be a reference.
pub(super) fn decode_references(text: &str, eof: bool) -> (String, String) {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut i = 0;
    while let Some(at) = memchr_amp(bytes, i) {
        match reference_at(&text[at..]) {
            Reference::Complete(len, Some(c))
                if c.is_ascii_alphanumeric() || ":/.@".contains(c) =>
            {
                out.push_str(&text[last..at]);
                out.push(c);
                last = at + len;
                i = at + len;
            }
            Reference::Complete(len, _) => i = at + len,
            Reference::Partial if !eof => {
                out.push_str(&text[last..at]);
                return (out, text[at..].to_owned());
            }
            Reference::Partial | Reference::Not => i = at + 1,
        }
    }
    out.push_str(&text[last..]);
    (out, String::new())
}

fn memchr_amp(bytes: &[u8], from: usize) -> Option<usize> {
    bytes[from..]
        .iter()
        .position(|&b| b == b'&')
        .map(|p| p + from)
}

enum Reference {
    /// Length and the character, if kb knows the name.
    Complete(usize, Option<char>),
    /// The text ends inside something that may still be a reference.
    Partial,
    Not,
}

/// The character reference at the start of `s` (which starts with `&`).
fn reference_at(s: &str) -> Reference {
    let b = s.as_bytes();
    let (digits_from, radix) = match (b.get(1), b.get(2)) {
        (None, _) => return Reference::Partial,
        (Some(b'#'), Some(b'x' | b'X')) => (3, 16),
        (Some(b'#'), None) => return Reference::Partial,
        (Some(b'#'), _) => (2, 10),
        (Some(c), _) if c.is_ascii_alphabetic() => (1, 0),
        _ => return Reference::Not,
    };
    let max = match radix {
        16 => 6,
        10 => 7,
        _ => 32,
    };
    let mut j = digits_from;
    while j < b.len() && j - digits_from < max {
        let ok = match radix {
            16 => b[j].is_ascii_hexdigit(),
            10 => b[j].is_ascii_digit(),
            _ => b[j].is_ascii_alphanumeric(),
        };
        if !ok {
            break;
        }
        j += 1;
    }
    if j == b.len() {
        return Reference::Partial;
    }
    if b[j] != b';' || j == digits_from {
        return Reference::Not;
    }
    let body = &s[digits_from..j];
    let c = match radix {
        0 => named_reference(body),
        r => u32::from_str_radix(body, r).ok().and_then(char::from_u32),
    };
    Reference::Complete(j + 1, c)
}

fn named_reference(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "colon" => ':',
        "sol" => '/',
        "bsol" => '\\',
        "period" => '.',
        "commat" => '@',
        "lpar" => '(',
        "rpar" => ')',
        "lsqb" | "lbrack" => '[',
        "rsqb" | "rbrack" => ']',
        "num" => '#',
        "quest" => '?',
        "equals" => '=',
        "percnt" => '%',
        "plus" => '+',
        "nbsp" => '\u{a0}',
        _ => return None,
    })
}

pub(super) fn has_char_reference(text: &str) -> bool {
    text.match_indices('&')
        .any(|(at, _)| matches!(reference_at(&text[at..]), Reference::Complete(..)))
}

/// A Markdown link destination as a renderer reads it: backslash escapes and character
/// references decoded; `None` when it holds a reference kb cannot decode.
pub(super) fn decode_destination(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let rest = &raw[i..];
        let c = rest.chars().next().expect("BUG: i is on a char boundary");
        match c {
            '\\' if rest[1..].starts_with(|n: char| n.is_ascii_punctuation()) => {
                out.push(rest[1..].chars().next().expect("BUG: checked above"));
                i += 2;
            }
            '&' => match reference_at(rest) {
                Reference::Complete(len, Some(d)) => {
                    out.push(d);
                    i += len;
                }
                Reference::Complete(_, None) => return None,
                _ => {
                    out.push('&');
                    i += 1;
                }
            },
            _ => {
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    Some(out)
}
