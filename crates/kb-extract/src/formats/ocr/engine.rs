//! Running the OCR engine (the `tesseract` command) and the page renderer (poppler's
//! `pdftoppm`) as child processes, each with a deadline after which it is killed.
//!
//! Outputs go to files in a private temporary folder rather than pipes, so a child that
//! writes a lot can never block on a pipe nobody reads while its deadline is watched.
//! Tesseract runs with `OMP_THREAD_LIMIT=1`: measured on a 2-core machine, its OpenMP threads
//! made a page slower, not faster, and ingest already reads several files at once.

use super::OcrSettings;
use super::tsv::{self, OcrPage};
use crate::LoadError;
use std::collections::HashMap;
use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long `tesseract --version` and `--list-langs` may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// The most TSV output read for one image (about 300,000 words).
const MAX_TSV_BYTES: u64 = 32 * 1024 * 1024;
/// Tesseract's page segmentation mode 1: automatic layout, with orientation and script
/// detection, so a page scanned sideways or upside down is turned before it is read.
const PAGE_SEGMENTATION: &str = "1";

/// An installed Tesseract: its version (part of every cache key) and its languages.
#[derive(Debug)]
pub(crate) struct Engine {
    program: PathBuf,
    pub(crate) version: String,
    languages: Vec<String>,
}

/// Engines already probed, by program path: probing costs two process starts, once per
/// process. Only successes are kept, so installing Tesseract while kb runs takes effect.
static PROBED: Mutex<Option<HashMap<PathBuf, Arc<Engine>>>> = Mutex::new(None);

/// Why one page could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PageFailure {
    TimedOut,
    Failed(String),
}

impl Engine {
    /// The engine `settings` name, checked to be installed with every language asked for.
    pub(crate) fn probe(settings: &OcrSettings) -> Result<Arc<Self>, LoadError> {
        let program = settings.tesseract_program();
        let known = PROBED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(|m| m.get(&program).cloned());
        let engine = match known {
            Some(engine) => engine,
            None => {
                let engine = Arc::new(Self::start(program.clone())?);
                PROBED
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert_with(HashMap::new)
                    .insert(program, Arc::clone(&engine));
                engine
            }
        };
        // Orientation detection (osd) turns sideways pages; without it they read as noise.
        for language in settings.languages.iter().map(String::as_str).chain(["osd"]) {
            if !engine.languages.iter().any(|l| l == language) {
                return Err(LoadError::OcrLanguageMissing {
                    language: language.to_owned(),
                    package: format!("tesseract-ocr-{}", language.replace('_', "-")),
                });
            }
        }
        Ok(engine)
    }

    fn start(program: PathBuf) -> Result<Self, LoadError> {
        let dir = scratch()?;
        let version = probe_output(&program, "--version", dir.path())?;
        let version = version
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("tesseract"))
            .ok_or_else(|| LoadError::OcrFailed {
                detail: format!(
                    "{} --version does not say it is Tesseract; check ingest.ocr",
                    program.display()
                ),
            })?
            .to_owned();
        let listed = probe_output(&program, "--list-langs", dir.path())?;
        let languages = listed
            .lines()
            .skip_while(|l| !l.starts_with("List of available languages"))
            .skip(1)
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect();
        Ok(Self {
            program,
            version,
            languages,
        })
    }

    /// Reads the picture at `image` (every page of it), or says why not within `timeout`.
    /// `dpi` is given for pages kb rendered itself; for other pictures Tesseract reads it from
    /// the file or estimates it.
    pub(crate) fn recognize(
        &self,
        image: &Path,
        languages: &[String],
        dpi: Option<u32>,
        timeout: Duration,
    ) -> Result<Vec<OcrPage>, PageFailure> {
        let dir = scratch().map_err(|e| PageFailure::Failed(e.to_string()))?;
        let base = dir.path().join("out");
        let mut command = Command::new(&self.program);
        command.arg(image).arg(&base).args([
            "-l",
            &languages.join("+"),
            "--psm",
            PAGE_SEGMENTATION,
        ]);
        if let Some(dpi) = dpi {
            command.args(["--dpi", &dpi.to_string()]);
        }
        command.arg("tsv").env("OMP_THREAD_LIMIT", "1");
        run_to_success(command, dir.path(), timeout)?;
        let tsv = read_bounded(&base.with_extension("tsv"), MAX_TSV_BYTES)
            .map_err(|e| PageFailure::Failed(format!("cannot read Tesseract's output: {e}")))?;
        Ok(tsv::parse(&String::from_utf8_lossy(&tsv)))
    }
}

