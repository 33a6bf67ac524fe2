//! The files of a run: walking the inputs named on the command line (links, hidden files,
//! unsupported types), giving each file its document id, and finding the catalogued documents
//! of the ingested folders whose files are gone.

use super::report::{DocumentAction, FileFailure, IngestReport};
use super::{IngestError, Ingestor};
use crate::loader::{DocumentFormat, SIDECAR_SUFFIX};
use kb_core::{DocumentId, DocumentRecord, DocumentSource};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// A file found by walking an input, with its document id.
#[derive(Debug, Clone)]
pub(super) struct Input {
    /// The path walked to it (a link's own path if it is one): reported, and cited.
    pub(super) path: PathBuf,
    /// The file itself, links resolved (canonical): what is read, sidecar included.
    pub(super) real: PathBuf,
    /// The canonical ingest root it was found under (the input named on the command line).
    pub(super) root: PathBuf,
    pub(super) id: DocumentId,
    /// Given by name on the command line (so an unsupported type is an error, not a skip).
    pub(super) explicit: bool,
    /// Groups given for it on the command line: this run's, else those an earlier run gave
    /// (see [`DocumentSource::cli_groups`]); `None`: the configured defaults apply.
    pub(super) cli_groups: Option<Vec<String>>,
}

impl Input {
    /// Where the document comes from, as the catalog records it.
    pub(super) fn source(&self) -> DocumentSource {
        DocumentSource {
            path: self.real.display().to_string(),
            root: self.root.display().to_string(),
            cli_groups: self.cli_groups.clone(),
        }
    }

    /// The input of a document found inside this file (see `LoadedDocument::parts`): its id,
    /// path and source are this file's plus `#fragment`; its groups are this file's.
    pub(super) fn part(&self, fragment: &str) -> Input {
        let with_fragment = |p: &Path| PathBuf::from(format!("{}#{fragment}", p.display()));
        Input {
            path: with_fragment(&self.path),
            real: with_fragment(&self.real),
            root: self.root.clone(),
            id: DocumentId::new(format!("{}#{fragment}", self.id)),
            explicit: self.explicit,
            cli_groups: self.cli_groups.clone(),
        }
    }

    /// Why this file is skipped when another input of the run already has its id.
    fn id_already_taken(&self) -> FileFailure {
        FileFailure {
            path: self.path.display().to_string(),
            reason: format!(
                "another input already has document id {}; ingest it separately",
                self.id
            ),
        }
    }
}

impl Ingestor {
    /// Give each file its document id: the id of the document already catalogued for the
    /// same real file, whatever folder it was ingested from (so it keeps its id, and the groups
    /// an earlier run gave it on the command line), else the id computed from its path. A file
    /// whose computed id belongs to another file is refused, never let replace it.
    pub(super) async fn resolve_identities(
        &self,
        files: Vec<Input>,
        failures: &mut Vec<FileFailure>,
    ) -> Result<Vec<Input>, IngestError> {
        let catalogued = self.catalog.list_documents().await?;
        let by_id: HashMap<&DocumentId, &DocumentRecord> =
            catalogued.iter().map(|d| (&d.id, d)).collect();
        let by_source: HashMap<&str, &DocumentRecord> = catalogued
            .iter()
            .filter_map(|d| Some((d.source.as_ref()?.path.as_str(), d)))
            .collect();
        let mut ids = HashSet::new();
        let mut resolved = Vec::with_capacity(files.len());
        for mut input in files {
            let real = input.real.display().to_string();
            let known = match by_source.get(real.as_str()) {
                Some(doc) => {
                    input.id = doc.id.clone();
                    Some(*doc)
                }
                None => match by_id.get(&input.id) {
                    Some(doc) => match other_file(doc, &input.real) {
                        Some(other) => {
                            failures.push(FileFailure {
                                path: input.path.display().to_string(),
                                reason: id_taken(&input, &other, doc),
                            });
                            continue;
                        }
                        None => Some(*doc),
                    },
                    None => None,
                },
            };
            let remembered = known
                .and_then(|doc| doc.source.as_ref())
                .and_then(|source| source.cli_groups.clone());
            input.cli_groups = self.cli_groups.clone().or(remembered);
            if !ids.insert(input.id.clone()) {
                failures.push(input.id_already_taken());
                continue;
            }
            resolved.push(input);
        }
        Ok(resolved)
    }

