//! Zip packages (DOCX, PPTX, XLSX, ODT, ODP, ODS) read within one expansion budget.
//!
//! Every part inflated from a package counts against [`LoadLimits::max_expanded_bytes`], so a
//! file is refused with [`LoadError::ExpandsTooMuch`] once its parts come to more than that.
//! A part's declared size is checked before it is opened, but never trusted: the bytes that
//! actually come out are counted and cut at the budget, so an entry that lies about its size
//! cannot inflate past it. Encrypted entries are refused as [`LoadError::Encrypted`]; a file
//! that is not a zip is [`LoadError::Corrupt`] with the format named.

use crate::{LoadError, LoadLimits, SourceFormat};
use std::io::{self, Cursor, Read};
use zip::result::ZipError;

const OLE_MAGIC: &[u8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1";

/// A zip package whose parts are read within one expansion budget.
pub(crate) struct Package<'a> {
    archive: zip::ZipArchive<Cursor<&'a [u8]>>,
    format: SourceFormat,
    /// Bytes that may still be inflated.
    left: u64,
    limit: u64,
}

impl<'a> Package<'a> {
    /// Opens `bytes` as the zip package of a `format` file.
    pub(crate) fn open(
        bytes: &'a [u8],
        format: SourceFormat,
        limits: &LoadLimits,
    ) -> Result<Self, LoadError> {
        let archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
            corrupt(
                format,
                format!(
                    "not a zip archive, so not {} {format} file ({e})",
                    article(format)
                ),
            )
        })?;
        Ok(Self {
            archive,
            format,
            left: limits.max_expanded_bytes,
            limit: limits.max_expanded_bytes,
        })
    }

    /// Opens an Office Open XML or OpenDocument file, first refusing the OLE files that may
    /// carry its extension: a password-protected package (Office writes it as an OLE file
    /// holding the encrypted package) as encrypted, any other as the old binary format
    /// `legacy` names ("PowerPoint 97-2003 .ppt").
    pub(crate) fn open_document(
        bytes: &'a [u8],
        format: SourceFormat,
        limits: &LoadLimits,
        legacy: &str,
    ) -> Result<Self, LoadError> {
        if bytes.starts_with(OLE_MAGIC) {
            return Err(if has_encrypted_package(bytes) {
                LoadError::Encrypted { format }
            } else {
                let extension = format.to_string().to_ascii_lowercase();
                corrupt(
                    format,
                    format!("it is an old {legacy} file; save it as .{extension}"),
                )
            });
        }
        Self::open(bytes, format, limits)
    }

    pub(crate) fn format(&self) -> SourceFormat {
        self.format
    }

    /// The names of the package's parts, in the order the zip lists them (names that are
    /// not valid text are left out: no reader asks for them).
    pub(crate) fn names(&self) -> Vec<String> {
        self.archive
            .file_names()
            .filter_map(|name| name.ok().map(|n| n.into_owned()))
            .collect()
    }

    /// The part `name` as bytes, or `None` if the package has no such part.
    pub(crate) fn read_bytes(&mut self, name: &str) -> Result<Option<Vec<u8>>, LoadError> {
        let Some(mut part) = self.part(name)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        part.drain(|p| p.read_to_end(&mut bytes))?;
        Ok(Some(bytes))
    }

    /// The part `name` as text (a leading byte order mark dropped), or `None` if the package
    /// has no such part.
    pub(crate) fn read(&mut self, name: &str) -> Result<Option<String>, LoadError> {
        let format = self.format;
        let Some(bytes) = self.read_bytes(name)? else {
            return Ok(None);
        };
        let text = String::from_utf8(bytes)
            .map_err(|_| corrupt(format, format!("{name} is not UTF-8 XML")))?;
        Ok(Some(match text.strip_prefix('\u{feff}') {
            Some(rest) => rest.to_owned(),
            None => text,
        }))
    }

    /// The part `name`, which the format requires: a package without it is not `what`.
    pub(crate) fn require(&mut self, name: &str, what: &str) -> Result<String, LoadError> {
        let format = self.format;
        self.read(name)?.ok_or_else(|| {
            corrupt(
                format,
                format!(
                    "it has no {name}, so it is not {what}; save it again from its application"
                ),
            )
        })
    }

    /// The part `name` as a stream that inflates within what is left of the budget, for a
    /// part too large to hold at once; `None` if the package has no such part. Pass what the
    /// stream's parser returns through [`Part::check`], so that a stream cut at the budget
    /// is reported as expanding too much rather than as damaged.
    pub(crate) fn part(&mut self, name: &str) -> Result<Option<Part<'_, 'a>>, LoadError> {
        let format = self.format;
        let file = match self.archive.by_name(name) {
            Ok(file) => file,
            Err(ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(open_error(format, name, e)),
        };
        if file.size() > self.left {
            return Err(LoadError::ExpandsTooMuch {
                format,
                limit: self.limit,
            });
        }
        Ok(Some(Part {
            stream: Budgeted::new(file, &mut self.left),
            name: name.to_owned(),
            format,
            limit: self.limit,
        }))
    }

    /// Inflates every part whose name `wanted` accepts into nothing, refusing the package
    /// when they come to more than the budget, declared or actual: the check to make before
    /// handing the bytes to a reader that inflates parts without a bound of its own.
    pub(crate) fn inflate_all(&mut self, wanted: impl Fn(&str) -> bool) -> Result<(), LoadError> {
        let names: Vec<String> = self.names().into_iter().filter(|n| wanted(n)).collect();
        let mut declared = 0u64;
        for i in 0..self.archive.len() {
            if let Ok(file) = self.archive.by_index_raw(i)
                && file.name().is_ok_and(|n| wanted(&n))
            {
                declared = declared.saturating_add(file.size());
            }
        }
        if declared > self.left {
            return Err(LoadError::ExpandsTooMuch {
                format: self.format,
                limit: self.limit,
            });
        }
        for name in names {
            if let Some(mut part) = self.part(&name)? {
                part.drain(|p| io::copy(p, &mut io::sink()))?;
            }
        }
        Ok(())
    }
}

