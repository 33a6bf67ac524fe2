//! Who may read the catalog's files. `kb.db` holds the text of every chunk, restricted or not,
//! and the hashes of the API keys: it and its `-wal` and `-shm` files are for kb's own user
//! only (mode 0600), and a folder kb creates for them is 0700.
//!
//! SQLite gives the `-wal` and `-shm` files the mode of the database file, so a new database
//! is created empty with mode 0600 before SQLite opens it; an existing file of the three that
//! other users may read is tightened (with a warning; if its mode cannot be changed, only the
//! warning). A folder that already exists is the admin's: its mode is left alone, with a
//! warning when other users may enter it (see [`warn_if_open_to_others`]).

use std::io;
use std::path::{Path, PathBuf};

/// Create `dir` and its missing parents, each with mode 0700 on Unix. An existing folder keeps
/// its mode.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Make the SQLite database at `path` and its `-wal` and `-shm` files private to this user:
/// with `create`, a missing database is created empty with mode 0600 (its folder must exist);
/// an existing file that group or others may access loses those bits.
pub fn secure_database_files(path: &Path, create: bool) -> io::Result<()> {
    #[cfg(unix)]
    {
        if create {
            use std::os::unix::fs::OpenOptionsExt;
            let created = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path);
            match created {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        for file in [
            path.to_path_buf(),
            sibling(path, "-wal"),
            sibling(path, "-shm"),
        ] {
            tighten(&file)?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, create);
    Ok(())
}

/// Log a warning when other users may list or enter `dir`, the folder of the catalog: kb's
/// own files in it are private, but their names show, and whatever else lands there is not.
pub fn warn_if_open_to_others(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::metadata(dir) else {
            return;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                folder = %dir.display(),
                mode = format_args!("{mode:o}"),
                "the catalog's folder is open to other users; run `chmod 700` on it unless \
                 it is shared on purpose"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// `kb.db` → `kb.db-wal`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Drop the group and other bits of `file`'s mode, if it exists.
#[cfg(unix)]
fn tighten(file: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = match std::fs::metadata(file) {
        Ok(meta) => meta.permissions().mode() & 0o777,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if mode & 0o077 == 0 {
        return Ok(());
    }
    let private = mode & 0o700;
    match std::fs::set_permissions(file, std::fs::Permissions::from_mode(private)) {
        Ok(()) => tracing::warn!(
            file = %file.display(),
            from = format_args!("{mode:o}"),
            to = format_args!("{private:o}"),
            "the catalog file was open to other users; made it private to kb's user"
        ),
        Err(error) => tracing::warn!(
            file = %file.display(),
            mode = format_args!("{mode:o}"),
            %error,
            "the catalog file is open to other users and its mode cannot be changed; run \
             `chmod 600` on it as its owner"
        ),
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_database_is_created_0600_in_a_new_0700_folder() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("data");
        let db = folder.join("kb.db");

        // Act
        create_private_dir(&folder).unwrap();
        secure_database_files(&db, true).unwrap();

        // Assert
        assert_eq!(mode(&folder), 0o700);
        assert_eq!(mode(&db), 0o600);
        assert_eq!(fs::metadata(&db).unwrap().len(), 0, "SQLite fills it");
    }

    #[test]
    fn existing_world_readable_database_files_are_tightened() {
        // Arrange: a database and a WAL left by an older kb under umask 022.
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("kb.db");
        let wal = dir.path().join("kb.db-wal");
        for file in [&db, &wal] {
            fs::write(file, b"x").unwrap();
            fs::set_permissions(file, fs::Permissions::from_mode(0o644)).unwrap();
        }

        // Act
        secure_database_files(&db, true).unwrap();

        // Assert
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&wal), 0o600);
        assert_eq!(fs::read(&db).unwrap(), b"x", "contents untouched");
        assert!(
            !dir.path().join("kb.db-shm").exists(),
            "nothing else is created"
        );
    }

    #[test]
    fn without_create_a_missing_database_stays_missing() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("kb.db");

        // Act
        secure_database_files(&db, false).unwrap();

        // Assert
        assert!(!db.exists());
    }

    #[test]
    fn an_existing_folder_keeps_its_mode() {
        // Arrange: a folder the admin made for kb.
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("data");
        fs::create_dir(&folder).unwrap();
        fs::set_permissions(&folder, fs::Permissions::from_mode(0o750)).unwrap();

        // Act
        create_private_dir(&folder).unwrap();

        // Assert
        assert_eq!(mode(&folder), 0o750);
    }
}
