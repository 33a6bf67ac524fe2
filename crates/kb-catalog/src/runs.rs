//! Who recorded an ingest run, so that a later process can tell whether that run's process
//! is gone (and the run interrupted) or may still be running.

use uuid::Uuid;

/// The process that records a run: enough to tell later whether it is still alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunOwner {
    pub(crate) host: String,
    pub(crate) pid: u32,
    /// Random per process, so that a pid reused by a later process (a container's pid 1 after
    /// a restart) is not taken for the process that started the run.
    pub(crate) token: String,
}

impl RunOwner {
    pub(crate) fn current() -> Self {
        static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        Self {
            host: host_name(),
            pid: std::process::id(),
            token: TOKEN.get_or_init(|| Uuid::new_v4().to_string()).clone(),
        }
    }

    /// Whether the process that recorded this run is certainly gone, as seen from `me`.
    pub(crate) fn is_gone(&self, me: &RunOwner) -> bool {
        if self.host != me.host {
            return false;
        }
        if self.token == me.token {
            return false;
        }
        self.pid == me.pid || !process_exists(self.pid)
    }
}

fn host_name() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Whether a process with this id exists (signal 0 checks without sending anything).
fn process_exists(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        // It exists but belongs to someone else.
        Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    }
}
