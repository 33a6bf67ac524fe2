//! What kind of picture a file is and how big its pages are, read from its headers alone.
//!
//! This runs before any decoder sees the bytes, for two reasons: the OCR engine is handed only
//! files that really are PNG, JPEG, WebP or TIFF (Tesseract reads any other file as a list of
//! image paths or URLs to open, which untrusted input must never reach), and a picture whose
//! headers declare more pixels than [`MAX_PIXELS`] is refused before a decoder allocates them
//! (a few kilobytes of PNG can declare gigapixels). Every read is bounds-checked and every loop
//! bounded, so no input can make this panic or run long.

use std::collections::HashSet;

/// The most pixels one page may have: a 50-megapixel phone photo fits, and so does an A3 page
/// scanned at 300 dpi (17 MP) with room to spare. Decoded as 32-bit colour this is 200 MB.
pub(crate) const MAX_PIXELS: u64 = 50_000_000;

/// How many pages (image file directories) of a TIFF are read before it is refused.
const MAX_TIFF_PAGES: usize = 10_000;
/// How many directory entries of a TIFF are looked at in all, before it is refused.
const MAX_TIFF_ENTRIES: usize = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImageKind {
    Png,
    Jpeg,
    WebP,
    Tiff,
}

/// A picture's kind and the size of each of its pages (one page, except for a TIFF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageInfo {
    pub(crate) kind: ImageKind,
    /// `(width, height)` in pixels of each page, in file order.
    pub(crate) pages: Vec<(u32, u32)>,
}

impl ImageInfo {
    /// The first page over [`MAX_PIXELS`], as `(width, height)`.
    pub(crate) fn oversized_page(&self) -> Option<(u32, u32)> {
        self.pages
            .iter()
            .copied()
            .find(|&(w, h)| u64::from(w) * u64::from(h) > MAX_PIXELS)
    }
}

/// Reads the kind and page sizes of a PNG, JPEG, WebP or TIFF file; anything else, or a file
/// whose headers are cut short or make no sense, is an error saying what is wrong.
pub(crate) fn inspect(bytes: &[u8]) -> Result<ImageInfo, String> {
    let (kind, pages) = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        (ImageKind::Png, vec![png(bytes)?])
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        (ImageKind::Jpeg, vec![jpeg(bytes)?])
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        (ImageKind::WebP, vec![webp(bytes)?])
    } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        (ImageKind::Tiff, tiff(bytes)?)
    } else if bytes.starts_with(b"II+\0") || bytes.starts_with(b"MM\0+") {
        return Err("it is a BigTIFF, which is not read; save it as an ordinary TIFF".into());
    } else {
        return Err("it is not a PNG, JPEG, WebP or TIFF picture".into());
    };
    if pages.iter().any(|&(w, h)| w == 0 || h == 0) {
        return Err("its header gives it no width or height".into());
    }
    Ok(ImageInfo { kind, pages })
}

const TRUNCATED: &str = "its header is cut short";

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn le16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn le24(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 3)?;
    Some(u32::from(b[0]) | (u32::from(b[1]) << 8) | (u32::from(b[2]) << 16))
}

fn le32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// The IHDR chunk comes first: width and height at bytes 16 and 20.
fn png(bytes: &[u8]) -> Result<(u32, u32), String> {
    if bytes.get(12..16) != Some(b"IHDR") {
        return Err("its first chunk is not IHDR".into());
    }
    Ok((
        be32(bytes, 16).ok_or(TRUNCATED)?,
        be32(bytes, 20).ok_or(TRUNCATED)?,
    ))
}

/// Walks the marker segments up to the first start-of-frame, which holds the size.
fn jpeg(bytes: &[u8]) -> Result<(u32, u32), String> {
    let mut at = 2;
    loop {
        // Markers may be padded with any number of 0xff bytes.
        while bytes.get(at) == Some(&0xff) && bytes.get(at + 1) == Some(&0xff) {
            at += 1;
        }
        if bytes.get(at) != Some(&0xff) {
            return Err(if at >= bytes.len() {
                TRUNCATED.into()
            } else {
                format!("no JPEG marker at byte {at}")
            });
        }
        let marker = *bytes.get(at + 1).ok_or(TRUNCATED)?;
        at += 2;
        match marker {
            // Markers without a length.
            0x01 | 0xd0..=0xd7 => continue,
            0xd9 | 0xda => return Err("no frame header before the image data".into()),
            _ => {}
        }
        let length = usize::from(be16(bytes, at).ok_or(TRUNCATED)?);
        if length < 2 {
            return Err(format!("a segment at byte {at} has length {length}"));
        }
        // SOF0–SOF15, except DHT (c4), JPG (c8) and DAC (cc), which share the range.
        if (0xc0..=0xcf).contains(&marker) && !matches!(marker, 0xc4 | 0xc8 | 0xcc) {
            let height = be16(bytes, at + 3).ok_or(TRUNCATED)?;
            let width = be16(bytes, at + 5).ok_or(TRUNCATED)?;
            return Ok((u32::from(width), u32::from(height)));
        }
        at += length;
    }
}