/// One part of a [`Package`] being inflated; reading it past what is left of the package's
/// budget fails.
pub(crate) struct Part<'p, 'a> {
    stream: Budgeted<'p, zip::read::ZipFile<'p, Cursor<&'a [u8]>>>,
    name: String,
    format: SourceFormat,
    limit: u64,
}

impl Part<'_, '_> {
    /// What reading the part came to: [`LoadError::ExpandsTooMuch`] when the budget cut the
    /// stream (whatever error the reader then gave), else `result`.
    pub(crate) fn check<T>(&self, result: Result<T, LoadError>) -> Result<T, LoadError> {
        if self.stream.over {
            return Err(LoadError::ExpandsTooMuch {
                format: self.format,
                limit: self.limit,
            });
        }
        result
    }

    /// Reads the rest of the part with `read` (`read_to_end`, a copy), checked as
    /// [`Self::check`] does; other I/O errors mean the part cannot be inflated.
    fn drain<T>(&mut self, read: impl FnOnce(&mut Self) -> io::Result<T>) -> Result<T, LoadError> {
        let result = read(self)
            .map_err(|e| corrupt(self.format, format!("cannot inflate {} ({e})", self.name)));
        self.check(result)
    }
}

impl Read for Part<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

/// A stream that fails once more than `left` bytes come out of it, taking what it reads off
/// `left`. It never asks the stream beneath for more than one byte past the budget, so a
/// stream that goes on for ever (an entry lying about its size) is cut there.
struct Budgeted<'b, R> {
    inner: R,
    left: &'b mut u64,
    over: bool,
}

impl<'b, R: Read> Budgeted<'b, R> {
    fn new(inner: R, left: &'b mut u64) -> Self {
        Self {
            inner,
            left,
            over: false,
        }
    }
}

impl<R: Read> Read for Budgeted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.over {
            return Err(budget_spent());
        }
        let room = usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX);
        let want = buf.len().min(room);
        let n = self.inner.read(&mut buf[..want])?;
        let n64 = n as u64;
        if n64 > *self.left {
            self.over = true;
            return Err(budget_spent());
        }
        *self.left -= n64;
        Ok(n)
    }
}

fn budget_spent() -> io::Error {
    io::Error::other("the part expands past the file's expansion budget")
}

fn open_error(format: SourceFormat, name: &str, e: ZipError) -> LoadError {
    match e {
        ZipError::UnsupportedArchive(ZipError::PASSWORD_REQUIRED) | ZipError::InvalidPassword => {
            LoadError::Encrypted { format }
        }
        e => corrupt(format, format!("cannot open {name} ({e})")),
    }
}

/// Whether an OLE container holds an `EncryptedPackage` stream (an encrypted Office Open XML
/// file).
pub(crate) fn has_encrypted_package(bytes: &[u8]) -> bool {
    let name: Vec<u8> = "EncryptedPackage"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    bytes.windows(name.len()).any(|w| w == name)
}

/// "an" before the formats whose names are read out starting with a vowel sound.
fn article(format: SourceFormat) -> &'static str {
    match format.to_string().chars().next() {
        Some('A' | 'E' | 'F' | 'H' | 'I' | 'L' | 'M' | 'N' | 'O' | 'R' | 'S' | 'X') => "an",
        _ => "a",
    }
}

fn corrupt(format: SourceFormat, detail: String) -> LoadError {
    LoadError::Corrupt { format, detail }
}

/// A zip of `(name, content)` parts, stored without compression: the packages tests build.
#[cfg(test)]
pub(crate) fn stored_zip<C: AsRef<[u8]>>(parts: &[(&str, C)]) -> Vec<u8> {
    use std::io::Write as _;
    let mut out = Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, content) in parts {
        zip.start_file(*name, options)
            .expect("BUG: writing to memory cannot fail");
        zip.write_all(content.as_ref())
            .expect("BUG: writing to memory cannot fail");
    }
    zip.finish().expect("BUG: writing to memory cannot fail");
    out.into_inner()
}

#[cfg(test)]
mod tests;
