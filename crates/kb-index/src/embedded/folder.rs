//! The index folder: created private to kb's user, and locked for one process.

use std::fs::{self, File, OpenOptions};
use std::path::Path;
use std::time::{Duration, Instant};

use kb_core::IndexError;
use tracing::warn;

/// The lock file that marks the folder as owned by one process.
const LOCK_FILE: &str = "LOCK";

/// How long `open` waits for a lock that is on its way out before reporting it as held: a
/// previous process still shutting down, or a child process between `fork` and `exec` that
/// briefly shares the descriptor (a `flock` lives until every copy is closed).
const LOCK_GRACE: Duration = Duration::from_millis(500);
const LOCK_RETRY: Duration = Duration::from_millis(20);

/// Create the index folder (and missing parents) with mode 0700 on Unix: its payloads hold the
/// text of every chunk, restricted or not. The folder is kb's own, so an existing one that
/// other users may enter is tightened to 0700 (with a warning; only the warning when its mode
/// cannot be changed).
pub(super) fn create_private_folder(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            match fs::set_permissions(dir, fs::Permissions::from_mode(0o700)) {
                Ok(()) => warn!(
                    dir = %dir.display(),
                    from = format_args!("{mode:o}"),
                    "the index folder was open to other users; made it private to kb's user"
                ),
                Err(error) => warn!(
                    dir = %dir.display(),
                    mode = format_args!("{mode:o}"),
                    %error,
                    "the index folder is open to other users and its mode cannot be changed; \
                     run `chmod 700` on it as its owner"
                ),
            }
        }
    }
    Ok(())
}

/// Take the folder's exclusive lock, or report who has it.
pub(super) fn lock_folder(dir: &Path) -> Result<File, IndexError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|err| {
            IndexError::other_because(format!("cannot open lock file {}", path.display()), err)
        })?;
    let deadline = Instant::now() + LOCK_GRACE;
    loop {
        // `fs4` rather than the inherent `File::try_lock`: it is a plain `flock` on every Unix
        // (the std one is unsupported on some targets), the same call qdrant-edge uses for its
        // WAL.
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => return Ok(file),
            Err(fs4::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(LOCK_RETRY);
            }
            Err(fs4::TryLockError::WouldBlock) => {
                return Err(IndexError::Locked(dir.display().to_string()));
            }
            Err(fs4::TryLockError::Error(err)) => {
                return Err(IndexError::other_because(
                    format!("cannot lock {}", path.display()),
                    err,
                ));
            }
        }
    }
}

#[cfg(all(test, unix))]
mod folder_mode_tests {
    use super::*;
    use crate::EmbeddedIndex;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_index_folder_and_its_new_parents_are_0700() {
        // Arrange
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("data").join("index");

        // Act
        let index = EmbeddedIndex::open(&dir).unwrap();

        // Assert
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&temp.path().join("data")), 0o700);
        drop(index);
    }

    #[test]
    fn an_existing_world_readable_index_folder_is_tightened() {
        // Arrange: a folder left by an older kb under umask 022.
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("index");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();

        // Act
        let index = EmbeddedIndex::open(&dir).unwrap();

        // Assert
        assert_eq!(mode(&dir), 0o700);
        drop(index);
    }
}