/// The first chunk after the RIFF header is VP8 (lossy), VP8L (lossless) or VP8X (extended,
/// which gives the canvas size).
fn webp(bytes: &[u8]) -> Result<(u32, u32), String> {
    match bytes.get(12..16).ok_or(TRUNCATED)? {
        b"VP8 " => {
            if bytes.get(23..26) != Some(&[0x9d, 0x01, 0x2a]) {
                return Err("its VP8 frame has no start code".into());
            }
            let width = le16(bytes, 26).ok_or(TRUNCATED)? & 0x3fff;
            let height = le16(bytes, 28).ok_or(TRUNCATED)? & 0x3fff;
            Ok((u32::from(width), u32::from(height)))
        }
        b"VP8L" => {
            if bytes.get(20) != Some(&0x2f) {
                return Err("its VP8L stream has no signature".into());
            }
            let bits = le32(bytes, 21).ok_or(TRUNCATED)?;
            Ok(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
        }
        b"VP8X" => Ok((
            le24(bytes, 24).ok_or(TRUNCATED)? + 1,
            le24(bytes, 27).ok_or(TRUNCATED)? + 1,
        )),
        _ => Err("its first chunk is not VP8, VP8L or VP8X".into()),
    }
}

/// Follows the chain of image file directories, one per page, reading each page's
/// ImageWidth (256) and ImageLength (257).
fn tiff(bytes: &[u8]) -> Result<Vec<(u32, u32)>, String> {
    let little = bytes.starts_with(b"II");
    let u16_at = |at: usize| {
        if little {
            le16(bytes, at)
        } else {
            be16(bytes, at)
        }
    };
    let u32_at = |at: usize| {
        if little {
            le32(bytes, at)
        } else {
            be32(bytes, at)
        }
    };
    let mut pages = Vec::new();
    let mut seen = HashSet::new();
    let mut entries_read = 0usize;
    let mut offset = u32_at(4).ok_or(TRUNCATED)? as usize;
    while offset != 0 {
        if !seen.insert(offset) {
            return Err("its page directories form a loop".into());
        }
        if pages.len() >= MAX_TIFF_PAGES {
            return Err(format!("it has more than {MAX_TIFF_PAGES} pages"));
        }
        let count = usize::from(u16_at(offset).ok_or(TRUNCATED)?);
        entries_read += count;
        if entries_read > MAX_TIFF_ENTRIES {
            return Err("its page directories are too large".into());
        }
        let (mut width, mut height) = (None, None);
        for i in 0..count {
            let entry = offset + 2 + i * 12;
            let tag = u16_at(entry).ok_or(TRUNCATED)?;
            if tag != 256 && tag != 257 {
                continue;
            }
            let value = match u16_at(entry + 2).ok_or(TRUNCATED)? {
                3 => u32::from(u16_at(entry + 8).ok_or(TRUNCATED)?),
                4 => u32_at(entry + 8).ok_or(TRUNCATED)?,
                other => return Err(format!("its page size has field type {other}")),
            };
            if tag == 256 {
                width = Some(value);
            } else {
                height = Some(value);
            }
        }
        match (width, height) {
            (Some(w), Some(h)) => pages.push((w, h)),
            _ => return Err(format!("page {} has no size", pages.len() + 1)),
        }
        offset = u32_at(offset + 2 + count * 12).ok_or(TRUNCATED)? as usize;
    }
    if pages.is_empty() {
        return Err("it has no pages".into());
    }
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_header(width: u32, height: u32) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        out.extend_from_slice(&width.to_be_bytes());
        out.extend_from_slice(&height.to_be_bytes());
        out.extend_from_slice(&[8, 0, 0, 0, 0, 0, 0, 0, 0]);
        out
    }

    /// A little-endian TIFF whose directories each give one page's size, chained in order.
    fn tiff_pages(sizes: &[(u32, u32)]) -> Vec<u8> {
        let mut out = b"II*\0".to_vec();
        out.extend_from_slice(&8u32.to_le_bytes());
        for (i, &(w, h)) in sizes.iter().enumerate() {
            let next = if i + 1 == sizes.len() {
                0
            } else {
                out.len() + 2 + 2 * 12 + 4
            };
            out.extend_from_slice(&2u16.to_le_bytes());
            for (tag, value) in [(256u16, w), (257, h)] {
                out.extend_from_slice(&tag.to_le_bytes());
                out.extend_from_slice(&4u16.to_le_bytes());
                out.extend_from_slice(&1u32.to_le_bytes());
                out.extend_from_slice(&value.to_le_bytes());
            }
            out.extend_from_slice(&(next as u32).to_le_bytes());
        }
        out
    }

    #[test]
    fn reads_the_size_of_each_kind_of_picture() {
        let jpeg = [
            0xff, 0xd8, 0xff, 0xe0, 0, 4, 0, 0, 0xff, 0xff, 0xc0, 0, 11, 8, 0x01, 0x2c, 0x02, 0x58,
            1, 1, 0x11, 0,
        ];
        let mut lossless = b"RIFF\0\0\0\0WEBPVP8L\0\0\0\0\x2f".to_vec();
        lossless.extend_from_slice(&((640 - 1) | ((480 - 1) << 14) as u32).to_le_bytes());

        assert_eq!(
            inspect(&png_header(1240, 900)).unwrap().pages,
            [(1240, 900)]
        );
        let jpeg = inspect(&jpeg).unwrap();
        assert_eq!((jpeg.kind, jpeg.pages), (ImageKind::Jpeg, vec![(600, 300)]));
        assert_eq!(inspect(&lossless).unwrap().pages, [(640, 480)]);
        let tiff = inspect(&tiff_pages(&[(100, 200), (300, 400)])).unwrap();
        assert_eq!(tiff.kind, ImageKind::Tiff);
        assert_eq!(tiff.pages, [(100, 200), (300, 400)]);
    }

    #[test]
    fn a_picture_declaring_too_many_pixels_is_found_before_decoding() {
        let bomb = inspect(&png_header(100_000, 100_000)).unwrap();
        let page = inspect(&png_header(2480, 3508)).unwrap();

        assert_eq!(bomb.oversized_page(), Some((100_000, 100_000)));
        assert_eq!(page.oversized_page(), None);
    }

    #[test]
    fn text_and_other_files_are_never_taken_for_pictures() {
        // Tesseract would read this as a list of files to open.
        let list = inspect(b"/etc/passwd\nhttps://example.com/a.png\n").unwrap_err();

        assert_eq!(list, "it is not a PNG, JPEG, WebP or TIFF picture");
        assert!(inspect(b"GIF89a").is_err());
        assert!(inspect(b"II+\0\x08\0\0\0").unwrap_err().contains("BigTIFF"));
    }

    #[test]
    fn cut_short_looping_and_sizeless_headers_are_errors() {
        let mut looping = tiff_pages(&[(10, 10)]);
        let end = looping.len() - 4;
        looping[end..].copy_from_slice(&8u32.to_le_bytes());

        assert_eq!(inspect(&png_header(10, 10)[..20]).unwrap_err(), TRUNCATED);
        assert_eq!(
            inspect(&png_header(0, 10)).unwrap_err(),
            "its header gives it no width or height"
        );
        assert_eq!(
            inspect(&looping).unwrap_err(),
            "its page directories form a loop"
        );
        assert!(inspect(&[0xff, 0xd8, 0xff, 0xd9]).is_err());
        assert!(inspect(b"RIFF\0\0\0\0WEBPVP8 ").is_err());
    }

    #[test]
    fn any_prefix_of_a_valid_header_is_handled() {
        let files = [
            png_header(64, 64),
            tiff_pages(&[(5, 6), (7, 8), (9, 10)]),
            b"RIFF\0\0\0\0WEBPVP8X\0\0\0\0\0\0\0\0\x3f\x01\0\x1f\x01\0".to_vec(),
        ];
        for file in files {
            assert!(inspect(&file).is_ok());
            for cut in 0..file.len() {
                let _ = inspect(&file[..cut]);
            }
        }
    }
}
