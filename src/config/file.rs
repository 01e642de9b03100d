//! A profile in a local JSON file (`FIREFLY_CONFIG_FILE`, local runs).

use super::{Profile, parse_profile};
use crate::sync::Locked;
use std::sync::Mutex;

/// A profile in a local file, read again whenever its modification time or size changes
/// (one `stat` per request: local runs only). A file that is missing or not a JSON object
/// keeps the last good profile, with one warning per change.
pub struct FileSource {
    path: std::path::PathBuf,
    state: Mutex<FileState>,
}

struct FileState {
    /// What the file looked like when last read: (modified, length); `None` before.
    seen: Option<(Option<std::time::SystemTime>, u64)>,
    profile: Profile,
}

impl FileSource {
    pub fn new(path: std::path::PathBuf) -> Self {
        Self {
            path,
            state: Mutex::new(FileState {
                seen: None,
                profile: Profile::default(),
            }),
        }
    }

    pub fn profile(&self) -> Profile {
        let mut state = self.state.locked();
        let look = std::fs::metadata(&self.path)
            .map(|m| (m.modified().ok(), m.len()))
            .map_err(|e| e.to_string());
        let changed = match &look {
            Ok(now) => state.seen != Some(*now),
            // Missing: warn once, keep what we have.
            Err(_) => state.seen != Some((None, u64::MAX)),
        };
        if changed {
            let read = look.clone().and_then(|_| {
                std::fs::read(&self.path)
                    .map_err(|e| e.to_string())
                    .and_then(|b| parse_profile(&b).map_err(|e| e.to_string()))
            });
            state.seen = Some(look.unwrap_or((None, u64::MAX)));
            let source = format!("settings file {}: reading it", self.path.display());
            state.profile.accept(read, &source);
        }
        state.profile.clone()
    }
}