/// Renders page `page` (from 1) of the PDF at `pdf` to a grayscale PNG at `dpi`, within
/// `timeout`; returns the PNG's path (inside `out_dir`).
pub(crate) fn render_pdf_page(
    settings: &OcrSettings,
    pdf: &Path,
    page: u32,
    dpi: u32,
    out_dir: &Path,
    timeout: Duration,
) -> Result<PathBuf, PageFailure> {
    let prefix = out_dir.join(format!("page-{page}"));
    let mut command = Command::new(settings.pdftoppm_program());
    let (page, dpi) = (page.to_string(), dpi.to_string());
    command
        .args(["-r", &dpi, "-gray", "-png", "-singlefile"])
        .args(["-f", &page, "-l", &page])
        .arg(pdf)
        .arg(&prefix);
    run_to_success(command, out_dir, timeout)?;
    Ok(prefix.with_extension("png"))
}

/// Whether `pdftoppm` can be started: `Err(OcrNotInstalled)` if it is missing.
pub(crate) fn check_renderer(settings: &OcrSettings) -> Result<(), LoadError> {
    let dir = scratch()?;
    probe_output(&settings.pdftoppm_program(), "-v", dir.path()).map(drop)
}

/// A private temporary folder, removed when dropped.
pub(crate) fn scratch() -> Result<tempfile::TempDir, LoadError> {
    tempfile::Builder::new()
        .prefix("kb-ocr-")
        .tempdir()
        .map_err(LoadError::Io)
}

/// Runs `program arg` and returns what it printed (stdout then stderr); a program that is not
/// there is [`LoadError::OcrNotInstalled`].
fn probe_output(program: &Path, arg: &str, dir: &Path) -> Result<String, LoadError> {
    let mut command = Command::new(program);
    command.arg(arg);
    match run(command, dir, PROBE_TIMEOUT) {
        Ok(Ran::Exited(_, output)) => Ok(output),
        Ok(Ran::TimedOut) => Err(LoadError::OcrFailed {
            detail: format!(
                "{} {arg} did not answer within {} s",
                program.display(),
                PROBE_TIMEOUT.as_secs()
            ),
        }),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ) =>
        {
            Err(LoadError::OcrNotInstalled)
        }
        Err(e) => Err(LoadError::OcrFailed {
            detail: format!("cannot start {}: {e}", program.display()),
        }),
    }
}

enum Ran {
    /// The exit status and what the program printed (stdout, then stderr), up to 64 KiB each.
    Exited(ExitStatus, String),
    TimedOut,
}

/// Runs `command` to success within `timeout`; a failure carries the last line the program
/// printed.
fn run_to_success(command: Command, dir: &Path, timeout: Duration) -> Result<(), PageFailure> {
    let program = command.get_program().to_string_lossy().into_owned();
    match run(command, dir, timeout) {
        Ok(Ran::Exited(status, _)) if status.success() => Ok(()),
        Ok(Ran::Exited(status, output)) => {
            let said = output
                .lines()
                .map(str::trim)
                .rfind(|l| !l.is_empty())
                .unwrap_or("no message");
            let said: String = said.chars().take(300).collect();
            Err(PageFailure::Failed(format!(
                "{program} failed ({status}): {said}"
            )))
        }
        Ok(Ran::TimedOut) => Err(PageFailure::TimedOut),
        Err(e) => Err(PageFailure::Failed(format!("cannot start {program}: {e}"))),
    }
}

/// Runs `command` with no input and its output in files under `dir`, killing it at the
/// deadline.
fn run(mut command: Command, dir: &Path, timeout: Duration) -> std::io::Result<Ran> {
    let stdout_path = dir.join("stdout");
    let stderr_path = dir.join("stderr");
    command
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path)?)
        .stderr(File::create(&stderr_path)?);
    let mut child = command.spawn()?;
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        let now = Instant::now();
        if now >= deadline {
            // The child may have exited just now; either way it is reaped.
            let _ = child.kill();
            let _ = child.wait();
            return Ok(Ran::TimedOut);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    };
    let mut output = String::new();
    for path in [&stdout_path, &stderr_path] {
        let mut bytes = Vec::new();
        File::open(path)?.take(64 * 1024).read_to_end(&mut bytes)?;
        output.push_str(&String::from_utf8_lossy(&bytes));
    }
    Ok(Ran::Exited(status, output))
}

/// The first `limit` bytes of a file; an error if it is longer.
fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)?.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "{} is over {limit} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}
