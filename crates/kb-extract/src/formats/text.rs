//! Turning the bytes of a text file (Markdown, plain text, HTML) into a string.
//!
//! In order: a byte-order mark (UTF-8, UTF-16LE, UTF-16BE) decides; then a charset the file
//! declares (HTML `<meta charset>`), if the bytes decode cleanly with it; NUL bytes mean binary;
//! valid UTF-8 is UTF-8; anything else is given to `chardetng`, which guesses the legacy
//! encoding (GBK/GB18030, Big5, Shift_JIS, EUC-KR, windows-125x, …) as a browser would. A guess
//! is kept only when the bytes decode with almost no errors and the text has almost no control
//! characters; otherwise the file is refused with a reason.

use crate::LoadError;
use encoding_rs::{DecoderResult, Encoding, UTF_8};

/// Text decoded from a file's bytes.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) text: String,
    pub(crate) encoding: &'static Encoding,
}

/// At most one character in this many may be a replacement character (a byte sequence the
/// encoding does not define) before a guessed encoding is rejected.
const MAX_REPLACEMENT_RATE: usize = 1000;
/// At most one character in this many may be a control character before the file is taken
/// for binary data.
const MAX_CONTROL_RATE: usize = 100;

/// Decodes `bytes`, using `declared` (a charset the file names) when it fits the bytes.
pub(crate) fn decode(
    bytes: &[u8],
    declared: Option<&'static Encoding>,
) -> Result<Decoded, LoadError> {
    if let Some((encoding, bom_len)) = Encoding::for_bom(bytes) {
        let text = decode_strict(encoding, &bytes[bom_len..]).map_err(|offset| {
            LoadError::InvalidEncoding {
                encoding: encoding.name(),
                offset: bom_len + offset,
            }
        })?;
        return checked(text, encoding);
    }
    if let Some(encoding) = declared
        && let Ok(text) = decode_strict(encoding, bytes)
        && !text.contains('\0')
    {
        return checked(text, encoding);
        // Otherwise the declaration is wrong, which is common (pages saved in windows-1252
        // that say UTF-8): detect.
    }
    if bytes.contains(&0) {
        return Err(LoadError::Binary);
    }
    let utf8_error = match std::str::from_utf8(bytes) {
        Ok(text) => return checked(text.to_owned(), UTF_8),
        Err(e) => e,
    };
    if mostly_utf8(bytes) {
        // A damaged UTF-8 file: guessing a legacy encoding would turn it all into mojibake.
        return Err(LoadError::InvalidEncoding {
            encoding: UTF_8.name(),
            offset: utf8_error.valid_up_to(),
        });
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    let encoding = detector.guess(None, chardetng::Utf8Detection::Deny);
    let (text, _) = encoding.decode_without_bom_handling(bytes);
    let chars = text.chars().count();
    let replacements = text.chars().filter(|c| *c == '\u{fffd}').count();
    if replacements * MAX_REPLACEMENT_RATE > chars {
        return Err(LoadError::UnknownEncoding);
    }
    checked(text.into_owned(), encoding)
}

/// Decodes all of `bytes` or returns the offset of the first malformed sequence.
fn decode_strict(encoding: &'static Encoding, bytes: &[u8]) -> Result<String, usize> {
    let mut decoder = encoding.new_decoder_without_bom_handling();
    let capacity = decoder
        .max_utf8_buffer_length_without_replacement(bytes.len())
        .ok_or(0usize)?;
    let mut text = String::with_capacity(capacity);
    let (result, read) = decoder.decode_to_string_without_replacement(bytes, &mut text, true);
    match result {
        DecoderResult::InputEmpty => Ok(text),
        DecoderResult::Malformed(bad, after) => {
            Err(read.saturating_sub(usize::from(bad) + usize::from(after)))
        }
        DecoderResult::OutputFull => Err(read),
    }
}

/// Whether non-UTF-8 bytes are still mostly UTF-8: at least three valid multi-byte characters
/// for each invalid sequence.
fn mostly_utf8(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let (mut valid, mut invalid) = (0usize, 0usize);
    for c in text.chars().filter(|c| !c.is_ascii()) {
        if c == '\u{fffd}' {
            invalid += 1;
        } else {
            valid += 1;
        }
    }
    valid >= 3 * invalid.max(1)
}

/// Rejects text that is mostly control characters: binary data that happened to decode.
fn checked(text: String, encoding: &'static Encoding) -> Result<Decoded, LoadError> {
    let chars = text.chars().count();
    let controls = text
        .chars()
        .filter(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0c'))
        .count();
    if controls * MAX_CONTROL_RATE > chars {
        return Err(LoadError::Binary);
    }
    Ok(Decoded { text, encoding })
}

/// The charset an HTML page declares in its first 1024 bytes (`<meta charset="...">` or
/// `<meta http-equiv="Content-Type" content="...; charset=...">`), as the HTML standard's
/// pre-scan would find it. A declared UTF-16 means UTF-8 there (the bytes were re-encoded).
pub(crate) fn html_declared_charset(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = &bytes[..bytes.len().min(1024)];
    let lower = head.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = find(&lower[from..], b"charset") {
        let mut i = from + at + b"charset".len();
        from = i;
        while lower.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
            i += 1;
        }
        if lower.get(i) != Some(&b'=') {
            continue;
        }
        i += 1;
        while lower
            .get(i)
            .is_some_and(|b| b.is_ascii_whitespace() || *b == b'"' || *b == b'\'')
        {
            i += 1;
        }
        let end = lower[i..]
            .iter()
            .position(|b| b.is_ascii_whitespace() || matches!(b, b'"' | b'\'' | b';' | b'>' | b'/'))
            .map_or(lower.len(), |n| i + n);
        let encoding = Encoding::for_label(&lower[i..end])?;
        return Some(
            if encoding.is_single_byte() || encoding.output_encoding() == encoding {
                encoding
            } else {
                encoding.output_encoding()
            },
        );
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_order_marks_decide_the_encoding() {
        let utf16le = [0xff, 0xfe, b'h', 0, b'i', 0];
        let utf16be = [0xfe, 0xff, 0, b'h', 0, b'i'];

        assert_eq!(decode(&utf16le, None).unwrap().text, "hi");
        assert_eq!(decode(&utf16be, None).unwrap().encoding.name(), "UTF-16BE");
        assert_eq!(decode(b"\xef\xbb\xbfhi", None).unwrap().text, "hi");
    }

    #[test]
    fn a_byte_order_mark_that_lies_is_an_error() {
        // An unpaired surrogate after a UTF-16LE mark.
        let bad = [0xff, 0xfe, 0x00, 0xd8, b'a', 0];

        assert!(matches!(
            decode(&bad, None),
            Err(LoadError::InvalidEncoding {
                encoding: "UTF-16LE",
                offset: 2
            })
        ));
    }

    #[test]
    fn damaged_utf8_is_an_error_not_a_legacy_guess() {
        let mut bytes = "公司为上海办公室的全体正式员工发放每月五百元的通勤补贴"
            .as_bytes()
            .to_vec();
        bytes.insert(9, 0xff);

        assert!(matches!(
            decode(&bytes, None),
            Err(LoadError::InvalidEncoding {
                encoding: "UTF-8",
                offset: 9
            })
        ));
    }

    #[test]
    fn nul_bytes_without_a_byte_order_mark_are_binary() {
        assert!(matches!(decode(b"ab\0cd", None), Err(LoadError::Binary)));
    }

    #[test]
    fn control_character_soup_is_binary_even_if_it_decodes() {
        let bytes: Vec<u8> = (1u8..=255).cycle().take(4000).collect();

        assert!(matches!(decode(&bytes, None), Err(LoadError::Binary)));
    }

    #[test]
    fn gbk_chinese_is_detected() {
        let (bytes, _, _) = encoding_rs::GBK
            .encode("公司为上海办公室的全体正式员工发放每月五百元的通勤补贴，随当月工资一起发放。");

        let decoded = decode(&bytes, None).unwrap();

        assert_eq!(decoded.encoding.name(), "GBK");
        assert!(decoded.text.contains("通勤补贴"));
    }

    #[test]
    fn a_declared_charset_is_used_when_it_fits_and_ignored_when_it_does_not() {
        let latin = b"Cr\xe8me br\xfbl\xe9e";
        let windows_1252 = Encoding::for_label(b"windows-1252");

        assert_eq!(decode(latin, windows_1252).unwrap().text, "Crème brûlée");
        // Declared UTF-8, but the bytes are windows-1252: detection takes over.
        assert_eq!(decode(latin, Some(UTF_8)).unwrap().text, "Crème brûlée");
    }

    #[test]
    fn html_charset_declarations_are_found() {
        let meta = br#"<html><head><meta charset="GBK"><title>x</title>"#;
        let http_equiv =
            br#"<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">"#;
        let utf16 = br#"<meta charset=utf-16le>"#;

        assert_eq!(html_declared_charset(meta).unwrap().name(), "GBK");
        assert_eq!(
            html_declared_charset(http_equiv).unwrap().name(),
            "windows-1252"
        );
        assert_eq!(html_declared_charset(utf16).unwrap().name(), "UTF-8");
        assert!(html_declared_charset(b"<p>charset is a word</p>").is_none());
    }
}
