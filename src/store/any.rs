//! One storage contract, two stores: the file store (the default) and the
//! PostgreSQL fleet store. The login and the command line use [`AnyStore`]
//! and never learn which one they run on; `tests/store_contract.rs` holds
//! both to the same promises.

use std::path::{Path, PathBuf};

use super::pg::PgStore;
use super::{Change, Store, StoreError, Trust};
use crate::config::{SiteConfig, StoreLocation};
use crate::core::record::Record;

/// What every store promises. `update` is one transaction: the user's
/// record read under a lock, `decide` run, the change made durable (a
/// login's as one state write), and only then the result returned.
pub trait UserStore {
    fn load(&self, user: &str) -> Result<Option<Record>, StoreError>;
    fn is_enrolled(&self, user: &str) -> Result<bool, StoreError>;
    fn update<R, E>(
        &self,
        user: &str,
        decide: impl FnOnce(Option<&Record>) -> Result<(Change, R), E>,
    ) -> Result<Result<R, E>, StoreError>;
    fn replace_broken<E>(
        &self,
        user: &str,
        change: Change,
        before: impl FnOnce() -> Result<(), E>,
    ) -> Result<Result<bool, E>, StoreError>;
    fn users(&self) -> Result<Vec<String>, StoreError>;
    fn decoy_write(&self, record: &Record) -> Result<(), StoreError>;
    /// Where a user's record is, for messages.
    fn record_path(&self, user: &str) -> PathBuf;
    /// Where the store is, for messages and audit lines.
    fn describe(&self) -> String;
}

/// Each store keeps the contract with inherent methods of the same names.
macro_rules! user_store {
    ($($ty:ty),*) => {$(
        impl UserStore for $ty {
            fn load(&self, user: &str) -> Result<Option<Record>, StoreError> {
                <$ty>::load(self, user)
            }
            fn is_enrolled(&self, user: &str) -> Result<bool, StoreError> {
                <$ty>::is_enrolled(self, user)
            }
            fn update<R, E>(
                &self,
                user: &str,
                decide: impl FnOnce(Option<&Record>) -> Result<(Change, R), E>,
            ) -> Result<Result<R, E>, StoreError> {
                <$ty>::update(self, user, decide)
            }
            fn replace_broken<E>(
                &self,
                user: &str,
                change: Change,
                before: impl FnOnce() -> Result<(), E>,
            ) -> Result<Result<bool, E>, StoreError> {
                <$ty>::replace_broken(self, user, change, before)
            }
            fn users(&self) -> Result<Vec<String>, StoreError> {
                <$ty>::users(self)
            }
            fn decoy_write(&self, record: &Record) -> Result<(), StoreError> {
                <$ty>::decoy_write(self, record)
            }
            fn record_path(&self, user: &str) -> PathBuf {
                <$ty>::record_path(self, user)
            }
            fn describe(&self) -> String {
                <$ty>::describe(self)
            }
        }
    )*};
}

user_store!(Store, PgStore, AnyStore);

/// The store a site configured (one per login or command: its size is
/// no concern).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum AnyStore {
    Files(Store),
    Postgres(PgStore),
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnyStore::Files($s) => $e,
            AnyStore::Postgres($s) => $e,
        }
    };
}

impl AnyStore {
    /// The store to use: an explicit directory wins (module `store=`, CLI
    /// `--store`), then the site's `store` (a directory or a URL), then the
    /// default directory. `create` makes a missing directory (enrollment).
    pub fn open(
        site: &SiteConfig,
        explicit: Option<&Path>,
        trust: Trust,
        create: bool,
    ) -> Result<AnyStore, StoreError> {
        match site.store_location_for(explicit) {
            StoreLocation::Dir(dir) if create => Store::create(&dir, trust).map(AnyStore::Files),
            StoreLocation::Dir(dir) => Store::open(&dir, trust).map(AnyStore::Files),
            StoreLocation::Postgres(url) => {
                PgStore::connect(&url, &site.postgres, trust).map(AnyStore::Postgres)
            }
        }
    }

    /// The file store, for checks only it has (doctor).
    pub fn files(&self) -> Option<&Store> {
        match self {
            AnyStore::Files(s) => Some(s),
            AnyStore::Postgres(_) => None,
        }
    }

    /// Where a user's record is, for messages.
    pub fn record_path(&self, user: &str) -> PathBuf {
        dispatch!(self, s => s.record_path(user))
    }

    /// Where the store is, for messages and audit lines.
    pub fn describe(&self) -> String {
        dispatch!(self, s => s.describe())
    }

    pub fn load(&self, user: &str) -> Result<Option<Record>, StoreError> {
        dispatch!(self, s => s.load(user))
    }

    pub fn is_enrolled(&self, user: &str) -> Result<bool, StoreError> {
        dispatch!(self, s => s.is_enrolled(user))
    }

    pub fn update<R, E>(
        &self,
        user: &str,
        decide: impl FnOnce(Option<&Record>) -> Result<(Change, R), E>,
    ) -> Result<Result<R, E>, StoreError> {
        dispatch!(self, s => s.update(user, decide))
    }

    pub fn replace_broken<E>(
        &self,
        user: &str,
        change: Change,
        before: impl FnOnce() -> Result<(), E>,
    ) -> Result<Result<bool, E>, StoreError> {
        dispatch!(self, s => s.replace_broken(user, change, before))
    }

    pub fn users(&self) -> Result<Vec<String>, StoreError> {
        dispatch!(self, s => s.users())
    }

    pub fn decoy_write(&self, record: &Record) -> Result<(), StoreError> {
        dispatch!(self, s => s.decoy_write(record))
    }
}