    /// Remove catalogued documents of the ingested folders (recorded source file, or path
    /// walked to it, under one of them) that this run did not find. Documents of other folders
    /// are never removed, nor those inside a file that could not be read this time.
    pub(super) async fn prune(
        &self,
        roots: &[PathBuf],
        seen: &Seen,
        report: &mut IngestReport,
    ) -> Result<(), IngestError> {
        let roots: Vec<PathBuf> = roots
            .iter()
            .filter(|r| r.is_dir())
            .filter_map(|r| r.canonicalize().ok())
            .collect();
        for doc in self.catalog.list_documents().await? {
            let source = doc.source.as_ref().map(|s| Path::new(&s.path));
            let under_root = roots.iter().any(|r| {
                Path::new(&doc.path).starts_with(r) || source.is_some_and(|s| s.starts_with(r))
            });
            let in_unread_file = seen
                .file_of(&doc)
                .is_some_and(|file| !seen.read_whole.contains(file));
            if under_root && !seen.ids.contains(&doc.id) && !in_unread_file {
                self.remove_for_run(doc.id, report).await?;
            }
        }
        Ok(())
    }

    /// Remove the catalogued documents inside files read whole in this run that the files no
    /// longer hold (an attachment taken out of a message, a message out of a mailbox).
    pub(super) async fn remove_parts_gone(
        &self,
        seen: &Seen,
        report: &mut IngestReport,
    ) -> Result<(), IngestError> {
        if seen.read_whole.is_empty() {
            return Ok(());
        }
        for doc in self.catalog.list_documents().await? {
            let gone = !seen.ids.contains(&doc.id)
                && seen
                    .file_of(&doc)
                    .is_some_and(|file| seen.read_whole.contains(file));
            if gone {
                self.remove_for_run(doc.id, report).await?;
            }
        }
        Ok(())
    }

    async fn remove_for_run(
        &self,
        id: DocumentId,
        report: &mut IngestReport,
    ) -> Result<(), IngestError> {
        if !self.options.dry_run {
            self.remove_document(&id).await?;
        }
        report.stats.removed += 1;
        report.documents.push((id, DocumentAction::Removed));
        Ok(())
    }
}

/// What a run found: the documents it met, and the files it read.
#[derive(Debug, Default)]
pub(super) struct Seen {
    /// Documents of this run: its files, and the documents inside those that were read.
    pub(super) ids: HashSet<DocumentId>,
    /// Every file of the run (real paths).
    pub(super) files: HashSet<PathBuf>,
    /// The files that loaded without error: the documents inside each are exactly those in
    /// `ids`.
    pub(super) read_whole: HashSet<PathBuf>,
    /// The Message-IDs of the e-mail messages taken so far that are new or changed.
    pub(super) messages: HashSet<String>,
}

impl Seen {
    /// The file of this run that a catalogued document is inside of (its recorded source is
    /// that file's path plus `#fragment`), if any.
    pub(super) fn file_of(&self, doc: &DocumentRecord) -> Option<&PathBuf> {
        let source = &doc.source.as_ref()?.path;
        source
            .match_indices('#')
            .find_map(|(at, _)| self.files.get(Path::new(&source[..at])))
    }
}

