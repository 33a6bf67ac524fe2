//! Files that hold secrets (`server.json`, with the admin token), written so that no other
//! user can read them at any moment, whatever is lying around in the folder.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Create `dir` and its missing parents, each with mode 0700 on Unix (only this user may list
/// or enter them). A folder that exists keeps its mode.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Replace `path` with `contents`, readable and writable by this user only (0600 on Unix).
///
/// The bytes go to a new file beside `path`, made with `create_new` under a random name with
/// its mode set at creation, then renamed over `path`: a stale or planted file (or a symlink)
/// at any name is never opened, and a reader sees the old file or the whole new one.
pub fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let (tmp, mut file) = create_temp_beside(path)?;
    let written = file
        .write_all(contents)
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// A new, empty, private file in `path`'s folder, under a name nobody could have chosen.
fn create_temp_beside(path: &Path) -> io::Result<(PathBuf, fs::File)> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file path", path.display()),
        )
    })?;
    const TRIES: usize = 8;
    for _ in 0..TRIES {
        let suffix: u64 = rand::random();
        let tmp = path.with_file_name(format!(
            ".{}.{}.{suffix:016x}.tmp",
            name.to_string_lossy(),
            std::process::id()
        ));
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{}: {TRIES} random temporary names beside it were all taken",
            path.display()
        ),
    ))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// A fresh folder under the system's temporary folder, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn tempdir() -> TempDir {
        let suffix: u64 = rand::random();
        let dir = std::env::temp_dir().join(format!("kb-private-files-{suffix:016x}"));
        fs::create_dir(&dir).unwrap();
        TempDir(dir)
    }

    #[test]
    fn a_secret_is_written_0600_even_over_stale_world_readable_files() {
        // Arrange: a stale temporary file at the name earlier versions used, and an old file.
        let dir = tempdir();
        let path = dir.path().join("server.json");
        for stale in [&path, &dir.path().join("server.json.tmp")] {
            fs::write(stale, b"old").unwrap();
            fs::set_permissions(stale, fs::Permissions::from_mode(0o644)).unwrap();
        }

        // Act
        write_atomically(&path, b"{\"admin_token\": \"kbadm_x\"}").unwrap();

        // Assert
        assert_eq!(mode(&path), 0o600);
        assert_eq!(fs::read(&path).unwrap(), b"{\"admin_token\": \"kbadm_x\"}");
    }

    #[test]
    fn a_planted_symlink_is_never_written_through() {
        // Arrange: a link at the old fixed temporary name, pointing at a file of the attacker.
        let dir = tempdir();
        let target = dir.path().join("attacker-readable");
        fs::write(&target, b"").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("server.json.tmp")).unwrap();
        let path = dir.path().join("server.json");

        // Act
        write_atomically(&path, b"secret").unwrap();

        // Assert
        assert_eq!(fs::read(&target).unwrap(), b"");
        assert_eq!(fs::read(&path).unwrap(), b"secret");
    }

    #[test]
    fn no_temporary_file_is_left_behind() {
        // Arrange
        let dir = tempdir();
        let path = dir.path().join("server.json");

        // Act
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();

        // Assert
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["server.json"]);
        assert_eq!(fs::read(&path).unwrap(), b"two");
    }

    #[test]
    fn a_failed_write_removes_its_temporary_file() {
        // Arrange: the target is a non-empty folder, so the rename fails.
        let dir = tempdir();
        let path = dir.path().join("server.json");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inside"), b"").unwrap();

        // Act
        let result = write_atomically(&path, b"secret");

        // Assert
        assert!(result.is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn new_folders_are_created_0700() {
        // Arrange
        let dir = tempdir();
        let nested = dir.path().join("a").join("data");

        // Act
        create_dir(&nested).unwrap();

        // Assert
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&nested), 0o700);
    }
}
