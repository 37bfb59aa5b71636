//! The per-user login state on disk: the lock file itself, which every
//! login already opens and flocks. Read whole (at most two slots); written
//! one slot at a time with one `pwrite` and one `fdatasync`.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{StateMemo, StoreError, io_err};
use crate::core::state::{self, LoginState, SLOT_BYTES, STATE_BYTES};

/// The current state in `file`; `Ok(None)` before the first login wrote one.
pub(super) fn read(
    file: &File,
    path: &Path,
    memo: &StateMemo,
) -> Result<Option<LoginState>, StoreError> {
    let len = file.metadata().map_err(io_err(path, "stat"))?.len();
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > STATE_BYTES {
        return Err(StoreError::State {
            path: path.to_path_buf(),
            err: state::StateError::TooLarge(len),
        });
    }
    let mut bytes = vec![0u8; len];
    file.read_exact_at(&mut bytes, 0)
        .map_err(io_err(path, "read"))?;
    memo.current(bytes).map_err(|err| StoreError::State {
        path: path.to_path_buf(),
        err,
    })
}

/// Writes `next` into the slot its sequence number names (the older one)
/// and makes it durable: one write, one fdatasync.
pub(super) fn write(file: &File, path: &Path, next: &LoginState) -> Result<(), StoreError> {
    let bytes: [u8; SLOT_BYTES] = next.encode();
    file.write_all_at(&bytes, state::slot_offset(next.seq))
        .map_err(io_err(path, "write state"))?;
    // The slot is written: a failed sync leaves it in force (page cache).
    file.sync_data().map_err(|err| StoreError::NotDurable {
        path: path.to_path_buf(),
        op: "fdatasync",
        err,
    })
}

/// Empties the state file (when it holds anything) and makes that durable:
/// for a state that belongs to no record, before a new record is written.
pub(super) fn clear(file: &File) -> std::io::Result<()> {
    if file.metadata()?.len() == 0 {
        return Ok(());
    }
    file.set_len(0)?;
    file.sync_data()
}
