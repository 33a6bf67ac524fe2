//! The rewriting scan: decides, position by position, what is plain text, what is a link,
//! image, tag or URL to remove or keep, and what must wait for more text.

use super::angle::{Angle, angle_at};
use super::bare_url::{UrlAt, url_at};
use super::bytes::blank_line_after;
use super::hosts::AllowedHosts;
use super::link::{Group, definition_tail, destination_group};
use super::references::decode_destination;

/// What a removed autolink or bare URL is replaced with.
pub const LINK_REMOVED: &str = "(link removed)";

/// Whether a destination may name another site: it holds (once decoded) a `:` (a scheme),
/// a `/` or a `\` (`//host`), or cannot be decoded.
fn leaves_the_site(dest: &str) -> bool {
    decode_destination(dest).is_none_or(|d| d.contains([':', '/', '\\']))
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

pub(super) struct Scanner<'h> {
    pub(super) buf: String,
    pub(super) eof: bool,
    pub(super) hosts: &'h AllowedHosts,
    pub(super) removed: usize,
    /// Bumped whenever the buffer changes, so that resolving a construct reports a change
    /// made further on too.
    pub(super) generation: u64,
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
    pub(super) fn run(&mut self) -> (String, String) {
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
