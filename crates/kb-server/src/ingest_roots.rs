//! The folders `POST /v1/admin/ingest` may read (`ingest.roots`), and how a requested path is
//! confined to them.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Most symbolic links followed while resolving one path (Linux's own limit).
const MAX_LINKS: usize = 40;

/// The folders `POST /v1/admin/ingest` may read (`ingest.roots`), resolved once at start-up.
///
/// A requested path is resolved one component at a time from the root it names, the way the
/// operating system would resolve it, but never leaves the roots: a `..` or a symbolic link that
/// leads out is refused on the spot, before anything beyond it is looked at. So whether a path is
/// refused depends only on what lies inside the roots, and a refusal says nothing about files
/// outside them (not even whether they exist).
#[derive(Debug, Clone, Default)]
pub struct IngestRoots {
    roots: Vec<Root>,
}

#[derive(Debug, Clone)]
struct Root {
    /// The real path: absolute, no `..`, no symbolic link.
    canonical: PathBuf,
    /// The path as configured, when absolute: requests may name the root this way too.
    configured: Option<PathBuf>,
}

/// A configured ingest root that cannot be used; fails start-up.
#[derive(Debug, thiserror::Error)]
pub enum IngestRootError {
    #[error(
        "ingest.roots: {}: cannot be used; create the folder or remove it from ingest.roots",
        path.display()
    )]
    Unusable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("ingest.roots: {} is not a folder; name folders only", path.display())]
    NotAFolder { path: PathBuf },
}

/// Why a requested path may not be ingested.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathRefused {
    /// Outside every root, after resolving `..` and links. Deliberately names nothing: the
    /// same answer whether or not the path exists.
    #[error(
        "outside the folders this server may ingest over HTTP (ingest.roots); name a path \
         inside them, or run `kb ingest` on the server's machine"
    )]
    Outside,
    #[error("{}: no such file or folder", .0.display())]
    Missing(PathBuf),
    #[error("{}: not an absolute path; name files by their path on the server", .0.display())]
    Relative(PathBuf),
    /// Inside a root, but the server cannot look at it.
    #[error("{}: cannot be read by the server ({reason})", .path.display())]
    Unreadable { path: PathBuf, reason: String },
}

/// One step of a path still to resolve.
enum Step {
    Parent,
    Name(OsString),
}

impl IngestRoots {
    /// Resolve the configured roots (relative ones against the working folder). Each must be
    /// an existing folder.
    pub fn resolve(configured: &[PathBuf]) -> Result<Self, IngestRootError> {
        let mut roots = Vec::with_capacity(configured.len());
        for path in configured {
            let canonical = path
                .canonicalize()
                .map_err(|source| IngestRootError::Unusable {
                    path: path.clone(),
                    source,
                })?;
            if !canonical.is_dir() {
                return Err(IngestRootError::NotAFolder { path: path.clone() });
            }
            roots.push(Root {
                canonical,
                configured: path.is_absolute().then(|| path.clone()),
            });
        }
        Ok(Self { roots })
    }

    /// No root is configured.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// The real path of `requested` if it lies inside a root, `..` and symbolic links
    /// resolved; [`PathRefused::Outside`] if it does not (or no root is configured).
    pub fn confine(&self, requested: &Path) -> Result<PathBuf, PathRefused> {
        if !requested.is_absolute() {
            return Err(PathRefused::Relative(requested.to_path_buf()));
        }
        let unreadable = |reason| PathRefused::Unreadable {
            path: requested.to_path_buf(),
            reason,
        };
        let (mut current, first) = self.enter(requested)?;
        let mut pending: VecDeque<Step> = first.into();
        let mut links = 0;
        // Once a component is missing, the rest is resolved by name only (nothing to look at).
        let mut missing = false;
        while let Some(step) = pending.pop_front() {
            let name = match step {
                Step::Parent => {
                    current.pop();
                    if !self.contains(&current) {
                        return Err(PathRefused::Outside);
                    }
                    continue;
                }
                Step::Name(name) => name,
            };
            let next = current.join(name);
            if missing {
                current = next;
                continue;
            }
            match std::fs::symlink_metadata(&next) {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) =>
                {
                    missing = true;
                    current = next;
                }
                Err(e) => return Err(unreadable(e.to_string())),
                Ok(meta) if meta.file_type().is_symlink() => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(unreadable("too many levels of symbolic links".into()));
                    }
                    let target =
                        std::fs::read_link(&next).map_err(|e| unreadable(e.to_string()))?;
                    let through = if target.is_absolute() {
                        let (at, through) = self.enter(&target)?;
                        current = at;
                        through
                    } else {
                        // Relative to the folder holding the link, which `current` is.
                        steps(&target)?
                    };
                    for step in through.into_iter().rev() {
                        pending.push_front(step);
                    }
                }
                Ok(_) => current = next,
            }
        }
        if missing {
            Err(PathRefused::Missing(requested.to_path_buf()))
        } else {
            Ok(current)
        }
    }

    /// The root `path` starts with (by name: nothing is looked up), as its real path, and the
    /// steps after it. Nested roots: the longest match.
    fn enter(&self, path: &Path) -> Result<(PathBuf, Vec<Step>), PathRefused> {
        let (root, rest) = self
            .roots
            .iter()
            .flat_map(|root| {
                [Some(&root.canonical), root.configured.as_ref()]
                    .into_iter()
                    .flatten()
                    .filter_map(move |spelling| {
                        let rest = path.strip_prefix(spelling).ok()?;
                        Some((spelling.components().count(), &root.canonical, rest))
                    })
            })
            .max_by_key(|(length, ..)| *length)
            .map(|(_, root, rest)| (root, rest))
            .ok_or(PathRefused::Outside)?;
        Ok((root.clone(), steps(rest)?))
    }

    fn contains(&self, real: &Path) -> bool {
        self.roots.iter().any(|r| real.starts_with(&r.canonical))
    }
}