/// Expand the command-line inputs into files with their document ids (paths relative to the
/// input, in walk order). Symbolic links that lead outside the input are skipped with a reason
/// unless `follow_symlinks`; a file reached twice (through a link inside the input) is taken
/// once, under the id of its real path.
pub(super) fn collect_inputs(
    inputs: &[PathBuf],
    follow_symlinks: bool,
    failures: &mut Vec<FileFailure>,
    passed_over: &mut Vec<String>,
) -> Result<Vec<Input>, IngestError> {
    let mut found = Found::default();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|_| IngestError::NotFound {
            path: input.display().to_string(),
        })?;
        let root = input.canonicalize().map_err(|_| IngestError::NotFound {
            path: input.display().to_string(),
        })?;
        if meta.is_file() {
            let name = root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            found.push(
                Input {
                    path: root.clone(),
                    real: root.clone(),
                    root: root.clone(),
                    id: DocumentId::new(name),
                    explicit: true,
                    cli_groups: None,
                },
                failures,
            );
            continue;
        }
        // Links leaving the root, found while walking (the filter cannot borrow `failures`).
        let outside = RefCell::new(Vec::new());
        let walker = walkdir::WalkDir::new(&root)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| {
                if e.depth() == 0 {
                    return true;
                }
                if e.file_name().to_string_lossy().starts_with('.') {
                    return false;
                }
                if follow_symlinks || !e.path_is_symlink() {
                    return true;
                }
                match e.path().canonicalize() {
                    Ok(target) if !target.starts_with(&root) => {
                        outside.borrow_mut().push(FileFailure {
                            path: e.path().display().to_string(),
                            reason: format!(
                                "symbolic link to {} leaves the ingest root {}; set ingest.follow_symlinks = true or `kb ingest --follow-symlinks` to follow it",
                                target.display(),
                                root.display()
                            ),
                        });
                        false
                    }
                    // Inside the root, or broken (which the walk reports).
                    _ => true,
                }
            });
        for entry in walker {
            match entry {
                Ok(entry) if entry.file_type().is_file() => {
                    let real = match entry.path().canonicalize() {
                        Ok(real) => real,
                        Err(e) => {
                            failures.push(FileFailure {
                                path: entry.path().display().to_string(),
                                reason: e.to_string(),
                            });
                            continue;
                        }
                    };
                    // A file inside the root is named by its real path, however it was reached.
                    let rel = real
                        .strip_prefix(&root)
                        .or_else(|_| entry.path().strip_prefix(&root))
                        .expect("BUG: walked paths are under their root");
                    let id = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/");
                    found.push(
                        Input {
                            path: entry.path().to_path_buf(),
                            real,
                            root: root.clone(),
                            id: DocumentId::new(id),
                            explicit: false,
                            cli_groups: None,
                        },
                        failures,
                    );
                }
                Ok(_) => {}
                Err(e) => failures.push(FileFailure {
                    path: e
                        .path()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| root.display().to_string()),
                    reason: if e.loop_ancestor().is_some() {
                        "symbolic link loop".to_owned()
                    } else {
                        e.io_error()
                            .map(|io| io.to_string())
                            .unwrap_or_else(|| e.to_string())
                    },
                }),
            }
        }
        failures.extend(outside.into_inner());
    }
    passed_over.append(&mut found.passed_over);
    Ok(found.files)
}

/// Files collected so far, with their ids and real paths, and the files of a type kb does not
/// read.
#[derive(Default)]
struct Found {
    files: Vec<Input>,
    ids: HashSet<DocumentId>,
    reals: HashSet<PathBuf>,
    passed_over: Vec<String>,
}

impl Found {
    fn push(&mut self, input: Input, failures: &mut Vec<FileFailure>) {
        if !input.explicit && DocumentFormat::from_path(&input.real).is_none() {
            if !is_sidecar(&input.real) {
                self.passed_over.push(input.path.display().to_string());
            }
            return;
        }
        if !self.reals.insert(input.real.clone()) {
            // The same file again, through a link: one document.
            return;
        }
        if !self.ids.insert(input.id.clone()) {
            failures.push(input.id_already_taken());
            return;
        }
        self.files.push(input);
    }
}

/// Whether `path` is a metadata sidecar (`<file>.meta.yaml`), read with the file it describes.
fn is_sidecar(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name.to_string_lossy().ends_with(SIDECAR_SUFFIX))
}

/// The file a catalogued document comes from, if it is another one than `real`: its recorded
/// source; for a document catalogued before sources were recorded, the path it was ingested
/// as, if that is still a file elsewhere.
fn other_file(doc: &DocumentRecord, real: &Path) -> Option<String> {
    match &doc.source {
        Some(source) => (Path::new(&source.path) != real).then(|| source.path.clone()),
        None => {
            let old = Path::new(&doc.path).canonicalize().ok()?;
            (old.is_file() && old != real).then(|| old.display().to_string())
        }
    }
}

/// Why a file whose id belongs to another file is not ingested, and what to do.
fn id_taken(input: &Input, other: &str, doc: &DocumentRecord) -> String {
    let root = doc
        .source
        .as_ref()
        .map(|s| format!(" (ingested from {})", s.root))
        .unwrap_or_default();
    format!(
        "document id {id} already belongs to {other}{root}; {this} was not ingested so as not to replace it: if it is the same document moved, delete the old one with `kb docs delete {id}` and ingest again; otherwise ingest {this} from another folder, where its id differs",
        id = input.id,
        this = input.real.display(),
    )
}