/// The steps of a relative path.
fn steps(relative: &Path) -> Result<Vec<Step>, PathRefused> {
    relative
        .components()
        .filter(|c| *c != Component::CurDir)
        .map(|c| match c {
            Component::ParentDir => Ok(Step::Parent),
            Component::Normal(name) => Ok(Step::Name(name.to_os_string())),
            // A drive or root inside a relative path (Windows): never inside a root.
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {
                Err(PathRefused::Outside)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A scratch folder `base/` holding `root/` (the ingest root, with `docs/a.md`) beside
    /// `outside/` (with `secret.md`); removed on drop.
    struct Scratch {
        base: PathBuf,
    }

    impl Scratch {
        fn new() -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let base = std::env::temp_dir().join(format!(
                "kb-ingest-roots-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::SeqCst)
            ));
            let _ = fs::remove_dir_all(&base);
            fs::create_dir_all(base.join("root/docs")).unwrap();
            fs::create_dir_all(base.join("outside")).unwrap();
            fs::write(base.join("root/docs/a.md"), "# A\n").unwrap();
            fs::write(base.join("outside/secret.md"), "# Secret\n").unwrap();
            Self {
                base: base.canonicalize().unwrap(),
            }
        }

        fn root(&self) -> PathBuf {
            self.base.join("root")
        }

        fn outside(&self) -> PathBuf {
            self.base.join("outside")
        }

        fn roots(&self) -> IngestRoots {
            IngestRoots::resolve(&[self.root()]).unwrap()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.base);
        }
    }

    #[cfg(unix)]
    fn link(target: impl AsRef<Path>, at: impl AsRef<Path>) {
        std::os::unix::fs::symlink(target, at).unwrap();
    }

    #[test]
    fn a_missing_root_fails_naming_the_setting_and_the_path() {
        let scratch = Scratch::new();
        let missing = scratch.base.join("nope");

        let error = IngestRoots::resolve(&[scratch.root(), missing.clone()]).unwrap_err();

        let message = error.to_string();
        assert!(message.starts_with("ingest.roots: "), "{message}");
        assert!(
            message.contains(&missing.display().to_string()),
            "{message}"
        );
        let cause = std::error::Error::source(&error).expect("the system's reason is the source");
        assert!(cause.downcast_ref::<io::Error>().is_some(), "{cause}");
        assert!(
            !message.contains(&cause.to_string()),
            "said once: {message}"
        );
    }

    #[test]
    fn a_file_is_not_a_root() {
        let scratch = Scratch::new();
        let file = scratch.root().join("docs/a.md");

        let error = IngestRoots::resolve(&[file]).unwrap_err();

        assert!(
            matches!(error, IngestRootError::NotAFolder { .. }),
            "{error}"
        );
    }

    #[test]
    fn paths_inside_a_root_resolve_to_their_real_path() {
        let scratch = Scratch::new();
        let roots = scratch.roots();
        let a = scratch.root().join("docs/a.md");

        assert_eq!(roots.confine(&a), Ok(a.clone()));
        assert_eq!(roots.confine(&scratch.root()), Ok(scratch.root()));
        assert_eq!(
            roots.confine(&scratch.root().join("docs/./../docs/a.md")),
            Ok(a)
        );
    }

    #[test]
    fn dot_dot_out_of_the_root_is_refused_whether_or_not_the_target_exists() {
        let scratch = Scratch::new();
        let roots = scratch.roots();

        for escape in [
            "../outside/secret.md",
            "../outside/missing.md",
            "docs/../../outside/secret.md",
            "missing/../../outside/secret.md",
            "docs/a.md/../../../outside",
            "..",
        ] {
            assert_eq!(
                roots.confine(&scratch.root().join(escape)),
                Err(PathRefused::Outside),
                "{escape}"
            );
        }
    }

    #[test]
    fn paths_outside_every_root_are_refused_whether_or_not_they_exist() {
        let scratch = Scratch::new();
        let roots = scratch.roots();

        for path in [
            scratch.outside().join("secret.md"),
            scratch.outside().join("missing.md"),
            scratch.base.join("root-sibling"),
            PathBuf::from("/"),
        ] {
            assert_eq!(roots.confine(&path), Err(PathRefused::Outside), "{path:?}");
        }
        assert_eq!(
            IngestRoots::default().confine(&scratch.root()),
            Err(PathRefused::Outside),
            "no roots: nothing is inside"
        );
    }

    #[test]
    fn a_missing_path_inside_a_root_says_so() {
        let scratch = Scratch::new();
        let roots = scratch.roots();

        for missing in ["docs/b.md", "nope/x.md", "nope/../docs/a.md", "docs/a.md/x"] {
            let path = scratch.root().join(missing);
            assert_eq!(
                roots.confine(&path),
                Err(PathRefused::Missing(path)),
                "{missing}"
            );
        }
    }

    #[test]
    fn a_relative_path_is_refused_as_such() {
        let roots = Scratch::new().roots();

        assert_eq!(
            roots.confine(Path::new("docs/a.md")),
            Err(PathRefused::Relative(PathBuf::from("docs/a.md")))
        );
    }

    #[cfg(unix)]
    #[test]
    fn links_that_lead_out_are_refused_whether_or_not_their_target_exists() {
        let scratch = Scratch::new();
        let roots = scratch.roots();
        let root = scratch.root();
        link(
            scratch.outside().join("secret.md"),
            root.join("absolute.md"),
        );
        link(
            scratch.outside().join("missing.md"),
            root.join("dangling.md"),
        );
        link("../outside/secret.md", root.join("relative.md"));
        link(scratch.outside(), root.join("folder"));
        link("docs/../..", root.join("up"));

        for path in [
            "absolute.md",
            "dangling.md",
            "relative.md",
            "folder",
            "folder/secret.md",
            "folder/missing.md",
            "up/outside/secret.md",
        ] {
            assert_eq!(
                roots.confine(&root.join(path)),
                Err(PathRefused::Outside),
                "{path}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn links_that_stay_inside_resolve_to_their_target() {
        let scratch = Scratch::new();
        let roots = scratch.roots();
        let root = scratch.root();
        link("docs/a.md", root.join("alias.md"));
        link(root.join("docs"), root.join("docs-link"));
        link("docs/b.md", root.join("dangling.md"));

        assert_eq!(
            roots.confine(&root.join("alias.md")),
            Ok(root.join("docs/a.md"))
        );
        assert_eq!(
            roots.confine(&root.join("docs-link/a.md")),
            Ok(root.join("docs/a.md"))
        );
        assert_eq!(
            roots.confine(&root.join("docs-link/../docs/a.md")),
            Ok(root.join("docs/a.md")),
            "`..` after a link is taken from the link's target, as the system does"
        );
        assert_eq!(
            roots.confine(&root.join("dangling.md")),
            Err(PathRefused::Missing(root.join("dangling.md")))
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_root_may_be_named_through_a_link_as_configured() {
        let scratch = Scratch::new();
        let spelled = scratch.base.join("kb-docs");
        link(scratch.root(), &spelled);
        let roots = IngestRoots::resolve(std::slice::from_ref(&spelled)).unwrap();
        let real = scratch.root().join("docs/a.md");

        assert_eq!(roots.confine(&spelled.join("docs/a.md")), Ok(real.clone()));
        assert_eq!(roots.confine(&real), Ok(real));
        assert_eq!(
            roots.confine(&spelled.join("../outside/secret.md")),
            Err(PathRefused::Outside)
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_link_loop_inside_a_root_ends_with_an_error() {
        let scratch = Scratch::new();
        let roots = scratch.roots();
        let root = scratch.root();
        link("b", root.join("a"));
        link("a", root.join("b"));

        let result = roots.confine(&root.join("a"));

        assert!(
            matches!(result, Err(PathRefused::Unreadable { .. })),
            "{result:?}"
        );
    }
}
